"""Benchmark: the transcript of a 20,000-answer chat in every format, with time and peak memory.

    .venv/bin/python benchmarks/transcript.py [--answers 20000]

Builds a fresh SQLite store in a temporary folder (bulk inserts, not timed), then
times ``write_archives`` (read the store, render Markdown, HTML, CSV and JSON, write
the four files) and prints the figures. The roadmap's target: within 1 s and 150 MB.
"""

from __future__ import annotations

import argparse
import random
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path

from chatbot.archive import write_archives
from chatbot.posts import PostRef
from chatbot.script import NetworkName
from chatbot.store import PlannedUnit, Store
from chatbot.store.schema import answers_table, participants_table, seen_posts_table

CHAT = "bench-2030-01-03"
START = datetime(2030, 1, 3, 1, 0, tzinfo=UTC)
QUESTIONS = 8
WORDS = [
    *("students", "stations", "rotation", "feedback", "groups", "data", "exit", "tickets"),
    *("choice", "routines", "teacher", "table", "practice", "coaching", "reading", "math"),
    *("science", "project", "peer", "tutors"),
]


def build(store: Store, answers: int, seed: int = 1) -> None:
    """A chat with ``answers`` answers from a tenth as many people (5% opted out)."""
    rng = random.Random(seed)  # noqa: S311 - fixture text, not security
    store.chats.upsert(
        chat_id=CHAT,
        script_id="bench",
        title="Benchmark chat",
        hashtag="BenchChat",
        timezone="America/New_York",
        start_at=START,
        end_at=START + timedelta(hours=1),
        now=datetime.now(UTC),
    )
    net = NetworkName.MASTODON
    store.units.plan(
        CHAT,
        [
            PlannedUnit(
                f"q{n}",
                net,
                n,
                "question",
                n,
                START + timedelta(minutes=6 * n),
                f"k{n}",
                f"Q{n}: question number {n} about blended learning? #BenchChat",
            )
            for n in range(1, QUESTIONS + 1)
        ],
        now=datetime.now(UTC),
    )
    for n in range(1, QUESTIONS + 1):
        store.units.mark_intent(CHAT, f"q{n}", net, now=datetime.now(UTC))
        ref = PostRef(net, f"bot{n}", f"https://bench.example/@bot/{n}")
        store.units.mark_posted(CHAT, f"q{n}", ref, now=START + timedelta(minutes=6 * n))
    people = max(1, answers // 10)
    now = datetime.now(UTC)
    participants = [
        {
            "network": net.value,
            "account_id": str(i),
            "handle": f"teacher{i}@school{i % 40}.example",
            "display_name": f"Teacher {i}",
            "url": f"https://school{i % 40}.example/@teacher{i}",
            "bot": False,
            "opt_out": "#nobot in bio" if i % 20 == 0 else "",
            "updated_at": now,
        }
        for i in range(people)
    ]
    posts, rows = [], []
    for i in range(answers):
        author = str(i % people)
        question = i % QUESTIONS + 1
        created = START + timedelta(minutes=6 * question, seconds=rng.randrange(300))
        uri = f"https://school.example/statuses/{i}"
        text = " ".join(rng.choices(WORDS, k=rng.randrange(8, 40)))
        posts.append(
            {
                "chat_id": CHAT,
                "network": net.value,
                "uri": uri,
                "post_id": str(i),
                "url": uri,
                "author_id": author,
                "text": f"A{question}: {text} #BenchChat",
                "created_at": created,
                "kind": "answer",
                "seen_at": now,
            }
        )
        rows.append(
            {
                "chat_id": CHAT,
                "network": net.value,
                "uri": uri,
                "question": question,
                "part": "",
                "text": text,
                "author_id": author,
                "created_at": created,
            }
        )
    with store.engine.begin() as conn:
        conn.execute(participants_table.insert(), participants)
        conn.execute(seen_posts_table.insert(), posts)
        conn.execute(answers_table.insert(), rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--answers", type=int, default=20_000)
    parser.add_argument("--build", type=Path, help=argparse.SUPPRESS)  # the child's job
    args = parser.parse_args()
    if args.build:
        build(Store.open(f"sqlite:///{args.build}", now=datetime.now(UTC)), args.answers)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.db"
        # The fixture is built in a child process, so that its memory is not counted here.
        subprocess.run(
            [sys.executable, __file__, "--build", str(db), "--answers", str(args.answers)],
            check=True,
        )
        store = Store.open(f"sqlite:///{db}", now=datetime.now(UTC))
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        started = time.perf_counter()
        paths = write_archives(store, CHAT, Path(tmp) / "archives")
        elapsed = time.perf_counter() - started
        rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        # A second run under tracemalloc for the peak of Python allocations (tracing
        # slows the run down, so the time above is measured without it).
        tracemalloc.start()
        write_archives(store, CHAT, Path(tmp) / "archives")
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        sizes = ", ".join(f"{p.suffix[1:]} {p.stat().st_size / 1e6:.1f} MB" for p in paths)
        store.close()
    sys.stdout.write(
        f"transcript of {args.answers:,} answers in 4 formats ({sizes})\n"
        f"time: {elapsed:.3f} s (read the store, render md/html/csv/json, write the files)\n"
        f"peak Python allocations (tracemalloc): {peak / 2**20:.1f} MiB\n"
        f"process peak RSS: {rss_after / 1024:.1f} MiB, "
        f"of which {rss_before / 1024:.1f} MiB before the run (interpreter and imports)\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
