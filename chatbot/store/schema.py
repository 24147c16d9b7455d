"""The state database's tables and their migrations (SQLAlchemy Core).

Append only: a released migration never changes; the next change is a new
entry. Each migration runs in its own transaction and is recorded in
``schema_migrations``, so two processes starting together (``chatbot run`` and
``chatbot status``) cannot both apply it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine


class UtcDateTime(sa.types.TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out (SQLite stores no zone)."""

    impl = sa.DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("the store accepts aware UTC datetimes only")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        return value.replace(tzinfo=UTC) if value is not None else None


metadata = sa.MetaData()

migrations_table = sa.Table(
    "schema_migrations",
    metadata,
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("applied_at", UtcDateTime, nullable=False),
)

scripts_table = sa.Table(
    "scripts",
    metadata,
    sa.Column("script_id", sa.String(200), primary_key=True),
    sa.Column("path", sa.Text, nullable=False),
    sa.Column("digest", sa.String(64), nullable=False),
    sa.Column("source", sa.Text, nullable=False),  # last good version, used if the file breaks
    sa.Column("loaded_at", UtcDateTime, nullable=False),
    sa.Column("removed_at", UtcDateTime),
)

chats_table = sa.Table(
    "chats",
    metadata,
    sa.Column("chat_id", sa.String(200), primary_key=True),
    sa.Column("script_id", sa.String(200), nullable=False, index=True),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("hashtag", sa.String(200), nullable=False),
    sa.Column("timezone", sa.String(100), nullable=False),
    sa.Column("start_at", UtcDateTime, nullable=False),
    sa.Column("end_at", UtcDateTime, nullable=False),
    sa.Column("state", sa.String(20), nullable=False),
    sa.Column("shift_seconds", sa.Float, nullable=False, server_default="0"),
    sa.Column("paused_at", UtcDateTime),
    sa.Column("note", sa.Text, nullable=False, server_default=""),
    sa.Column("updated_at", UtcDateTime, nullable=False),
)


def _units_v1() -> list[sa.Column[Any]]:
    """The units table as migration 1 created it (fresh objects: a Column has one table)."""
    return [
        sa.Column("chat_id", sa.String(200), sa.ForeignKey("chats.chat_id"), primary_key=True),
        sa.Column("step_key", sa.String(50), primary_key=True),
        sa.Column("network", sa.String(20), primary_key=True),
        sa.Column("seq", sa.Integer, nullable=False),  # order of the step in the chat
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("number", sa.Integer),
        sa.Column("planned_at", UtcDateTime, nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("idempotency_key", sa.String(64), nullable=False, unique=True),
        sa.Column("text", sa.Text, nullable=False, server_default=""),
        sa.Column("remote_id", sa.Text),
        sa.Column("remote_url", sa.Text),
        sa.Column("remote_cid", sa.Text),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("retry_at", UtcDateTime),
        sa.Column("reason", sa.Text, nullable=False, server_default=""),
        sa.Column("intent_at", UtcDateTime),
        sa.Column("posted_at", UtcDateTime),
        sa.Column("updated_at", UtcDateTime, nullable=False),
    ]


units_table = sa.Table(
    "units",
    metadata,
    *_units_v1(),
    # Migration 3: everything the request needs, so the store alone says what is sent.
    sa.Column("facets", sa.Text, nullable=False, server_default="[]"),  # JSON
    sa.Column("image_path", sa.Text),
    sa.Column("image_alt", sa.Text),
    sa.Column("visibility", sa.String(20), nullable=False, server_default="public"),
    # Migration 8: a reply to someone's post (an acknowledgement, a welcome, a nudge,
    # a like) names that post and its thread's root; `person` is whom it is for.
    sa.Column("reply_to_id", sa.Text),
    sa.Column("reply_to_cid", sa.Text),
    sa.Column("reply_root_id", sa.Text),
    sa.Column("reply_root_cid", sa.Text),
    sa.Column("person", sa.String(300)),
)

events_table = sa.Table(
    "events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", UtcDateTime, nullable=False, index=True),
    sa.Column("level", sa.String(10), nullable=False),
    sa.Column("chat_id", sa.String(200)),
    sa.Column("step_key", sa.String(50)),
    sa.Column("network", sa.String(20)),
    sa.Column("message", sa.Text, nullable=False),
)


