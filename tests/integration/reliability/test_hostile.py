"""Hostile replies, property-based: attribution bounded and total, every output escaped.

Participants' posts are drawn by hypothesis (derandomized, a bounded number of
examples) from every Unicode category, markup and mention fragments, zero-width and
bidi controls, terminal escapes and long runs built to make a regex backtrack, plus
the fixed 100,000-character corpus of tests/data/attribution_hostile.yaml. Each is
attributed as text and as HTML in every context (within a second, never raising; the
worst time goes to the summary), then stored as answers and shown in every output:
the transcript (HTML, Markdown, CSV, JSON), ``status``, ``answers``, ``stats`` and the
recap, which must never carry a mention of a third person.
"""

from __future__ import annotations

import csv
import io
import json
import re
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import yaml
from bs4 import BeautifulSoup
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from chatbot.archive import render
from chatbot.collect.labels import PostContext, attribute, attribute_html
from chatbot.config import LatePolicy
from chatbot.facets import detect_mentions
from chatbot.kinds import PostKind
from chatbot.public import clean_text, contain_bidi
from chatbot.recap import Highlight, QuestionFacts, RecapFacts, compose
from chatbot.script import NetworkName
from chatbot.stats import render_stats, series_stats
from chatbot.status import build_status, render_answers, render_status
from chatbot.text import Limits
from chatbot.transcript import build_transcript
from tests.chatdata import add_chat, add_post, open_store, person
from tests.integration.reliability import summary

DATA = Path(__file__).resolve().parents[2] / "data"
CHAT = "blchat-2030-01-02"
QUESTIONS = ("Q1: What worked? #BLchat", "Q2: What did not? #BLchat")
CONTEXTS = (
    PostContext(6, current_question=2),
    PostContext(6, reply_to_question=2),
    PostContext(6, reply_to_welcome=True),
)
SECONDS_PER_POST = 1.0  # a guard against quadratic time or backtracking, not a benchmark
FRAGMENTS = (
    "A1:", "a2)", "Q3 ", "A1/A2 ", "#BLchat", "RT @a: ", "> ", "\n", "\r\n", " ",
    "<script>window.__pwned=1</script>", "<img src=x onerror=alert(1)>", "<div>", "</div>",
    "\"><svg onload=alert(1)>", "'", "&lt;", "&amp;", "javascript:alert(1)",
    "[x](javascript:alert(1))", "https://example.org/a?b=<c>", "{{7*7}}", "=HYPERLINK(1)",
    "@victim", "@victim@evil.example", "@victim.bsky.social", " @victim.bsky.social ",
    "\u202e", "\u202b", "\u202c", "\u2066", "\u2067", "\u2069", "\u200b", "\u200d", "\ufeff",
    "\u2060", "\x1b[2J", "\x1b]8;;https://evil.example\x07", "\x00", "\x7f", "\x85", "\u2028",
    "(a+)+$", "a" * 40, "!" * 40, "\U0001f469\u200d\U0001f3eb", "\uff21\uff11\uff1a",
)  # fmt: skip
# Every Unicode category hypothesis can encode (all but lone surrogates).
CHARACTERS = st.characters(exclude_categories=("Cs",))


