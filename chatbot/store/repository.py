"""What every repository of the store shares: a transaction, and insert-or-update."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

T = TypeVar("T")

# Two replicas may insert the same row in the same instant (both plan a new chat): the
# loser's transaction fails on the key, and is simply run again, now seeing the row.
WRITE_RACE_RETRIES = 3


class Repository:
    """One part of the state, over the engine the :class:`~chatbot.store.Store` opened."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    @contextmanager
    def _tx(self) -> Iterator[Connection]:
        with self._engine.begin() as conn:
            yield conn

    def _racing(self, write: Callable[[Connection], T]) -> T:
        """Run ``write`` in a transaction, again if another writer inserted the same key."""
        for attempt in range(WRITE_RACE_RETRIES):
            try:
                with self._engine.begin() as conn:
                    return write(conn)
            except sa.exc.IntegrityError:
                if attempt == WRITE_RACE_RETRIES - 1:
                    raise
        raise AssertionError("unreachable")


def upsert(
    conn: Connection,
    table: sa.Table,
    key: Mapping[str, Any],
    values: Mapping[str, Any],
    *,
    on_insert: Mapping[str, Any] | None = None,
) -> bool:
    """Update the row with ``key``, or insert it (with ``on_insert`` too); True if inserted.

    Portable (SQLite and PostgreSQL alike); callers run it in a transaction.
    """
    where = [table.c[name] == value for name, value in key.items()]
    if conn.execute(table.update().where(*where).values(**values)).rowcount:
        return False
    conn.execute(table.insert().values(**key, **values, **(on_insert or {})))
    return True
