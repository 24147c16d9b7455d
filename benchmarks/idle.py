"""Benchmark: ``chatbot run`` at rest with 50 scheduled chats, none running.

    .venv/bin/python benchmarks/idle.py [--seconds 120] [--chats 50]

Writes 50 weekly chat scripts on the local network (their first chats a year
away) to a temporary folder and starts the real ``chatbot run``. Once it has
planned them (its first sync), samples its RSS (``/proc/<pid>/status``) every
second and its CPU time (``/proc/<pid>/stat``) at the start and the end of
``--seconds``. Prints one JSON object: the mean and peak RSS and the share of one
core used. Targets (issue 14): at most 70 MB RSS and 0.5% of a core.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


def script(number: int) -> str:
    return textwrap.dedent(
        f"""\
        id: idle{number:02d}
        title: "Idle chat {number}"
        hashtag: "#IdleChat{number}"
        timezone: America/New_York
        recurrence: {{every: week, weekday: thursday, time: "20:00", starting: 2027-12-02}}
        networks: [local]
        moderators: [{{name: Host}}]
        welcome: {{text: "Welcome to {{hashtag}}!"}}
        questions:
          - {{text: "What works in your classroom?", at: 5m}}
          - {{text: "What will you try next?"}}
        closing: {{text: "Thanks!"}}
        """
    )


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime


def planned_chats(db: Path) -> int:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            return int(conn.execute("SELECT COUNT(DISTINCT script_id) FROM chats").fetchone()[0])
    except sqlite3.OperationalError:
        return 0


def measure(seconds: float, chats: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "schedules").mkdir()
        for number in range(chats):
            (root / "schedules" / f"idle{number:02d}.yaml").write_text(script(number), "utf-8")
        (root / "config.yaml").write_text(
            "data_dir: data\nschedules: schedules\nlog_format: json\n"
            "accounts: {local: {participants: false}}\n",
            encoding="utf-8",
        )
        with (root / "bot.log").open("wb") as log:
            bot = subprocess.Popen(
                [sys.executable, "-m", "chatbot.cli", "run", "--config", "config.yaml"],
                cwd=root,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            started = time.monotonic()
            while planned_chats(root / "data" / "chatbot.db") < chats:
                assert bot.poll() is None, (root / "bot.log").read_text()
                assert time.monotonic() - started < 120, "the bot never planned its chats"
                time.sleep(0.2)
            time.sleep(2)  # the first sync's tail
            cpu0, wall0 = cpu_seconds(bot.pid), time.monotonic()
            samples = []
            while time.monotonic() - wall0 < seconds:
                samples.append(rss_mb(bot.pid))
                time.sleep(1)
            cpu1, wall1 = cpu_seconds(bot.pid), time.monotonic()
            assert bot.poll() is None, "the bot exited while idle"
        finally:
            bot.terminate()
            bot.wait(timeout=30)
    return {
        "chats": chats,
        "seconds": wall1 - wall0,
        "rss_mean_mb": sum(samples) / len(samples),
        "rss_max_mb": max(samples),
        "cpu_share": (cpu1 - cpu0) / (wall1 - wall0),
        "startup_s": wall0 - started,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--chats", type=int, default=50)
    args = parser.parse_args()
    print(json.dumps(measure(args.seconds, args.chats)))  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main())
