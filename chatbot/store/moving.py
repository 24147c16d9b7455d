"""Moving a store: an online backup of SQLite, and a copy of every table to another database.

``chatbot db copy --to URL`` moves a district from SQLite to PostgreSQL: the target
is brought to the same schema by the same migrations, every row is copied in
batches (ids kept), and PostgreSQL's sequences are moved past the copied ids.
Nothing is copied into a target that already holds chats.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa

from chatbot.errors import ChatbotError
from chatbot.store.schema import chats_table, metadata, migrations_table

BATCH = 1000


class NotEmpty(ChatbotError):
    """The copy's target already holds a bot's state."""


def backup_sqlite(source: sa.Engine, target: Path) -> Path:
    """SQLite's online backup into ``target`` (a consistent copy, taken while the bot runs)."""
    if source.dialect.name != "sqlite":
        raise ChatbotError(
            "`chatbot db backup` copies an SQLite store. For PostgreSQL, use its own tool: "
            "pg_dump --format=custom --file=chatbot.dump <database URL>"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    raw = source.raw_connection()
    try:
        sqlite_source = raw.driver_connection
        assert isinstance(sqlite_source, sqlite3.Connection)
        with sqlite3.connect(target) as copy:
            sqlite_source.backup(copy)
        copy.close()
    finally:
        raw.close()
    target.chmod(0o600)
    return target


def copy_tables(
    source: sa.Engine, target: sa.Engine, progress: Callable[[str, int], None]
) -> dict[str, int]:
    """Copy every row of every table (the target has the same schema); rows per table."""
    with target.connect() as conn:
        if conn.execute(sa.select(sa.func.count()).select_from(chats_table)).scalar():
            raise NotEmpty(
                f"the target database already holds chats: copy into an empty one "
                f"({target.url.render_as_string(hide_password=True)})"
            )
    counts: dict[str, int] = {}
    with source.connect() as src, target.begin() as dst:
        for table in metadata.sorted_tables:
            if table is migrations_table:
                continue  # the target's own migrations made the same schema
            dst.execute(table.delete())
            copied = 0
            rows = src.execute(sa.select(table)).mappings()
            while batch := rows.fetchmany(BATCH):
                dst.execute(table.insert(), [dict(row) for row in batch])
                copied += len(batch)
            counts[table.name] = copied
            progress(table.name, copied)
        if dst.dialect.name == "postgresql":
            _move_sequences(dst)
    return counts


def _move_sequences(conn: sa.Connection) -> None:
    """Autoincrement ids were copied as they were: the sequences start after them."""
    for table in metadata.sorted_tables:
        for column in table.primary_key.columns:
            if column.autoincrement is True or (
                column.autoincrement == "auto"
                and isinstance(column.type, sa.Integer)
                and len(table.primary_key.columns) == 1
            ):
                after = conn.execute(sa.select(sa.func.coalesce(sa.func.max(column), 0))).scalar()
                sequence = sa.func.pg_get_serial_sequence(table.name, column.name)
                conn.execute(sa.select(sa.func.setval(sequence, int(after or 0) + 1, False)))
