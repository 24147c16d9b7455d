"""``chatbot db``: bring the database up to date, back it up, move it to PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from chatbot.cli import (
    ConfigOption,
    DataDirOption,
    app,
    open_store,
)

if TYPE_CHECKING:
    pass


db_app = typer.Typer(
    help="The bot's database: bring it up to date, back it up, move it to PostgreSQL.",
    no_args_is_help=True,
)
app.add_typer(db_app, name="db")


@db_app.command("upgrade")
def db_upgrade(config: ConfigOption = None, data_dir: DataDirOption = None) -> None:
    """Bring the database's tables up to date.

    The bot also does this when it starts. Back the database up first
    (`chatbot db backup`).
    """
    _loaded_config, store = open_store(config, data_dir)
    typer.echo(f"the database is at schema version {store.schema_version()}")
    store.close()


@db_app.command("backup")
def db_backup(
    to: Annotated[
        Path,
        typer.Option(
            "--to", help="The backup file to write (it is readable by you only).", dir_okay=False
        ),
    ],
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Copy an SQLite database to a file, safely while the bot runs.

    For PostgreSQL, use PostgreSQL's own tool:
    pg_dump --format=custom --file=chatbot.dump DATABASE_URL
    """
    from chatbot.store.moving import backup_sqlite

    _loaded_config, store = open_store(config, data_dir)
    try:
        path = backup_sqlite(store.engine, to)
    finally:
        store.close()
    typer.echo(f"backed up to {path}")


@db_app.command("copy")
def db_copy(
    to: Annotated[
        str,
        typer.Option(
            "--to",
            help="The database to copy into, empty: postgresql://USER:PASSWORD@HOST/DATABASE",
        ),
    ],
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Copy the whole database into another one, to move from SQLite to PostgreSQL.

    Stop the bot first. The target gets the same tables and every row; then set
    database_url in the config to the target and start the bot again.
    """
    from chatbot.store import Store
    from chatbot.store.moving import copy_tables

    _loaded_config, source = open_store(config, data_dir)
    target = Store.open(to, now=datetime.now(UTC))
    try:
        counts = copy_tables(
            source.engine, target.engine, lambda table, n: typer.echo(f"  {table}: {n} rows")
        )
    finally:
        source.close()
        target.close()
    typer.echo(f"copied {sum(counts.values())} rows; now set database_url to the target")
