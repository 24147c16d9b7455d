"""Commands for after a chat: archive (transcripts) and stats (participation)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from chatbot.cli import (
    ConfigOption,
    DataDirOption,
    app,
    fail,
    open_store,
)

if TYPE_CHECKING:
    pass


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
    from chatbot.archive import FORMATS, render, write_transcript
    from chatbot.transcript import build_transcript

    fmt = output_format.lower()
    if fmt not in FORMATS:
        fail(f"--format must be one of {', '.join(FORMATS)}", 2)
    _loaded, store = open_store(config, data_dir)
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

    loaded, store = open_store(config, data_dir)
    try:
        names = [series] if series else series_ids(store)
        if not names:
            fail("no chat has taken place yet: run one first (try chatbot demo)")
        if (csv_file or chart) and len(names) > 1:
            fail(f"name the series for --csv or --chart: {', '.join(names)}", 2)
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
