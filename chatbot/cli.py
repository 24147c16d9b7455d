"""The ``chatbot`` command: parse arguments, call the library, turn errors into messages."""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from rich.console import Console

from chatbot import logs
from chatbot.config import LoadedConfig, check_config, load_config
from chatbot.errors import ChatbotError, Problem, ScriptError, Severity
from chatbot.loader import Report, check_paths, no_scripts_problem
from chatbot.preview import build_preview, preview_failed, render_plain, render_rich, too_long
from chatbot.text import Limits

if TYPE_CHECKING:
    from chatbot.store import Store

# The running bot, its store and its networks are imported by the commands that
# use them: `chatbot validate` starts in half the time without them (and the
# network SDKs), which matters in an editor or a pre-commit hook.

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


def _now(value: datetime | None) -> datetime:
    return value.replace(tzinfo=UTC) if value else datetime.now(UTC)


def _fail(message: str, code: int = 1) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def _limits(loaded: LoadedConfig) -> Limits:
    mastodon = loaded.config.accounts.mastodon
    if mastodon is not None and mastodon.max_characters:
        return Limits(mastodon_max_characters=mastodon.max_characters)
    return Limits()


@app.command()
def validate(
    paths: Annotated[
        list[Path],
        typer.Argument(
            metavar="PATH...", help="Chat script files or folders of them (e.g. schedules/)."
        ),
    ],
    config: ConfigOption = None,
    output: Annotated[
        str,
        typer.Option("--format", help="text for people, json for tools.", case_sensitive=False),
    ] = "text",
    now: NowOption = None,
) -> None:
    """Check chat scripts before anything is posted.

    Lists every problem at once, each with file:line:column, the field, what is
    wrong and how to fix it. Scripts are the files ending in .yaml or .yml (any
    case). Exits 0 when everything is fine (notes allowed), 1 when there is a
    problem or a warning, 2 for a mistake in the command, 3 for an internal error.
    """
    if output not in ("text", "json"):
        _fail('--format must be "text" or "json"', 2)
    problems: list[Problem] = []
    limits = Limits()
    if config is not None:
        problems.extend(check_config(config))
        if not problems:
            limits = _limits(load_config(config))
    report = check_paths(paths, _now(now), limits)
    problems.extend(_failing(report, paths))
    if output == "json":
        typer.echo(
            json.dumps(
                {
                    "ok": not problems,
                    "files": report.files,
                    "chats": [s.script_id for s in report.scripts],
                    "problems": [p.as_dict() for p in problems],
                    "notes": [p.as_dict() for p in report.notes],
                },
                indent=2,
            )
        )
    else:
        for problem in [*problems, *report.notes]:
            typer.echo(problem.render())
        summary = f"{report.files} file(s) checked, {len(report.scripts)} valid chat script(s)"
        notes = f" {len(report.notes)} note(s) above." if report.notes else ""
        if problems:
            warnings = sum(p.severity is Severity.WARNING for p in problems)
            counted = f" ({warnings} of them warnings)" if warnings else ""
            typer.echo(f"\n{len(problems)} problem(s){counted}. {summary}.{notes}")
        else:
            typer.echo(f"All good: {summary}.{notes}")
    if problems:
        raise typer.Exit(1)


def _failing(report: Report, paths: list[Path]) -> list[Problem]:
    """Errors and warnings, in file and line order; finding no script at all is one."""
    failing = sorted(
        [*report.problems, *report.warnings], key=lambda p: (p.file, p.line or 0, p.column or 0)
    )
    if report.files == 0 and not report.problems:
        failing.append(no_scripts_problem(paths))
    return failing


@app.command()
def preview(
    paths: Annotated[
        list[Path], typer.Argument(metavar="PATH...", help="Chat script files or folders of them.")
    ],
    config: ConfigOption = None,
    dates: Annotated[int, typer.Option(help="How many later dates of a series to list.")] = 6,
    now: NowOption = None,
) -> None:
    """Show exactly what will be posted, when, and on which network.

    Every step of the next chat in the chat's local time and in UTC, with its text
    per network and its length against the network's limit; for a series, the
    dates that follow. Exits 1 when it shows a problem (a warning, a post too long).
    """
    loaded_config = load_config(config)
    limits = _limits(loaded_config)
    report = check_paths(paths, _now(now), limits)
    failing = _failing(report, paths)
    if report.problems or report.files == 0:
        for problem in failing:
            typer.echo(problem.render(), err=True)
        _fail("fix the problems above first (chatbot validate lists them too)")
    for problem in [*failing, *report.notes]:
        typer.echo(problem.render(), err=True)
    shown_problem = bool(failing)
    console = Console()
    for loaded in report.scripts:
        try:
            item = build_preview(loaded, _now(now), limits, dates)
        except Exception as exc:  # noqa: BLE001 - one script's surprise is reported, not raised
            typer.echo(preview_failed(loaded, exc).render(), err=True)
            shown_problem = True
            continue
        if console.is_terminal:
            render_rich(item, console)
        else:
            typer.echo(render_plain(item))
            typer.echo("")
        for problem in too_long(item):
            typer.echo(problem.render(), err=True)
            shown_problem = True
    if shown_problem:
        raise typer.Exit(1)


