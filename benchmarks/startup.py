"""Benchmark: how long ``chatbot --help``, ``validate`` and ``preview`` take to start and finish.

    .venv/bin/python benchmarks/startup.py [--runs 10]

Runs each command in a fresh process (the installed ``chatbot`` script next to
this Python), in turn, ``--runs`` times after one warm-up round, and prints the
median wall time of each and its difference from a bare ``python -c pass``. The
targets (co-moderators run ``validate`` in editors and pre-commit hooks):
``--help`` at most 0.3 s more than ``python -c pass``, ``validate schedules/`` at
most 0.5 s more (``preview`` is held to the same). The machine's load average is
printed too: on a busy machine every figure is higher. Exits 1 when a target is
missed. tests/test_startup.py checks that these commands import nothing heavy.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def chatbot_command() -> list[str]:
    """The installed ``chatbot`` script next to this Python, else ``python -m chatbot.cli``."""
    script = Path(sys.executable).with_name("chatbot")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "chatbot.cli"]


# name, command, most seconds over `python -c pass` (None: the baseline itself)
CASES: list[tuple[str, list[str], float | None]] = [
    ("python -c pass", [sys.executable, "-c", "pass"], None),
    ("chatbot --help", [*chatbot_command(), "--help"], 0.3),
    ("chatbot validate schedules/", [*chatbot_command(), "validate", "schedules/"], 0.5),
    (
        "chatbot preview schedules/family-literacy-night.yaml",
        [*chatbot_command(), "preview", "schedules/family-literacy-night.yaml"],
        0.5,
    ),
]


def wall_time(command: list[str]) -> float:
    """Seconds from start to exit of ``command``, output discarded; it must succeed."""
    started = time.perf_counter()
    subprocess.run(
        command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True
    )
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="timed runs of each command")
    args = parser.parse_args()
    for _name, command, _target in CASES:  # warm-up: bytecode written, files cached
        wall_time(command)
    times: dict[str, list[float]] = {name: [] for name, _command, _target in CASES}
    # In turn rather than one command ten times: a burst of load hits every command alike.
    for _round in range(args.runs):
        for name, command, _target in CASES:
            times[name].append(wall_time(command))
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    out = [f"median of {args.runs} runs each; load average {load} on {os.cpu_count()} CPUs"]
    baseline = statistics.median(times[CASES[0][0]])
    missed = False
    for name, _command, target in CASES:
        median = statistics.median(times[name])
        line = f"{name:<55} {median:6.3f} s"
        if target is not None:
            over = median - baseline
            verdict = "ok" if over <= target else "MISSED"
            missed |= over > target
            line += f"  {over:+.3f} s vs python -c pass (target +{target:.1f} s: {verdict})"
        out.append(line)
    sys.stdout.write("\n".join(out) + "\n")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
