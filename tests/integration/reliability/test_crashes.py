"""The crash suite: real ``chatbot run`` processes SIGKILLed at chosen and at random points
(seeded) during short real-time chats on each real server, restarted each time; then what
the server holds is compared with the plan and the store.

Each venue's bot starts on a database of an older schema and is killed in the middle of
two of its migrations; then, while two chats run, it is killed again and again: after a
post reached the server and before its result was recorded, in the middle of a collection
round, in the middle of recap composition, or at a random moment. People answer the
questions posted so far between restarts. At the end: every step posted once (or skipped
as late, with its reason), each thread in order, every answer collected once, the store's
counts equal to the server's. The windows are reached through
:mod:`tests.integration.reliability.crashpoints`.
"""

from __future__ import annotations

import os
import random
import sys
import time
import zlib
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

from chatbot.store import schema
from tests.integration.botrun import ROOT, BotFolder, BotProcess, BotRunner
from tests.integration.reliability import summary
from tests.integration.reliability.crashpoints import MARK
from tests.integration.reliability.plan import (
    answer_posted_questions,
    chats_for,
    compare,
    finished,
    states,
)
from tests.integration.venues import Venue

SEED = 13
OLD_SCHEMA = 4  # the database the bot finds at its first start: four migrations old
MIGRATION_KILLS = ("migrate:6", "migrate:8")
# Windows chosen at random (seeded) while the chats run; "random" kills at a random moment.
WINDOWS = ("post:1", "post:2", "collect:1", "collect:2", "random", "random")
KILLS_PER_VENUE = 18
WINDOW_PATIENCE = 7.0  # s: a window not reached by then is a kill at a random moment
ANSWER_TAIL = 10  # s: snac's deliveries take up to 9 s


def old_database(path: Path, version: int) -> None:
    """A database as an older bot left it: the first ``version`` migrations applied."""
    path.parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(f"sqlite:///{path}")
    try:
        with engine.begin() as conn:
            schema.migrations_table.create(conn)
        for migration in schema.MIGRATIONS[:version]:
            with engine.begin() as conn:
                migration.apply(conn)
                conn.execute(
                    schema.migrations_table.insert().values(
                        version=migration.version, name=migration.name, applied_at=datetime.now(UTC)
                    )
                )
    finally:
        engine.dispose()


def schema_version(path: Path) -> int:
    engine = sa.create_engine(f"sqlite:///{path}")
    try:
        return schema.schema_version(engine)
    finally:
        engine.dispose()


def start_at(bots: BotRunner, folder: BotFolder, window: str | None, mark: Path) -> BotProcess:
    """``chatbot run`` held at ``window`` (None: an ordinary run)."""
    args = ["run", "--exit-when-done", "--config", str(folder.config)]
    if window is None or window == "random":
        return bots.start(folder, *args)
    mark.unlink(missing_ok=True)
    env = {**bots.base_env, **folder.env, MARK: str(mark)}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    command = [sys.executable, "-m", "tests.integration.reliability.crashpoints", window, *args]
    process = BotProcess(command, cwd=folder.root, env=env, log=folder.root / "crash.log")
    bots.processes.append(process)
    return process


def next_window(
    rng: random.Random, folder: BotFolder, network: str, killed: Counter[str], recapped: set[str]
) -> str:
    """The migrations first; then a recap being composed whenever one is due (once a chat);
    else a window chosen at random."""
    for window in MIGRATION_KILLS:
        if not killed[window]:
            return window
    units = {(u["chat_id"], u["step_key"]): u["state"] for u in folder.units(network)}
    for chat_id, step in units:
        due = step == "closing" and units[chat_id, step] == "posted"
        if due and chat_id not in recapped and units.get((chat_id, "recap")) == "pending":
            recapped.add(chat_id)
            return "recap:1"
    return rng.choice(WINDOWS)


def crash_run(venue: Venue, tmp_path: Path, bots: BotRunner, seed: int) -> dict[str, int]:
    """One venue's run of the suite; returns the windows in which the bot was killed."""
    rng = random.Random(seed)
    folder = venue.bot(tmp_path / "bot")
    old_database(folder.database, OLD_SCHEMA)
    chats = chats_for(venue, folder, ["crash-a", "crash-b"], first_in=6, gap=16, spacing=5,
                      answer_tail=ANSWER_TAIL)  # fmt: skip
    ana, ben = venue.person("ana"), venue.person("ben")
    mark = folder.root / "crashpoint"
    killed: Counter[str] = Counter()
    recapped: set[str] = set()
    over = False
    while sum(killed.values()) < KILLS_PER_VENUE + len(MIGRATION_KILLS):
        if finished(folder, chats):
            over = True
            break
        window = next_window(rng, folder, venue.network, killed, recapped)
        process = start_at(bots, folder, window, mark)
        wait = rng.uniform(0.3, 2.5) if window == "random" else WINDOW_PATIENCE
        if window.startswith("recap"):
            wait += ANSWER_TAIL  # the recap is composed that long after the closing
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and not process.exited() and not mark.exists():
            time.sleep(0.05)
        if process.exited():
            assert process.popen.returncode == 0, process.tail()
            over = True  # the chats are over
            break
        reached = mark.exists() and window != "random"
        process.kill()
        killed[window if reached else "random"] += 1
        summary.tally("crash_points")
        if window.startswith("migrate"):
            assert schema_version(folder.database) < int(window.split(":")[1])
        answer_posted_questions(venue, folder, chats, ana, ben)
    if not over:
        last = start_at(bots, folder, None, mark)
        deadline = time.monotonic() + 90
        while not last.exited() and not finished(folder, chats) and time.monotonic() < deadline:
            answer_posted_questions(venue, folder, chats, ana, ben)
            time.sleep(0.3)
        assert finished(folder, chats), last.tail()
        if last.exited():
            assert last.popen.returncode == 0, last.tail()
        else:
            last.terminate()  # everything done: stopped as a service manager would
    venue.settle()
    found = compare(venue, folder, chats, [ana, ben])
    summary.tally("duplicates", found.duplicates)
    summary.tally("losses", found.losses)
    assert found.problems == [], (found.problems, states(folder, venue.network))
    assert schema_version(folder.database) == schema.MIGRATIONS[-1].version
    return dict(killed)


def test_killed_anywhere_the_bot_posts_each_step_once_and_collects_each_answer_once(
    venue: Venue, tmp_path: Path, bots: BotRunner
) -> None:
    """SIGKILL at ~20 points per server (mid-migration, between intent and result, mid
    collection round, mid recap, random moments): nothing twice, nothing lost, in order."""
    began = time.monotonic()
    killed = Counter(
        crash_run(venue, tmp_path, bots, SEED + zlib.crc32(venue.name.encode()) % 1000)
    )
    for window, n in killed.items():  # in .reports/reliability.json, by window
        summary.tally(f"crash_points_at_{window.split(':')[0]}", n)
    summary.tally(f"crash_suite_seconds_{venue.name}", round(time.monotonic() - began))
    assert killed["migrate:6"] == killed["migrate:8"] == 1
    assert (
        killed["post:1"] + killed["post:2"] >= 1 and killed["collect:1"] + killed["collect:2"] >= 1
    )
    assert killed["recap:1"] >= 1
    assert sum(killed.values()) >= KILLS_PER_VENUE
