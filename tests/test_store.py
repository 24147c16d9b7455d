"""The state store on a real SQLite file."""

from __future__ import annotations

import stat
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from chatbot.kinds import Visibility
from chatbot.posts import PostRef
from chatbot.script import NetworkName
from chatbot.store import Fence, Image, LeaseLost, LeaseRow, PlannedUnit, Store, UnitState, schema
from chatbot.store.schema import MIGRATIONS
from chatbot.text import Facet

NOW = datetime(2030, 1, 1, 20, 0, tzinfo=UTC)


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    """The same tests on SQLite and on a real PostgreSQL server."""
    opened = Store.open(database_url, now=NOW)
    yield opened
    opened.close()


def _chat(store: Store, start: datetime = NOW) -> None:
    store.chats.upsert(
        chat_id="c",
        script_id="s",
        title="T",
        hashtag="tag",
        timezone="UTC",
        start_at=start,
        end_at=start + timedelta(hours=1),
        now=NOW,
    )


def _unit(key: str, seq: int, text: str = "hello") -> PlannedUnit:
    return PlannedUnit(
        key, NetworkName.LOCAL, seq, "question", seq, NOW + timedelta(minutes=seq), f"k-{key}", text
    )


def test_migrations_are_recorded_and_applied_once(database_url: str) -> None:
    """Opening the store twice applies each migration once and records it."""
    url = database_url
    first = Store.open(url, now=NOW)
    assert first.schema_version() == MIGRATIONS[-1].version
    first.close()
    again = Store.open(url, now=NOW)
    assert again.migrate(NOW) == []
    again.close()


def test_a_store_of_the_first_release_is_upgraded_with_its_units_kept(tmp_path: Path) -> None:
    """A database made by schema version 2 gains the new columns; its units keep their text."""
    url = f"sqlite:///{tmp_path / 'state.db'}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        for migration in MIGRATIONS[:2]:
            migration.apply(conn)
        conn.execute(
            sa.text(
                "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, "
                "name VARCHAR(200) NOT NULL, applied_at DATETIME NOT NULL)"
            )
        )
        for migration in MIGRATIONS[:2]:
            conn.execute(
                sa.text("INSERT INTO schema_migrations VALUES (:v, :n, '2026-11-01 00:00:00')"),
                {"v": migration.version, "n": migration.name},
            )
        conn.execute(
            sa.text(
                "INSERT INTO chats (chat_id, script_id, title, hashtag, timezone, start_at, "
                "end_at, state, updated_at) VALUES ('c', 's', 'T', 'tag', 'UTC', "
                "'2030-01-01 20:00:00', '2030-01-01 21:00:00', 'scheduled', '2030-01-01 20:00:00')"
            )
        )
        conn.execute(
            sa.text(
                "INSERT INTO units (chat_id, step_key, network, seq, kind, planned_at, state, "
                "idempotency_key, text, updated_at) VALUES ('c', 'q1', 'local', 1, 'question', "
                "'2030-01-01 20:06:00', 'pending', 'k', 'Q1: old', '2030-01-01 20:00:00')"
            )
        )
    engine.dispose()
    store = Store.open(url, now=NOW)
    assert store.schema_version() == MIGRATIONS[-1].version
    (unit,) = store.units.of_chat("c")
    store.close()
    assert (unit.text, unit.facets, unit.image, unit.visibility) == (
        "Q1: old",
        (),
        None,
        Visibility.PUBLIC,
    )


def test_a_migration_cut_short_leaves_nothing_behind_and_is_applied_at_the_next_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A migration interrupted after its ALTER TABLE (a crash, here an error) is rolled back
    whole on SQLite too: the next start applies it again instead of failing on a duplicate
    column (the crash suite found this, killing the bot mid-migration)."""
    url = f"sqlite:///{tmp_path / 'state.db'}"
    engine = sa.create_engine(url)
    cut = MIGRATIONS[5]  # adds local_posts.network

    def cut_short(conn: sa.Connection) -> None:
        cut.apply(conn)
        raise RuntimeError("killed")

    broken = (*MIGRATIONS[:5], schema.Migration(cut.version, cut.name, cut_short))
    monkeypatch.setattr(schema, "MIGRATIONS", broken)
    with pytest.raises(RuntimeError):
        schema.migrate(engine, NOW)
    with engine.connect() as conn:
        columns = {c["name"] for c in sa.inspect(conn).get_columns("local_posts")}
    engine.dispose()
    assert "network" not in columns
    monkeypatch.undo()
    store = Store.open(url, now=NOW)
    assert store.schema_version() == MIGRATIONS[-1].version
    store.close()


def test_a_new_database_file_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    """The database holds participants' posts: it is created 0600, not world-readable."""
    path = tmp_path / "data" / "chatbot.db"
    Store.open(f"sqlite:///{path}", now=NOW).close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_an_old_world_readable_database_is_made_private(tmp_path: Path) -> None:
    """A database file left readable by others (an older release) is tightened on open."""
    path = tmp_path / "chatbot.db"
    path.touch(mode=0o644)
    path.chmod(0o644)
    Store.open(f"sqlite:///{path}", now=NOW).close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_datetimes_come_back_aware_utc(store: Store) -> None:
    """What goes in as aware UTC comes out as aware UTC."""
    _chat(store)
    chat = store.chats.get("c")
    assert chat is not None
    assert chat.start_at == NOW
    assert chat.start_at.tzinfo is UTC


