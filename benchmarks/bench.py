"""The benchmark harness: every figure of issue 14 in one run, next to its target.

    scripts/bench            (or .venv/bin/python benchmarks/bench.py [--quick])

Runs each benchmark in a fresh process (start-up, idle, throughput, after the
chat at three sizes, the chats on the local network, mastodon-mock and the AT
Protocol network; the servers are started by tests/servers), prints one table
and writes it to benchmarks/RESULTS.md with the machine, the date and the commit.
Each figure sits next to its target with the ratio figure/target and a mark:
``ok`` when the target is met, ``MISS`` when not. Benchmarks print figures; no
test times them. ``--quick`` runs smaller sizes (a try-out; its table is not
written to RESULTS.md unless ``--write`` is given).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(ROOT), str(HERE)]
STREAMING_HOOK = HERE / "stream_latency.py"


@dataclass
class Row:
    section: str
    figure: str
    value: float | None  # None: not measured
    unit: str
    target: float | None = None  # None: no target, shown for growth and context
    at_most: bool = True  # the target is a ceiling (else a floor)
    note: str = ""

    def ratio(self) -> str:
        if self.value is None or self.target is None or math.isnan(self.value):
            return ""
        if self.target == 0:
            return "—"
        return f"{self.value / self.target:.2f}"

    def mark(self) -> str:
        if self.target is None:
            return ""
        if self.value is None or math.isnan(self.value):
            return "not measured"
        met = self.value <= self.target if self.at_most else self.value >= self.target
        return "ok" if met else "MISS"


def _number(value: float | None, unit: str) -> str:
    if value is None or math.isnan(value):
        return "—"
    if unit in {"answers/s", "answers"} or abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3f}" if abs(value) < 1 else f"{value:.2f}"


def run_json(*args: str, timeout: float = 600) -> dict[str, Any]:
    """Run ``benchmarks/<args>`` in a fresh Python; its last output line is a JSON object."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(HERE)])}
    began = time.monotonic()
    done = subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
        timeout=timeout,
        check=True,
    )
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    _say(f"   {' '.join(args)}: {time.monotonic() - began:.0f} s")
    return figures


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)  # noqa: T201 - progress, apart from the table


# --- the sections --------------------------------------------------------------------------


def startup(runs: int) -> list[Row]:
    from startup import CASES, wall_time

    for _name, command, _target in CASES:
        wall_time(command)  # warm-up: bytecode written, files cached
    times: dict[str, list[float]] = {name: [] for name, _c, _t in CASES}
    for _round in range(runs):  # in turn: a burst of load hits every command alike
        for name, command, _target in CASES:
            times[name].append(wall_time(command))
    base = statistics.median(times[CASES[0][0]])
    rows = [Row("start-up", f"`python -c pass`, median of {runs}", base, "s")]
    for name, _command, target in CASES[1:]:
        median = statistics.median(times[name])
        rows.append(
            Row(
                "start-up",
                f"`{name}` over `python -c pass`",
                median - base,
                "s",
                target,
                note=f"median {median:.3f} s",
            )
        )
    return rows


def idle(seconds: float) -> list[Row]:
    f = run_json("benchmarks/idle.py", "--seconds", f"{seconds:g}")
    note = f"{f['chats']} chats, {f['seconds']:.0f} s sampled"
    return [
        Row("idle", "`chatbot run` RSS, peak", f["rss_max_mb"], "MB", 70, note=note),
        Row("idle", "`chatbot run` RSS, mean", f["rss_mean_mb"], "MB"),
        Row("idle", "`chatbot run` CPU share of one core", 100 * f["cpu_share"], "%", 0.5),
    ]


