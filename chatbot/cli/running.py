"""Commands for running the bot and watching it: run, check, status, health, answers."""

from __future__ import annotations

import logging
import signal
import threading
import time
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING, Annotated

import typer

from chatbot.cli import (
    ConfigOption,
    DataDirOption,
    app,
    fail,
    loaded_config,
    open_store,
)

if TYPE_CHECKING:
    pass


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
    from chatbot.archive import archive_folder
    from chatbot.networks.connect import connect
    from chatbot.run.runner import Runner
    from chatbot.run.sync import VisibilityPolicy
    from chatbot.store import Store

    loaded = loaded_config(config, data_dir)
    accounts = loaded.config.accounts
    real = [n for n, a in (("Mastodon", accounts.mastodon), ("Bluesky", accounts.bluesky)) if a]
    visibility = VisibilityPolicy.from_account(accounts.mastodon)
    if speed != 1.0 and real:
        _refuse_public_rehearsal(real, on_real_accounts, bluesky_posts_are_public)
        visibility = VisibilityPolicy.only_the_bot()
    loaded.check_secrets()  # every missing secret at once, before anything starts
    store = Store.open(loaded.database_url, now=datetime.now(UTC))
    from chatbot import logs

    logs.configure(loaded.config.log_format)
    networks = connect(loaded, store, speed=speed)
    metrics = None
    if loaded.config.metrics.port is not None:
        from chatbot.metrics import Metrics
        from chatbot.networks.calls import observe_requests

        metrics = Metrics(store, lambda: datetime.now(UTC), [n.value for n in networks])
        observe_requests(metrics.request)
        metrics.serve(loaded.config.metrics.address, loaded.config.metrics.port)
    runner = Runner(
        store=store,
        networks=networks,
        schedules=loaded.schedules_dir,
        late=loaded.config.late,
        visibility=visibility,
        speed=speed,
        answer_tail=loaded.config.answer_tail,
        collect_every=loaded.config.collect_every,
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
                for chat_id in runner.planned_chats():  # a last reading: the late answers too
                    runner.guarded("a last reading", chat_id, partial(runner.collect, chat_id))
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
        fail(
            f"--speed with a {' and a '.join(real)} account configured would post the whole "
            "chat in public within a minute. To try a script, run "
            "`chatbot rehearse schedules/<script>.yaml`: it plays the chat on the local "
            "network and never posts anywhere. (To rehearse on a test account on purpose, "
            "add --on-real-accounts.)",
            2,
        )
    if "Bluesky" in real and not bluesky_posts_are_public:
        fail(
            "every Bluesky post is public, so a rehearsal on the Bluesky account would be "
            "seen by everyone. Use `chatbot rehearse`, or confirm with "
            "--bluesky-posts-are-public.",
            2,
        )


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
    from chatbot.config import load_config
    from chatbot.networks.connect import connect_accounts

    loaded = load_config(config)
    from chatbot import logs

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

    _loaded, store = open_store(config, data_dir)
    try:
        chat_row = store.chats.get(chat)
        if chat_row is None:
            known = ", ".join(c.chat_id for c in store.chats.list()[-5:]) or "none yet"
            fail(f'no chat "{chat}" (recent chats: {known})')
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
def status(config: ConfigOption = None, data_dir: DataDirOption = None) -> None:
    """Show the chats in progress, upcoming and finished, and what went wrong.

    Lists each chat's next step, the finished chats with their transcripts, recent
    posts, answers that cannot be read (since when, and why), and anything late,
    skipped, failed or held, with the reason.
    """
    from chatbot.archive import archive_folder
    from chatbot.status import build_status, render_status

    loaded, store = open_store(config, data_dir)
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

    loaded, store = open_store(config, data_dir)
    try:
        findings = check_health(
            store, loaded.data_dir, datetime.now(UTC), step_grace=loaded.config.late.step_grace
        )
    finally:
        store.close()
    typer.echo(render_health(findings))
    if not all(f.ok for f in findings):
        raise typer.Exit(1)


CONTROL_WAIT = 20.0  # seconds `chatbot control` waits for the running bot to apply it


@app.command()
def control(
    chat: Annotated[
        str, typer.Argument(metavar="CHAT", help="The chat's id, as `chatbot status` lists it.")
    ],
    action: Annotated[
        list[str],
        typer.Argument(
            metavar="COMMAND",
            help="pause, resume, skip, next, extend N (minutes), end, status or followup N.",
        ),
    ],
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Steer a running chat from this computer, as a co-moderator would.

    The running bot applies it within a few seconds, wherever it runs (another shell,
    `docker exec`, another replica); this says what changed, or that no bot is running.
    """
    import getpass

    from chatbot.run.commands import parse
    from chatbot.store import CommandState

    text = " ".join(action)
    if parse(text) is None:
        fail(
            f'"{text}" is not a command: use pause, resume, skip, next, extend N, end, '
            "status or followup N",
            2,
        )
    _loaded, store = open_store(config, data_dir)
    try:
        if store.chats.get(chat) is None:
            known = ", ".join(c.chat_id for c in store.chats.list()[-5:]) or "none yet"
            fail(f'no chat "{chat}" (recent chats: {known})')
        now = datetime.now(UTC)
        beats = [r for r in store.leases.replicas() if r.stopped_at is None]
        if not any((now - r.beat_at).total_seconds() < 60 for r in beats):
            fail("no bot is running with this database: start it with `chatbot run`")
        user = getpass.getuser()
        command_id = store.commands.receive(
            chat, source="host", author_id=f"host:{user}", author=user, text=text, now=now
        )
        assert command_id is not None
        deadline = time.monotonic() + CONTROL_WAIT
        while time.monotonic() < deadline:
            row = store.commands.get(command_id)
            if row is not None and row.state is not CommandState.RECEIVED:
                typer.echo(f"{row.state.value}: {row.detail}")
                if row.state is not CommandState.APPLIED:
                    raise typer.Exit(1)
                return
            time.sleep(0.5)
        store.commands.done(
            command_id, CommandState.IGNORED, "no bot applied it in time", now=datetime.now(UTC)
        )
        fail(f"the running bot did not apply it within {CONTROL_WAIT:.0f} s; nothing changed")
    finally:
        store.close()
