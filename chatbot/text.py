"""Per-network text rules: the exact text each network receives and how long it is.

Lengths and facets follow the networks' own rules, as their SDKs implement them,
and are held equal to the SDKs by tests on a corpus: Mastodon's length
(:func:`mastodon_length`, Mastodon.py's ``get_status_length``: URLs count 23, a
mention counts only its local part, graphemes not code points; tests/test_lengths.py)
and Bluesky's facets (:mod:`chatbot.facets`, atproto's detection, UTF-8 byte offsets;
tests/test_facets.py). Neither SDK is imported here: each takes a tenth of a second
or more to import, which `chatbot validate` in an editor must not pay.
"""

from __future__ import annotations

import functools
import importlib.util
import re
from dataclasses import dataclass
from pathlib import Path

import grapheme
import regex

from chatbot.facets import Facet as Facet  # re-exported: the posts' facets are defined there
from chatbot.facets import detect_facets, detect_mentions
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
# Mastodon: an attachment's description (alt text) is at most 1,500 characters
# (app/models/media_attachment.rb, MAX_DESCRIPTION_LENGTH = 1_500, checked with
# Rails' length validator, which counts characters).
MASTODON_MAX_ALT_CHARACTERS = 1500
# Bluesky: the lexicon sets no limit (app.bsky.embed.images#image: "alt":
# {"type": "string"}); the Bluesky app lets people write at most 2,000
# (social-app src/lib/constants.ts, MAX_ALT_TEXT = 2000), so longer alt text is
# cut or refused by the clients people use.
BLUESKY_MAX_ALT_GRAPHEMES = 2000
# Mastodon's hashtag rule, from app/models/tag.rb (HASHTAG_SEPARATORS,
# HASHTAG_FIRST_SEQUENCE, HASTAG_LAST_SEQUENCE, HASHTAG_NAME_RE): a tag needs a
# letter; "_", "·", "・" and ZWNJ may join words. The `regex` module reads the
# same POSIX classes as Ruby's Onigmo.
_MASTODON_SEPARATORS = "_\u00b7\u30fb\u200c"
_MASTODON_FIRST = (
    f"([[:word:]_][[:word:]{_MASTODON_SEPARATORS}]*[[:alpha:]{_MASTODON_SEPARATORS}]"
    f"[[:word:]{_MASTODON_SEPARATORS}]*[[:word:]_])"
)
_MASTODON_LAST = "([[:word:]_]*[[:alpha:]][[:word:]_]*)"
MASTODON_HASHTAG_NAME = regex.compile(
    rf"\A(?:{_MASTODON_FIRST}|{_MASTODON_LAST})\Z", regex.IGNORECASE | regex.VERSION0
)


@dataclass(frozen=True)
class Limits:
    """The length limits in force for each network (Mastodon's differ per instance)."""

    mastodon_max_characters: int = MASTODON_DEFAULT_MAX_CHARACTERS


@dataclass(frozen=True)
class Measure:
    """A post's length against its network's limit."""

    length: int
    limit: int
    unit: str
    too_long_by: int
    at_least: bool = False  # counting stopped once the text was past the limit

    @property
    def fits(self) -> bool:
        return self.too_long_by <= 0

    def describe(self) -> str:
        more = "at least " if self.at_least else ""
        return f"{more}{self.length}/{self.limit} {self.unit}"


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
    """Length as Mastodon counts it (URLs 23, mentions by local part, graphemes).

    Mastodon.py's ``get_status_length``, step by step: each URL becomes 23
    characters, ``@user@domain`` becomes ``@user``, then the text's graphemes and
    the spoiler text's are counted.
    """
    urls = _mastodon_url_regex()
    if urls is None:  # a Mastodon.py that keeps its regex elsewhere: ask Mastodon.py
        from mastodon import Mastodon

        return int(Mastodon.get_status_length(text, spoiler_text))
    counted = urls.sub(lambda match: match.group(2) + "x" * _MASTODON_URL_LENGTH, text)
    counted = _MASTODON_REMOTE_MENTION.sub(r"\1@\3", counted)
    return int(grapheme.length(counted)) + int(grapheme.length(spoiler_text))


# Mastodon counts every URL as 23 characters (characters_reserved_per_url).
_MASTODON_URL_LENGTH = 23
# Mastodon.py's username_regex (utility.py, get_status_length).
_MASTODON_REMOTE_MENTION = re.compile(
    r"(^|[^/\w])@(([a-z0-9_]+)@[a-z0-9\.\-]+[a-z0-9]+)", re.IGNORECASE
)


