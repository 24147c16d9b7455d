"""The bot's state: chats, their steps per network, posts, events. SQLite by default.

Written with SQLAlchemy Core so that a PostgreSQL backend is the same code with
another URL. Posting is write-ahead: a unit's intent (with its idempotency key) is
committed before the network call and its result after, so a restart knows what
*may* have been posted and asks the network instead of guessing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from chatbot.posts import Author, PostRef
from chatbot.script import NetworkName


class UnitState(StrEnum):
    """Where one step stands on one network."""

    PENDING = "pending"
    INTENT = "intent"  # recorded before the network call; the result is not known yet
    POSTED = "posted"
    SKIPPED = "skipped"  # on purpose: late policy, a co-moderator's skip, the chat ended early
    FAILED = "failed"  # the network refused it for good (auth, rejected)
    CANCELLED = "cancelled"  # the script was removed or the chat replanned without it


# The recap's posts are composed when the recap is due, from the answers collected.
RUN_TIME_KIND = "recap"

DONE_STATES = frozenset(
    {UnitState.POSTED, UnitState.SKIPPED, UnitState.FAILED, UnitState.CANCELLED}
)


class ChatState(StrEnum):
    """Where a chat stands."""

    SCHEDULED = "scheduled"
    RUNNING = "running"
    DONE = "done"
    MISSED = "missed"
    CANCELLED = "cancelled"


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

units_table = sa.Table(
    "units",
    metadata,
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

local_posts_table = sa.Table(
    "local_posts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("author", sa.String(100), nullable=False),
    sa.Column("author_name", sa.String(200), nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("reply_to", sa.Integer),
    sa.Column("root", sa.Integer),
    sa.Column("created_at", UtcDateTime, nullable=False, index=True),
    sa.Column("idempotency_key", sa.String(64), unique=True),
    sa.Column("image_alt", sa.Text),
)


participants_table = sa.Table(
    "participants",
    metadata,
    sa.Column("network", sa.String(20), primary_key=True),
    sa.Column("account_id", sa.String(300), primary_key=True),
    sa.Column("handle", sa.String(300), nullable=False),
    sa.Column("display_name", sa.Text, nullable=False, server_default=""),
    sa.Column("url", sa.Text, nullable=False, server_default=""),
    sa.Column("bot", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("opt_out", sa.Text, nullable=False, server_default=""),
    sa.Column("updated_at", UtcDateTime, nullable=False),
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


# Append only: a released migration never changes; the next change is a new entry.
MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "chats, units, scripts, events, local network",
        _create(scripts_table, chats_table, units_table, events_table, local_posts_table),
    ),
    Migration(
        2,
        "the conversation: participants, seen posts, answers, collection cursors",
        _create(participants_table, seen_posts_table, answers_table, cursors_table),
    ),
)


@dataclass(frozen=True)
class ChatRow:
    chat_id: str
    script_id: str
    title: str
    hashtag: str
    timezone: str
    start_at: datetime
    end_at: datetime
    state: ChatState
    shift: timedelta
    paused_at: datetime | None
    note: str


@dataclass(frozen=True)
class UnitRow:
    chat_id: str
    step_key: str
    network: NetworkName
    seq: int
    kind: str
    number: int | None
    planned_at: datetime
    state: UnitState
    idempotency_key: str
    text: str
    remote: PostRef | None
    attempts: int
    retry_at: datetime | None
    reason: str
    posted_at: datetime | None
    intent_at: datetime | None = None  # the first attempt's start


@dataclass(frozen=True)
class EventRow:
    at: datetime
    level: str
    chat_id: str | None
    step_key: str | None
    network: str | None
    message: str


@dataclass(frozen=True)
class PlannedUnit:
    """What the runner asks the store to hold for one step on one network."""

    step_key: str
    network: NetworkName
    seq: int
    kind: str
    number: int | None
    planned_at: datetime
    idempotency_key: str
    text: str


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Store:
    """All reads and writes of the bot's state."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @classmethod
    def open(cls, url: str) -> Store:
        """Connect and bring the schema up to date."""
        if url.startswith("sqlite:///"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, future=True)
        if engine.dialect.name == "sqlite":
            sa.event.listen(engine, "connect", _sqlite_pragmas)
        store = cls(engine)
        store.migrate()
        return store

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def _tx(self) -> Iterator[Connection]:
        with self.engine.begin() as conn:
            yield conn

    # --- migrations ---------------------------------------------------------------------

    def migrate(self) -> list[int]:
        """Apply pending migrations, each in its own transaction; returns versions applied.

        Two processes may start together (``chatbot run`` and ``chatbot status``):
        DDL is transactional here, so the loser of a race rolls back, sees the
        winner's record and moves on.
        """
        for attempt in range(5):
            try:
                return self._migrate()
            except (sa.exc.OperationalError, sa.exc.IntegrityError):
                if attempt == 4:
                    raise
                time.sleep(0.1 * (attempt + 1))
        return []

    def _migrate(self) -> list[int]:
        with self._tx() as conn:
            migrations_table.create(conn, checkfirst=True)
        applied = []
        for migration in MIGRATIONS:
            with self._tx() as conn:
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
                        version=migration.version, name=migration.name, applied_at=_utcnow()
                    )
                )
                applied.append(migration.version)
        return applied

    def schema_version(self) -> int:
        with self._tx() as conn:
            value = conn.execute(sa.select(sa.func.max(migrations_table.c.version))).scalar()
        return int(value or 0)

    # --- scripts ------------------------------------------------------------------------

    def save_script(self, script_id: str, path: str, digest: str, source: str) -> None:
        """Remember the last good version of a script."""
        values = {
            "path": path,
            "digest": digest,
            "source": source,
            "loaded_at": _utcnow(),
            "removed_at": None,
        }
        with self._tx() as conn:
            updated = conn.execute(
                scripts_table.update()
                .where(scripts_table.c.script_id == script_id)
                .values(**values)
            ).rowcount
            if not updated:
                conn.execute(scripts_table.insert().values(script_id=script_id, **values))

    def script_source(self, path: str) -> tuple[str, str] | None:
        """(script id, source) of the last good version loaded from ``path``."""
        with self._tx() as conn:
            row = conn.execute(
                sa.select(scripts_table.c.script_id, scripts_table.c.source).where(
                    scripts_table.c.path == path, scripts_table.c.removed_at.is_(None)
                )
            ).first()
        return (row.script_id, row.source) if row else None

    def mark_script_removed(self, script_id: str) -> None:
        with self._tx() as conn:
            conn.execute(
                scripts_table.update()
                .where(scripts_table.c.script_id == script_id)
                .values(removed_at=_utcnow())
            )

    def active_script_ids(self) -> list[str]:
        with self._tx() as conn:
            rows = conn.execute(
                sa.select(scripts_table.c.script_id).where(scripts_table.c.removed_at.is_(None))
            )
            return [r.script_id for r in rows]

    # --- chats --------------------------------------------------------------------------

    def upsert_chat(
        self,
        *,
        chat_id: str,
        script_id: str,
        title: str,
        hashtag: str,
        timezone: str,
        start_at: datetime,
        end_at: datetime,
    ) -> ChatRow:
        """Create the chat, or update what the script says about it (not its progress)."""
        now = _utcnow()
        values: dict[str, Any] = {
            "script_id": script_id,
            "title": title,
            "hashtag": hashtag,
            "timezone": timezone,
            "start_at": start_at,
            "end_at": end_at,
            "updated_at": now,
        }
        with self._tx() as conn:
            updated = conn.execute(
                chats_table.update().where(chats_table.c.chat_id == chat_id).values(**values)
            ).rowcount
            if not updated:
                conn.execute(
                    chats_table.insert().values(
                        chat_id=chat_id, state=ChatState.SCHEDULED, **values
                    )
                )
        chat = self.chat(chat_id)
        assert chat is not None
        return chat

    def chat(self, chat_id: str) -> ChatRow | None:
        with self._tx() as conn:
            row = conn.execute(
                sa.select(chats_table).where(chats_table.c.chat_id == chat_id)
            ).first()
        return _chat_row(row) if row else None

    def chats(self, states: Sequence[ChatState] | None = None) -> list[ChatRow]:
        query = sa.select(chats_table).order_by(chats_table.c.start_at)
        if states is not None:
            query = query.where(chats_table.c.state.in_([s.value for s in states]))
        with self._tx() as conn:
            return [_chat_row(r) for r in conn.execute(query)]

    def update_chat(self, chat_id: str, **values: Any) -> None:
        """Set chat fields: state, shift (timedelta), paused_at, note."""
        if "shift" in values:
            values["shift_seconds"] = values.pop("shift").total_seconds()
        if "state" in values:
            values["state"] = ChatState(values["state"]).value
        with self._tx() as conn:
            conn.execute(
                chats_table.update()
                .where(chats_table.c.chat_id == chat_id)
                .values(updated_at=_utcnow(), **values)
            )

    # --- units --------------------------------------------------------------------------

    def plan_units(self, chat_id: str, units: Sequence[PlannedUnit]) -> None:
        """Record the planned units; pending ones take the new plan, others keep their history.

        Units the new plan no longer has are cancelled if they have not been posted.
        """
        now = _utcnow()
        wanted = {(u.step_key, u.network.value): u for u in units}
        with self._tx() as conn:
            existing = {
                (r.step_key, r.network): r
                for r in conn.execute(
                    sa.select(units_table).where(units_table.c.chat_id == chat_id)
                )
            }
            for key, unit in wanted.items():
                row = existing.get(key)
                plan_values = {
                    "seq": unit.seq,
                    "kind": unit.kind,
                    "number": unit.number,
                    "planned_at": unit.planned_at,
                    "text": unit.text,
                    "updated_at": now,
                }
                if row is None:
                    conn.execute(
                        units_table.insert().values(
                            chat_id=chat_id,
                            step_key=unit.step_key,
                            network=unit.network.value,
                            state=UnitState.PENDING,
                            idempotency_key=unit.idempotency_key,
                            **plan_values,
                        )
                    )
                elif row.kind == RUN_TIME_KIND:
                    continue  # composed at run time: the plan does not own its text
                elif row.state in (UnitState.PENDING, UnitState.CANCELLED):
                    conn.execute(
                        units_table.update()
                        .where(_unit_where(chat_id, unit.step_key, unit.network.value))
                        .values(state=UnitState.PENDING, reason="", **plan_values)
                    )
            for key, row in existing.items():
                if (
                    key not in wanted
                    and row.state == UnitState.PENDING
                    and row.kind != RUN_TIME_KIND
                ):
                    conn.execute(
                        units_table.update()
                        .where(_unit_where(chat_id, *key))
                        .values(
                            state=UnitState.CANCELLED,
                            reason="no longer in the script",
                            updated_at=now,
                        )
                    )

    def units(self, chat_id: str) -> list[UnitRow]:
        with self._tx() as conn:
            rows = conn.execute(
                sa.select(units_table)
                .where(units_table.c.chat_id == chat_id)
                .order_by(units_table.c.seq, units_table.c.network)
            )
            return [_unit_row(r) for r in rows]

    def mark_intent(self, chat_id: str, step_key: str, network: NetworkName, text: str) -> None:
        """Write-ahead: the post is about to be sent (committed before the network call)."""
        now = _utcnow()
        with self._tx() as conn:
            conn.execute(
                units_table.update()
                .where(_unit_where(chat_id, step_key, network.value))
                .values(
                    state=UnitState.INTENT,
                    text=text,
                    intent_at=sa.func.coalesce(
                        units_table.c.intent_at, sa.literal(now, UtcDateTime())
                    ),
                    attempts=units_table.c.attempts + 1,
                    updated_at=now,
                )
            )

    def mark_posted(self, chat_id: str, step_key: str, ref: PostRef) -> None:
        now = _utcnow()
        with self._tx() as conn:
            conn.execute(
                units_table.update()
                .where(_unit_where(chat_id, step_key, ref.network.value))
                .values(
                    state=UnitState.POSTED,
                    remote_id=ref.id,
                    remote_url=ref.url,
                    remote_cid=ref.cid,
                    posted_at=now,
                    retry_at=None,
                    reason="",
                    updated_at=now,
                )
            )

    def mark_retry(
        self, chat_id: str, step_key: str, network: NetworkName, retry_at: datetime, reason: str
    ) -> None:
        """The call failed in a way worth retrying; the intent stays (the post may exist)."""
        with self._tx() as conn:
            conn.execute(
                units_table.update()
                .where(_unit_where(chat_id, step_key, network.value))
                .values(retry_at=retry_at, reason=reason, updated_at=_utcnow())
            )

    def mark_done(
        self, chat_id: str, step_key: str, network: NetworkName, state: UnitState, reason: str
    ) -> None:
        """Close a unit without a post: skipped, failed or cancelled, with the reason."""
        with self._tx() as conn:
            conn.execute(
                units_table.update()
                .where(_unit_where(chat_id, step_key, network.value))
                .values(state=state.value, reason=reason, retry_at=None, updated_at=_utcnow())
            )

    def cancel_pending(self, chat_id: str, reason: str) -> int:
        with self._tx() as conn:
            return int(
                conn.execute(
                    units_table.update()
                    .where(
                        units_table.c.chat_id == chat_id,
                        units_table.c.state == UnitState.PENDING,
                    )
                    .values(state=UnitState.CANCELLED, reason=reason, updated_at=_utcnow())
                ).rowcount
            )

    def recent_units(self, limit: int = 20) -> list[UnitRow]:
        with self._tx() as conn:
            rows = conn.execute(
                sa.select(units_table)
                .where(units_table.c.state != UnitState.PENDING)
                .order_by(units_table.c.updated_at.desc())
                .limit(limit)
            )
            return [_unit_row(r) for r in rows]

    # --- the conversation ---------------------------------------------------------------

    def save_participant(
        self,
        network: NetworkName,
        account_id: str,
        handle: str,
        *,
        display_name: str = "",
        url: str = "",
        bot: bool = False,
        opt_out: str = "",
    ) -> None:
        """Record or refresh a participant (profiles change: opt-outs are re-read every time)."""
        values = {
            "handle": handle,
            "display_name": display_name,
            "url": url,
            "bot": bot,
            "opt_out": opt_out,
            "updated_at": _utcnow(),
        }
        with self._tx() as conn:
            updated = conn.execute(
                participants_table.update()
                .where(
                    participants_table.c.network == network.value,
                    participants_table.c.account_id == account_id,
                )
                .values(**values)
            ).rowcount
            if not updated:
                conn.execute(
                    participants_table.insert().values(
                        network=network.value, account_id=account_id, **values
                    )
                )

    def participant(self, network: NetworkName, account_id: str) -> Author | None:
        with self._tx() as conn:
            row = conn.execute(
                sa.select(participants_table).where(
                    participants_table.c.network == network.value,
                    participants_table.c.account_id == account_id,
                )
            ).first()
        if row is None:
            return None
        return Author(
            network=network,
            id=row.account_id,
            handle=row.handle,
            display_name=row.display_name,
            url=row.url,
            bot=row.bot,
            opt_out=row.opt_out,
        )

    def post_index(self, chat_id: str, network: NetworkName) -> dict[str, StoredPost]:
        """The chat's stored posts on a network by their server id (for reply chains)."""
        with self._tx() as conn:
            rows = conn.execute(
                sa.select(seen_posts_table).where(
                    seen_posts_table.c.chat_id == chat_id,
                    seen_posts_table.c.network == network.value,
                )
            )
            return {r.post_id: _post_row(r) for r in rows}

    def save_post(self, post: StoredPost, answers: Sequence[tuple[int, str, str]]) -> bool:
        """Store a post and its answers (question, part, text); replaces an earlier version.

        Returns whether anything changed (a post seen twice unchanged is stored once).
        """
        values = {
            "post_id": post.post_id,
            "url": post.url,
            "author_id": post.author_id,
            "text": post.text,
            "created_at": post.created_at,
            "edited_at": post.edited_at,
            "reply_to": post.reply_to,
            "quote_of": post.quote_of,
            "likes": post.likes,
            "reposts": post.reposts,
            "kind": post.kind,
            "reason": post.reason,
            "resolved": post.resolved,
            "deleted_at": None,
        }
        key = (
            seen_posts_table.c.chat_id == post.chat_id,
            seen_posts_table.c.network == post.network.value,
            seen_posts_table.c.uri == post.uri,
        )
        with self._tx() as conn:
            row = conn.execute(sa.select(seen_posts_table).where(*key)).first()
            if row is not None:
                old = _post_row(row)
                if old == post and not row.deleted_at:
                    return False
                conn.execute(seen_posts_table.update().where(*key).values(**values))
            else:
                conn.execute(
                    seen_posts_table.insert().values(
                        chat_id=post.chat_id,
                        network=post.network.value,
                        uri=post.uri,
                        seen_at=_utcnow(),
                        **values,
                    )
                )
            conn.execute(
                answers_table.delete().where(
                    answers_table.c.chat_id == post.chat_id,
                    answers_table.c.network == post.network.value,
                    answers_table.c.uri == post.uri,
                )
            )
            if answers:
                conn.execute(
                    answers_table.insert(),
                    [
                        {
                            "chat_id": post.chat_id,
                            "network": post.network.value,
                            "uri": post.uri,
                            "question": question,
                            "part": part,
                            "text": text,
                            "author_id": post.author_id,
                            "created_at": post.created_at,
                        }
                        for question, part, text in answers
                    ],
                )
        return True

    def delete_post(self, chat_id: str, network: NetworkName, uri: str) -> bool:
        """A post deleted by its author: its answers go, the record stays marked deleted."""
        with self._tx() as conn:
            changed = conn.execute(
                seen_posts_table.update()
                .where(
                    seen_posts_table.c.chat_id == chat_id,
                    seen_posts_table.c.network == network.value,
                    seen_posts_table.c.uri == uri,
                    seen_posts_table.c.deleted_at.is_(None),
                )
                .values(deleted_at=_utcnow())
            ).rowcount
            conn.execute(
                answers_table.delete().where(
                    answers_table.c.chat_id == chat_id,
                    answers_table.c.network == network.value,
                    answers_table.c.uri == uri,
                )
            )
        return bool(changed)

    def posts(self, chat_id: str, *, include_deleted: bool = False) -> list[StoredPost]:
        query = (
            sa.select(seen_posts_table)
            .where(seen_posts_table.c.chat_id == chat_id)
            .order_by(seen_posts_table.c.created_at, seen_posts_table.c.uri)
        )
        if not include_deleted:
            query = query.where(seen_posts_table.c.deleted_at.is_(None))
        with self._tx() as conn:
            return [_post_row(r) for r in conn.execute(query)]

    def answers(self, chat_id: str, question: int | None = None) -> list[StoredAnswer]:
        """The chat's answers, by question then time, with their authors."""
        a, p, s = answers_table.c, participants_table.c, seen_posts_table.c
        query = (
            sa.select(
                a.chat_id,
                a.network,
                a.uri,
                a.question,
                a.part,
                a.text,
                a.created_at,
                a.author_id,
                p.handle,
                p.display_name,
                p.opt_out,
                s.url,
                s.likes,
                s.reposts,
            )
            .join(
                participants_table,
                sa.and_(p.network == a.network, p.account_id == a.author_id),
            )
            .join(
                seen_posts_table,
                sa.and_(s.chat_id == a.chat_id, s.network == a.network, s.uri == a.uri),
            )
            .where(a.chat_id == chat_id)
            .order_by(a.question, a.created_at, a.uri, a.part)
        )
        if question is not None:
            query = query.where(a.question == question)
        with self._tx() as conn:
            return [
                StoredAnswer(
                    chat_id=r.chat_id,
                    network=NetworkName(r.network),
                    uri=r.uri,
                    url=r.url,
                    question=r.question,
                    part=r.part,
                    text=r.text,
                    created_at=r.created_at,
                    author_id=r.author_id,
                    handle=r.handle,
                    display_name=r.display_name,
                    opt_out=r.opt_out,
                    likes=r.likes,
                    reposts=r.reposts,
                )
                for r in conn.execute(query)
            ]

    def authors_before(
        self, script_id: str, chat_id: str, before: datetime
    ) -> set[tuple[NetworkName, str]]:
        """(network, account) of everyone who posted in earlier chats of the same script."""
        s, c = seen_posts_table.c, chats_table.c
        query = (
            sa.select(s.network, s.author_id)
            .join(chats_table, c.chat_id == s.chat_id)
            .where(c.script_id == script_id, c.chat_id != chat_id, c.start_at < before)
            .distinct()
        )
        with self._tx() as conn:
            return {(NetworkName(r.network), r.author_id) for r in conn.execute(query)}

    def add_units(self, chat_id: str, units: Sequence[PlannedUnit]) -> None:
        """Units decided at run time (the recap's posts), pending, after the planned ones."""
        now = _utcnow()
        with self._tx() as conn:
            for unit in units:
                exists = conn.execute(
                    sa.select(units_table.c.state).where(
                        _unit_where(chat_id, unit.step_key, unit.network.value)
                    )
                ).first()
                if exists:
                    continue
                conn.execute(
                    units_table.insert().values(
                        chat_id=chat_id,
                        step_key=unit.step_key,
                        network=unit.network.value,
                        seq=unit.seq,
                        kind=unit.kind,
                        number=unit.number,
                        planned_at=unit.planned_at,
                        state=UnitState.PENDING,
                        idempotency_key=unit.idempotency_key,
                        text=unit.text,
                        updated_at=now,
                    )
                )

    def set_unit_text(self, chat_id: str, step_key: str, network: NetworkName, text: str) -> None:
        with self._tx() as conn:
            conn.execute(
                units_table.update()
                .where(_unit_where(chat_id, step_key, network.value))
                .values(text=text, updated_at=_utcnow())
            )

    def cursors(self, chat_id: str, network: NetworkName) -> dict[str, str]:
        with self._tx() as conn:
            rows = conn.execute(
                sa.select(cursors_table.c.source, cursors_table.c.value).where(
                    cursors_table.c.chat_id == chat_id,
                    cursors_table.c.network == network.value,
                )
            )
            return {r.source: r.value for r in rows}

    def save_cursors(self, chat_id: str, network: NetworkName, cursors: dict[str, str]) -> None:
        now = _utcnow()
        with self._tx() as conn:
            for source, value in cursors.items():
                where = (
                    cursors_table.c.chat_id == chat_id,
                    cursors_table.c.network == network.value,
                    cursors_table.c.source == source,
                )
                if not conn.execute(
                    cursors_table.update().where(*where).values(value=value, updated_at=now)
                ).rowcount:
                    conn.execute(
                        cursors_table.insert().values(
                            chat_id=chat_id,
                            network=network.value,
                            source=source,
                            value=value,
                            updated_at=now,
                        )
                    )

    # --- events -------------------------------------------------------------------------

    def event(
        self,
        level: str,
        message: str,
        *,
        chat_id: str | None = None,
        step_key: str | None = None,
        network: NetworkName | None = None,
    ) -> None:
        with self._tx() as conn:
            conn.execute(
                events_table.insert().values(
                    at=_utcnow(),
                    level=level,
                    chat_id=chat_id,
                    step_key=step_key,
                    network=network.value if network else None,
                    message=message,
                )
            )

    def events(self, limit: int = 20, levels: Sequence[str] | None = None) -> list[EventRow]:
        query = sa.select(events_table).order_by(events_table.c.id.desc()).limit(limit)
        if levels:
            query = query.where(events_table.c.level.in_(list(levels)))
        with self._tx() as conn:
            return [
                EventRow(r.at, r.level, r.chat_id, r.step_key, r.network, r.message)
                for r in conn.execute(query)
            ]

    # --- after the chat: transcripts and participation (read only) ----------------------

    def post_counts(self, chat_id: str) -> dict[str, int]:
        """How many non-deleted posts of the chat were judged to be of each kind."""
        s = seen_posts_table.c
        query = (
            sa.select(s.kind, sa.func.count().label("posts"))
            .where(s.chat_id == chat_id, s.deleted_at.is_(None))
            .group_by(s.kind)
        )
        with self._tx() as conn:
            return {r.kind: int(r.posts) for r in conn.execute(query)}

    def answer_rows(
        self, chat_id: str, kinds: Sequence[str]
    ) -> list[tuple[int, str, str, datetime, str, str, str, str, str]]:
        """(question, part, text, created at, network, url, handle, display name, opt-out)
        of the answers in non-deleted posts of ``kinds``, by question then time.

        The lean form of :meth:`answers` for transcripts of 20,000 answers: no object
        per row (building them took longer than the query).
        """
        a, p, s = answers_table.c, participants_table.c, seen_posts_table.c
        query = (
            sa.select(
                a.question,
                a.part,
                a.text,
                a.created_at,
                a.network,
                s.url,
                p.handle,
                p.display_name,
                p.opt_out,
            )
            .join(
                participants_table,
                sa.and_(p.network == a.network, p.account_id == a.author_id),
            )
            .join(
                seen_posts_table,
                sa.and_(s.chat_id == a.chat_id, s.network == a.network, s.uri == a.uri),
            )
            .where(a.chat_id == chat_id, s.kind.in_(list(kinds)), s.deleted_at.is_(None))
            .order_by(a.question, a.created_at, a.uri, a.part)
        )
        with self._tx() as conn:
            return [tuple(r) for r in conn.execute(query).all()]

    def posts_of_kind(self, chat_id: str, kinds: Sequence[str]) -> list[StoredPost]:
        """The chat's non-deleted posts of ``kinds``, in time order."""
        s = seen_posts_table.c
        query = (
            sa.select(seen_posts_table)
            .where(s.chat_id == chat_id, s.kind.in_(list(kinds)), s.deleted_at.is_(None))
            .order_by(s.created_at, s.uri)
        )
        with self._tx() as conn:
            return [_post_row(r) for r in conn.execute(query)]

    def participation(
        self, chat_ids: Sequence[str], kinds: Sequence[str]
    ) -> list[tuple[str, Author, int]]:
        """(chat id, author, answers) for each author of a non-deleted post of ``kinds``."""
        p, s, a = participants_table.c, seen_posts_table.c, answers_table.c
        posted = (
            sa.select(s.chat_id, s.network, s.author_id)
            .where(s.chat_id.in_(list(chat_ids)), s.kind.in_(list(kinds)), s.deleted_at.is_(None))
            .distinct()
            .subquery()
        )
        authors = (
            sa.select(posted.c.chat_id, participants_table)
            .join(
                participants_table,
                sa.and_(p.network == posted.c.network, p.account_id == posted.c.author_id),
            )
            .order_by(posted.c.chat_id, p.network, p.account_id)
        )
        # Counted apart: SQLite joins two grouped subqueries without an index (slow).
        counts = (
            sa.select(a.chat_id, a.network, a.author_id, sa.func.count().label("answers"))
            .where(a.chat_id.in_(list(chat_ids)))
            .group_by(a.chat_id, a.network, a.author_id)
        )
        with self._tx() as conn:
            answers = {
                (r.chat_id, r.network, r.author_id): int(r.answers) for r in conn.execute(counts)
            }
            return [
                (
                    r.chat_id,
                    Author(
                        network=NetworkName(r.network),
                        id=r.account_id,
                        handle=r.handle,
                        display_name=r.display_name,
                        url=r.url,
                        bot=r.bot,
                        opt_out=r.opt_out,
                    ),
                    answers.get((r.chat_id, r.network, r.account_id), 0),
                )
                for r in conn.execute(authors)
            ]