def test_naive_datetimes_are_refused(store: Store) -> None:
    """The store refuses naive datetimes instead of guessing their zone."""
    with pytest.raises(Exception, match="aware UTC"):
        _chat(store, start=NOW.replace(tzinfo=None))


def test_the_store_stamps_the_time_it_is_given(store: Store) -> None:
    """Intent and posting times are the caller's clock, not the machine's."""
    _chat(store)
    store.units.plan("c", [_unit("q1", 1)], now=NOW)
    store.units.mark_intent("c", "q1", NetworkName.LOCAL, now=NOW + timedelta(seconds=1))
    posted_at = NOW + timedelta(seconds=2)
    store.units.mark_posted("c", "q1", PostRef(NetworkName.LOCAL, "7"), now=posted_at)
    (unit,) = store.units.of_chat("c")
    assert (unit.intent_at, unit.posted_at) == (NOW + timedelta(seconds=1), posted_at)


def test_a_unit_carries_everything_its_post_needs(store: Store) -> None:
    """Text, facets, image and visibility come back from the store as they were planned."""
    _chat(store)
    facets = (Facet("tag", 4, 8, "tag"),)
    planned = PlannedUnit(
        "welcome",
        NetworkName.BLUESKY,
        0,
        "welcome",
        None,
        NOW,
        "k-w",
        "Hi! #tag",
        facets=facets,
        image=Image("/schedules/images/w.png", "A welcome banner"),
        visibility=Visibility.UNLISTED,
    )
    store.units.plan("c", [planned], now=NOW)
    (unit,) = store.units.of_chat("c")
    assert (unit.facets, unit.image, unit.visibility) == (
        facets,
        Image("/schedules/images/w.png", "A welcome banner"),
        Visibility.UNLISTED,
    )


def test_replanning_updates_pending_units_and_keeps_posted_ones(store: Store) -> None:
    """A new plan changes what is not posted yet and leaves the posted history alone."""
    _chat(store)
    store.units.plan("c", [_unit("q1", 1, "old one"), _unit("q2", 2, "old two")], now=NOW)
    store.units.mark_intent("c", "q1", NetworkName.LOCAL, now=NOW)
    store.units.mark_posted("c", "q1", PostRef(NetworkName.LOCAL, "7"), now=NOW)
    store.units.plan("c", [_unit("q1", 1, "new one"), _unit("q2", 2, "new two")], now=NOW)
    texts = {u.step_key: (u.state, u.text) for u in store.units.of_chat("c")}
    assert texts == {"q1": (UnitState.POSTED, "old one"), "q2": (UnitState.PENDING, "new two")}


def test_a_step_dropped_from_the_plan_is_cancelled(store: Store) -> None:
    """A question removed from the script is cancelled, not silently left pending."""
    _chat(store)
    store.units.plan("c", [_unit("q1", 1), _unit("q2", 2)], now=NOW)
    store.units.plan("c", [_unit("q1", 1)], now=NOW)
    states = {u.step_key: u.state for u in store.units.of_chat("c")}
    assert states == {"q1": UnitState.PENDING, "q2": UnitState.CANCELLED}


def test_the_first_intent_time_is_kept_across_attempts(store: Store) -> None:
    """Retries count attempts but keep the time of the first attempt."""
    _chat(store)
    store.units.plan("c", [_unit("q1", 1)], now=NOW)
    store.units.mark_intent("c", "q1", NetworkName.LOCAL, now=NOW)
    store.units.mark_intent("c", "q1", NetworkName.LOCAL, now=NOW + timedelta(minutes=1))
    (unit,) = store.units.of_chat("c")
    assert (unit.attempts, unit.intent_at) == (2, NOW)


