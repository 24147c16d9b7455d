"""Benchmark: checking hostile and huge chat scripts, with time and peak memory.

    .venv/bin/python benchmarks/scripts.py

Writes each case to a temporary folder and runs ``chatbot validate`` on it in a
fresh process, printing the whole process's wall time and peak memory (RSS),
and the time and traced peak of the check itself (``check_paths`` in this
process, imports excluded). The targets: a script at the size cap validates in
at most 2 s and 200 MB; a larger file, an alias bomb and 10,000 levels of
nesting are refused in under 1 s and 100 MB.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from chatbot.loader import check_paths
from chatbot.source import MAX_SCRIPT_BYTES

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
NOW_ARG = "2026-11-24T12:00"
HEAD = """title: "Benchmark: the largest script the bot takes"
hashtag: BenchChat
timezone: America/New_York
recurrence:
  every: week
  weekday: wednesday
  time: "19:00"
  starting: 2027-01-06
networks: [mastodon, bluesky]
moderators:
  - name: Host
    mastodon: "@host@mastodon.example"
    bluesky: host.bsky.social
reminders:
"""


def at_cap_dated() -> str:
    """Every text uses {date} and {next_chat}: each date shape of two years is measured."""
    out = [HEAD]
    for index in range(10):
        out.append(f'  - {{before: {index + 1}h, text: "In {index + 1}h, {{date}}: {{title}}"}}\n')
    out.append('welcome: {text: "Welcome to {hashtag} on {date}! Next: {next_chat}."}\n')
    out.append("questions:\n")
    body = "How did the station rotation go on {date}? Tell us what changed. " * 3
    for _ in range(50):
        out.append(f'  - text: "{body.strip()}"\n    bluesky: "Q on {{date}}: what changed?"\n')
    out.append('closing: {text: "Thanks! Next chat: {next_chat}."}\nmoderation:\n')
    out.append("  block_keywords:\n")
    return _pad("".join(out), '    - "spam phrase number {n}"\n')


def at_cap_long_texts() -> str:
    """Long texts full of links (each counts 23 on Mastodon), measured on every date."""
    out = [HEAD, '  - {before: 1h, text: "Soon: {title}"}\n']
    out.append('welcome: {text: "Welcome to {hashtag}!"}\nquestions:\n')
    link = " https://example.org/" + "a" * 180
    for _ in range(50):
        text = "On {date}: " + link * 20
        out.append(f'  - text: "{text}"\n    bluesky: "On {{date}}: a short question?"\n')
    out.append('closing: {text: "Thanks!"}\nmoderation:\n  block_keywords:\n')
    return _pad("".join(out), '    - "spam phrase number {n}"\n')


def _pad(text: str, line: str) -> str:
    count = 0
    while len(text.encode()) + len(line) + 8 < MAX_SCRIPT_BYTES:
        text += line.format(n=count)
        count += 1
    return text


def over_cap() -> str:
    return at_cap_dated() + "#" * 1024 + "\n"


def alias_bomb() -> str:
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"a{n}: &a{n} [{', '.join([f'*a{n - 1}'] * 9)}]" for n in range(1, 10)]
    return "\n".join(lines) + "\n"


def nesting(levels: int = 10_000) -> str:
    return "title: " + "[" * levels + "]" * levels + "\n"


def nesting_block(levels: int = 700) -> str:
    """As deep as block indentation gets within the size cap (each level one more space)."""
    return "".join(" " * depth + "-\n" for depth in range(levels))


CASES: list[tuple[str, Callable[[], str]]] = [
    ("script at the size cap, dates everywhere", at_cap_dated),
    ("script at the size cap, long texts of links", at_cap_long_texts),
    ("file over the size cap", over_cap),
    ("alias bomb (a billion laughs)", alias_bomb),
    ("10,000 levels of [ ] nesting", nesting),
    ("700 levels of block nesting (as deep as fits the cap)", nesting_block),
]


def in_process(path: Path) -> tuple[float, float, int, int]:
    """Seconds (untraced) and traced peak MB of ``check_paths`` alone; problems and scripts."""
    started = time.perf_counter()
    report = check_paths([path], NOW)
    elapsed = time.perf_counter() - started
    tracemalloc.start()
    check_paths([path], NOW)
    peak = tracemalloc.get_traced_memory()[1] / 1e6
    tracemalloc.stop()
    return elapsed, peak, len(report.problems), len(report.scripts)


# Run from a small launcher: a child forked from this (large) process would count
# some of its pages in its own peak RSS.
_LAUNCHER = """
import os, subprocess, sys, time
started = time.perf_counter()
child = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
_pid, status, usage = os.wait4(child.pid, 0)
print(time.perf_counter() - started, usage.ru_maxrss / 1024, os.waitstatus_to_exitcode(status))
"""


def as_process(path: Path) -> tuple[float, float, int]:
    """Wall seconds, peak RSS (MB) and exit code of ``chatbot validate`` in a new process."""
    command = [sys.executable, "-m", "chatbot.cli", "validate", str(path), "--now", NOW_ARG]
    out = subprocess.run(
        [sys.executable, "-c", _LAUNCHER, *command], capture_output=True, text=True, check=True
    ).stdout.split()
    return float(out[0]), float(out[1]), int(out[2])


def main() -> int:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import chatbot.cli"], check=True)
    print(f"process start (imports only): {time.perf_counter() - started:.2f} s")  # noqa: T201
    with tempfile.TemporaryDirectory() as folder:
        for name, make in CASES:
            path = Path(folder) / "chat.yaml"
            text = make()
            path.write_text(text, encoding="utf-8")
            check_s, check_mb, problems, scripts = in_process(path)
            wall, rss, code = as_process(path)
            print(  # noqa: T201 - a benchmark prints its figures
                f"{name}: {len(text.encode()):,} bytes; check {check_s:.3f} s, "
                f"{check_mb:.1f} MB traced; whole validate process {wall:.2f} s, peak RSS "
                f"{rss:.0f} MB, exit {code}; {problems} problem(s), {scripts} script(s)"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
