"""The bot's state: chats, their steps per network, the conversation, events. SQLite by default.

Written with SQLAlchemy Core so that PostgreSQL is the same code with another
URL. :class:`Store` opens the database, brings its schema up to date, and hands
out one repository per part of the state:

- ``scripts``: the last good version of each script;
- ``chats`` and ``units``: what is planned and how far posting has come
  (write-ahead: an intent before the network call, the result after);
- ``conversation``: participants, posts, answers, cursors, collection rounds;
- ``events``: what ``chatbot status`` shows;
- ``reports``: read-only queries for transcripts, recaps and statistics;
- ``local_posts``: the embedded local network's own posts;
- ``leases``: which replica acts for each chat (fencing tokens), heartbeats, accounts;
- ``commands``: what co-moderators and hosts asked of a chat, and what came of it.

Nothing here reads the clock: every write takes ``now`` from the caller.
"""

from __future__ import annotations

import contextlib
import os
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from chatbot.errors import ChatbotError
from chatbot.store.chats import Chats
from chatbot.store.commands import Commands
from chatbot.store.conversation import Conversation
from chatbot.store.events import Events
from chatbot.store.leases import Fence, LeaseLost, LeaseRow, Leases
from chatbot.store.local import BOT_AUTHOR, LocalPosts
from chatbot.store.model import (
    DONE_STATES,
    OVER_STATES,
    ChatRow,
    ChatState,
    CommandRow,
    CommandState,
    EventRow,
    Image,
    LocalPost,
    PlannedUnit,
    RoundRow,
    StoredAnswer,
    StoredPost,
    UnitRow,
    UnitState,
)
from chatbot.store.reports import Reports
from chatbot.store.schema import migrate, schema_version
from chatbot.store.scripts import Scripts
from chatbot.store.units import RUN_TIME_KINDS, Units

__all__ = [
    "BOT_AUTHOR",
    "DONE_STATES",
    "OVER_STATES",
    "RUN_TIME_KINDS",
    "ChatRow",
    "ChatState",
    "CommandRow",
    "CommandState",
    "EventRow",
    "Fence",
    "Image",
    "LeaseLost",
    "LeaseRow",
    "LocalPost",
    "PlannedUnit",
    "RoundRow",
    "Store",
    "StoredAnswer",
    "StoredPost",
    "UnitRow",
    "UnitState",
]


class StoreUnreachable(ChatbotError):
    """The database cannot be reached or refused the bot (wrong host, password, file)."""


IDLE_IN_TRANSACTION_MS = 10_000
LOCK_TIMEOUT_MS = 10_000


class Store:
    """The state database, as one repository per part of the state."""

    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine
        self.scripts = Scripts(engine)
        self.chats = Chats(engine)
        self.units = Units(engine)
        self.conversation = Conversation(engine)
        self.events = Events(engine)
        self.reports = Reports(engine)
        self.local_posts = LocalPosts(engine)
        self.leases = Leases(engine)
        self.commands = Commands(engine)

    @classmethod
    def open(cls, url: str, *, now: datetime) -> Store:
        """Connect and bring the schema up to date (``now`` stamps the migrations applied).

        A new SQLite file is created readable by its owner only: it holds
        participants' posts and handles.
        """
        url = database_url(url)
        connect_args: dict[str, Any] = {}
        if url.startswith("postgresql"):
            # A replica paused or cut off inside a transaction must not hold its row locks
            # (a chat's lease) for ever: the server ends such a session, and no wait for a
            # lock is longer than the lease itself.
            connect_args["options"] = (
                f"-c idle_in_transaction_session_timeout={IDLE_IN_TRANSACTION_MS} "
                f"-c lock_timeout={LOCK_TIMEOUT_MS}"
            )
        engine = sa.create_engine(url, future=True, pool_pre_ping=True, connect_args=connect_args)
        if engine.dialect.name == "sqlite":
            database = engine.url.database
            if database and database != ":memory:":
                _private_file(Path(database))
            sa.event.listen(engine, "connect", _sqlite_pragmas)
        store = cls(engine)
        try:
            store.migrate(now)
        except sa.exc.OperationalError as exc:
            engine.dispose()
            where = engine.url.render_as_string(hide_password=True)
            raise StoreUnreachable(
                f"cannot open the database {where}: {' '.join(str(exc.orig).split())}"
            ) from exc
        return store

    def migrate(self, now: datetime) -> list[int]:
        """Apply pending migrations, each in its own transaction; returns versions applied."""
        return migrate(self._engine, now)

    def schema_version(self) -> int:
        return schema_version(self._engine)

    @property
    def engine(self) -> sa.Engine:
        """The engine, for tools that move whole tables (backups, copies, benchmarks)."""
        return self._engine

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self._engine.dialect.name

    def close(self) -> None:
        self._engine.dispose()


def database_url(url: str) -> str:
    """An SQLAlchemy URL: ``postgresql://`` (as PostgreSQL writes it) means psycopg 3."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url.removeprefix(prefix)
    return url


def _private_file(path: Path) -> None:
    """Create the database file (and its folder) for the owner only, or tighten an old one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    with contextlib.suppress(OSError):
        if path.stat().st_mode & 0o077:
            path.chmod(0o600)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets `chatbot status` read while `chatbot run` writes; NORMAL sync is
    # durable across process crashes (SIGKILL), which is what write-ahead needs.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
