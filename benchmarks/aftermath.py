"""Benchmark: what a chat of N answers costs after it: recap, transcript, and storing its answers.

    .venv/bin/python benchmarks/aftermath.py [--answers 20000]

Builds a chat of N answers in a fresh SQLite store (benchmarks/transcript.py's
fixture, in a child process, not timed), then, in another fresh process, times
the recap (``facts_for`` + ``compose`` for Mastodon and Bluesky) and the
transcript (``write_archives``: Markdown, HTML, CSV and JSON), with that
process's peak RSS. Storage: N answers stored one post at a time through
``Conversation.save_post`` (what a collection round does for each new post) on
one core, as answers per second. Prints one JSON object (the harness reads it).
Targets (issue 14): recap and transcript at 20,000 answers within 1 s and 150 MB.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import textwrap
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

AT_6M = ", at: 6m"
SCRIPT = (
    textwrap.dedent(
        """\
    id: bench
    title: Benchmark chat
    hashtag: "#BenchChat"
    timezone: America/New_York
    recurrence: {every: week, weekday: wednesday, time: "20:00", starting: 2030-01-01}
    networks: [mastodon, bluesky]
    moderators: [{name: Host}]
    welcome: {text: "Welcome to {hashtag}!"}
    question_spacing: 6m
    questions:
    """
    )
    + "".join(
        f'  - {{text: "Question number {n} about blended learning?"{AT_6M if n == 1 else ""}}}\n'
        for n in range(1, 9)
    )
    + 'closing: {text: "Thanks!"}\n'
)


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def after_chat(db: Path, folder: Path) -> dict[str, float]:
    """Recap and transcript of the chat in ``db``: seconds each, and this process's peak RSS."""
    from transcript import CHAT, START

    from chatbot.archive import write_archives
    from chatbot.loader import load_script
    from chatbot.plan import plan_chat
    from chatbot.recap import compose, facts_for
    from chatbot.script import NetworkName
    from chatbot.store import Store
    from chatbot.text import Limits

    path = folder / "bench.yaml"
    path.write_text(SCRIPT, encoding="utf-8")
    loaded = load_script(path, None)
    plan = plan_chat(loaded.script, "bench", START, limits=Limits(), chat_id_override=CHAT)
    store = Store.open(f"sqlite:///{db}", now=datetime.now(UTC))
    assert plan.chat_id == CHAT, plan.chat_id
    before = _peak_mb()
    started = time.perf_counter()
    posts = 0
    for network in (NetworkName.MASTODON, NetworkName.BLUESKY):
        facts = facts_for(store, plan, loaded.script, network)
        posts += len(compose(facts, network, Limits()))
    recap = time.perf_counter() - started
    started = time.perf_counter()
    write_archives(store, CHAT, folder / "archives")
    transcript = time.perf_counter() - started
    store.close()
    return {
        "recap_s": recap,
        "transcript_s": transcript,
        "recap_posts": posts,
        "peak_rss_mb": _peak_mb(),
        "rss_before_mb": before,
    }


def storage(db: Path, answers: int, seed: int = 7) -> dict[str, float]:
    """Answers per second stored one post at a time (``save_post``), on one core."""
    from transcript import CHAT, START, WORDS

    from chatbot.script import NetworkName
    from chatbot.store import Store
    from chatbot.store.model import StoredPost

    rng = random.Random(seed)  # noqa: S311 - fixture text, not security
    store = Store.open(f"sqlite:///{db}", now=datetime.now(UTC))
    now = datetime.now(UTC)
    posts = []
    for i in range(answers):
        question = i % 8 + 1
        text = " ".join(rng.choices(WORDS, k=rng.randrange(8, 40)))
        uri = f"https://school.example/statuses/s{i}"
        post = StoredPost(
            chat_id=CHAT,
            network=NetworkName.MASTODON,
            uri=uri,
            post_id=f"s{i}",
            url=uri,
            author_id=str(i % max(1, answers // 10)),
            text=f"A{question}: {text} #BenchChat",
            created_at=START + timedelta(minutes=6 * question, seconds=i % 300),
            edited_at=None,
            reply_to=None,
            quote_of=None,
            likes=0,
            reposts=0,
            kind="answer",
            reason="",
            resolved=True,
            deleted=False,
        )
        posts.append((post, [(question, "", text)]))
    started = time.perf_counter()
    for post, parts in posts:
        store.conversation.save_post(post, parts, now=now)
    elapsed = time.perf_counter() - started
    store.close()
    return {"store_per_s": answers / elapsed, "store_s": elapsed}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--answers", type=int, default=20_000)
    parser.add_argument("--child", choices=["after", "storage"], help=argparse.SUPPRESS)
    parser.add_argument("--db", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child == "after":
        print(json.dumps(after_chat(args.db, args.db.parent)))  # noqa: T201
        return 0
    if args.child == "storage":
        print(json.dumps(storage(args.db, args.answers)))  # noqa: T201
        return 0
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE.parent), str(HERE)])}
    figures: dict[str, float] = {"answers": args.answers}
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.db"
        build = [sys.executable, str(HERE / "transcript.py"), "--build", str(db)]
        subprocess.run([*build, "--answers", str(args.answers)], check=True, env=env)
        for child, path in (("after", db), ("storage", Path(tmp) / "store.db")):
            out = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--child",
                    child,
                    "--db",
                    str(path),
                    "--answers",
                    str(args.answers),
                ],
                check=True,
                stdout=subprocess.PIPE,
                text=True,
                env=env,
            ).stdout
            figures.update(json.loads(out.strip().splitlines()[-1]))
    print(json.dumps(figures))  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main())