def throughput(seconds: float) -> list[Row]:
    from attribution import CORPORA, _load, _rate

    from chatbot.collect.labels import PostContext, attribute, attribute_html

    text, html = [], []
    for name in CORPORA:
        for entry in _load(name):
            context = PostContext(**entry["context"])
            (html if "html" in entry else text).append(
                (entry.get("html", entry.get("text")), context)
            )
    return [
        Row("throughput", "attribution, text", _rate(text, attribute, seconds), "answers/s",
            20_000, at_most=False, note=f"{len(text)} labelled posts, one core"),
        Row("throughput", "attribution, Mastodon HTML", _rate(html, attribute_html, seconds),
            "answers/s", 10_000, at_most=False, note=f"{len(html)} labelled posts, one core"),
    ]  # fmt: skip


def after(sizes: list[int]) -> tuple[list[Row], list[dict[str, Any]]]:
    results = [run_json("benchmarks/aftermath.py", "--answers", str(n)) for n in sizes]
    big = results[-1]
    n = f"{big['answers']:,}"
    rows = [
        Row("after the chat", f"recap at {n} answers (Mastodon + Bluesky)", big["recap_s"], "s", 1),
        Row("after the chat", f"transcript at {n} answers (md, HTML, csv, json)",
            big["transcript_s"], "s", 1),
        Row("after the chat", f"peak RSS of the process doing both, {n} answers",
            big["peak_rss_mb"], "MB", 150, note=f"{big['rss_before_mb']:.0f} MB before"),
        Row("throughput", f"storage, one post at a time ({n} answers)", big["store_per_s"],
            "answers/s", note="Conversation.save_post, SQLite, one core"),
    ]  # fmt: skip
    return rows, results


def _chat_rows(
    where: str, f: dict[str, Any], target_seen: float | None, how: str = "polling"
) -> list[Row]:
    n = f"{f['answers']:,} answers"
    late = f["lateness"]
    rows = [
        Row("punctuality", f"{where}: lateness p50 ({n})", late["p50"], "s"),
        Row("punctuality", f"{where}: lateness p99 ({n})", late["p99"], "s", 1,
            note=f"{late['n']} posts"),
        Row("punctuality", f"{where}: lateness max ({n})", late["max"], "s"),
        Row("punctuality", f"{where}: lateness p99, the script's steps only",
            f["lateness_steps"]["p99"], "s", note=f"{f['lateness_steps']['n']} posts; the rest "
            "are replies to people (hellos, nudges)"),
        Row("collection", f"{where}: answers missed ({n})", f["missed"], "answers", 0,
            note=f"{f['stored']:,} stored"),
        Row("collection", f"{where}: answer seen, p50 ({how})", f["seen"]["p50"], "s"),
        Row("collection", f"{where}: answer seen, p99 ({how})", f["seen"]["p99"], "s",
            target_seen),
    ]  # fmt: skip
    if "reads_per_100" in f:
        target = 1.25 * f["floor_per_100"]
        rows += [
            Row("collection", f"{where}: read requests per 100 answers", f["reads_per_100"],
                "requests", target, note=f"floor {f['floor_per_100']:.2f}; {f['reads']} reads "
                f"in {f['rounds']} rounds, {f['requests']} requests in all; reads: "
                + ", ".join(f"{e} {n}" for e, n in f["endpoints"].items())),
            Row("collection", f"{where}: peak request rate, share of the limit",
                100 * f["peak_per_s"] / f["limit_per_s"], "%", 50,
                note=f"busiest minute {60 * f['peak_per_s']:.0f} requests; "
                f"limit {f['limit_per_s'] * 300:.0f} per 5 min"),
        ]  # fmt: skip
    return rows


