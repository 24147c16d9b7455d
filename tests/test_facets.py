"""Our Bluesky facet detection equals atproto's, so posting and validating need no atproto.

:mod:`chatbot.facets` is a port of the AT Protocol's rich-text detection; these
tests compare it with atproto's own (``atproto_client.utils.detect_facets`` and
``detect_mentions``) on every text of the repository and on generated texts of
hashtags, links and mentions in mixed scripts. Any difference fails.
"""

from __future__ import annotations

import re
import sys

import pytest
from atproto_client.utils import detect_facets as atproto_detect_facets
from atproto_client.utils import detect_mentions as atproto_detect_mentions
from atproto_client.utils.facet_regexes import _P as ATPROTO_PUNCTUATION
from hypothesis import given, settings
from hypothesis import strategies as st
from textcorpus import corpus, hashtags, links, mentions, rich_texts

from chatbot import facets
from chatbot.text import BLUESKY_MAX_TAG_GRAPHEMES, bluesky_facets, bluesky_graphemes

Found = list[tuple[str, int, int, str]]
COMPARE = settings(max_examples=400, derandomize=True, database=None, deadline=None)
CORPUS = corpus()


def atproto_found(text: str) -> tuple[Found, Found]:
    """atproto's facets and mentions, as (kind, byte_start, byte_end, value)."""
    kinds = {"app.bsky.richtext.facet#tag": "tag", "app.bsky.richtext.facet#link": "link"}
    found = []
    for facet in atproto_detect_facets(text):
        feature = facet.features[0]
        kind = kinds[feature.py_type]
        value = feature.tag if kind == "tag" else feature.uri
        found.append((kind, facet.index.byte_start, facet.index.byte_end, value))
    mentions = [
        ("mention", m.byte_start, m.byte_end, m.handle) for m in atproto_detect_mentions(text)
    ]
    return found, mentions


def ours(text: str) -> tuple[Found, Found]:
    def rows(found: list[facets.Facet]) -> Found:
        return [(f.kind, f.byte_start, f.byte_end, f.value) for f in found]

    return rows(facets.detect_facets(text)), rows(facets.detect_mentions(text))


def atproto_bluesky_facets(text: str) -> Found:
    """What chatbot.text.bluesky_facets returned when it called atproto (before our port)."""
    found, mentions = atproto_found(text)
    kept = [
        f for f in found if f[0] != "tag" or bluesky_graphemes(f[3]) <= BLUESKY_MAX_TAG_GRAPHEMES
    ]
    return sorted([*kept, *mentions], key=lambda row: row[1])


def assert_same(text: str) -> None:
    assert ours(text) == atproto_found(text), repr(text)
    posted = [(f.kind, f.byte_start, f.byte_end, f.value) for f in bluesky_facets(text)]
    assert posted == atproto_bluesky_facets(text), repr(text)


def test_the_corpus_is_large_and_has_facets() -> None:
    """The corpus holds thousands of texts, hundreds with a tag, a link or a mention."""
    with_facets = [text for text in CORPUS if any(ours(text))]
    assert len(CORPUS) > 1000
    assert len(with_facets) > 300


def test_facets_equal_atproto_on_the_corpus() -> None:
    """Every text of the repository gets atproto's facets and mentions, byte for byte."""
    different = [text for text in CORPUS if ours(text) != atproto_found(text)]
    assert different == []
    for text in CORPUS:
        assert_same(text)


@COMPARE
@given(rich_texts())
def test_facets_equal_atproto_on_mixed_texts(text: str) -> None:
    """Hashtags, links and mentions in mixed scripts get atproto's facets."""
    assert_same(text)


@COMPARE
@given(st.lists(st.one_of(hashtags(), links(), mentions()), min_size=1, max_size=4))
def test_facets_equal_atproto_on_facets_alone(pieces: list[str]) -> None:
    """Tags, links and mentions separated by one space get atproto's facets."""
    assert_same(" ".join(pieces))


@COMPARE
@given(st.text(max_size=40))
def test_facets_equal_atproto_on_any_text(text: str) -> None:
    """Any text at all (hypothesis' own characters) gets atproto's facets."""
    assert_same(text)


def test_punctuation_is_atproto_s_on_every_code_point() -> None:
    """The punctuation a tag sheds at its end is atproto's list, for all of Unicode."""
    theirs = re.compile(f"[{ATPROTO_PUNCTUATION}]")
    different = [
        f"U+{code:04X}"
        for code in range(sys.maxunicode + 1)
        if (theirs.match(chr(code)) is None)
        != (facets._TRAILING_PUNCTUATION.search(chr(code)) is None)
    ]
    assert different == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("#BLchat!", [("tag", 0, 7, "BLchat")]),
        ("\uff03日本語", [("tag", 0, 12, "日本語")]),  # the full-width number sign
        ("#123", []),
        ("#\ufe0fno", []),
        ("see example.com.", [("link", 4, 15, "https://example.com")]),
        ("e.g. this", []),
        (
            "(https://en.wikipedia.org/wiki/Foo)",
            [("link", 1, 34, "https://en.wikipedia.org/wiki/Foo")],
        ),
        ("$aapl up", [("tag", 0, 5, "$AAPL")]),
        ("#" + "a" * 65, []),
    ],
)
def test_known_cases(text: str, expected: Found) -> None:
    """A few of the reference's rules, spelt out: punctuation, digits, TLDs, brackets, cashtags."""
    assert ours(text)[0] == expected
    assert_same(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("hi @alice.bsky.social!", [("mention", 3, 21, "alice.bsky.social")]),
        ("@dev.test", [("mention", 0, 9, "dev.test")]),
        ("@alice.notatld", []),
        ("mail a@b.com", []),
    ],
)
def test_known_mentions(text: str, expected: Found) -> None:
    """A mention needs a handle with a known TLD (or .test) after a space or a bracket."""
    assert ours(text)[1] == expected
    assert_same(text)
