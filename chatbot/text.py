"""Per-network text rules: the exact text each network receives and how long it is.

Lengths are counted by the networks' own rules through the SDKs' own pure
helpers (no network access): Mastodon.py's ``get_status_length`` (URLs count 23,
a mention counts only its local part, graphemes not code points) and atproto's
facet detection (UTF-8 byte offsets). Re-implementing either is how bots end up
rejecting valid posts or posting dead hashtags.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

import grapheme
from atproto_client.utils import detect_facets, detect_mentions
from mastodon import Mastodon

from chatbot.script import NetworkName

# Mastodon's documented default; instances advertise their own in
# /api/v2/instance configuration.statuses.max_characters.
MASTODON_DEFAULT_MAX_CHARACTERS = 500
# Bluesky's lexicon app.bsky.feed.post: text maxGraphemes 300, maxLength 3000 bytes.
BLUESKY_MAX_GRAPHEMES = 300
BLUESKY_MAX_BYTES = 3000
# Bluesky: a tag facet's value is at most 64 graphemes (app.bsky.richtext.facet#tag).
BLUESKY_MAX_TAG_GRAPHEMES = 64
LOCAL_MAX_CHARACTERS = 500


@dataclass(frozen=True)
class Limits:
    """The length limits in force for each network (Mastodon's differ per instance)."""

    mastodon_max_characters: int = MASTODON_DEFAULT_MAX_CHARACTERS


@dataclass(frozen=True)
class Facet:
    """A clickable range of a Bluesky post, in UTF-8 byte offsets."""

    kind: Literal["tag", "link", "mention"]
    byte_start: int
    byte_end: int
    value: str  # tag without '#', the URL, or the handle without '@'


@dataclass(frozen=True)
class Measure:
    """A post's length against its network's limit."""

    length: int
    limit: int
    unit: str
    too_long_by: int

    @property
    def fits(self) -> bool:
        return self.too_long_by <= 0

    def describe(self) -> str:
        return f"{self.length}/{self.limit} {self.unit}"


def has_hashtag(text: str, tag: str) -> bool:
    """Whether ``#tag`` stands in the text as a whole hashtag (case-insensitive)."""
    return re.search(rf"(?<![\w#])#{re.escape(tag)}(?!\w)", text, re.IGNORECASE) is not None


def question_label(number: int) -> str:
    return f"Q{number}:"


def compose(body: str, *, hashtag: str, number: int | None = None) -> str:
    """The text posted: "Q<n>: " before a question, the hashtag added once where missing."""
    text = body.strip()
    if number is not None and not re.match(rf"^Q{number}\b", text, re.IGNORECASE):
        text = f"{question_label(number)} {text}"
    if not has_hashtag(text, hashtag):
        text = f"{text} #{hashtag}"
    return text


def mastodon_length(text: str, spoiler_text: str = "") -> int:
    """Length as Mastodon counts it (URLs 23, mentions by local part, graphemes)."""
    return int(Mastodon.get_status_length(text, spoiler_text))


def bluesky_graphemes(text: str) -> int:
    """Extended grapheme clusters (UAX #29), as Bluesky's maxGraphemes counts them."""
    return int(grapheme.length(text))


def measure(network: NetworkName, text: str, limits: Limits, spoiler_text: str = "") -> Measure:
    """The post's length against the network's limit, in that network's unit."""
    if network is NetworkName.MASTODON:
        length = mastodon_length(text, spoiler_text)
        limit = limits.mastodon_max_characters
        return Measure(length, limit, "characters", length - limit)
    if network is NetworkName.BLUESKY:
        graphemes = bluesky_graphemes(text)
        size = len(text.encode("utf-8"))
        if size > BLUESKY_MAX_BYTES:
            return Measure(size, BLUESKY_MAX_BYTES, "bytes", size - BLUESKY_MAX_BYTES)
        return Measure(
            graphemes, BLUESKY_MAX_GRAPHEMES, "graphemes", graphemes - BLUESKY_MAX_GRAPHEMES
        )
    length = bluesky_graphemes(text)
    return Measure(length, LOCAL_MAX_CHARACTERS, "characters", length - LOCAL_MAX_CHARACTERS)


def bluesky_facets(text: str) -> list[Facet]:
    """Hashtag, link and mention facets with UTF-8 byte offsets, via atproto's detector."""
    facets: list[Facet] = []
    for found in detect_facets(text):
        feature = found.features[0]
        start, end = found.index.byte_start, found.index.byte_end
        if feature.py_type == "app.bsky.richtext.facet#tag":
            if bluesky_graphemes(feature.tag) <= BLUESKY_MAX_TAG_GRAPHEMES:
                facets.append(Facet("tag", start, end, feature.tag))
        elif feature.py_type == "app.bsky.richtext.facet#link":
            facets.append(Facet("link", start, end, feature.uri))
    for mention in detect_mentions(text):
        facets.append(Facet("mention", mention.byte_start, mention.byte_end, mention.handle))
    return sorted(facets, key=lambda facet: facet.byte_start)
