"""Benchmark: whole chats under load, on the local network and on the real test servers.

    .venv/bin/python benchmarks/chats.py local [--answers 20000]
    .venv/bin/python benchmarks/chats.py mastodon|bluesky [--answers 200]

``local``: the real ``chatbot run`` plays an hour-long chat (8 questions) 60 times
faster, in a minute, on the embedded local network (durations, collection interval and
answer tail divided by 60, as the integration tests accelerate chats on real accounts);
2,000 simulated participants' posts
(``--answers`` of them, "A3: ... #Tag", at random instants in each question's six
accelerated minutes) are written into the local network's table before the first
question, and become visible when their time comes.

``mastodon`` (mastodon-mock) and ``bluesky`` (the AT Protocol network of
@atproto/dev-env): a real-time chat of four questions 30 s apart, the bot with
its default collection interval, answers posted by one participant in ten (at
least 20), from up to 8 threads, as each question appears (half as replies to
the question, half top-level with the hashtag). The bot runs under
benchmarks/counting.py, which writes each HTTP request it sends to a file.

Figures: each post's lateness against its planned instant (p50, p99, max), the
answers stored and missed, the time from an answer's posting to the bot seeing
it (p50, p99), and, on the servers, the requests per 100 answers against the
floor (answers / page limit) and the peak request rate as a share of the limit.
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import re
import sqlite3
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PAGE = {"mastodon": 40, "bluesky": 100}
# Each network's request limit, per second: Mastodon 300 requests per 5 minutes per
# account; Bluesky's PDS 3,000 per 5 minutes per IP address.
LIMIT_PER_S = {"mastodon": 300 / 300, "bluesky": 3000 / 300}
WINDOW = 60.0  # seconds: the peak rate is the busiest minute's
WAIT = 240.0  # seconds: every wait on a bot is bounded
WORDS = [
    "stations",
    "rotation",
    "feedback",
    "groups",
    "data",
    "exit",
    "tickets",
    "choice",
    "routines",
    "practice",
]


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value).replace(tzinfo=UTC) if value else None


def _rows(db: Path, query: str) -> list[sqlite3.Row]:
    try:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)) as c:
            c.row_factory = sqlite3.Row
            return c.execute(query).fetchall()
    except sqlite3.OperationalError:
        return []  # not created yet


def quantiles(values: list[float]) -> dict[str, float]:
    """p50, p99 and max of ``values`` (nearest rank), or NaN when there are none."""
    if not values:
        return {"p50": float("nan"), "p99": float("nan"), "max": float("nan"), "n": 0}
    ordered = sorted(values)

    def rank(q: float) -> float:
        return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]

    return {"p50": rank(0.5), "p99": rank(0.99), "max": ordered[-1], "n": len(ordered)}


# The script's own steps; the rest are replies to people (a hello, a nudge, a like), planned
# the moment their post is seen.
STEPS = ("reminder", "welcome", "introductions", "format_note", "question", "closing", "recap")


def lateness(db: Path, kinds: tuple[str, ...] | None = None) -> dict[str, float]:
    """Seconds from each posted unit's planned instant to its being posted (``kinds``: only
    units of those kinds)."""
    rows = _rows(db, "SELECT kind, planned_at, posted_at FROM units WHERE state = 'posted'")
    late = []
    for row in rows:
        if kinds is not None and row["kind"] not in kinds:
            continue
        planned, posted = _time(row["planned_at"]), _time(row["posted_at"])
        assert planned is not None and posted is not None
        late.append(max(0.0, (posted - planned).total_seconds()))
    return quantiles(late)


def seen(db: Path, authors: set[str] | None = None) -> tuple[dict[str, float], int]:
    """Seconds from posting to the bot's seeing each post by ``authors`` (None: anyone's);
    and how many of those posts have an answer stored."""
    rows = _rows(
        db,
        "SELECT s.author_id, s.created_at, s.seen_at, "
        "(SELECT COUNT(*) FROM answers a WHERE a.chat_id = s.chat_id AND a.network = s.network "
        "AND a.uri = s.uri) AS answers FROM seen_posts s",
    )
    rows = [r for r in rows if authors is None or r["author_id"] in authors]
    delays = []
    for row in rows:
        created, at = _time(row["created_at"]), _time(row["seen_at"])
        assert created is not None and at is not None
        delays.append(max(0.0, (at - created).total_seconds()))
    return quantiles(delays), sum(1 for row in rows if row["answers"])


# --- the local network ----------------------------------------------------------------------


def local_script(start: datetime, speed: float) -> str:
    """An hour-long chat (8 questions 6 minutes apart, the closing at 55 minutes) with every
    duration divided by ``speed``, starting at ``start``: the tests' accelerated chats."""

    def d(minutes: float) -> str:
        return f"{minutes * 60 / speed:g}s"

    questions = "".join(
        f'  - {{text: "Question {n}: what works in your classroom?"'
        f"{', at: ' + d(5) if n == 1 else ''}}}\n"
        for n in range(1, 9)
    )
    return (
        f'id: bench\ntitle: Benchmark chat\nhashtag: "#BenchChat"\ntimezone: UTC\n'
        f"start: {start:%Y-%m-%d %H:%M:%S}\nnetworks: [local]\nmoderators: [{{name: Host}}]\n"
        f'welcome: {{text: "Welcome to {{hashtag}}!"}}\nquestion_spacing: {d(6)}\n'
        f"questions:\n{questions}"
        f'closing: {{at: {d(55)}, text: "Thanks for joining {{hashtag}}!"}}\n'
        "recap: {enabled: false}\n"
    )


