"""``chatbot check``: is every configured account ready for the next chat? Posts nothing.

For each account: the credentials work, who the bot is, the server's limits,
whether the account is marked as a bot, and whether each chat's hashtag feed can
be read; then every chat script is checked again against the real limits.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from chatbot.config import LoadedConfig
from chatbot.errors import AuthFailed, ChatbotError, NetworkError
from chatbot.loader import check_paths
from chatbot.networks.base import CheckableNetwork as CheckableNetwork  # re-exported for cli
from chatbot.script import NetworkName
from chatbot.text import BLUESKY_MAX_GRAPHEMES, Limits

Level = Literal["ok", "warning", "problem"]

BOT_HINTS = {
    NetworkName.MASTODON: (
        "on the instance's website: Preferences > Public profile > tick "
        '"This is an automated account", then Save'
    ),
    NetworkName.BLUESKY: (
        'add the self-label "bot" to the account\'s profile record (app.bsky.actor.profile, '
        'labels: {values: [{val: "bot"}]}), for example with the atproto SDK'
    ),
}
AUTH_HINTS = {
    NetworkName.MASTODON: (
        "create a new access token (Preferences > Development > New application, scopes read "
        "and write) and put it where the config's access_token points"
    ),
    NetworkName.BLUESKY: (
        "check the handle, and create a new app password (Settings > Privacy and security > "
        "App passwords) where the config's app_password points"
    ),
}
TITLES = {NetworkName.MASTODON: "Mastodon", NetworkName.BLUESKY: "Bluesky"}


@dataclass(frozen=True)
class Finding:
    """One fact checked: fine, worth fixing, or in the way of the next chat."""

    level: Level
    section: str
    message: str
    hint: str = ""


@dataclass
class CheckReport:
    """Everything ``chatbot check`` found, in the order it was checked."""

    findings: list[Finding] = field(default_factory=list)

    def add(self, level: Level, section: str, message: str, hint: str = "") -> None:
        self.findings.append(Finding(level, section, message, hint))

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
            "no Mastodon or Bluesky account in the config",
            "add accounts: mastodon: and/or bluesky: to the config file",
        )
    working: dict[NetworkName, CheckableNetwork] = {}
    limits = Limits()
    for name, network in networks.items():
        section = _section(loaded, name)
        if _check_account(report, section, network):
            working[name] = network
            if name is NetworkName.MASTODON:
                limits = _check_mastodon_limits(report, section, loaded, network)
            else:
                report.add("ok", section, f"posts may be up to {BLUESKY_MAX_GRAPHEMES} graphemes")
    _check_scripts(report, loaded, networks, working, limits, now)
    return report


def _section(loaded: LoadedConfig, name: NetworkName) -> str:
    accounts = loaded.config.accounts
    where = ""
    if name is NetworkName.MASTODON and accounts.mastodon is not None:
        where = accounts.mastodon.instance
    elif name is NetworkName.BLUESKY and accounts.bluesky is not None:
        where = f"{accounts.bluesky.handle} on {accounts.bluesky.service}"
    return f"{TITLES.get(name, name.value)} ({where})" if where else TITLES.get(name, name.value)


def _check_account(report: CheckReport, section: str, network: CheckableNetwork) -> bool:
    try:
        account = network.account()
    except AuthFailed as exc:
        report.add(
            "problem", section, f"the credentials were refused: {exc}", AUTH_HINTS[network.name]
        )
        return False
    except ChatbotError as exc:
        report.add(
            "problem",
            section,
            f"cannot reach the account: {exc}",
            "check the address in the config and the machine's internet connection",
        )
        return False
    report.add("ok", section, f"signed in as {account.handle} (id {account.id})")
    if account.is_bot:
        flag = "bot flag" if network.name is NetworkName.MASTODON else '"bot" self-label'
        report.add("ok", section, f"the account carries the {flag}")
    elif network.name is NetworkName.MASTODON:
        report.add(
            "warning",
            section,
            "the account is not marked as a bot; many servers' rules ask automated accounts to be",
            BOT_HINTS[network.name],
        )
    else:
        report.add(
            "warning",
            section,
            'the profile does not carry the "bot" self-label',
            BOT_HINTS[network.name],
        )
    return True


def _check_mastodon_limits(
    report: CheckReport, section: str, loaded: LoadedConfig, network: CheckableNetwork
) -> Limits:
    limits = network.limits()
    account = loaded.config.accounts.mastodon
    source = (
        "from the config's max_characters"
        if account is not None and account.max_characters
        else "as the instance says"
    )
    report.add(
        "ok", section, f"posts may be up to {limits.mastodon_max_characters} characters ({source})"
    )
    return limits


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
            f"the schedules folder {folder} does not exist",
            "create it, or set schedules: in the config to the folder with the chat scripts",
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
        report.add("warning", section, "no chat scripts yet", "add a chat script (*.yaml) here")
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
                    f"add accounts: {name.value}: to the config, or remove {name.value} from "
                    "the script's networks",
                )
                continue
            network = working.get(name)
            if network is None or (name, tag.lower()) in feeds_read:
                continue
            feeds_read.add((name, tag.lower()))
            feed_section = _section(loaded, name)
            try:
                count = network.hashtag_feed(tag)
            except NetworkError as exc:
                report.add(
                    "problem",
                    feed_section,
                    f"the #{tag} feed cannot be read: {exc}",
                    "the bot needs it to follow answers; check the token's read scope",
                )
            else:
                report.add(
                    "ok", feed_section, f"the #{tag} feed is readable ({count} recent post(s))"
                )
