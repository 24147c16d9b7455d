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
from typing import Annotated, NoReturn

import typer
from rich.console import Console

from chatbot import logs, rehearsal
from chatbot.archive import archive_folder
from chatbot.config import LoadedConfig, check_config, load_config
from chatbot.errors import ChatbotError, Problem, ScriptError
from chatbot.loader import check_paths
from chatbot.networks.connect import connect
from chatbot.preview import build_preview, render_plain, render_rich
from chatbot.run.runner import Runner
from chatbot.run.sync import VisibilityPolicy
from chatbot.status import build_status, render_answers, render_status
from chatbot.store import Store
from chatbot.text import Limits

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
    wrong and how to fix it. Exits 0 when everything is fine, 1 otherwise.
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
    problems.extend(report.problems)
    if output == "json":
        typer.echo(
            json.dumps(
                {
                    "ok": not problems,
                    "files": report.files,
                    "chats": [s.script_id for s in report.scripts],
                    "problems": [p.as_dict() for p in problems],
                },
                indent=2,
            )
        )
    else:
        for problem in problems:
            typer.echo(problem.render())
        summary = f"{report.files} file(s) checked, {len(report.scripts)} valid chat script(s)"
        if problems:
            typer.echo(f"\n{len(problems)} problem(s). {summary}.")
        else:
            typer.echo(f"All good: {summary}.")
    if problems:
        raise typer.Exit(1)


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
    dates that follow.
    """
    loaded_config = load_config(config)
    report = check_paths(paths, _now(now), _limits(loaded_config))
    if report.problems:
        for problem in report.problems:
            typer.echo(problem.render(), err=True)
        _fail("fix the problems above first (chatbot validate lists them too)")
    console = Console()
    for loaded in report.scripts:
        item = build_preview(loaded, _now(now), _limits(loaded_config), dates)
        if console.is_terminal:
            render_rich(item, console)
        else:
            typer.echo(render_plain(item))
            typer.echo("")


DataDirOption = Annotated[
    Path | None,
    typer.Option(
        "--data-dir", help="Use this data folder instead of the config's data_dir.", file_okay=False
    ),
]


def _open(config: Path | None, data_dir: Path | None) -> tuple[LoadedConfig, Store]:
    loaded = _loaded(config, data_dir)
    return loaded, Store.open(loaded.database_url, now=datetime.now(UTC))


@app.command()
def run(
    config: ConfigOption = None,
    speed: Annotated[
        float,
        typer.Option(
            help="Run every chat in the schedules folder now, N times faster, and exit when "
            "they are over. With a Mastodon or Bluesky account configured this is refused "
            "(it would post the whole chat in public in a minute): use `chatbot rehearse`.",
            min=1.0,
        ),
    ] = 1.0,
    on_real_accounts: Annotated[
        bool,
        typer.Option(
            "--on-real-accounts",
            help="With --speed: rehearse on the configured accounts anyway (a test account). "
            "Mastodon posts are then direct (seen by the bot's account only).",
        ),
    ] = False,
    bluesky_posts_are_public: Annotated[
        bool,
        typer.Option(
            "--bluesky-posts-are-public",
            help="With --on-real-accounts and a Bluesky account: confirm that you know every "
            "Bluesky post is public, so the rehearsal is posted for everyone to see.",
        ),
    ] = False,
    exit_when_done: Annotated[
        bool,
        typer.Option(
            "--exit-when-done",
            help="Exit once every chat in the schedules folder is over and its answers are "
            "in (for a single chat started by a scheduler or a test).",
        ),
    ] = False,
    data_dir: DataDirOption = None,
) -> None:
    """Run the bot: post every chat in the schedules folder on time, until stopped.

    Scripts are reloaded when a file changes. Stop it with Ctrl-C or SIGTERM: the
    post in flight is finished and recorded first. To try a script, use
    `chatbot rehearse`, which never posts anywhere.
    """
    loaded = _loaded(config, data_dir)
    accounts = loaded.config.accounts
    real = [n for n, a in (("Mastodon", accounts.mastodon), ("Bluesky", accounts.bluesky)) if a]
    visibility = VisibilityPolicy.from_account(accounts.mastodon)
    if speed != 1.0 and real:
        _refuse_public_rehearsal(real, on_real_accounts, bluesky_posts_are_public)
        visibility = VisibilityPolicy.only_the_bot()
    store = Store.open(loaded.database_url, now=datetime.now(UTC))
    logs.configure(loaded.config.log_format)
    metrics = None
    if loaded.config.metrics.port is not None:
        from chatbot.metrics import Metrics

        metrics = Metrics(store, lambda: datetime.now(UTC))
        metrics.serve(loaded.config.metrics.address, loaded.config.metrics.port)
    networks = connect(loaded, store, speed=speed)
    runner = Runner(
        store=store,
        networks=networks,
        schedules=loaded.schedules_dir,
        late=loaded.config.late,
        visibility=visibility,
        speed=speed,
        answer_tail=loaded.config.answer_tail,
        moderation=loaded.config.moderation,
        transcript_url=loaded.config.transcript_url,
        archive_dir=archive_folder(loaded.data_dir),
        data_dir=loaded.data_dir,
        metrics=metrics,
        lease_ttl=loaded.config.lease,
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
            if exit_when_done and runner.all_over(answers_in=True):
                break
    finally:
        runner.stop()
        store.close()


def _refuse_public_rehearsal(
    real: list[str], on_real_accounts: bool, bluesky_posts_are_public: bool
) -> None:
    """``run --speed`` on real accounts posts a whole chat in a minute in the community's
    name: refused unless asked for on purpose (and, for Bluesky, confirmed)."""
    if not on_real_accounts:
        _fail(
            f"--speed with a {' and a '.join(real)} account configured would post the whole "
            "chat in public within a minute. To try a script, run "
            "`chatbot rehearse schedules/<script>.yaml`: it plays the chat on the local "
            "network and never posts anywhere. (To rehearse on a test account on purpose, "
            "add --on-real-accounts.)",
            2,
        )
    if "Bluesky" in real and not bluesky_posts_are_public:
        _fail(
            "every Bluesky post is public, so a rehearsal on the Bluesky account would be "
            "seen by everyone. Use `chatbot rehearse`, or confirm with "
            "--bluesky-posts-are-public.",
            2,
        )


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
    ] = rehearsal.DEFAULT_SPEED,
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
    logs.configure("text", level=logging.WARNING)
    report = check_paths(paths, datetime.now(UTC), Limits())
    for problem in report.problems:
        typer.echo(problem.render(), err=True)
    if report.problems or not report.scripts:
        _fail("fix the problems above, then rehearse again (`chatbot validate` lists them)")
    if data_dir is None:
        names = "-".join(s.script_id for s in report.scripts)[:60]
        data_dir = Path("rehearsals") / f"{names}-{datetime.now(UTC):%Y%m%dT%H%M%S}"
    raise typer.Exit(rehearsal.rehearse(report.scripts, data_dir, speed, typer.echo))


@app.command()
def demo(
    speed: Annotated[
        float, typer.Option(help="How many times faster than real time.", min=1.0)
    ] = rehearsal.DEFAULT_SPEED,
    data_dir: Annotated[
        Path, typer.Option("--data-dir", help="Where the demo keeps its state.", file_okay=False)
    ] = Path("demo-data"),
) -> None:
    """Watch a whole chat happen in about a minute, with no account anywhere.

    The bot posts a welcome, questions and a closing on the embedded local network
    while simulated teachers introduce themselves and answer.
    """
    logs.configure("text", level=logging.WARNING)
    raise typer.Exit(rehearsal.run_demo(data_dir, speed, typer.echo))


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
    _loaded, store = _open(config, data_dir)
    try:
        chat_row = store.chats.get(chat)
        if chat_row is None:
            known = ", ".join(c.chat_id for c in store.chats.list()[-5:]) or "none yet"
            _fail(f'no chat "{chat}" (recent chats: {known})')
        shown: set[tuple[str, int, str]] = set()
        while True:
            rows = [
                a
                for a in store.reports.answers(chat, question)
                if (a.uri, a.question, a.part) not in shown
            ]
            unreadable = [r for r in store.conversation.rounds(chat) if r.failing]
            for line in render_answers(
                rows, chat_row.timezone, header=not shown, unreadable=unreadable
            ):
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
    from chatbot.archive import FORMATS, render, write_transcript
    from chatbot.transcript import build_transcript

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
    """Show the chats in progress, upcoming and finished, and what went wrong.

    Lists each chat's next step, the finished chats with their transcripts, recent
    posts, answers that cannot be read (since when, and why), and anything late,
    skipped, failed or held, with the reason.
    """
    loaded, store = _open(config, data_dir)
    try:
        report = build_status(
            store,
            datetime.now(UTC),
            loaded.config.late,
            archive_dir=archive_folder(loaded.data_dir),
        )
        typer.echo(render_status(report))
    finally:
        store.close()


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
    loaded = _loaded(config, data_dir)
    store = Store.open(loaded.database_url, now=datetime.now(UTC))
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

    loaded = _loaded(config, data_dir)
    store = Store.open(loaded.database_url, now=datetime.now(UTC))
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
    from chatbot.store.moving import copy_tables

    loaded = _loaded(config, data_dir)
    source = Store.open(loaded.database_url, now=datetime.now(UTC))
    target = Store.open(to, now=datetime.now(UTC))
    try:
        counts = copy_tables(
            source.engine, target.engine, lambda table, n: typer.echo(f"  {table}: {n} rows")
        )
    finally:
        source.close()
        target.close()
    typer.echo(f"copied {sum(counts.values())} rows; now set database_url to the target")


def _loaded(config: Path | None, data_dir: Path | None) -> LoadedConfig:
    loaded = load_config(config)
    return loaded.with_data_dir(data_dir) if data_dir is not None else loaded


@app.command()
def health(config: ConfigOption = None, data_dir: DataDirOption = None) -> None:
    """Check that the running bot is doing its job (for a container's health check).

    Reads what the bot records, never calls a network. Fails (exit 1), naming the
    cause, when the scheduler has not run a job it should have, the store cannot be
    written, an account's credentials were refused, a running chat's answers have not
    been readable for 10 minutes, or the bot lost a chat's lease to another replica.
    """
    from chatbot.health import check_health
    from chatbot.health import render as render_health

    loaded, store = _open(config, data_dir)
    try:
        findings = check_health(
            store, loaded.data_dir, datetime.now(UTC), step_grace=loaded.config.late.step_grace
        )
    finally:
        store.close()
    typer.echo(render_health(findings))
    if not all(f.ok for f in findings):
        raise typer.Exit(1)


def main() -> None:
    """Entry point: every error becomes a message, never a traceback."""
    try:
        app()
    except ScriptError as exc:
        for problem in exc.problems:
            typer.echo(problem.render(), err=True)
        sys.exit(1)
    except ChatbotError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