@dataclass(frozen=True)
class StoredAnswer:
    """An answer with its author, as the transcript and ``chatbot answers`` show it."""

    chat_id: str
    network: NetworkName
    uri: str
    url: str
    question: int
    part: str
    text: str
    created_at: datetime
    author_id: str
    handle: str
    display_name: str
    opt_out: str
    likes: int
    reposts: int


@dataclass(frozen=True)
class StoredPost:
    """A post of the conversation as stored, with what it was judged to be."""

    chat_id: str
    network: NetworkName
    uri: str
    post_id: str
    url: str
    author_id: str
    text: str
    created_at: datetime
    edited_at: datetime | None
    reply_to: str | None
    quote_of: str | None
    likes: int
    reposts: int
    kind: str
    reason: str
    resolved: bool
    deleted: bool


def _unit_where(chat_id: str, step_key: str, network: str) -> sa.ColumnElement[bool]:
    return sa.and_(
        units_table.c.chat_id == chat_id,
        units_table.c.step_key == step_key,
        units_table.c.network == network,
    )


def _post_row(row: sa.Row[Any]) -> StoredPost:
    return StoredPost(
        chat_id=row.chat_id,
        network=NetworkName(row.network),
        uri=row.uri,
        post_id=row.post_id,
        url=row.url,
        author_id=row.author_id,
        text=row.text,
        created_at=row.created_at,
        edited_at=row.edited_at,
        reply_to=row.reply_to,
        quote_of=row.quote_of,
        likes=row.likes,
        reposts=row.reposts,
        kind=row.kind,
        reason=row.reason,
        resolved=row.resolved,
        deleted=row.deleted_at is not None,
    )