def chats(
    local_sizes: list[int], server_answers: int, mastodon_growth: list[int]
) -> tuple[list[Row], dict[str, dict[int, dict[str, Any]]]]:
    """The local chat at each size (the table's rows: the largest), then mastodon-mock and
    the AT Protocol network (and mastodon-mock at each of ``mastodon_growth``'s sizes, for
    the growth table only); also every chat's figures by place and size."""
    runs: dict[str, dict[int, dict[str, Any]]] = {}
    for answers in local_sizes:
        runs.setdefault("local", {})[answers] = run_json(
            "benchmarks/chats.py", "local", "--answers", str(answers)
        )
    rows = _chat_rows("local", runs["local"][local_sizes[-1]], None)
    # mastodon-mock serves Mastodon's streams, and the bot uses them (the default): its
    # answers are seen by streaming; the AT Protocol network is polled.
    for where, name, how, target in (
        ("mastodon", "mastodon-mock", "streaming", 2),
        ("bluesky", "AT Protocol", "polling", 10),
    ):
        figures = run_json("benchmarks/chats.py", where, "--answers", str(server_answers))
        runs[name] = {server_answers: figures}
        rows += _chat_rows(name, figures, target, how)
    for answers in mastodon_growth:
        figures = run_json("benchmarks/chats.py", "mastodon", "--answers", str(answers))
        runs["mastodon-mock"][answers] = figures
    rows += streaming()
    return rows, runs


def streaming() -> list[Row]:
    """benchmarks/stream_latency.py: one participant's answers on mastodon-mock, seen by a bot
    that streams and by one that only polls (its last output line: a JSON object)."""
    where = "mastodon-mock, one participant"
    try:
        f = run_json(str(STREAMING_HOOK.relative_to(ROOT)), "--json")
    except (subprocess.SubprocessError, ValueError, IndexError, KeyError) as error:
        note = f"benchmarks/stream_latency.py failed or printed no figures: {error}"
        return [Row("collection", f"{where}: answer seen, p99 (streaming)", None, "s", 2,
                    note=note[:200])]  # fmt: skip
    rows = []
    for mode, target in (("streaming", 2), ("polling", 10)):
        figures = f[mode]
        note = f"{figures['answers']} answers, {figures['requests']} requests by the bot"
        rows += [
            Row("collection", f"{where}: answer seen, p50 ({mode})", figures["p50"], "s"),
            Row("collection", f"{where}: answer seen, p99 ({mode})", figures["p99"], "s",
                target, note=note),
        ]  # fmt: skip
    return rows


def growth(results: list[dict[str, Any]], runs: dict[str, dict[int, dict[str, Any]]]) -> list[str]:
    sizes = [r["answers"] for r in results]
    head = "| figure | " + " | ".join(f"{n:,} answers" for n in sizes) + " |"
    lines = [head, "|---|" + "---:|" * len(sizes)]

    def line(label: str, unit: str, cells: list[float | None]) -> None:
        text = [f"{_number(c, unit)} {unit}" if c is not None else "not measured" for c in cells]
        lines.append(f"| {label} | {' | '.join(text)} |")

    for key, label, unit in (
        ("recap_s", "recap (Mastodon + Bluesky)", "s"),
        ("transcript_s", "transcript (md, HTML, csv, json)", "s"),
        ("peak_rss_mb", "peak RSS, recap and transcript", "MB"),
        ("store_s", "storing every answer, one post at a time", "s"),
        ("store_per_s", "storage rate", "answers/s"),
    ):
        line(label, unit, [r[key] for r in results])
    for place, chats in runs.items():
        got = [chats.get(n) for n in sizes]
        line(f"{place}: lateness p99", "s", [g["lateness"]["p99"] if g else None for g in got])
        line(f"{place}: answer seen p99", "s", [g["seen"]["p99"] if g else None for g in got])
        line(f"{place}: answers missed", "answers", [g["missed"] if g else None for g in got])
        if any(g and "reads_per_100" in g for g in got):
            line(f"{place}: read requests per 100 answers", "requests",
                 [g["reads_per_100"] if g else None for g in got])  # fmt: skip
    return lines


# --- the table ------------------------------------------------------------------------------


