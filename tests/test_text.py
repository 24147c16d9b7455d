"""Per-network text rules: lengths as Mastodon and Bluesky count them, facets, hashtag, Q<n>."""

from __future__ import annotations

import pytest

from chatbot.script import NetworkName
from chatbot.text import (
    BLUESKY_MAX_BYTES,
    BLUESKY_MAX_GRAPHEMES,
    Limits,
    bluesky_facets,
    bluesky_graphemes,
    compose,
    has_hashtag,
    mastodon_length,
    measure,
)

THUMBS_UP_MEDIUM = "\U0001f44d\U0001f3fd"  # 👍🏽 thumbs up + skin-tone modifier
FAMILY = "\U0001f468\u200d\U0001f469\u200d\U0001f467"  # 👨‍👩‍👧 joined by ZWJ
FLAG_FR = "\U0001f1eb\U0001f1f7"  # 🇫🇷 two regional indicators
E_ACUTE = "e\u0301"  # e + COMBINING ACUTE ACCENT

CLUSTERS = [
    pytest.param(THUMBS_UP_MEDIUM, id="skin-tone"),
    pytest.param(FAMILY, id="zwj-family"),
    pytest.param(FLAG_FR, id="flag"),
    pytest.param(E_ACUTE, id="combining-accent"),
]


# --- Mastodon -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    ["https://t.co/x", "https://example.com/" + "a" * 200],
    ids=["short", "long"],
)
def test_mastodon_counts_any_url_as_23(url: str) -> None:
    """On Mastodon a URL counts 23 characters whatever its real length."""
    assert mastodon_length(f"see {url}") == len("see ") + 23


def test_mastodon_counts_a_mention_by_its_local_part() -> None:
    """On Mastodon @user@domain counts only as @user."""
    assert mastodon_length("hi @alice@mastodon.education") == len("hi @alice")


def test_mastodon_counts_spoiler_text() -> None:
    """On Mastodon the content warning (spoiler text) counts toward the limit."""
    assert mastodon_length("body", spoiler_text="cw: long") == len("body") + len("cw: long")


@pytest.mark.parametrize("cluster", CLUSTERS)
def test_mastodon_counts_a_grapheme_cluster_once(cluster: str) -> None:
    """On Mastodon an emoji with modifiers, a flag or an accented letter counts 1."""
    assert mastodon_length(cluster) == 1


def test_mastodon_limit_comes_from_the_instance() -> None:
    """An instance's own limit (e.g. 1000) replaces Mastodon's default 500."""
    text = "x" * 700
    assert not measure(NetworkName.MASTODON, text, Limits()).fits
    wide = measure(NetworkName.MASTODON, text, Limits(mastodon_max_characters=1000))
    assert wide.fits
    assert wide.describe() == "700/1000 characters"


# --- Bluesky --------------------------------------------------------------------------


@pytest.mark.parametrize("cluster", CLUSTERS)
def test_bluesky_counts_a_grapheme_cluster_once(cluster: str) -> None:
    """Bluesky counts graphemes, not code points: each of these is 1 though several code points."""
    assert len(cluster) > 1
    assert bluesky_graphemes(cluster) == 1
    assert measure(NetworkName.BLUESKY, cluster, Limits()).length == 1


def test_bluesky_allows_exactly_300_graphemes() -> None:
    """A Bluesky post of 300 graphemes fits; 301 is one over."""
    assert measure(NetworkName.BLUESKY, "a" * BLUESKY_MAX_GRAPHEMES, Limits()).fits
    over = measure(NetworkName.BLUESKY, "a" * (BLUESKY_MAX_GRAPHEMES + 1), Limits())
    assert (over.fits, over.too_long_by, over.unit) == (False, 1, "graphemes")


def test_bluesky_300_emoji_over_3000_bytes_do_not_fit() -> None:
    """300 family emoji are 300 graphemes but 5,400 bytes: over Bluesky's 3,000-byte limit."""
    text = FAMILY * BLUESKY_MAX_GRAPHEMES
    assert bluesky_graphemes(text) == BLUESKY_MAX_GRAPHEMES
    result = measure(NetworkName.BLUESKY, text, Limits())
    assert (result.length, result.limit, result.unit) == (5400, BLUESKY_MAX_BYTES, "bytes")
    assert not result.fits


def test_bluesky_tag_facet_bytes_point_at_the_hashtag_after_emoji_and_accents() -> None:
    """A tag facet's UTF-8 byte offsets slice out exactly "#BLchat" after multi-byte text."""
    text = f"Café {FAMILY} naïve {E_ACUTE} {THUMBS_UP_MEDIUM} {FLAG_FR} #BLchat"
    encoded = text.encode("utf-8")
    tags = [f for f in bluesky_facets(text) if f.kind == "tag"]
    assert len(tags) == 1
    assert tags[0].value == "BLchat"
    assert encoded[tags[0].byte_start : tags[0].byte_end] == b"#BLchat"
    # character offsets would be wrong here: the text is much longer in bytes
    assert tags[0].byte_start != text.index("#BLchat")


def test_bluesky_link_and_mention_facets_point_at_their_bytes() -> None:
    """Link and mention facets slice out exactly the URL and the @handle."""
    text = f"{THUMBS_UP_MEDIUM} slides: https://example.com/slides é by @alice.bsky.social"
    encoded = text.encode("utf-8")
    found = {f.kind: encoded[f.byte_start : f.byte_end] for f in bluesky_facets(text)}
    assert found == {"link": b"https://example.com/slides", "mention": b"@alice.bsky.social"}


# --- hashtag and question numbers -----------------------------------------------------


def test_hashtag_is_appended_when_missing() -> None:
    """A post without the chat's hashtag gets it appended once."""
    assert compose("Welcome, everyone!", hashtag="BLchat") == "Welcome, everyone! #BLchat"


def test_hashtag_is_not_appended_when_present_in_another_case() -> None:
    """A post that already has the hashtag in any letter case is left alone."""
    assert compose("Welcome to #blchat tonight!", hashtag="BLchat") == "Welcome to #blchat tonight!"


def test_hashtag_is_appended_only_once_when_composed_twice() -> None:
    """Composing an already composed post adds nothing."""
    once = compose("Welcome!", hashtag="BLchat")
    assert compose(once, hashtag="BLchat") == once


def test_a_longer_tag_is_not_the_hashtag() -> None:
    """#BLchatter is not #BLchat, so the hashtag is still appended."""
    assert not has_hashtag("Join #BLchatter", "BLchat")
    assert compose("Join #BLchatter", hashtag="BLchat") == "Join #BLchatter #BLchat"


def test_question_gets_its_number_before_the_text() -> None:
    """A question is posted as "Q<n>: text #hashtag"."""
    assert compose("What works?", hashtag="BLchat", number=3) == "Q3: What works? #BLchat"


def test_question_already_numbered_is_not_numbered_twice() -> None:
    """A question that starts with its own Q<n> (any case) keeps it and gets no second one."""
    assert compose("Q3: What works?", hashtag="BLchat", number=3) == "Q3: What works? #BLchat"
    assert compose("q3 what works?", hashtag="BLchat", number=3) == "q3 what works? #BLchat"