def local_chat(answers: int, people: int = 2000, speed: float = 60.0) -> dict[str, Any]:
    """The hour-long chat, ``speed`` times shorter, on the local network with ``answers``
    answers. As the integration tests accelerate chats on real accounts: the bot runs in real
    time (with ``--speed`` the run ended with answers of the last seconds unread: 6 to 847
    of them in three runs), the
    script's durations, the collection interval and the answer tail are divided by
    ``speed``, and ``--exit-when-done`` ends the run once the answers are in."""
    from chatbot.store import Store
    from chatbot.store.schema import local_posts_table

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "schedules").mkdir()
        start = (datetime.now(UTC) + timedelta(seconds=6)).replace(microsecond=0)
        (root / "schedules" / "bench.yaml").write_text(local_script(start, speed), "utf-8")
        (root / "config.yaml").write_text(
            "data_dir: data\nschedules: schedules\nlog_format: json\n"
            "accounts: {local: {participants: false}}\n"
            f"collect_every: {15 / speed:g}s\nanswer_tail: 10s\n",
            encoding="utf-8",
        )
        db = root / "data" / "chatbot.db"
        command = [sys.executable, "-m", "chatbot.cli", "run", "--config", "config.yaml"]
        with _bot(command, root, dict(os.environ)) as bot:
            questions = _wait_rows(
                db, "SELECT number, planned_at FROM units WHERE kind = 'question'", 8, bot
            )
            rng = random.Random(14)  # noqa: S311 - simulated people, not security
            window = 6 * 60 / speed
            rows = []
            for i in range(answers):
                number, planned = questions[i % len(questions)]
                at = _time(planned)
                assert at is not None
                text = " ".join(rng.choices(WORDS, k=rng.randrange(6, 30)))
                rows.append(
                    {
                        "author": f"p{i % people}",
                        "author_name": f"Participant {i % people}",
                        "text": f"A{number}: {text} #BenchChat",
                        "created_at": at + timedelta(seconds=rng.uniform(0.1, window - 0.1)),
                        "network": "local",
                    }
                )
            rows.sort(key=lambda r: r["created_at"])
            store = Store.open(f"sqlite:///{db}", now=datetime.now(UTC))
            written = datetime.now(UTC)
            with store.engine.begin() as conn:
                conn.execute(local_posts_table.insert(), rows)
            store.close()
            first = min(_time(p) or written for _n, p in questions)
            assert written < first, "the answers were written after the first question"
            code = _until_written(bot, root)
        delays, answered = seen(db)
        return {
            "answers": answers,
            "exit": code,
            "lateness": lateness(db),
            "lateness_steps": lateness(db, STEPS),
            "seen": delays,
            "stored": answered,
            "missed": answers - answered,
            "seconds": time.monotonic() - bot.started,
        }


