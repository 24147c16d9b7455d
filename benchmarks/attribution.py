"""Benchmark: answer attribution of plain-text and Mastodon HTML posts, and hostile posts.

    .venv/bin/python benchmarks/attribution.py [--seconds 2]

Attributes every post of the labelled corpora (tests/data/attribution_corpus.yaml and
attribution_blind.yaml) over and over on one core, the plain-text posts with ``attribute``
and the HTML posts with ``attribute_html`` (and ``html_to_text`` alone), and prints posts
per second. Then attributes each hostile post once (tests/data/attribution_hostile.yaml, and
tests/data/hostile_answers.yaml read as text and as HTML) and prints the slowest.
The targets (issue 14): 20,000 text posts and 10,000 HTML posts a second.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from chatbot.collect.labels import PostContext, attribute, attribute_html
from chatbot.markup import html_to_text

DATA = Path(__file__).resolve().parent.parent / "tests" / "data"
CORPORA = ("attribution_corpus.yaml", "attribution_blind.yaml")


def _load(name: str) -> list[dict[str, Any]]:
    entries = yaml.safe_load((DATA / name).read_text(encoding="utf-8"))
    assert isinstance(entries, list)
    return entries


def _rate(
    posts: list[tuple[str, PostContext]], run: Callable[[str, PostContext], object], seconds: float
) -> float:
    """Posts per second of ``run`` over ``posts``, repeated for about ``seconds``."""
    for text, context in posts:  # warm-up: compiled patterns, caches
        run(text, context)
    done = 0
    start = time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        for text, context in posts:
            run(text, context)
        done += len(posts)
    return done / elapsed


def _hostile() -> list[tuple[str, str, str]]:
    """(name, form, post) for every hostile post."""
    posts = [
        (e["name"], e["form"], e.get("prefix", "") + e["unit"] * e["repeat"] + e.get("suffix", ""))
        for e in _load("attribution_hostile.yaml")
    ]
    for e in _load("hostile_answers.yaml"):
        text = e.get("prefix", "") + e["text"] * e.get("repeat", 1)
        posts += [(e["name"], "text", text), (e["name"], "html", text)]
    return posts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="time per figure")
    args = parser.parse_args()
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 1000))

    text_posts: list[tuple[str, PostContext]] = []
    html_posts: list[tuple[str, PostContext]] = []
    for name in CORPORA:
        for entry in _load(name):
            context = PostContext(**entry["context"])
            if "html" in entry:
                html_posts.append((entry["html"], context))
            else:
                text_posts.append((entry["text"], context))

    print(f"corpus: {len(text_posts)} text posts, {len(html_posts)} HTML posts")  # noqa: T201
    figures = [
        ("text posts (attribute)", text_posts, attribute),
        ("HTML posts (attribute_html)", html_posts, attribute_html),
        ("HTML posts (html_to_text only)", html_posts, lambda html, _c: html_to_text(html)),
    ]
    for label, posts, run in figures:
        rate = _rate(posts, run, args.seconds)
        print(f"{label:34} {rate:>10,.0f} posts/s")  # noqa: T201

    context = PostContext(question_count=6, current_question=2)
    timings: list[tuple[float, str]] = []
    for name, form, post in _hostile():
        run = attribute_html if form == "html" else attribute
        start = time.perf_counter()
        try:
            run(post, context)
            outcome = ""
        except RecursionError:
            outcome = " (RecursionError)"
        timings.append(
            (time.perf_counter() - start, f"{form}: {name} ({len(post):,} chars){outcome}")
        )
    timings.sort(reverse=True)
    print(f"hostile posts: {len(timings)}; slowest:")  # noqa: T201
    for seconds, what in timings[:5]:
        print(f"  {seconds * 1000:8.1f} ms  {what}")  # noqa: T201


if __name__ == "__main__":
    main()
