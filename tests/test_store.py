"""The state store on a real SQLite file."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from chatbot.posts import PostRef
from chatbot.script import NetworkName
from chatbot.store import MIGRATIONS, PlannedUnit, Store, UnitState

NOW = datetime(2030, 1, 1, 20, 0, tzinfo=UTC)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store.open(f"sqlite:///{tmp_path / 'state.db'}")


def _chat(store: Store) -> None:
    store.upsert_chat(
        chat_id="c",
        script_id="s",
        title="T",
        hashtag="tag",
        timezone="UTC",
        start_at=NOW,
        end_at=NOW + timedelta(hours=1),
    )


def _unit(key: str, seq: int, text: str = "hello") -> PlannedUnit:
    return PlannedUnit(
        key, NetworkName.LOCAL, seq, "question", seq, NOW + timedelta(minutes=seq), f"k-{key}", text
    )


def test_migrations_are_recorded_and_applied_once(tmp_path: Path) -> None:
    """Opening the store twice applies each migration once and records it."""
    url = f"sqlite:///{tmp_path / 'state.db'}"
    first = Store.open(url)
    assert first.schema_version() == MIGRATIONS[-1].version
    first.close()
    again = Store(Store.open(url).engine)
    assert again.migrate() == []


def test_datetimes_come_back_aware_utc(store: Store) -> None:
    """What goes in as aware UTC comes out as aware UTC."""
    _chat(store)
    chat = store.chat("c")
    assert chat is not None
    assert chat.start_at == NOW
    assert chat.start_at.tzinfo is UTC


def test_naive_datetimes_are_refused(store: Store) -> None:
    """The store refuses naive datetimes instead of guessing their zone."""
    with pytest.raises(Exception, match="aware UTC"):
        store.upsert_chat(
            chat_id="c",
            script_id="s",
            title="T",
            hashtag="tag",
            timezone="UTC",
            start_at=NOW.replace(tzinfo=None),
            end_at=NOW,
        )


def test_replanning_updates_pending_units_and_keeps_posted_ones(store: Store) -> None:
    """A new plan changes what is not posted yet and leaves the posted history alone."""
    _chat(store)
    store.plan_units("c", [_unit("q1", 1, "old one"), _unit("q2", 2, "old two")])
    store.mark_intent("c", "q1", NetworkName.LOCAL, "old one")
    store.mark_posted("c", "q1", PostRef(NetworkName.LOCAL, "7"))
    store.plan_units("c", [_unit("q1", 1, "new one"), _unit("q2", 2, "new two")])
    texts = {u.step_key: (u.state, u.text) for u in store.units("c")}
    assert texts == {"q1": (UnitState.POSTED, "old one"), "q2": (UnitState.PENDING, "new two")}


def test_a_step_dropped_from_the_plan_is_cancelled(store: Store) -> None:
    """A question removed from the script is cancelled, not silently left pending."""
    _chat(store)
    store.plan_units("c", [_unit("q1", 1), _unit("q2", 2)])
    store.plan_units("c", [_unit("q1", 1)])
    states = {u.step_key: u.state for u in store.units("c")}
    assert states == {"q1": UnitState.PENDING, "q2": UnitState.CANCELLED}


def test_the_first_intent_time_is_kept_across_attempts(store: Store) -> None:
    """Retries count attempts but keep the time of the first attempt."""
    _chat(store)
    store.plan_units("c", [_unit("q1", 1)])
    store.mark_intent("c", "q1", NetworkName.LOCAL, "hello")
    first = store.units("c")[0]
    store.mark_intent("c", "q1", NetworkName.LOCAL, "hello")
    second = store.units("c")[0]
    assert second.attempts == 2
    assert second.intent_at == first.intent_at


def test_the_last_good_script_is_kept_by_path(store: Store) -> None:
    """The store keeps the last good source of each script, found by its path."""
    store.save_script("s", "/schedules/s.yaml", "d1", "title: one")
    store.save_script("s", "/schedules/s.yaml", "d2", "title: two")
    assert store.script_source("/schedules/s.yaml") == ("s", "title: two")
    store.mark_script_removed("s")
    assert store.script_source("/schedules/s.yaml") is None
