"""``chatbot check`` offline: what it reports and when it fails, with fake accounts at the seam.

The fakes stand where the Mastodon and Bluesky clients stand (the network
Protocol); the real check logic, loader and config run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from chatbot.check import CheckableNetwork, CheckReport, run_check
from chatbot.cli import app
from chatbot.config import Accounts, BlueskyAccount, Config, LoadedConfig, MastodonAccount, Secret
from chatbot.errors import AuthFailed, ConfigError, Transient
from chatbot.networks.base import Account, ServerFacts, ThreadCheck
from chatbot.networks.connect import connect_accounts
from chatbot.script import NetworkName
from chatbot.text import Limits

NOW = datetime(2027, 1, 1, 12, 0, tzinfo=UTC)


@dataclass
class FakeAccount:
    """A network that answers check's questions from fixed facts."""

    name: NetworkName
    is_bot: bool = True
    max_characters: int = 500
    refuse: Exception | None = None
    unreadable_tags: set[str] = field(default_factory=set)
    feeds_read: list[str] = field(default_factory=list)
    facts: ServerFacts | None = None  # None: a Mastodon instance that says everything
    fail: dict[str, Exception] = field(default_factory=dict)  # method name -> its error
    thread: ThreadCheck | None = field(
        default_factory=lambda: ThreadCheck("https://example/@bot/1", 2)
    )

    def account(self) -> Account:
        if self.refuse is not None:
            raise self.refuse
        return Account(self.name, "42", f"@bot-{self.name.value}", self.is_bot)

    def server(self) -> ServerFacts:
        self._maybe_fail("server")
        if self.facts is not None:
            return self.facts
        if self.name is not NetworkName.MASTODON:
            return ServerFacts()
        return ServerFacts(
            software="mastodon 4.3.0",
            kind="mastodon",
            software_source="its nodeinfo",
            domain="mastodon.example",
            domain_source="/api/v2/instance",
            max_characters=self.max_characters,
            limit_source="/api/v2/instance",
        )

    def limits(self) -> Limits:
        return Limits(mastodon_max_characters=self.max_characters)

    def notifications_feed(self, limit: int = 10) -> int:
        self._maybe_fail("notifications_feed")
        return 1

    def thread_replies(self) -> ThreadCheck | None:
        self._maybe_fail("thread_replies")
        return self.thread

    def _maybe_fail(self, method: str) -> None:
        if method in self.fail:
            raise self.fail[method]

    def hashtag_feed(self, tag: str, limit: int = 10) -> int:
        self.feeds_read.append(tag)
        if tag in self.unreadable_tags:
            raise Transient("the tag timeline needs a signed-in user on this server")
        return 3


def _loaded(tmp_path: Path, *, mastodon: bool = True, bluesky: bool = True) -> LoadedConfig:
    accounts = Accounts(
        mastodon=MastodonAccount(
            instance="https://mastodon.example", access_token=Secret(env="CHECK_TOKEN")
        )
        if mastodon
        else None,
        bluesky=BlueskyAccount(handle="bot.example.com", app_password=Secret(env="CHECK_PASS"))
        if bluesky
        else None,
    )
    (tmp_path / "schedules").mkdir(exist_ok=True)
    return LoadedConfig(Config(accounts=accounts), tmp_path, None)


def _script(tmp_path: Path, name: str = "chat.yaml", *, question: str = "What works?",
            networks: str = "[mastodon, bluesky]", hashtag: str = "BLchat") -> None:  # fmt: skip
    (tmp_path / "schedules" / name).write_text(
        f"""title: Check chat
hashtag: "#{hashtag}"
timezone: America/New_York
start: 2027-03-04 19:00
networks: {networks}
moderators:
  - name: Host
welcome:
  text: "Welcome to {{hashtag}}!"
questions:
  - text: "{question}"
closing:
  text: "Thanks for joining {{hashtag}}!"
""",
        encoding="utf-8",
    )


def _networks(*fakes: FakeAccount) -> dict[NetworkName, CheckableNetwork]:
    return {fake.name: fake for fake in fakes}


