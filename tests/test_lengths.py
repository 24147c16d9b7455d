"""Our Mastodon length equals Mastodon.py's ``get_status_length``, without importing Mastodon.py.

:func:`chatbot.text.mastodon_length` counts as Mastodon.py does (a URL 23, a
remote mention as its local part, graphemes, the spoiler text too) with
Mastodon.py's own URL regex, loaded alone. These tests compare the two on every
text of the repository and on generated URLs and mentions of many shapes.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mastodon import Mastodon
from mastodon.utility import url_regex as mastodon_url_regex
from textcorpus import corpus, links, mentions, rich_texts

from chatbot import text as rules
from chatbot.text import mastodon_length

COMPARE = settings(max_examples=400, derandomize=True, database=None, deadline=None)
CORPUS = corpus()


def assert_same(text: str, spoiler_text: str = "") -> None:
    expected = Mastodon.get_status_length(text, spoiler_text)
    assert mastodon_length(text, spoiler_text) == expected, (text, spoiler_text)


def test_the_url_regex_is_mastodon_py_s() -> None:
    """The regex in use is Mastodon.py's own, loaded from its file (not the slow fallback)."""
    loaded = rules._mastodon_url_regex()
    assert loaded is not None
    assert (loaded.pattern, loaded.flags) == (mastodon_url_regex.pattern, mastodon_url_regex.flags)


def test_lengths_equal_mastodon_py_on_the_corpus() -> None:
    """Every text of the repository counts as Mastodon.py counts it, with and without a spoiler."""
    different = [
        text for text in CORPUS if mastodon_length(text) != Mastodon.get_status_length(text)
    ]
    assert different == []
    for text, spoiler in zip(CORPUS, reversed(CORPUS), strict=True):
        assert_same(text, spoiler[:200])


def test_the_corpus_has_urls_and_remote_mentions() -> None:
    """The corpus holds texts whose count is not their grapheme count (URLs, remote mentions)."""
    shorter_or_longer = [
        text for text in CORPUS if mastodon_length(text) != rules.bluesky_graphemes(text)
    ]
    assert len(shorter_or_longer) > 50


@COMPARE
@given(rich_texts(), st.text(max_size=20))
def test_lengths_equal_mastodon_py_on_mixed_texts(text: str, spoiler_text: str) -> None:
    """Words, hashtags, URLs and mentions in mixed scripts count as Mastodon.py counts them."""
    assert_same(text, spoiler_text)


@COMPARE
@given(st.lists(st.one_of(links(), mentions()), min_size=1, max_size=4), st.sampled_from(" \n(,"))
def test_lengths_equal_mastodon_py_on_urls_and_mentions(pieces: list[str], between: str) -> None:
    """URLs with and without scheme, IDNs, ports, paths, local and remote mentions."""
    assert_same(between.join(pieces))


@COMPARE
@given(st.text(max_size=40))
def test_lengths_equal_mastodon_py_on_any_text(text: str) -> None:
    """Any text at all (hypothesis' own characters) counts as Mastodon.py counts it."""
    assert_same(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("see https://example.com/" + "a" * 200, 4 + 23),
        ("see example.com.", len("see example.com.")),  # no scheme: not counted as a URL
        ("see https://example.xperia", 4 + 23),  # twitter-text's TLD list, not IANA's
        ("see https://example.zzz", len("see https://example.zzz")),  # no known TLD
        ("hi @alice@mastodon.education", len("hi @alice")),
        ("hi @alice", len("hi @alice")),
        ("\U0001f468\u200d\U0001f469\u200d\U0001f467", 1),
    ],
)
def test_known_lengths(text: str, expected: int) -> None:
    """A few of the rules, spelt out: URLs 23, scheme and TLD, mentions by local part, graphemes."""
    assert mastodon_length(text) == expected
    assert_same(text)