DataDirOption = Annotated[
    Path | None,
    typer.Option(
        "--data-dir", help="Use this data folder instead of the config's data_dir.", file_okay=False
    ),
]


def _open(config: Path | None, data_dir: Path | None) -> tuple[LoadedConfig, Store]:
    from chatbot.store import Store

    loaded = load_config(config)
    if data_dir is not None:
        loaded = loaded.with_data_dir(data_dir)
    return loaded, Store.open(loaded.database_url)


@app.command()
def run(
    config: ConfigOption = None,
    speed: Annotated[
        float,
        typer.Option(
            help="Rehearse: run every chat in the schedules folder now, N times faster "
            "(60 turns an hour into a minute). The bot exits when the chats are over.",
            min=1.0,
        ),
    ] = 1.0,
    data_dir: DataDirOption = None,
) -> None:
    """Run the bot: post every chat in the schedules folder on time, until stopped.

    Scripts are reloaded when a file changes. Stop it with Ctrl-C or SIGTERM: the
    post in flight is finished and recorded first.
    """
    from chatbot.archive import archive_folder
    from chatbot.networks.connect import connect
    from chatbot.runner import Runner, VisibilityPolicy

    loaded, store = _open(config, data_dir)
    logs.configure(loaded.config.log_format)
    networks = connect(loaded, store, speed=speed)
    runner = Runner(
        store=store,
        networks=networks,
        schedules=loaded.schedules_dir,
        late=loaded.config.late,
        visibility=VisibilityPolicy.from_account(loaded.config.accounts.mastodon),
        speed=speed,
        answer_tail=loaded.config.answer_tail,
        moderation=loaded.config.moderation,
        transcript_url=loaded.config.transcript_url,
        archive_dir=archive_folder(loaded.data_dir),
    )
    stop = threading.Event()

    def _on_signal(signum: int, _frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    runner.start()
    try:
        while not stop.wait(0.5):
            if speed != 1.0 and runner.all_over():
                break
    finally:
        runner.stop()
        store.close()


@app.command()
def demo(
    speed: Annotated[
        float, typer.Option(help="How many times faster than real time.", min=1.0)
    ] = 60.0,
    data_dir: Annotated[
        Path, typer.Option("--data-dir", help="Where the demo keeps its state.", file_okay=False)
    ] = Path("demo-data"),
) -> None:
    """Watch a whole chat happen in about a minute, with no account anywhere.

    The bot posts a welcome, questions and a closing on the embedded local network
    while simulated teachers introduce themselves and answer.
    """
    from chatbot.demo import run_demo

    logs.configure("text", level=logging.WARNING)
    raise typer.Exit(run_demo(data_dir, speed, typer.echo))


@app.command()
def check(config: ConfigOption = None) -> None:
    """Check that the bot is ready for the next chat, without posting anything.

    For each account in the config: the password or token works, which account
    the bot posts as, how long posts may be on that server, whether the account
    is marked as a bot, and whether each chat's hashtag can be read. Then every
    chat script in the schedules folder is checked against those real limits.

    Each line says ok, warning or problem, with what to do about it. Exits 0
    when the bot is ready (warnings allowed), 1 when a problem must be fixed.
    """
    from chatbot.check import CheckableNetwork, run_check
    from chatbot.networks.connect import connect_accounts

    loaded = load_config(config)
    logs.configure(loaded.config.log_format, level=logging.WARNING)
    networks = connect_accounts(loaded)
    checkable = {n: net for n, net in networks.items() if isinstance(net, CheckableNetwork)}
    try:
        report = run_check(loaded, checkable, datetime.now(UTC))
    finally:
        for network in networks.values():
            network.close()
    typer.echo(report.render())
    if not report.ok:
        raise typer.Exit(1)


@app.command()
def answers(
    chat: Annotated[
        str, typer.Argument(metavar="CHAT", help="The chat's id, as `chatbot status` lists it.")
    ],
    config: ConfigOption = None,
    question: Annotated[
        int | None, typer.Option("--question", "-q", help="Only the answers to this question.")
    ] = None,
    follow: Annotated[
        bool,
        typer.Option("--follow", "-f", help="Keep watching and print new answers as they come."),
    ] = False,
    data_dir: DataDirOption = None,
) -> None:
    """Show a chat's answers, question by question, with who answered and when.

    Answers from people who opted out of bots are marked: you can read them here,
    but they are never quoted, named or linked in public recaps.
    """
    from chatbot.status import render_answers

    _loaded, store = _open(config, data_dir)
    try:
        chat_row = store.chat(chat)
        if chat_row is None:
            known = ", ".join(c.chat_id for c in store.chats()[-5:]) or "none yet"
            _fail(f'no chat "{chat}" (recent chats: {known})')
        shown: set[tuple[str, int, str]] = set()
        while True:
            rows = [
                a for a in store.answers(chat, question) if (a.uri, a.question, a.part) not in shown
            ]
            for line in render_answers(rows, chat_row.timezone, header=not shown):
                typer.echo(line)
            shown.update((a.uri, a.question, a.part) for a in rows)
            if not follow:
                break
            time.sleep(2)
    finally:
        store.close()


@app.command()
def archive(
    chat: Annotated[
        str, typer.Argument(metavar="CHAT", help="The chat's id, as `chatbot status` lists it.")
    ],
    output_format: Annotated[
        str, typer.Option("--format", help="md, html, csv or json.", case_sensitive=False)
    ] = "md",
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", help="Write to this file, not the terminal.", dir_okay=False
        ),
    ] = None,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Write a chat's transcript, question by question, for people to keep.

    Each question as it was posted, then its answers with author, time on the
    chat's clock and link; introductions too. Answers from people who opted out of
    bots are counted, never quoted, named or linked; blocked and deleted posts never
    appear. html is one self-contained page; csv has one row per answer.
    """
    from chatbot.archive import FORMATS, build_transcript, render, write_transcript

    fmt = output_format.lower()
    if fmt not in FORMATS:
        _fail(f"--format must be one of {', '.join(FORMATS)}", 2)
    _loaded, store = _open(config, data_dir)
    try:
        transcript = build_transcript(store, chat)
    finally:
        store.close()
    if output is None:
        typer.echo(render(transcript, fmt), nl=False)
    else:
        write_transcript(transcript, fmt, output)
        typer.echo(f"wrote {output}", err=True)


@app.command()
def stats(
    series: Annotated[
        str | None,
        typer.Argument(
            metavar="[SERIES]", help="The series: its chat script's id. Every series if left out."
        ),
    ] = None,
    csv_file: Annotated[
        Path | None,
        typer.Option(
            "--csv",
            help="Write the participation report (one row per person, chats and answers) "
            "to this CSV file.",
            dir_okay=False,
        ),
    ] = None,
    chart: Annotated[
        Path | None,
        typer.Option(
            "--chart",
            help="Draw participants per chat, new and returning, as a PNG.",
            dir_okay=False,
        ),
    ] = None,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Show participation across a series' chats: new and returning people, streaks.

    Per chat: participants, new and returning, answers, change against the previous
    chat. Then the most frequent participants (for badges) with their streaks. One
    person's linked accounts (identities in the config) count once; people who opted
    out of bots are counted but never named.
    """
    from chatbot.archive import atomic_file
    from chatbot.stats import (
        draw_chart,
        opted_out_note,
        render_stats,
        series_ids,
        series_stats,
        write_report,
    )

    loaded, store = _open(config, data_dir)
    try:
        names = [series] if series else series_ids(store)
        if not names:
            _fail("no chat has taken place yet: run one first (try chatbot demo)")
        if (csv_file or chart) and len(names) > 1:
            _fail(f"name the series for --csv or --chart: {', '.join(names)}", 2)
        reports = [series_stats(store, name, loaded.config.identities) for name in names]
    finally:
        store.close()
    typer.echo("\n\n".join(render_stats(report) for report in reports))
    if csv_file is not None:
        with atomic_file(csv_file) as handle:
            write_report(reports[0], handle)
        hidden = reports[0].opted_out_people
        typer.echo(
            f"wrote {csv_file}: {len(reports[0].people)} people listed"
            + (f"; {opted_out_note(hidden)}" if hidden else ""),
            err=True,
        )
    if chart is not None:
        draw_chart(reports[0], chart)
        typer.echo(f"wrote {chart}", err=True)


@app.command()
def status(config: ConfigOption = None, data_dir: DataDirOption = None) -> None:
    """Show upcoming chats, chats in progress, recent posts, and anything late,
    skipped or failed, with the reason."""
    from chatbot.status import build_status, render_status

    loaded, store = _open(config, data_dir)
    try:
        typer.echo(render_status(build_status(store, datetime.now(UTC), loaded.config.late)))
    finally:
        store.close()


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


if __name__ == "__main__":
    main()