def test_everything_fine(tmp_path: Path) -> None:
    """Both accounts work and are bots, feeds read, scripts fit: ready, nothing to fix."""
    loaded = _loaded(tmp_path)
    _script(tmp_path)
    mastodon, bluesky = FakeAccount(NetworkName.MASTODON), FakeAccount(NetworkName.BLUESKY)
    report = run_check(loaded, _networks(mastodon, bluesky), NOW)
    text = report.render()
    assert report.ok and not report.warnings, text
    assert "The server runs mastodon 4.3.0 (read from its nodeinfo)." in text
    assert "Signed in as @bot-mastodon (id 42)." in text
    assert "The account carries the bot flag." in text
    assert 'The account carries the self-label "bot".' in text
    assert "Local handles end in @mastodon.example (read from /api/v2/instance)." in text
    assert "Posts may be up to 500 characters (read from /api/v2/instance)." in text
    assert "Posts may be up to 300 graphemes (Bluesky's own limit)." in text
    assert "The notifications can be read (1 recent mention, reply or quote)." in text
    assert "(https://example/@bot/1) can be read: 2 so far." in text
    assert "The #BLchat timeline can be read (3 recent post(s))." in text
    assert "1 chat script(s) fit the limits above." in text
    assert text.endswith("Ready: 0 problem(s), 0 warning(s).")
    sections = [line for line in text.splitlines() if line and not line.startswith(" ")]
    assert sections == [
        "Mastodon (https://mastodon.example)",
        "Bluesky (bot.example.com on https://bsky.social)",
        f"Chat scripts ({tmp_path / 'schedules'})",
        "Ready: 0 problem(s), 0 warning(s).",
    ]
    assert mastodon.feeds_read == bluesky.feeds_read == ["BLchat"]


def test_missing_bot_flag_is_a_warning_with_a_hint(tmp_path: Path) -> None:
    """Not marked as a bot: still ready, but the report says how to set the flag."""
    loaded = _loaded(tmp_path)
    _script(tmp_path)
    report = run_check(
        loaded,
        _networks(
            FakeAccount(NetworkName.MASTODON, is_bot=False),
            FakeAccount(NetworkName.BLUESKY, is_bot=False),
        ),
        NOW,
    )
    assert report.ok
    assert len(report.warnings) == 2
    text = report.render()
    assert "This is an automated account" in text
    assert "PATCH /api/v1/accounts/update_credentials with bot=true" in text
    assert "Add the self-label bot to the profile" in text
    assert "com.atproto.repo.putRecord" in text


def test_refused_credentials_are_a_problem_and_skip_that_account(tmp_path: Path) -> None:
    """A refused token: not ready, a hint to make a new one, and no feed read on that account."""
    loaded = _loaded(tmp_path)
    _script(tmp_path)
    mastodon = FakeAccount(NetworkName.MASTODON, refuse=AuthFailed("401 invalid token"))
    report = run_check(loaded, _networks(mastodon, FakeAccount(NetworkName.BLUESKY)), NOW)
    assert not report.ok
    assert [p.message for p in report.problems] == [
        "The credentials were refused: 401 invalid token."
    ]
    assert "new access token" in report.problems[0].hint
    assert mastodon.feeds_read == []


def test_unreachable_server_is_a_problem(tmp_path: Path) -> None:
    """A server that does not answer is named as such, with what to check."""
    loaded = _loaded(tmp_path, bluesky=False)
    _script(tmp_path, networks="[mastodon]")
    mastodon = FakeAccount(NetworkName.MASTODON, refuse=Transient("could not reach Mastodon"))
    report = run_check(loaded, _networks(mastodon), NOW)
    assert [p.message for p in report.problems] == [
        "The account cannot be reached: could not reach Mastodon."
    ]


def test_unreadable_feed_is_a_problem(tmp_path: Path) -> None:
    """The bot must read its hashtag to follow answers: an unreadable feed blocks the chat."""
    loaded = _loaded(tmp_path, bluesky=False)
    _script(tmp_path, networks="[mastodon]")
    mastodon = FakeAccount(NetworkName.MASTODON, unreadable_tags={"BLchat"})
    report = run_check(loaded, _networks(mastodon), NOW)
    assert [p.message for p in report.problems] == [
        "The #BLchat timeline cannot be read, and the bot needs it to follow answers: "
        "the tag timeline needs a signed-in user on this server."
    ]


def test_scripts_are_checked_against_the_real_limit(tmp_path: Path) -> None:
    """A question that fits 500 but not this instance's 60 characters is a problem, with a line."""
    loaded = _loaded(tmp_path, bluesky=False)
    _script(
        tmp_path,
        networks="[mastodon]",
        question="How do you run small groups in a class of thirty students?",
    )
    small = FakeAccount(NetworkName.MASTODON, max_characters=60)
    report = run_check(loaded, _networks(small), NOW)
    assert not report.ok
    assert "Posts may be up to 60 characters" in report.render()
    assert any("chat.yaml:" in p.message and "60" in p.message for p in report.problems)