def _local_posts_v1() -> list[sa.Column[Any]]:
    """The local network's posts table as migration 1 created it."""
    return [
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("author", sa.String(100), nullable=False),
        sa.Column("author_name", sa.String(200), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("reply_to", sa.Integer),
        sa.Column("root", sa.Integer),
        sa.Column("created_at", UtcDateTime, nullable=False, index=True),
        sa.Column("idempotency_key", sa.String(64), unique=True),
        sa.Column("image_alt", sa.Text),
    ]


local_posts_table = sa.Table(
    "local_posts",
    metadata,
    *_local_posts_v1(),
    # Migration 6: a rehearsal plays several networks' threads on the local network.
    sa.Column("network", sa.String(20), nullable=False, server_default="local"),
)


def _participants_v2() -> list[sa.Column[Any]]:
    """The participants table as migration 2 created it (fresh objects each call)."""
    return [
        sa.Column("network", sa.String(20), primary_key=True),
        sa.Column("account_id", sa.String(300), primary_key=True),
        sa.Column("handle", sa.String(300), nullable=False),
        sa.Column("display_name", sa.Text, nullable=False, server_default=""),
        sa.Column("url", sa.Text, nullable=False, server_default=""),
        sa.Column("bot", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("opt_out", sa.Text, nullable=False, server_default=""),
        sa.Column("updated_at", UtcDateTime, nullable=False),
    ]


participants_table = sa.Table(
    "participants",
    metadata,
    *_participants_v2(),
    # Migration 5: not to be shown on the open web (noindex, !no-unauthenticated).
    sa.Column("web_opt_out", sa.Text, nullable=False, server_default=""),
)

seen_posts_table = sa.Table(
    "seen_posts",
    metadata,
    sa.Column("chat_id", sa.String(200), primary_key=True),
    sa.Column("network", sa.String(20), primary_key=True),
    sa.Column("uri", sa.String(500), primary_key=True),
    sa.Column("post_id", sa.String(500), nullable=False),
    sa.Column("url", sa.Text, nullable=False, server_default=""),
    sa.Column("author_id", sa.String(300), nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("edited_at", UtcDateTime),
    sa.Column("reply_to", sa.String(500)),
    sa.Column("quote_of", sa.String(500)),
    sa.Column("likes", sa.Integer, nullable=False, server_default="0"),
    sa.Column("reposts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("reason", sa.Text, nullable=False, server_default=""),
    sa.Column("resolved", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("deleted_at", UtcDateTime),
    sa.Column("seen_at", UtcDateTime, nullable=False),
    sa.Index("ix_seen_posts_post_id", "chat_id", "network", "post_id"),
)

answers_table = sa.Table(
    "answers",
    metadata,
    sa.Column("chat_id", sa.String(200), primary_key=True),
    sa.Column("network", sa.String(20), primary_key=True),
    sa.Column("uri", sa.String(500), primary_key=True),
    sa.Column("question", sa.Integer, primary_key=True),
    sa.Column("part", sa.String(10), primary_key=True, server_default=""),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("author_id", sa.String(300), nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
)

cursors_table = sa.Table(
    "cursors",
    metadata,
    sa.Column("chat_id", sa.String(200), primary_key=True),
    sa.Column("network", sa.String(20), primary_key=True),
    sa.Column("source", sa.String(200), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
)

collection_table = sa.Table(
    "collection_rounds",
    metadata,
    # The last collection round of a chat on a network: whether its answers can be read.
    sa.Column("chat_id", sa.String(200), primary_key=True),
    sa.Column("network", sa.String(20), primary_key=True),
    sa.Column("last_round_at", UtcDateTime, nullable=False),
    sa.Column("last_ok_at", UtcDateTime),
    sa.Column("failing_since", UtcDateTime),  # null while the rounds succeed
    sa.Column("error", sa.Text, nullable=False, server_default=""),
    sa.Column("rounds", sa.Integer, nullable=False, server_default="0"),
)


leases_table = sa.Table(
    "leases",
    metadata,
    # Which replica acts for a chat. The token grows at every change of holder, and every
    # write of a post's intent or result checks it (fencing): a replica that lost the
    # lease while paused cannot post or record for the chat when it wakes.
    sa.Column("chat_id", sa.String(200), primary_key=True),
    sa.Column("holder", sa.String(200), nullable=False),
    sa.Column("token", sa.Integer, nullable=False),
    sa.Column("acquired_at", UtcDateTime, nullable=False),
    sa.Column("expires_at", UtcDateTime, nullable=False),
)

replicas_table = sa.Table(
    "replicas",
    metadata,
    # Each running bot's heartbeat, for `chatbot health` and the metrics.
    sa.Column("holder", sa.String(200), primary_key=True),
    sa.Column("started_at", UtcDateTime, nullable=False),
    sa.Column("beat_at", UtcDateTime, nullable=False),
    sa.Column("stopped_at", UtcDateTime),
    sa.Column("lost_lease_at", UtcDateTime),  # a lease it held was taken while it was away
    sa.Column("lost_chat", sa.String(200)),
)

accounts_table = sa.Table(
    "accounts",
    metadata,
    # Whether each network account's credentials last worked.
    sa.Column("network", sa.String(20), primary_key=True),
    sa.Column("last_ok_at", UtcDateTime),
    sa.Column("auth_failed_at", UtcDateTime),  # null once a call succeeds again
    sa.Column("error", sa.Text, nullable=False, server_default=""),
)


commands_table = sa.Table(
    "commands",
    metadata,
    # What co-moderators (on a network) and hosts (`chatbot control`) asked of a chat,
    # who asked, and what came of it: the running bot applies them in order.
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("chat_id", sa.String(200), nullable=False, index=True),
    sa.Column("source", sa.String(20), nullable=False),  # a network's name, or "host"
    sa.Column("post_uri", sa.String(500), unique=True),  # the post that carried it
    sa.Column("post_id", sa.String(500)),
    sa.Column("post_cid", sa.Text),
    sa.Column("target_id", sa.String(500)),  # the post it replies to (`like` marks that one)
    sa.Column("author_id", sa.String(300), nullable=False),
    sa.Column("author", sa.Text, nullable=False),  # handle, or the host's user name
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("received_at", UtcDateTime, nullable=False),
    sa.Column("state", sa.String(20), nullable=False),  # received, applied, refused, ignored
    sa.Column("detail", sa.Text, nullable=False, server_default=""),
    sa.Column("done_at", UtcDateTime),
)


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    apply: Callable[[Connection], None]


def _create(*tables: sa.Table) -> Callable[[Connection], None]:
    def run(conn: Connection) -> None:
        for table in tables:
            table.create(conn)

    return run


def _create_v1(conn: Connection) -> None:
    """Migration 1: the tables as they were then (later columns come with their migration)."""
    for table in (scripts_table, chats_table, events_table):
        table.create(conn)
    then = sa.MetaData()
    sa.Table("local_posts", then, *_local_posts_v1()).create(conn)
    sa.Table("chats", then, autoload_with=conn)  # for the units' foreign key
    sa.Table("units", then, *_units_v1()).create(conn)


def _create_v2(conn: Connection) -> None:
    """Migration 2: the conversation's tables as they were then."""
    sa.Table("participants", sa.MetaData(), *_participants_v2()).create(conn)
    for table in (seen_posts_table, answers_table, cursors_table):
        table.create(conn)


REPLY_COLUMNS = ("reply_to_id", "reply_to_cid", "reply_root_id", "reply_root_cid", "person")


def _both(
    first: Callable[[Connection], None], second: Callable[[Connection], None]
) -> Callable[[Connection], None]:
    def run(conn: Connection) -> None:
        first(conn)
        second(conn)

    return run


def _add_columns(table: sa.Table, *names: str) -> Callable[[Connection], None]:
    """ALTER TABLE ... ADD COLUMN for columns declared on ``table`` (with their defaults)."""

    def run(conn: Connection) -> None:
        preparer = conn.dialect.identifier_preparer
        for name in names:
            column = table.c[name]
            ddl = sa.schema.CreateColumn(column).compile(dialect=conn.dialect)
            conn.execute(sa.text(f"ALTER TABLE {preparer.format_table(table)} ADD COLUMN {ddl}"))

    return run


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "chats, units, scripts, events, local network", _create_v1),
    Migration(
        2,
        "the conversation: participants, seen posts, answers, collection cursors",
        _create_v2,
    ),
    Migration(
        3,
        "units carry what is posted: facets, image, visibility",
        _add_columns(units_table, "facets", "image_path", "image_alt", "visibility"),
    ),
    Migration(
        4,
        "collection rounds per chat and network: whether answers can be read",
        _create(collection_table),
    ),
    Migration(
        5,
        "participants who are not to be shown on the open web",
        _add_columns(participants_table, "web_opt_out"),
    ),
    Migration(
        6,
        "the local network holds several networks' threads (rehearsals)",
        _add_columns(local_posts_table, "network"),
    ),
    Migration(
        7,
        "replicas: leases with fencing tokens, heartbeats, account health",
        _create(leases_table, replicas_table, accounts_table),
    ),
    Migration(
        8,
        "replies to people's posts, and co-moderators' commands",
        _both(
            _add_columns(
                units_table,
                "reply_to_id",
                "reply_to_cid",
                "reply_root_id",
                "reply_root_cid",
                "person",
            ),
            _create(commands_table),
        ),
    ),
)


def migrate(engine: Engine, now: datetime) -> list[int]:
    """Apply pending migrations, each in its own transaction; returns the versions applied.

    DDL is transactional on SQLite and PostgreSQL, so the loser of a race between
    two starting processes rolls back, sees the winner's record and moves on.
    """
    for attempt in range(5):
        try:
            return _migrate(engine, now)
        except (sa.exc.OperationalError, sa.exc.IntegrityError):
            if attempt == 4:
                raise
            time.sleep(0.1 * (attempt + 1))
    return []


def _migrate(engine: Engine, now: datetime) -> list[int]:
    with engine.begin() as conn:
        _one_at_a_time(conn)
        migrations_table.create(conn, checkfirst=True)
    applied = []
    for migration in MIGRATIONS:
        with engine.begin() as conn:
            _one_at_a_time(conn)
            done = conn.execute(
                sa.select(migrations_table.c.version).where(
                    migrations_table.c.version == migration.version
                )
            ).first()
            if done:
                continue
            migration.apply(conn)
            conn.execute(
                migrations_table.insert().values(
                    version=migration.version, name=migration.name, applied_at=now
                )
            )
            applied.append(migration.version)
    return applied


# Any number: the key of PostgreSQL's advisory lock that serialises migrations.
MIGRATION_LOCK = 0x6368617462  # "chatb"


def _one_at_a_time(conn: Connection) -> None:
    """Open the migration's transaction so that its DDL is in it; two processes migrating at
    once take turns (the lock ends with the transaction).

    On SQLite the driver (pysqlite) opens a transaction only before INSERT, UPDATE or
    DELETE, so an ALTER or CREATE would commit at once, and a crash before the migration's
    record would leave it half applied (the restart then fails: "duplicate column").
    ``BEGIN IMMEDIATE`` puts the whole migration in one transaction and takes the write
    lock; on PostgreSQL the transaction is already open and an advisory lock serialises.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
    elif conn.dialect.name == "sqlite":
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def schema_version(engine: Engine) -> int:
    with engine.begin() as conn:
        value = conn.execute(sa.select(sa.func.max(migrations_table.c.version))).scalar()
    return int(value or 0)