def _hostile_text(longest: int) -> st.SearchStrategy[str]:
    """Any characters; fragments glued together; or one fragment repeated up to ``longest``."""
    return st.one_of(
        st.text(CHARACTERS, max_size=200),
        st.lists(st.sampled_from(FRAGMENTS) | st.text(CHARACTERS, max_size=8), max_size=40).map(
            "".join
        ),
        st.tuples(st.sampled_from(FRAGMENTS), st.integers(longest // 100, longest)).map(
            lambda pair: (pair[0] * (pair[1] // max(1, len(pair[0])) + 1))[: pair[1]]
        ),
    )


HOSTILE_TEXT = _hostile_text(100_000)  # attribution: posts as long as any server allows
SHOWN_TEXT = _hostile_text(5_000)  # outputs: long enough to cut, wrap and split
NAMES = st.lists(st.sampled_from(FRAGMENTS) | st.text(CHARACTERS, max_size=10), max_size=6).map(
    "".join
)
SETTINGS = settings(
    max_examples=100,
    derandomize=True,
    deadline=None,  # the time per post is asserted below, not by hypothesis
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
# What a terminal acts on rather than shows: C0 and C1 controls other than a tab and a newline.
TERMINAL_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")
# A mention as Mastodon's server finds one in a post's text (app/models/account.rb).
MASTODON_MENTION = re.compile(r"(?<![=/\w])@(\w+(?:@[\w.-]+\w+)?)")


def _timed(text: str) -> float:
    """Attribute ``text`` as a post and as a status' HTML in every context; the worst ms."""
    worst = 0.0
    for run in (attribute, attribute_html):
        for context in CONTEXTS:
            start = time.perf_counter()
            verdict = run(text, context)
            worst = max(worst, time.perf_counter() - start)
            assert verdict.kind in set(PostKind)
    summary.tally("hostile_inputs")
    summary.worst("worst_attribution_ms", round(worst * 1000, 2))
    return worst


def test_the_100000_character_corpus_is_attributed_in_bounded_time() -> None:
    """Each post of the fixed corpus (about 100,000 characters) gets a verdict within a
    second, as text and as HTML, in every context."""
    entries = yaml.safe_load((DATA / "attribution_hostile.yaml").read_text(encoding="utf-8"))
    for e in entries:
        post = e.get("prefix", "") + e["unit"] * e["repeat"] + e.get("suffix", "")
        assert _timed(post) < SECONDS_PER_POST, e["name"]
    deep = "<div>" * 20_000 + "A1: x" + "</div>" * 20_000
    assert _timed(deep) < SECONDS_PER_POST


@settings(SETTINGS, max_examples=300)
@given(HOSTILE_TEXT)
def test_attribution_of_any_post_is_bounded_and_never_raises(text: str) -> None:
    """Whatever a participant posts, attribution answers within a second."""
    assert _timed(text) < SECONDS_PER_POST


@st.composite
def _chat(draw: st.DrawFn) -> list[tuple[str, str]]:
    return draw(st.lists(st.tuples(NAMES, SHOWN_TEXT), min_size=1, max_size=4))


def _outputs(posts: list[tuple[str, str]]) -> Iterator[tuple[str, str]]:
    """Every output of a chat whose answers are ``posts`` (display name, text)."""
    with tempfile.TemporaryDirectory() as folder:
        store = open_store(Path(folder))
        try:
            add_chat(store, CHAT, questions=QUESTIONS)
            for i, (name, text) in enumerate(posts):
                author = person(f"t{i}@school.example", name)
                add_post(store, CHAT, author, str(i), text, answers=[(i % 2 + 1, "", text)])
            transcript = build_transcript(store, CHAT)
            for fmt in ("html", "md", "csv", "json"):
                yield fmt, render(transcript, fmt)
            now = datetime.now(UTC)
            yield "status", render_status(build_status(store, now, LatePolicy()))
            answers = store.reports.answers(CHAT)
            yield "answers", "\n".join(render_answers(answers, "America/New_York"))
            yield "stats", render_stats(series_stats(store, "blchat"))
        finally:
            store.close()


def _check_html(page: str) -> None:
    soup = BeautifulSoup(page, "html.parser")
    for tag in soup.find_all(True):
        assert tag.name not in {"script", "iframe", "img", "svg", "object", "embed", "base"} or (
            tag.name == "script" and tag.get("type") == "application/ld+json"
        ), tag.name
        for attribute_name, value in tag.attrs.items():
            assert not attribute_name.lower().startswith("on"), (tag.name, attribute_name)
            if attribute_name in {"href", "src"}:
                assert str(value).startswith(("https://", "http://", "#")), value


def _check_markdown(text: str) -> None:
    soup = BeautifulSoup(MarkdownIt("commonmark").render(text), "html.parser")
    assert {t.name for t in soup.find_all(True)} <= {"h1", "h2", "p", "ul", "li", "strong", "em",
                                                      "a", "br"}  # fmt: skip
    assert all(a["href"].startswith(("https://", "http://")) for a in soup.find_all("a"))


def _check_terminal(text: str, what: str) -> None:
    assert TERMINAL_CONTROL.search(text) is None, f"{what}: a control character reaches a terminal"
    for line in text.splitlines():
        assert contain_bidi(line) == line, f"{what}: a bidi control left open: {line!r}"


@settings(SETTINGS, max_examples=40)
@given(_chat())
def test_every_output_escapes_what_participants_wrote(posts: list[tuple[str, str]]) -> None:
    """Transcript (HTML, Markdown, CSV, JSON), status, answers and stats show hostile names
    and texts as text: no element, no handler, no link but http(s), no formula, nothing a
    terminal acts on, no bidi control left open."""
    summary.tally("hostile_inputs", len(posts))
    for fmt, text in _outputs(posts):
        if fmt == "html":
            _check_html(text)
        elif fmt == "md":
            _check_markdown(text)
        elif fmt == "csv":
            for row in csv.reader(io.StringIO(text)):
                for cell in row:
                    assert not cell.startswith(("=", "+", "@", "\t", "\r")), cell[:40]
        elif fmt == "json":
            answers = [a for q in json.loads(text)["questions"] for a in q["answers"]]
            # Every word kept; only controls no format can show are dropped (clean_text).
            assert sorted(a["text"] for a in answers) == sorted(clean_text(t) for _n, t in posts)
        else:
            _check_terminal(text, fmt)


@SETTINGS
@given(st.lists(st.tuples(NAMES, SHOWN_TEXT), min_size=1, max_size=4))
def test_the_recap_never_mentions_a_participant_or_a_third_person(
    highlights: list[tuple[str, str]],
) -> None:
    """Quoted answers and names in the recap carry no @-mention Mastodon would notify, no
    Bluesky mention facet, no control character and no bidi control left open."""
    summary.tally("hostile_inputs", len(highlights))
    facts = RecapFacts(
        title="Station rotation",
        hashtag="BLchat",
        participants=len(highlights),
        answers=len(highlights),
        first_timers=0,
        credits="",
        questions=(
            QuestionFacts(
                1,
                "What worked?",
                len(highlights),
                tuple(
                    Highlight(name, text, f"https://school.example/@t{i}/1", 0)
                    for i, (name, text) in enumerate(highlights)
                ),
            ),
        ),
    )
    for network in (NetworkName.MASTODON, NetworkName.BLUESKY):
        for post in compose(facts, network, Limits()):
            assert MASTODON_MENTION.search(post) is None, post
            assert detect_mentions(post) == [], post
            assert TERMINAL_CONTROL.search(post.replace("\t", " ")) is None, post
            assert all(contain_bidi(line) == line for line in post.splitlines()), post