def _chat_row(row: sa.Row[Any]) -> ChatRow:
    return ChatRow(
        chat_id=row.chat_id,
        script_id=row.script_id,
        title=row.title,
        hashtag=row.hashtag,
        timezone=row.timezone,
        start_at=row.start_at,
        end_at=row.end_at,
        state=ChatState(row.state),
        shift=timedelta(seconds=row.shift_seconds),
        paused_at=row.paused_at,
        note=row.note,
    )


def _unit_row(row: sa.Row[Any]) -> UnitRow:
    network = NetworkName(row.network)
    remote = (
        PostRef(network, row.remote_id, row.remote_url or "", row.remote_cid or "")
        if row.remote_id
        else None
    )
    return UnitRow(
        chat_id=row.chat_id,
        step_key=row.step_key,
        network=network,
        seq=row.seq,
        kind=row.kind,
        number=row.number,
        planned_at=row.planned_at,
        state=UnitState(row.state),
        idempotency_key=row.idempotency_key,
        text=row.text,
        remote=remote,
        attempts=row.attempts,
        retry_at=row.retry_at,
        reason=row.reason,
        posted_at=row.posted_at,
        intent_at=row.intent_at,
    )


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets `chatbot status` read while `chatbot run` writes; NORMAL sync is
    # durable across process crashes (SIGKILL), which is what write-ahead needs.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