@functools.cache
def _mastodon_url_regex() -> re.Pattern[str] | None:
    """Mastodon.py's URL regex, loaded without loading Mastodon.py.

    It is twitter-text's, with twitter-text's own list of TLDs (older than IANA's):
    no rule of ours can match what it matches without that list, so the regex is
    Mastodon.py's own. It sits alone in mastodon/_url_regex.py, which needs only
    ``re`` and ``json``; that one file is run here, because ``import mastodon``
    loads the whole client and requests (a tenth of a second). None when the file
    is not there (tests/test_startup.py would then see Mastodon.py imported).
    """
    package = importlib.util.find_spec("mastodon")  # finds the package, runs none of it
    folders = list(package.submodule_search_locations or []) if package else []
    for folder in folders:
        file = Path(folder) / "_url_regex.py"
        spec = importlib.util.spec_from_file_location("chatbot._mastodon_url_regex", file)
        if not file.is_file() or spec is None or spec.loader is None:
            continue
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        pattern = getattr(module, "url_regex", None)
        if isinstance(pattern, re.Pattern):
            return pattern
    return None


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
        size = len(text.encode("utf-8"))
        if size > BLUESKY_MAX_BYTES:
            return Measure(size, BLUESKY_MAX_BYTES, "bytes", size - BLUESKY_MAX_BYTES)
        graphemes = bluesky_graphemes(text)
        return Measure(
            graphemes, BLUESKY_MAX_GRAPHEMES, "graphemes", graphemes - BLUESKY_MAX_GRAPHEMES
        )
    length = bluesky_graphemes(text)
    return Measure(length, LOCAL_MAX_CHARACTERS, "characters", length - LOCAL_MAX_CHARACTERS)


def measure_bounded(network: NetworkName, text: str, limits: Limits) -> Measure:
    """:func:`measure`, but a long text is counted only until it is past the limit.

    The count of a prefix cut at a space is never more than the whole text's
    (links and mentions hold no spaces, so none is cut in two); once a prefix is
    over the limit, so is the text, and the rest is not counted. The length is
    then a lower bound ("at least").
    """
    limit = measure(network, "", limits).limit
    cut = 4 * limit + 100
    while cut < len(text):
        space = text.rfind(" ", 0, cut)
        if space <= 0:
            break
        head = measure(network, text[:space], limits)
        if not head.fits:
            return Measure(head.length, head.limit, head.unit, head.too_long_by, at_least=True)
        cut *= 4
    return measure(network, text, limits)


def alt_text_limit(network: NetworkName) -> tuple[int, str] | None:
    """The most alt text ``network`` takes for an image, and its unit."""
    if network is NetworkName.MASTODON:
        return MASTODON_MAX_ALT_CHARACTERS, "characters"
    if network is NetworkName.BLUESKY:
        return BLUESKY_MAX_ALT_GRAPHEMES, "graphemes"
    return None


def alt_text_length(network: NetworkName, alt: str) -> int:
    """Alt text length in ``network``'s unit (code points for Mastodon, graphemes for Bluesky)."""
    if network is NetworkName.BLUESKY:
        return int(grapheme.length(alt, until=BLUESKY_MAX_ALT_GRAPHEMES + 1))
    return len(alt)


def links_hashtag(network: NetworkName, tag: str) -> bool:
    """Whether ``#tag`` appended to a post becomes a working hashtag on ``network``.

    Bluesky: the same facet detection as the posts (atproto's rules, at most 64
    graphemes), on the text as :func:`compose` appends it. Mastodon: its own
    hashtag rule (see MASTODON_HASHTAG_NAME).
    """
    if network is NetworkName.BLUESKY:
        text = f"Welcome #{tag}"
        return any(f.kind == "tag" and f.value == tag for f in bluesky_facets(text))
    if network is NetworkName.MASTODON:
        return MASTODON_HASHTAG_NAME.match(tag) is not None
    return True


def bluesky_facets(text: str) -> list[Facet]:
    """Hashtag, link and mention facets with UTF-8 byte offsets, as atproto detects them.

    A tag longer than 64 graphemes (counted exactly, UAX #29) is left out.
    """
    facets = [
        facet
        for facet in detect_facets(text)
        if facet.kind != "tag" or bluesky_graphemes(facet.value) <= BLUESKY_MAX_TAG_GRAPHEMES
    ]
    facets += detect_mentions(text)
    return sorted(facets, key=lambda facet: facet.byte_start)