def test_the_last_good_script_is_kept_by_path(store: Store) -> None:
    """The store keeps the last good source of each script, found by its path."""
    store.scripts.save("s", "/schedules/s.yaml", "d1", "title: one", now=NOW)
    store.scripts.save("s", "/schedules/s.yaml", "d2", "title: two", now=NOW)
    assert store.scripts.source_at("/schedules/s.yaml") == ("s", "title: two")
    assert store.scripts.digest("s") == "d2"
    store.scripts.mark_removed("s", now=NOW)
    assert store.scripts.source_at("/schedules/s.yaml") is None


def test_failing_collection_rounds_are_counted_from_the_first_failure(store: Store) -> None:
    """A run of failing rounds keeps the time of its first failure; a good round ends it."""
    conversation = store.conversation
    conversation.record_round("c", NetworkName.MASTODON, now=NOW)
    later = NOW + timedelta(seconds=15)
    conversation.record_round("c", NetworkName.MASTODON, error="404", now=later)
    failing = conversation.record_round(
        "c", NetworkName.MASTODON, error="404 again", now=later + timedelta(seconds=15)
    )
    assert (failing.failing_since, failing.error, failing.last_ok_at) == (later, "404 again", NOW)
    recovered = conversation.record_round("c", NetworkName.MASTODON, now=NOW + timedelta(minutes=1))
    assert (recovered.failing, recovered.rounds) == (False, 4)


def test_two_processes_migrating_at_once_both_end_up_on_the_latest_schema(
    database_url: str,
) -> None:
    """Two stores opened together on a new database: each migration is applied once."""
    results: list[int] = []
    errors: list[BaseException] = []

    def open_one() -> None:
        try:
            opened = Store.open(database_url, now=NOW)
            results.append(opened.schema_version())
            opened.close()
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert results == [MIGRATIONS[-1].version] * 2


def test_a_write_under_a_lease_that_was_taken_over_is_refused(store: Store) -> None:
    """Fencing: once another replica has taken the chat (a new token), the old holder's
    intents and results are refused; the new holder's go through."""
    _chat(store)
    store.units.plan("c", [_unit("q1", 1)], now=NOW)
    ttl = timedelta(seconds=30)
    old = store.leases.acquire("c", "host:1:a", now=NOW, ttl=ttl)
    assert isinstance(old, Fence)
    held = store.leases.acquire("c", "host:2:b", now=NOW + timedelta(seconds=10), ttl=ttl)
    assert isinstance(held, LeaseRow) and held.holder == "host:1:a"
    new = store.leases.acquire("c", "host:2:b", now=NOW + timedelta(seconds=31), ttl=ttl)
    assert isinstance(new, Fence) and new.token == old.token + 1
    with pytest.raises(LeaseLost):
        store.units.mark_intent("c", "q1", NetworkName.LOCAL, now=NOW, fence=old)
    store.units.mark_intent("c", "q1", NetworkName.LOCAL, now=NOW, fence=new)
    with pytest.raises(LeaseLost):
        store.units.mark_posted("c", "q1", PostRef(NetworkName.LOCAL, "7"), now=NOW, fence=old)
    (unit,) = store.units.of_chat("c")
    assert (unit.state, unit.remote) == (UnitState.INTENT, None)


def test_a_lease_whose_holder_is_known_dead_is_taken_at_once(store: Store) -> None:
    """A holder that is gone (a process of this machine no longer running) is not waited for."""
    ttl = timedelta(seconds=30)
    store.leases.acquire("c", "host:1:a", now=NOW, ttl=ttl)
    taken = store.leases.acquire(
        "c", "host:2:b", now=NOW + timedelta(seconds=1), ttl=ttl, gone=lambda h: h == "host:1:a"
    )
    assert isinstance(taken, Fence) and taken.holder == "host:2:b"


def test_a_write_that_lost_a_race_on_a_key_runs_again(store: Store) -> None:
    """Another replica inserted the same key in the same instant: the write is run again in
    a new transaction (now an update), and a key conflict that persists is raised."""
    import sqlalchemy as sa

    from chatbot.store.schema import scripts_table

    store.scripts.save("weekly", "a.yaml", "d1", "id: weekly", now=NOW)
    tries: list[int] = []

    def insert_then_update(conn: sa.Connection) -> str:
        tries.append(1)
        if len(tries) == 1:  # what the loser of the race does first
            conn.execute(scripts_table.insert().values(script_id="weekly", path="b.yaml"))
        conn.execute(
            scripts_table.update().where(scripts_table.c.script_id == "weekly").values(digest="d2")
        )
        return "written"

    assert store.scripts._racing(insert_then_update) == "written"
    assert len(tries) == 2
    assert store.scripts.digest("weekly") == "d2"
    with pytest.raises(sa.exc.IntegrityError):
        store.scripts._racing(
            lambda conn: conn.execute(scripts_table.insert().values(script_id="weekly", path="c"))
        )
