"""Hostile posts (tests/data/attribution_hostile.yaml and hostile_answers.yaml): attribution
stays linear in the length of a post and never fails, as text or as HTML."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml

from chatbot.collect.labels import PostContext, attribute, attribute_html
from chatbot.kinds import PostKind

DATA = Path(__file__).parent / "data"
CONTEXTS = [
    PostContext(6, current_question=2),
    PostContext(6, reply_to_question=2),
    PostContext(6, reply_to_welcome=True),
]
# A guard against quadratic time or catastrophic backtracking, not a benchmark
# (benchmarks/attribution.py prints the figures): 100,000 characters take milliseconds.
SECONDS_PER_POST = 1.0


def _hostile() -> list[tuple[str, str, str]]:
    entries = yaml.safe_load((DATA / "attribution_hostile.yaml").read_text(encoding="utf-8"))
    posts = [
        (e["name"], e["form"], e.get("prefix", "") + e["unit"] * e["repeat"] + e.get("suffix", ""))
        for e in entries
    ]
    answers = yaml.safe_load((DATA / "hostile_answers.yaml").read_text(encoding="utf-8"))
    for e in answers:
        text = e.get("prefix", "") + e["text"] * e.get("repeat", 1)
        posts += [(e["name"], "text", text), (e["name"], "html", text)]
    return posts


@pytest.mark.parametrize(("name", "form", "post"), _hostile(), ids=lambda v: str(v)[:40])
def test_hostile_post_is_attributed_quickly(name: str, form: str, post: str) -> None:
    """Each hostile post, in every context, gets a verdict within a second."""
    run = attribute_html if form == "html" else attribute
    for context in CONTEXTS:
        start = time.perf_counter()
        verdict = run(post, context)
        assert time.perf_counter() - start < SECONDS_PER_POST, name
        assert verdict.kind in set(PostKind)


def test_long_posts_keep_their_labels() -> None:
    """A label after 100,000 characters of spaces, or deep in nested HTML, is still read."""
    assert [a.question for a in attribute(" " * 100_000 + "A1: x", CONTEXTS[0]).answers] == [1]
    html = "<div>" * 20_000 + "A1: x"
    assert [a.question for a in attribute_html(html, CONTEXTS[0]).answers] == [1]
