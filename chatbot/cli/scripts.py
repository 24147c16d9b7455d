"""Commands for writing and trying chat scripts: validate, preview, rehearse, demo."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from chatbot.cli import (
    DEFAULT_SPEED,
    ConfigOption,
    NowOption,
    app,
    fail,
    limits_of,
    now_or,
)
from chatbot.errors import Problem, Severity

if TYPE_CHECKING:
    from chatbot.loader import Report

    pass


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
    from chatbot.config import check_config, load_config
    from chatbot.loader import check_paths
    from chatbot.text import Limits

    if output not in ("text", "json"):
        fail('--format must be "text" or "json"', 2)
    problems: list[Problem] = []
    limits = Limits()
    if config is not None:
        problems.extend(check_config(config))
        if not problems:
            limits = limits_of(load_config(config))
    report = check_paths(paths, now_or(now), limits)
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
    from chatbot.loader import no_scripts_problem

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
    from rich.console import Console

    from chatbot.config import load_config
    from chatbot.loader import check_paths
    from chatbot.preview import build_preview, preview_failed, render_plain, render_rich, too_long

    loaded_config = load_config(config)
    limits = limits_of(loaded_config)
    report = check_paths(paths, now_or(now), limits)
    failing = _failing(report, paths)
    if report.problems or report.files == 0:
        for problem in failing:
            typer.echo(problem.render(), err=True)
        fail("fix the problems above first (chatbot validate lists them too)")
    for problem in [*failing, *report.notes]:
        typer.echo(problem.render(), err=True)
    shown_problem = bool(failing)
    console = Console()
    for loaded in report.scripts:
        try:
            item = build_preview(loaded, now_or(now), limits, dates)
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


@app.command()
def rehearse(
    paths: Annotated[
        list[Path],
        typer.Argument(metavar="SCRIPT", help="Chat script files or folders of them."),
    ],
    speed: Annotated[
        float,
        typer.Option(
            help="How many times faster than real time (60: an hour in a minute).", min=1.0
        ),
    ] = DEFAULT_SPEED,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir",
            help="Where to keep the rehearsal (default: a new folder under rehearsals/).",
            file_okay=False,
        ),
    ] = None,
) -> None:
    """Play a chat now, at speed, on the local network: nothing is posted.

    Shows every post of the chat as it would go out on each network, with
    simulated teachers answering its questions, then the recap and the transcript.
    No account is used, whatever the config says. This is how to check a script
    before the night.
    """
    from chatbot import logs
    from chatbot.loader import check_paths
    from chatbot.text import Limits

    logs.configure("text", level=logging.WARNING)
    report = check_paths(paths, datetime.now(UTC), Limits())
    for problem in report.problems:
        typer.echo(problem.render(), err=True)
    if report.problems or not report.scripts:
        fail("fix the problems above, then rehearse again (`chatbot validate` lists them)")
    if data_dir is None:
        names = "-".join(s.script_id for s in report.scripts)[:60]
        data_dir = Path("rehearsals") / f"{names}-{datetime.now(UTC):%Y%m%dT%H%M%S}"
    from chatbot.rehearsal import rehearse as play

    raise typer.Exit(play(report.scripts, data_dir, speed, typer.echo))


@app.command()
def demo(
    speed: Annotated[
        float, typer.Option(help="How many times faster than real time.", min=1.0)
    ] = DEFAULT_SPEED,
    data_dir: Annotated[
        Path, typer.Option("--data-dir", help="Where the demo keeps its state.", file_okay=False)
    ] = Path("demo-data"),
) -> None:
    """Watch a whole chat happen in about a minute, with no account anywhere.

    The bot posts a welcome, questions and a closing on the embedded local network
    while simulated teachers introduce themselves and answer.
    """

    from chatbot import logs

    logs.configure("text", level=logging.WARNING)
    from chatbot.rehearsal import run_demo

    raise typer.Exit(run_demo(data_dir, speed, typer.echo))