def machine() -> dict[str, str]:
    cpu = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")), platform.processor() or "unknown",
    )  # fmt: skip
    mem = next(
        int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal:")
    )  # fmt: skip
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
        check=False,
    ).stdout.strip() or "unknown"  # fmt: skip
    # The table a previous run wrote is no change to the code measured.
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no", "--", ".",
         ":(exclude)benchmarks/RESULTS.md"], cwd=ROOT, capture_output=True, text=True,
        check=False,
    ).stdout.strip()  # fmt: skip
    return {
        "cpu": f"{cpu}, {os.cpu_count()} cores",
        "ram": f"{mem / 2**20:.1f} GiB",
        "python": platform.python_version(),
        "commit": commit + (" (with uncommitted changes)" if dirty else ""),
    }


def table(rows: list[Row]) -> list[str]:
    lines = ["| section | figure | measured | target | ratio | mark | note |",
             "|---|---|---:|---:|---:|---|---|"]  # fmt: skip
    for r in rows:
        target = (
            "" if r.target is None else f"{'≤' if r.at_most else '≥'} {_number(r.target, r.unit)}"
        )
        value = "—" if r.value is None else f"{_number(r.value, r.unit)} {r.unit}"
        target += f" {r.unit}" if r.target is not None else ""
        lines.append(
            f"| {r.section} | {r.figure} | {value} | {target} | {r.ratio()} | {r.mark()} "
            f"| {r.note} |"
        )
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, shorter idle")
    parser.add_argument(
        "--no-local-growth",
        dest="local_growth",
        action="store_false",
        help="the local chat at the largest size only (a minute less)",
    )
    parser.add_argument(
        "--server-growth",
        action="store_true",
        help="also a mastodon-mock chat of 2,000 answers, for the growth of requests "
        "(three minutes more: beyond the 15-minute budget)",
    )
    parser.add_argument("--write", action="store_true", help="with --quick: write RESULTS.md")
    args = parser.parse_args()
    began = time.monotonic()
    started = datetime.now(UTC)
    load_before = os.getloadavg()
    sizes = [200, 2_000] if args.quick else [200, 2_000, 20_000]
    rows: list[Row] = []
    _say("==> throughput (attribution)")
    rows += throughput(0.5 if args.quick else 2.0)
    _say("==> start-up")
    rows += startup(3 if args.quick else 10)
    _say("==> after the chat, and storage")
    after_rows, results = after(sizes)
    rows += after_rows
    _say("==> idle")
    rows += idle(20 if args.quick else 120)
    _say("==> chats: local, mastodon-mock, AT Protocol")
    chat_rows, runs = chats(
        sizes[1:] if args.local_growth else sizes[-1:],
        40 if args.quick else 200,
        sizes[1:2] if args.server_growth else [],
    )
    rows += chat_rows
    order = ["start-up", "idle", "punctuality", "collection", "throughput", "after the chat"]
    rows.sort(key=lambda r: order.index(r.section))
    info = machine()
    load = ", ".join(
        f"{a:.2f} → {b:.2f}" for a, b in zip(load_before, os.getloadavg(), strict=True)
    )
    out = [
        "# Benchmark results",
        "",
        f"Written by `scripts/bench` on {started:%Y-%m-%d %H:%M} UTC in "
        f"{(time.monotonic() - began) / 60:.1f} minutes, at commit {info['commit']}.",
        f"Machine: {info['cpu']}, {info['ram']} RAM, Python {info['python']}; "
        f"load average (1, 5, 15 min) at the start → the end: {load}.",
        "",
        "The machine was shared with other work during this run: every time and rate here "
        "is noisy (higher times, lower rates than on an idle machine). Targets are issue 14's; "
        "ratio = measured / target; `ok` = met, `MISS` = not met.",
        "",
        *table(rows),
        "",
        "## Growth with the chat's size",
        "",
        *growth(results, runs),
        "",
        "How each figure is measured: the docstrings of benchmarks/bench.py, startup.py, "
        "idle.py, chats.py, aftermath.py and attribution.py.",
    ]
    text = "\n".join(out) + "\n"
    sys.stdout.write(text)
    if not args.quick or args.write:
        (HERE / "RESULTS.md").write_text(text, encoding="utf-8")
        _say("==> written to benchmarks/RESULTS.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