def _until_written(bot: Any, root: Path) -> int:
    """Wait until the chat's collection is over (its transcript is written), then stop the
    bot with SIGTERM; its exit code. (``--exit-when-done`` is not relied on: in this
    benchmark it once exited before the answer tail and once not at all.)"""
    deadline = time.monotonic() + WAIT
    while not (root / "data" / "archives" / "bench.html").exists():
        assert not bot.exited(), bot.tail()
        assert time.monotonic() < deadline, f"the collection never ended:\n{bot.tail()}"
        time.sleep(0.2)
    if not bot.exited():
        bot.terminate(timeout=30)
    return int(bot.popen.returncode)


def _wait_rows(db: Path, query: str, count: int, bot: Any) -> list[tuple[Any, Any]]:
    deadline = time.monotonic() + 60
    while len(rows := _rows(db, query)) < count:
        assert not bot.exited(), bot.tail()
        assert time.monotonic() < deadline, f"timed out waiting for {query}"
        time.sleep(0.05)
    return [tuple(r) for r in rows]


@contextlib.contextmanager
def _bot(command: list[str], cwd: Path, env: dict[str, str]) -> Iterator[Any]:
    from tests.integration.botrun import BotProcess

    env = {**env, "PYTHONPATH": os.pathsep.join([str(ROOT), str(HERE)])}
    process = BotProcess(command, cwd=cwd, env=env, log=cwd / "bot.log")
    try:
        yield process
    finally:
        if not process.exited():
            process.kill()


# --- the real servers -----------------------------------------------------------------------


def server_script(chat_id: str, tag: str, network: str, start: datetime) -> str:
    first = ", at: 10s"
    questions = "".join(
        f'  - {{text: "Question {n}: what works in your classroom?"{first if n == 1 else ""}}}\n'
        for n in range(1, 5)
    )
    return (
        f'id: {chat_id}\ntitle: Benchmark chat\nhashtag: "#{tag}"\ntimezone: UTC\n'
        f"start: {start:%Y-%m-%d %H:%M:%S}\nnetworks: [{network}]\n"
        'moderators: [{name: Host}]\nwelcome: {text: "Welcome to {hashtag}!"}\n'
        f"question_spacing: 30s\nquestions:\n{questions}"
        'closing: {at: 130s, text: "Thanks for joining {hashtag}!"}\nrecap: {enabled: false}\n'
    )


