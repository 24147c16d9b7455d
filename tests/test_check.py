"""``chatbot check`` offline: what it reports and when it fails, with fake accounts at the seam.

The fakes stand where the Mastodon and Bluesky clients stand (the network
Protocol); the real check logic, loader and config run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from chatbot.check import CheckableNetwork, run_check
from chatbot.cli import app
from chatbot.config import Accounts, BlueskyAccount, Config, LoadedConfig, MastodonAccount, Secret
from chatbot.errors import AuthFailed, ConfigError, Transient
from chatbot.networks.base import Account
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

    def account(self) -> Account:
        if self.refuse is not None:
            raise self.refuse
        return Account(self.name, "42", f"@bot-{self.name.value}", self.is_bot)

    def limits(self) -> Limits:
        return Limits(mastodon_max_characters=self.max_characters)

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
    assert "signed in as @bot-mastodon (id 42)" in text
    assert "the account carries the bot flag" in text
    assert 'the account carries the "bot" self-label' in text
    assert "posts may be up to 500 characters (as the instance says)" in text
    assert "posts may be up to 300 graphemes" in text
    assert "the #BLchat feed is readable (3 recent post(s))" in text
    assert "1 chat script(s) fit the limits above" in text
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
    assert 'add the self-label "bot"' in text


def test_refused_credentials_are_a_problem_and_skip_that_account(tmp_path: Path) -> None:
    """A refused token: not ready, a hint to make a new one, and no feed read on that account."""
    loaded = _loaded(tmp_path)
    _script(tmp_path)
    mastodon = FakeAccount(NetworkName.MASTODON, refuse=AuthFailed("401 invalid token"))
    report = run_check(loaded, _networks(mastodon, FakeAccount(NetworkName.BLUESKY)), NOW)
    assert not report.ok
    assert [p.message for p in report.problems] == [
        "the credentials were refused: 401 invalid token"
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
        "cannot reach the account: could not reach Mastodon"
    ]


def test_unreadable_feed_is_a_problem(tmp_path: Path) -> None:
    """The bot must read its hashtag to follow answers: an unreadable feed blocks the chat."""
    loaded = _loaded(tmp_path, bluesky=False)
    _script(tmp_path, networks="[mastodon]")
    mastodon = FakeAccount(NetworkName.MASTODON, unreadable_tags={"BLchat"})
    report = run_check(loaded, _networks(mastodon), NOW)
    assert [p.message for p in report.problems] == [
        "the #BLchat feed cannot be read: the tag timeline needs a signed-in user on this server"
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
    assert "posts may be up to 60 characters" in report.render()
    assert any("chat.yaml:" in p.message and "60" in p.message for p in report.problems)


def test_a_script_for_a_network_without_account(tmp_path: Path) -> None:
    """A script posting to Bluesky with no Bluesky account in the config is a problem."""
    loaded = _loaded(tmp_path, bluesky=False)
    _script(tmp_path)
    report = run_check(loaded, _networks(FakeAccount(NetworkName.MASTODON)), NOW)
    assert [p.message for p in report.problems] == [
        "chat.yaml posts to bluesky, but the config has no bluesky account"
    ]


def test_no_accounts_and_no_schedules(tmp_path: Path) -> None:
    """An empty config: both facts reported as problems to fix."""
    loaded = LoadedConfig(Config(schedules="missing"), tmp_path, None)
    report = run_check(loaded, {}, NOW)
    assert [p.message for p in report.problems] == [
        "no Mastodon or Bluesky account in the config",
        f"the schedules folder {tmp_path / 'missing'} does not exist",
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
