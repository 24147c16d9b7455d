"""``chatbot health`` passes on a healthy bot and fails for each cause, naming it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from chatbot.cli import app
from chatbot.health import check_health
from chatbot.run.replica import Replica
from chatbot.script import NetworkName
from chatbot.store import ChatState, PlannedUnit, Store
from chatbot.testing import FakeClock

NOW = datetime(2030, 1, 3, 19, 0, tzinfo=UTC)
GRACE = timedelta(minutes=5)


class Bot:
    """A store as a running bot leaves it: a replica with a heartbeat, one chat at 20:00."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.clock = FakeClock(NOW)
        self.store = Store.open(f"sqlite:///{data_dir / 'chatbot.db'}", now=NOW)
        self.replica = Replica(self.store, self.clock, folder=data_dir)
        self.replica.started()
        start = NOW + timedelta(hours=1)
        self.store.chats.upsert(
            chat_id="c",
            script_id="s",
            title="T",
            hashtag="tag",
            timezone="UTC",
            start_at=start,
            end_at=start + timedelta(hours=1),
            now=NOW,
        )
        unit = PlannedUnit("welcome", NetworkName.LOCAL, 0, "welcome", None, start, "k", "Hi")
        self.store.units.plan("c", [unit], now=NOW)

    def problems(self, at: datetime | None = None) -> list[str]:
        findings = check_health(self.store, self.data_dir, at or self.clock(), step_grace=GRACE)
        return [f.message for f in findings if not f.ok]


@pytest.fixture
def bot(tmp_path: Path) -> Iterator[Bot]:
    made = Bot(tmp_path)
    yield made
    made.store.close()


def test_a_healthy_bot_passes(bot: Bot) -> None:
    """A fresh heartbeat, nothing overdue, accounts fine: no problem."""
    assert bot.problems() == []


def test_a_scheduler_that_stopped_beating_fails(bot: Bot) -> None:
    """No heartbeat for a minute: the scheduler has not run its jobs."""
    assert any("has not run a job since" in p for p in bot.problems(NOW + timedelta(minutes=1)))


def test_a_step_long_overdue_fails(bot: Bot) -> None:
    """A step due at 20:00 still pending at 20:10 (heartbeat fresh): named with its time."""
    later = NOW + timedelta(hours=1, minutes=10)
    bot.clock.set(later)
    bot.replica.beat()
    (problem,) = bot.problems()
    assert "has not run a job it should have: c welcome on local was due at 20:00:00" in problem


def test_a_store_that_cannot_be_written_fails(bot: Bot) -> None:
    """A read-only database is reported, with the database's own words."""
    path = bot.data_dir / "chatbot.db"
    engine = sa.create_engine(f"sqlite:///file:{path}?mode=ro&uri=true")
    try:
        problems = [
            f.message
            for f in check_health(Store(engine), bot.data_dir, NOW, step_grace=GRACE)
            if not f.ok
        ]
    finally:
        engine.dispose()
    assert any(p.startswith("the store cannot be written") for p in problems)


def test_an_account_refused_since_its_last_success_fails(bot: Bot) -> None:
    """Credentials refused after they last worked: the account and the error are named."""
    bot.store.leases.account_ok("mastodon", now=NOW - timedelta(hours=1))
    bot.store.leases.account_refused("mastodon", "the access token was refused", now=NOW)
    assert any(
        "mastodon account has failed authentication" in p and "refused" in p for p in bot.problems()
    )
    bot.store.leases.account_ok("mastodon", now=NOW + timedelta(seconds=1))
    assert bot.problems() == []


def test_collection_failing_too_long_for_a_running_chat_fails(bot: Bot) -> None:
    """A running chat whose answers have not been readable for 11 minutes."""
    bot.store.chats.update("c", state=ChatState.RUNNING, now=NOW)
    rounds = bot.store.conversation
    rounds.record_round("c", NetworkName.MASTODON, error="404 on the tag", now=NOW)
    assert bot.problems() == []  # failing, but not for long
    later = NOW + timedelta(minutes=11)
    bot.clock.set(later)
    bot.replica.beat()
    rounds.record_round("c", NetworkName.MASTODON, error="404 on the tag", now=later)
    assert any("have not been readable since 19:00:00" in p for p in bot.problems())


def test_a_bot_that_lost_a_lease_fails(bot: Bot) -> None:
    """Another replica took a chat this one held (its lease had expired): named."""
    assert not isinstance(bot.replica.lease("c"), type(None))
    other = Replica(bot.store, bot.clock, name="elsewhere:1:ab")
    bot.clock.set(NOW + timedelta(minutes=1))
    other.lease("c")
    bot.replica.beat()
    assert any("lost its lease on c" in p for p in bot.problems())


def test_the_command_exits_non_zero_and_names_the_cause(bot: Bot) -> None:
    """`chatbot health` prints every check and exits 1 when one fails."""
    bot.store.leases.account_refused("bluesky", "AuthenticationRequired", now=NOW)
    result = CliRunner().invoke(app, ["health", "--data-dir", str(bot.data_dir)])
    assert result.exit_code == 1
    assert "FAIL: the bluesky account has failed authentication" in result.output
    assert "ok: the store can be written." in result.output