def test_a_script_for_a_network_without_account(tmp_path: Path) -> None:
    """A script posting to Bluesky with no Bluesky account in the config is a problem."""
    loaded = _loaded(tmp_path, bluesky=False)
    _script(tmp_path)
    report = run_check(loaded, _networks(FakeAccount(NetworkName.MASTODON)), NOW)
    assert [p.message for p in report.problems] == [
        "chat.yaml posts to bluesky, but the config has no bluesky account."
    ]


def test_no_accounts_and_no_schedules(tmp_path: Path) -> None:
    """An empty config: both facts reported as problems to fix."""
    loaded = LoadedConfig(Config(schedules="missing"), tmp_path, None)
    report = run_check(loaded, {}, NOW)
    assert [p.message for p in report.problems] == [
        "The config has no Mastodon or Bluesky account.",
        f"The schedules folder {tmp_path / 'missing'} does not exist.",
    ]


SNAC_FACTS = ServerFacts(
    software="snac 2.75",
    kind="snac",
    software_source="its nodeinfo",
    domain="snac.example",
    domain_source="/api/v1/instance",
    max_characters=100_000,
    limit_source="/api/v1/instance",
    visibility_changes=(("unlisted", "public"), ("direct", "private")),
)


def _mastodon_only(tmp_path: Path, **fake: Any) -> tuple[FakeAccount, CheckReport]:
    """A Mastodon account alone, with one chat script; the fake's fields from ``fake``."""
    loaded = _loaded(tmp_path, bluesky=False)
    _script(tmp_path, networks="[mastodon]")
    mastodon = FakeAccount(NetworkName.MASTODON, **fake)
    return mastodon, run_check(loaded, _networks(mastodon), NOW)


def test_every_line_is_a_whole_sentence(tmp_path: Path) -> None:
    """Every message and every fix ends with one full stop, whatever the findings."""
    _fake, report = _mastodon_only(
        tmp_path,
        is_bot=False,
        facts=ServerFacts(domain="x.example", domain_source="the configured address"),
        fail={"notifications_feed": Transient("could not reach x.example (reset)")},
        thread=None,
    )
    for finding in report.findings:
        assert finding.message.endswith(".") and not finding.message.endswith(".."), finding
        assert not finding.hint or finding.hint.endswith("."), finding


def test_the_servers_own_limit_names_where_it_was_read(tmp_path: Path) -> None:
    """snac's 100,000 characters from /api/v1/instance, with the software from nodeinfo."""
    _fake, report = _mastodon_only(tmp_path, max_characters=100_000, facts=SNAC_FACTS)
    text = report.render()
    assert "The server runs snac 2.75 (read from its nodeinfo)." in text
    assert "Posts may be up to 100,000 characters (read from /api/v1/instance)." in text
    assert "Local handles end in @snac.example (read from /api/v1/instance)." in text


def test_a_default_limit_is_a_warning_that_says_so(tmp_path: Path) -> None:
    """An instance that names no limit: 500 is the bot's assumption, said as such."""
    facts = ServerFacts(software="x 1", software_source="its nodeinfo", domain="x.example",
                        domain_source="/api/v1/instance")  # fmt: skip
    _fake, report = _mastodon_only(tmp_path, facts=facts)
    assert report.ok
    [warning] = report.warnings
    assert warning.message == (
        "The instance does not say how long posts may be, so the bot assumes the default of "
        "500 characters."
    )
    assert "as the instance says" not in report.render()


def test_an_unreadable_server_description_is_a_problem(tmp_path: Path) -> None:
    """Neither /api/v2/instance nor /api/v1/instance answers: the domain is unknown, not ready."""
    _fake, report = _mastodon_only(
        tmp_path, fail={"server": Transient("reading /api/v1/instance: x answered 502")}
    )
    assert not report.ok
    assert "cannot tell the domain of its handles" in report.problems[0].message
    assert "the bot assumes the default of 500 characters" in report.render()


def test_unreadable_notifications_are_a_problem(tmp_path: Path) -> None:
    """Mentions are how some answers arrive: notifications the bot cannot read block the chat."""
    _fake, report = _mastodon_only(
        tmp_path, fail={"notifications_feed": AuthFailed("x answered 403: scope")}
    )
    assert [p.message for p in report.problems] == [
        "The notifications cannot be read, so answers that only mention the bot would be "
        "missed: x answered 403: scope."
    ]


def test_an_unreadable_thread_is_a_problem(tmp_path: Path) -> None:
    """Replies that forget the hashtag come from a thread's context: it must be readable."""
    _fake, report = _mastodon_only(
        tmp_path, fail={"thread_replies": Transient("reading the replies to the chat: x 500")}
    )
    assert len(report.problems) == 1
    assert report.problems[0].message.startswith("The replies under the bot's newest post")