def server_chat(venue: Any, answers: int) -> dict[str, Any]:
    """A real-time chat on ``venue`` (tests/integration/venues.py) with ``answers`` answers,
    posted by one participant in ten (at least 20) from up to 8 threads."""
    network: str = venue.network
    people = max(20, answers // 10)
    threads = min(8, max(1, answers // 200))
    with tempfile.TemporaryDirectory() as tmp:
        folder = venue.bot(Path(tmp) / "bot")
        with folder.config.open("a", encoding="utf-8") as config:
            config.write("answer_tail: 20s\n")
        tag = venue.tag()
        persons = [venue.person("p") for _ in range(people)]
        start = (datetime.now(UTC) + timedelta(seconds=15)).replace(microsecond=0)
        folder.write_script("bench.yaml", server_script("bench", tag, network, start))
        requests_log = folder.root / "requests.log"
        command = [sys.executable, str(HERE / "counting.py"), str(requests_log)]
        command += ["run", "--config", "config.yaml"]
        env = {**os.environ, **folder.env}
        rng = random.Random(14)  # noqa: S311 - simulated people, not security
        posted = 0
        with _bot(command, folder.root, env) as bot, ThreadPoolExecutor(threads) as pool:
            per_question = [answers // 4 + (1 if n < answers % 4 else 0) for n in range(4)]
            for number in range(1, 5):
                unit, root = _posted_question(folder, network, number, bot)
                venue.settle()
                question = venue.ref(unit, root)
                count = per_question[number - 1]
                began, spread = time.monotonic(), 25.0 / max(1, count)
                posts = [
                    _Answer(
                        began + k * spread,
                        persons[(posted + k) % people],
                        f"A{number}: {' '.join(rng.choices(WORDS, k=rng.randrange(6, 30)))}",
                        {"tag": tag} if k % 2 else {"reply_to": question},
                    )
                    for k in range(count)
                ]
                list(pool.map(_Answer.post, posts))
                posted += count
            code = _until_written(bot, folder.root)
        db = folder.database
        delays, answered = seen(
            db, {getattr(p, "id", "") or getattr(p, "did", "") for p in persons}
        )
        reads, total, peak, endpoints = _requests(requests_log, network)
        floor = answers / PAGE[network]
        return {
            "answers": answers,
            "exit": code,
            "lateness": lateness(db),
            "lateness_steps": lateness(db, STEPS),
            "seen": delays,
            "stored": answered,
            "missed": answers - answered,
            "rounds": _rounds(db),
            "requests": total,
            "reads": reads,
            "endpoints": endpoints,
            "reads_per_100": 100 * reads / answers,
            "floor_per_100": 100 * floor / answers,
            "peak_per_s": peak,
            "limit_per_s": LIMIT_PER_S[network],
            "seconds": time.monotonic() - bot.started,
        }


@dataclass(frozen=True)
class _Answer:
    at: float  # time.monotonic() to post it at
    person: Any
    text: str
    where: dict[str, Any]  # the hashtag, or the post it replies to

    def post(self) -> None:
        time.sleep(max(0.0, self.at - time.monotonic()))
        self.person.post(self.text, **self.where)


def _posted_question(folder: Any, network: str, number: int, bot: Any) -> tuple[Any, Any]:
    deadline = time.monotonic() + WAIT
    while True:
        units = folder.units(network)
        unit = next((u for u in units if u["kind"] == "question" and u["number"] == number), None)
        if unit is not None and unit["state"] == "posted":
            return unit, next(u for u in units if u["seq"] == min(x["seq"] for x in units))
        assert not bot.exited(), bot.tail()
        assert time.monotonic() < deadline, f"Q{number} was never posted:\n{bot.tail()}"
        time.sleep(0.1)


def _rounds(db: Path) -> int:
    """The collection rounds the bot ran for the chat."""
    return sum(int(r[0]) for r in _rows(db, "SELECT rounds FROM collection_rounds"))


# Requests that write (posts, likes, sessions); every other request reads.
_WRITES = ("createRecord", "putRecord", "deleteRecord", "createSession", "refreshSession")


def _requests(path: Path, network: str) -> tuple[int, int, float, dict[str, int]]:
    """Reads, all requests, the busiest minute's requests per second, and the reads by
    endpoint (ids replaced by ``:id``)."""
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    times, by_endpoint = [], Counter[str]()
    for line in lines:
        at, method, _host, endpoint = line.split(" ", 3)
        times.append(float(at))
        write = method != "GET" if network == "mastodon" else endpoint.endswith(_WRITES)
        if not write:
            by_endpoint[re.sub(r"/\d+(?=/|$)", "/:id", endpoint)] += 1
    times.sort()
    peak, low = 0, 0
    for high, at in enumerate(times):
        while at - times[low] > WINDOW:
            low += 1
        peak = max(peak, high - low + 1)
    return by_endpoint.total(), len(times), peak / WINDOW, dict(by_endpoint.most_common(6))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("where", choices=["local", "mastodon", "bluesky"])
    parser.add_argument("--answers", type=int)
    args = parser.parse_args()
    sys.path[:0] = [str(ROOT), str(HERE)]
    if args.where == "local":
        figures = local_chat(args.answers or 20_000)
    else:
        from tests.integration.venues import BlueskyVenue, MastodonVenue
        from tests.servers import AtprotoNetwork, MastodonServer

        with contextlib.ExitStack() as closing:
            venue: Any
            if args.where == "mastodon":
                server = closing.enter_context(MastodonServer())
                venue = MastodonVenue("mastodon-mock", server, closing)
            else:
                network = closing.enter_context(AtprotoNetwork())
                venue = BlueskyVenue(network, closing)
            figures = server_chat(venue, args.answers or 200)
    print(json.dumps(figures))  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main())
