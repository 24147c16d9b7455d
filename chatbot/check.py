"""``chatbot check``: is every configured account ready for the next chat? Posts nothing.

For each account, every read a chat needs, once: which server it is, the bot's
own account and the domain of its handles, the length limit, the bot mark,
the notifications and a thread's replies; then each chat's hashtag, every
chat script against the real limits, and the hosts each script names (its
moderators, co-moderators and guest): a handle that names no account would
leave that person's commands refused. A read that fails is a problem (the check
exits 1); a fact the bot had to assume is a warning that says so. Every line is
a whole sentence, and a fix names what to do on that kind of server.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, TypeVar

from chatbot.config import LoadedConfig
from chatbot.errors import AuthFailed, NetworkError
from chatbot.loader import LoadedScript, check_paths
from chatbot.networks.base import CheckableNetwork as CheckableNetwork  # re-exported for cli
from chatbot.networks.base import Interacting, ServerFacts
from chatbot.run.authority import handle_on
from chatbot.script import ChatScript, NetworkName, Person
from chatbot.text import BLUESKY_MAX_GRAPHEMES, Limits

Level = Literal["ok", "note", "warning", "problem"]
T = TypeVar("T")

TITLES = {NetworkName.MASTODON: "Mastodon", NetworkName.BLUESKY: "Bluesky"}
_PUT_IT = "and put it where the config's access_token points"
# What to do where, by the software's nodeinfo name; "" is any other Mastodon-API server.
AUTH_HINTS = {
    "mastodon": "Create a new access token with the read and write scopes on the instance's "
    f"website (Preferences > Development > New application) {_PUT_IT}.",
    "snac": "Get a new token from snac (POST /oauth/x-snac-get-token with the form fields "
    "login and passwd, or the OAuth flow: POST /api/v1/apps, then /oauth/authorize) "
    f"{_PUT_IT}.",
    "": "Create a new access token with the read and write scopes through the server's OAuth "
    "flow (POST /api/v1/apps, then /oauth/authorize and /oauth/token) or its settings for "
    f"applications, {_PUT_IT}.",
    "bluesky": "Check the handle, and create a new app password (Settings > Privacy and "
    "security > App passwords) where the config's app_password points.",
}
_BOT_FLAG_API = (
    "Set the account's bot flag: PATCH /api/v1/accounts/update_credentials with bot=true"
)
BOT_HINTS = {
    "mastodon": f"{_BOT_FLAG_API}, or on the instance's website tick Preferences > Public "
    'profile > "This is an automated account" and save.',
    "snac": f"{_BOT_FLAG_API}, or in snac's web interface open /<user>/admin > \"User "
    'Settings..." > tick "This account is a bot" and update.',
    "": f"{_BOT_FLAG_API}, or tick the bot (automated account) option in your server's "
    "profile settings.",
    "bluesky": "Add the self-label bot to the profile: read the record with "
    "com.atproto.repo.getRecord (repo: the account's DID, collection: app.bsky.actor.profile, "
    'rkey: self), add labels {"$type": "com.atproto.label.defs#selfLabels", "values": '
    '[{"val": "bot"}]} to it, and write it back with com.atproto.repo.putRecord (same repo, '
    "collection and rkey) so the display name and avatar stay.",
}


# What to do about a host's handle that names no account, by network.
HANDLE_HINTS = {
    NetworkName.MASTODON: "Check the handle against the person's profile page: it is "
    "@user@instance.example, with the server their account is on",
    NetworkName.BLUESKY: "Check the handle against the person's profile (name.bsky.social, or "
    "their own domain), or write their DID (did:plc:...), which never changes",
}


def sentence(text: str) -> str:
    """``text`` ending as a whole sentence does: one full stop (an error's own text may end
    with one, or with none)."""
    text = " ".join(text.split()).rstrip(" .")
    return f"{text}." if text else ""


@dataclass(frozen=True)
class Finding:
    """One fact checked: fine, worth knowing, worth fixing, or in the way of the next chat."""

    level: Level
    section: str
    message: str
    hint: str = ""


@dataclass
class CheckReport:
    """Everything ``chatbot check`` found, in the order it was checked."""

    findings: list[Finding] = field(default_factory=list)

    def add(self, level: Level, section: str, message: str, hint: str = "") -> None:
        self.findings.append(Finding(level, section, sentence(message), sentence(hint)))

    @property
    def problems(self) -> list[Finding]:
        return [f for f in self.findings if f.level == "problem"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.level == "warning"]

    @property
    def ok(self) -> bool:
        return not self.problems

    def render(self) -> str:
        sections: dict[str, list[Finding]] = {}
        for finding in self.findings:  # grouped by section, in the order they came up
            sections.setdefault(finding.section, []).append(finding)
        lines: list[str] = []
        for section, findings in sections.items():
            lines.append(("\n" if lines else "") + section)
            for finding in findings:
                lines.append(f"  {finding.level:<8} {finding.message}")
                if finding.hint:
                    lines.append(f"           fix: {finding.hint}")
        summary = f"{len(self.problems)} problem(s), {len(self.warnings)} warning(s)"
        if self.ok:
            lines.append(f"\nReady: {summary}.")
        else:
            lines.append(f"\nNot ready: {summary}. Fix the problems above before the next chat.")
        return "\n".join(lines)


def run_check(
    loaded: LoadedConfig,
    networks: Mapping[NetworkName, CheckableNetwork],
    now: datetime,
) -> CheckReport:
    """Check the accounts in ``networks`` and the scripts in the schedules folder."""
    report = CheckReport()
    if not networks:
        report.add(
            "problem",
            "Accounts",
            "The config has no Mastodon or Bluesky account",
            "Add accounts: mastodon: and/or bluesky: to the config file",
        )
    working: dict[NetworkName, CheckableNetwork] = {}
    limits = Limits()
    for name, network in networks.items():
        account = AccountCheck(report, loaded, network)
        if account.run():
            working[name] = network
            if name is NetworkName.MASTODON:
                limits = account.limits
    _check_scripts(report, loaded, networks, working, limits, now)
    return report


def section_of(loaded: LoadedConfig, name: NetworkName) -> str:
    accounts = loaded.config.accounts
    where = ""
    if name is NetworkName.MASTODON and accounts.mastodon is not None:
        where = accounts.mastodon.instance
    elif name is NetworkName.BLUESKY and accounts.bluesky is not None:
        where = f"{accounts.bluesky.handle} on {accounts.bluesky.service}"
    return f"{TITLES.get(name, name.value)} ({where})" if where else TITLES.get(name, name.value)


class AccountCheck:
    """The checks of one account, in order; the first that fails hard stops the rest."""

    def __init__(self, report: CheckReport, loaded: LoadedConfig, network: CheckableNetwork):
        self.report = report
        self.loaded = loaded
        self.network = network
        self.section = section_of(loaded, network.name)
        self.mastodon = network.name is NetworkName.MASTODON
        self.kind = "" if self.mastodon else "bluesky"
        self.limits = Limits()

    def add(self, level: Level, message: str, hint: str = "") -> None:
        self.report.add(level, self.section, message, hint)

    def run(self) -> bool:
        """True when the account works (its feeds are then read by the scripts' check)."""
        facts = self._server() if self.mastodon else None
        if not self._account():
            return False
        if facts is not None:
            self._domain(facts)
        self._limit(facts)
        if facts is not None:
            self._visibility(facts)
        self._notifications()
        self._thread()
        return True

    def _server(self) -> ServerFacts | None:
        try:
            facts = self.network.server()
        except NetworkError as exc:
            self.add(
                "problem",
                f"The server's description (/api/v2/instance, or /api/v1/instance where v2 is "
                f"not served) cannot be read, so the bot cannot tell the domain of its "
                f"handles: {exc}",
                "Check the instance address in the config, and that the server answers it",
            )
            return None
        self.kind = facts.kind if facts.kind in AUTH_HINTS else ""
        if facts.software_source:
            self.add("ok", f"The server runs {facts.software} (read from {facts.software_source})")
        else:
            self.add(
                "note",
                "The server does not say which software it runs (no nodeinfo, no version), so "
                "the bot reads it with the care any Mastodon-API server needs",
            )
        return facts

    def _account(self) -> bool:
        try:
            account = self.network.account()
        except AuthFailed as exc:
            self.add("problem", f"The credentials were refused: {exc}", AUTH_HINTS[self.kind])
            return False
        except NetworkError as exc:
            self.add(
                "problem",
                f"The account cannot be reached: {exc}",
                "Check the address in the config and the machine's internet connection",
            )
            return False
        self.add("ok", f"Signed in as {account.handle} (id {account.id})")
        if account.is_bot:
            mark = "bot flag" if self.mastodon else 'self-label "bot"'
            self.add("ok", f"The account carries the {mark}")
        else:
            if self.mastodon:
                missing = "is not marked as a bot, which many servers' rules ask of automated"
                missing += " accounts"
            else:
                missing = 'has no self-label "bot", which Bluesky asks automated accounts to carry'
            self.add("warning", f"The account {missing}", BOT_HINTS[self.kind])
        return True

    def _domain(self, facts: ServerFacts) -> None:
        if facts.domain_source == "the configured address":
            self.add(
                "warning",
                f"The instance does not name its domain, so the bot takes local handles to "
                f"end in @{facts.domain}, the host of the configured address",
                "If the server's accounts live under another domain, put that domain in the "
                "config's instance address",
            )
        else:
            self.add(
                "ok", f"Local handles end in @{facts.domain} (read from {facts.domain_source})"
            )

    def _limit(self, facts: ServerFacts | None) -> None:
        if not self.mastodon:
            self.add(
                "ok", f"Posts may be up to {BLUESKY_MAX_GRAPHEMES} graphemes (Bluesky's own limit)"
            )
            return
        self.limits = self.network.limits()
        if facts is not None and facts.limit_source:
            self.add(
                "ok",
                f"Posts may be up to {facts.max_characters:,} characters (read from "
                f"{facts.limit_source})",
            )
            return
        self.add(
            "warning",
            f"The instance does not say how long posts may be, so the bot assumes the default "
            f"of {self.limits.mastodon_max_characters:,} characters",
            "If the server allows other lengths, set max_characters under accounts: mastodon: "
            "in the config",
        )

    def _visibility(self, facts: ServerFacts) -> None:
        account = self.loaded.config.accounts.mastodon
        used: dict[str, list[str]] = {}
        if account is not None:
            for setting in ("reminders_visibility", "chat_visibility", "recap_visibility"):
                used.setdefault(str(getattr(account, setting).value), []).append(setting)
        for asked, given in facts.visibility_changes:
            settings = used.get(asked, [])
            if settings:
                names = " and ".join(settings)
                where = ", in the hashtag timeline" if given == "public" else ""
                self.add(
                    "warning",
                    f"This server posts {asked} statuses as {given}, so the posts {names} sets "
                    f"to {asked} will be {given}{where}",
                    f"Set {names} to {given} in the config, so that it says what this server does",
                )
            else:
                self.add(
                    "note",
                    f"This server posts {asked} statuses as {given}; the config asks for no "
                    f"{asked} post",
                )

    def _read(self, read: Callable[[], T], problem: str, hint: str) -> tuple[T] | None:
        """``(what read() gave,)``, or None after reporting ``problem``, with why, as a problem."""
        try:
            return (read(),)
        except NetworkError as exc:
            self.add("problem", f"{problem}: {exc}", hint)
            return None

    def _notifications(self) -> None:
        got = self._read(
            self.network.notifications_feed,
            "The notifications cannot be read, so answers that only mention the bot would be "
            "missed",
            "Give the account's token or app password the right to read notifications",
        )
        if got is not None:
            self.add(
                "ok", f"The notifications can be read ({got[0]} recent mention, reply or quote)"
            )

    def _thread(self) -> None:
        got = self._read(
            self.network.thread_replies,
            "The replies under the bot's newest post cannot be read, so answers that forget the "
            "hashtag would be missed",
            "Give the account's token or app password the right to read posts",
        )
        if got is None:
            return
        thread = got[0]
        if thread is None:
            self.add(
                "note",
                "The bot has not posted yet, so reading a thread's replies was not checked; "
                "the first chat reads them for the first time",
            )
        else:
            self.add(
                "ok",
                f"The replies under the bot's newest post ({thread.url}) can be read: "
                f"{thread.replies} so far",
            )


def _check_scripts(
    report: CheckReport,
    loaded: LoadedConfig,
    configured: Mapping[NetworkName, CheckableNetwork],
    working: Mapping[NetworkName, CheckableNetwork],
    limits: Limits,
    now: datetime,
) -> None:
    folder = loaded.schedules_dir
    section = f"Chat scripts ({folder})"
    if not folder.is_dir():
        report.add(
            "problem",
            section,
            f"The schedules folder {folder} does not exist",
            "Create it, or set schedules: in the config to the folder with the chat scripts",
        )
        return
    result = check_paths([folder], now, limits)
    for problem in result.problems:
        report.add(
            "problem",
            section,
            f"{problem.location()}: {problem.field}: {problem.message}",
            problem.hint,
        )
    if result.scripts:
        report.add(
            "ok",
            section,
            f"{len(result.scripts)} chat script(s) fit the limits above",
        )
    elif not result.problems:
        report.add(
            "warning", section, "There are no chat scripts yet", "Add a chat script (*.yaml) here"
        )
    feeds_read: set[tuple[NetworkName, str]] = set()
    for loaded_script in result.scripts:
        script = loaded_script.script
        tag = script.hashtag.removeprefix("#")
        for name in script.networks:
            if name is NetworkName.LOCAL:
                continue
            if name not in configured:
                report.add(
                    "problem",
                    section,
                    f"{loaded_script.path.name} posts to {name.value}, but the config has no "
                    f"{name.value} account",
                    f"Add accounts: {name.value}: to the config, or remove {name.value} from "
                    "the script's networks",
                )
                continue
            network = working.get(name)
            if network is None or (name, tag.lower()) in feeds_read:
                continue
            feeds_read.add((name, tag.lower()))
            feed_section = section_of(loaded, name)
            try:
                count = network.hashtag_feed(tag)
            except NetworkError as exc:
                report.add(
                    "problem",
                    feed_section,
                    f"The #{tag} timeline cannot be read, and the bot needs it to follow "
                    f"answers: {exc}",
                    "Give the account's token or app password the right to read posts",
                )
            else:
                report.add(
                    "ok", feed_section, f"The #{tag} timeline can be read ({count} recent post(s))"
                )
    _check_hosts(report, loaded, result.scripts, working)


def _hosts(script: ChatScript) -> list[tuple[str, Person]]:
    """The people a script gives the right to command its chats, with their role."""
    return [
        *(("moderator", p) for p in script.moderators),
        *(("co-moderator", p) for p in script.co_moderators),
        *([("guest", script.guest)] if script.guest else []),
    ]


def _check_hosts(
    report: CheckReport,
    loaded: LoadedConfig,
    scripts: list[LoadedScript],
    working: Mapping[NetworkName, CheckableNetwork],
) -> None:
    """Each host's handle, on each account that works, names an account: else their commands
    would be refused (by account, never by name) and nobody would know why."""
    for name, network in working.items():
        if not isinstance(network, Interacting):
            continue
        section = section_of(loaded, name)
        looked_up: dict[str, str | NetworkError | None] = {}
        found = 0
        for loaded_script in scripts:
            for role, person in _hosts(loaded_script.script):
                handle = handle_on(person, name)
                if not handle:
                    continue
                if handle not in looked_up:
                    try:
                        looked_up[handle] = network.resolve(handle)
                    except NetworkError as exc:
                        looked_up[handle] = exc
                answer = looked_up[handle]
                who = f"The {role} {person.name} ({handle}) of {loaded_script.path.name}"
                if isinstance(answer, NetworkError):
                    report.add(
                        "problem",
                        section,
                        f"{who} could not be looked up, so their commands may be refused: {answer}",
                        "Run the check again; if it keeps failing, check the account's access",
                    )
                elif answer is None:
                    report.add(
                        "problem",
                        section,
                        f"{who} names no account on {TITLES.get(name, name.value)}, so their "
                        "commands to the bot would be refused",
                        f"{HANDLE_HINTS.get(name, 'Check the handle')}, and correct it in "
                        f"{loaded_script.path.name}",
                    )
                else:
                    found += 1
        if found:
            report.add(
                "ok", section, f"{found} host(s) named in the chat scripts have an account here"
            )