def test_no_post_yet_skips_the_thread_with_a_note(tmp_path: Path) -> None:
    """A bot that never posted has no thread to read: a note says the read was skipped."""
    _fake, report = _mastodon_only(tmp_path, thread=None)
    assert report.ok and not report.warnings
    [note] = [f for f in report.findings if f.level == "note"]
    assert "was not checked" in note.message


def test_snacs_unlisted_recap_is_a_warning(tmp_path: Path) -> None:
    """snac posts unlisted as public: the recap (unlisted by default) will be in the timeline."""
    _fake, report = _mastodon_only(tmp_path, max_characters=100_000, facts=SNAC_FACTS)
    [warning] = report.warnings
    assert warning.message.startswith("This server posts unlisted statuses as public")
    assert "recap_visibility" in warning.message
    assert warning.hint == (
        "Set recap_visibility to public in the config, so that it says what this server does."
    )
    notes = [f.message for f in report.findings if f.level == "note"]
    assert "This server posts direct statuses as private; the config asks for no direct post." in (
        notes
    )


def test_fixes_name_what_to_do_on_that_kind_of_server(tmp_path: Path) -> None:
    """A snac account gets snac's steps; an unknown server the API call, no Mastodon menu."""
    _fake, snac = _mastodon_only(tmp_path, is_bot=False, facts=SNAC_FACTS)
    assert "This account is a bot" in snac.warnings[0].hint
    assert "Preferences" not in snac.render()
    unknown = ServerFacts(domain="x.example", domain_source="/api/v1/instance")
    _fake, other = _mastodon_only(tmp_path, refuse=AuthFailed("401"), facts=unknown)
    assert "POST /api/v1/apps" in other.problems[0].hint
    assert "Preferences" not in other.render()
    note = next(f.message for f in other.findings if f.level == "note")
    assert note.startswith("The server does not say which software it runs")


def test_a_domain_from_the_configured_address_is_a_warning(tmp_path: Path) -> None:
    """An instance that names no domain: handles get the configured host, said as a warning."""
    facts = ServerFacts(domain="mastodon.example", domain_source="the configured address",
                        max_characters=500, limit_source="/api/v1/instance")  # fmt: skip
    _fake, report = _mastodon_only(tmp_path, facts=facts)
    assert [w.message for w in report.warnings] == [
        "The instance does not name its domain, so the bot takes local handles to end in "
        "@mastodon.example, the host of the configured address."
    ]


def test_connect_builds_clients_without_network_calls(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Clients are built from the config offline; a config without an account leaves it out."""
    monkeypatch.setenv("CHECK_TOKEN", "token-1")
    monkeypatch.setenv("CHECK_PASS", "pass-1")
    both = connect_accounts(_loaded(tmp_path))
    assert set(both) == {NetworkName.MASTODON, NetworkName.BLUESKY}
    assert isinstance(both[NetworkName.MASTODON], CheckableNetwork)
    assert isinstance(both[NetworkName.BLUESKY], CheckableNetwork)
    for network in both.values():
        network.close()
    only = connect_accounts(_loaded(tmp_path, bluesky=False))
    assert set(only) == {NetworkName.MASTODON}
    only[NetworkName.MASTODON].close()


def test_connect_names_a_missing_secret(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A secret that is not set stops the start with its name (never a value)."""
    monkeypatch.delenv("CHECK_TOKEN", raising=False)
    with pytest.raises(ConfigError, match="CHECK_TOKEN"):
        connect_accounts(_loaded(tmp_path, bluesky=False))


def test_check_help_speaks_to_co_moderators() -> None:
    """`chatbot check --help` says what is checked, that nothing is posted, and the exit codes."""
    result = CliRunner().invoke(app, ["check", "--help"])
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    assert "without posting anything" in text
    assert "marked as a bot" in text
    assert "Exits 0 when the bot is ready" in text


def test_check_command_reports_a_missing_secret(tmp_path: Path) -> None:
    """The command itself: a missing secret is one clear error line and exit 1."""
    config = tmp_path / "config.yaml"
    config.write_text(
        "accounts:\n  mastodon:\n    instance: https://mastodon.example\n"
        "    access_token: {env: CHATBOT_TEST_SURELY_UNSET}\n",
        encoding="utf-8",
    )
    result = CliRunner().invoke(app, ["check", "--config", str(config)])
    assert result.exit_code != 0
    assert isinstance(result.exception, ConfigError)
    assert "CHATBOT_TEST_SURELY_UNSET" in str(result.exception)
