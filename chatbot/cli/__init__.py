"""The ``chatbot`` command: parse arguments, call the library, turn errors into messages.

The commands live by what they are for: :mod:`~chatbot.cli.scripts` (writing and trying
chat scripts), :mod:`~chatbot.cli.running` (running the bot and watching it),
:mod:`~chatbot.cli.after` (transcripts and participation), :mod:`~chatbot.cli.database`.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from chatbot.errors import ChatbotError, ScriptError

if TYPE_CHECKING:
    from chatbot.config import LoadedConfig
    from chatbot.store import Store
    from chatbot.text import Limits

# The running bot, its store and its networks are imported by the commands that
# use them: `chatbot validate` starts in half the time without them (and the
# network SDKs), which matters in an editor or a pre-commit hook.

# `rehearse` and `demo`: an hour's chat in about a minute.
DEFAULT_SPEED = 60.0

app = typer.Typer(
    name="chatbot",
    help="Runs hashtag chats on Mastodon and Bluesky: numbered questions on schedule, "
    "answers followed, a recap when the chat ends.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,
)

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="The bot's config file (default: $CHATBOT_CONFIG, or built-in defaults).",
        dir_okay=False,
    ),
]
NowOption = Annotated[
    datetime | None,
    typer.Option(
        "--now",
        help="Pretend it is this UTC time (for trying scripts ahead of time).",
        hidden=True,
        formats=["%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"],
    ),
]


def now_or(value: datetime | None) -> datetime:
    return value.replace(tzinfo=UTC) if value else datetime.now(UTC)


def fail(message: str, code: int = 1) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def limits_of(loaded: LoadedConfig) -> Limits:
    from chatbot.text import Limits

    mastodon = loaded.config.accounts.mastodon
    if mastodon is not None and mastodon.max_characters:
        return Limits(mastodon_max_characters=mastodon.max_characters)
    return Limits()


DataDirOption = Annotated[
    Path | None,
    typer.Option(
        "--data-dir", help="Use this data folder instead of the config's data_dir.", file_okay=False
    ),
]


def open_store(config: Path | None, data_dir: Path | None) -> tuple[LoadedConfig, Store]:
    from chatbot.store import Store

    loaded = loaded_config(config, data_dir)
    return loaded, Store.open(loaded.database_url, now=datetime.now(UTC))


def loaded_config(config: Path | None, data_dir: Path | None) -> LoadedConfig:
    from chatbot.config import load_config

    loaded = load_config(config)
    return loaded.with_data_dir(data_dir) if data_dir is not None else loaded


EXIT_USAGE = 2  # a mistake in the command line (click's own code)
EXIT_INTERNAL = 3  # a bug in chatbot


def main() -> None:
    """Entry point: every error becomes a message, never a traceback.

    With ``--format json`` the output on stdout is JSON whatever happens: a
    usage mistake or an internal error is reported as ``{"ok": false, "error": ...}``.
    """
    json_mode = _json_requested(sys.argv[1:])
    try:
        app()
    except SystemExit as exc:
        if exc.code == EXIT_USAGE and json_mode:
            typer.echo(json.dumps({"ok": False, "error": "usage", "message": "see stderr"}))
        raise
    except ScriptError as exc:
        for problem in exc.problems:
            typer.echo(problem.render(), err=True)
        sys.exit(1)
    except ChatbotError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001 - the last guard: one line, never a traceback
        what = " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
        message = f"internal error ({what}); this is a bug in chatbot, please report it"
        typer.echo(f"error: {message}", err=True)
        if json_mode:
            typer.echo(json.dumps({"ok": False, "error": "internal", "message": message}))
        sys.exit(EXIT_INTERNAL)


def _json_requested(args: list[str]) -> bool:
    for index, arg in enumerate(args):
        if arg.lower() == "--format=json":
            return True
        if arg == "--format" and index + 1 < len(args) and args[index + 1].lower() == "json":
            return True
    return False


# The commands register themselves on ``app`` when their modules are imported.
from chatbot.cli import after, database, running, scripts  # noqa: E402

__all__ = ["after", "app", "database", "main", "running", "scripts"]

if __name__ == "__main__":
    main()
