"""Moving a district from SQLite to PostgreSQL: `chatbot db copy`, then the same output."""

from __future__ import annotations

from pathlib import Path

import yaml
from typer.testing import CliRunner

from chatbot.cli import app
from tests.servers import PostgresServer
from tests.test_stats import ANA, SERIES, chat_id
from tests.test_stats import data_dir as series_data_dir

_ = series_data_dir


def _config(path: Path, data_dir: Path, database_url: str | None = None) -> Path:
    settings: dict[str, object] = {"identities": [ANA.model_dump()], "data_dir": str(data_dir)}
    if database_url is not None:
        settings["database_url"] = database_url
    path.write_text(yaml.safe_dump(settings), encoding="utf-8")
    return path


def _cli(*args: str) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_a_finished_series_copied_to_postgresql_gives_the_same_stats_and_archives(
    series_data_dir: Path, postgres_server: PostgresServer, tmp_path: Path
) -> None:
    """Every row moves: stats and each transcript format are identical on both databases."""
    sqlite = _config(tmp_path / "sqlite.yaml", series_data_dir)
    target = postgres_server.recreate_database("copy_target")
    postgres = _config(tmp_path / "postgres.yaml", tmp_path / "pg-data", target)

    copied = _cli("db", "copy", "--to", target, "--config", str(sqlite))
    assert "copied" in copied and "answers:" in copied

    assert _cli("stats", SERIES, "--config", str(postgres)) == _cli(
        "stats", SERIES, "--config", str(sqlite)
    )
    for n in (1, 9, 12):
        for fmt in ("md", "html", "csv", "json"):
            args = ("archive", chat_id(n), "--format", fmt)
            assert _cli(*args, "--config", str(postgres)) == _cli(*args, "--config", str(sqlite))


def test_copying_into_a_database_that_holds_chats_is_refused(
    series_data_dir: Path, postgres_server: PostgresServer, tmp_path: Path
) -> None:
    """A second copy into the same database would mix two districts' data: refused."""
    sqlite = _config(tmp_path / "sqlite.yaml", series_data_dir)
    target = postgres_server.recreate_database("copy_twice")
    _cli("db", "copy", "--to", target, "--config", str(sqlite))
    result = CliRunner().invoke(app, ["db", "copy", "--to", target, "--config", str(sqlite)])
    assert result.exit_code != 0
    assert "already holds chats" in str(result.exception)


def test_an_sqlite_store_is_backed_up_while_open(series_data_dir: Path, tmp_path: Path) -> None:
    """`chatbot db backup` writes an owner-only copy that holds the same series."""
    sqlite = _config(tmp_path / "sqlite.yaml", series_data_dir)
    backup = tmp_path / "backups" / "chatbot.db"
    _cli("db", "backup", "--to", str(backup), "--config", str(sqlite))
    assert backup.stat().st_mode & 0o077 == 0
    restored = _config(tmp_path / "restored.yaml", tmp_path / "r", f"sqlite:///{backup}")
    assert _cli("stats", SERIES, "--config", str(restored)) == _cli(
        "stats", SERIES, "--config", str(sqlite)
    )
