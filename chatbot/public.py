"""What may appear in public output (transcripts, reports), and how untrusted text is made safe.

Participants write whatever they like, and their names are theirs to choose:
everything they wrote is treated as untrusted here, once, for every format.
"""

from __future__ import annotations

import re
from urllib.parse import quote, urlsplit

from chatbot.networks.base import Author

# Kinds of stored posts that make their author a participant (not "host" or "blocked").
PARTICIPANT_KINDS = ("answer", "introduction", "conversation")

OPTED_OUT = "someone who opted out of bots"

# Embeddings/overrides (LRE RLE PDF LRO RLO) and isolates (LRI RLI FSI PDI): a name
# holding one could reverse the text around it (the "Trojan source" trick).
_BIDI_OPEN = frozenset("\u202a\u202b\u202d\u202e")
_BIDI_CLOSE = "\u202c"
_ISOLATE_OPEN = frozenset("\u2066\u2067\u2068")
_ISOLATE_CLOSE = "\u2069"
BIDI_CONTROLS = frozenset(_BIDI_OPEN | _ISOLATE_OPEN | {_BIDI_CLOSE, _ISOLATE_CLOSE})
_STRIP_BIDI = {ord(c): None for c in BIDI_CONTROLS}
# C0 controls other than tab and newline, and DEL: no format shows them usefully.
_CONTROLS = {c: None for c in [*range(0x00, 0x09), *range(0x0B, 0x20), 0x7F]}
_CSV_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def is_public(author: Author | None) -> bool:
    """Whether an author may be quoted, named or linked in public (they have not opted out)."""
    return author is not None and not author.opt_out


def is_participant(author: Author) -> bool:
    """Whether an author counts as a participant: automated accounts (the bot) do not."""
    return not author.bot


def clean_text(text: str) -> str:
    """Untrusted text without control characters that no format can show (newlines stay)."""
    return text.replace("\r\n", "\n").replace("\r", "\n").translate(_CONTROLS)


def clean_name(name: str) -> str:
    """A display name or handle on one line, without bidi controls or other controls."""
    return " ".join(clean_text(name).translate(_STRIP_BIDI).split())


def contain_bidi(text: str) -> str:
    """Close the bidi embeddings and isolates ``text`` leaves open, so they end with it."""
    embeddings = isolates = 0
    for char in text:
        if char in _BIDI_OPEN:
            embeddings += 1
        elif char == _BIDI_CLOSE:
            embeddings = max(0, embeddings - 1)
        elif char in _ISOLATE_OPEN:
            isolates += 1
        elif char == _ISOLATE_CLOSE:
            isolates = max(0, isolates - 1)
    return text + _BIDI_CLOSE * embeddings + _ISOLATE_CLOSE * isolates


def escape_bidi(text: str) -> str:
    """Bidi controls written as JSON escapes (``\\u202e``), so a viewer shows them."""
    return "".join(f"\\u{ord(c):04x}" if c in BIDI_CONTROLS else c for c in text)


def safe_url(url: str) -> str | None:
    """``url`` if it is an http(s) address, percent-encoded so it cannot break out of markup."""
    url = url.strip()
    if not url or any(c.isspace() or ord(c) < 0x20 or c in BIDI_CONTROLS for c in url):
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    # Keep the reserved characters a URL needs; encode quotes, brackets, parentheses.
    return quote(url, safe=":/?#@!$&*+,;=%~-._")


_URL = re.compile(r"https?://[^\s<>\"'\u202a-\u202e\u2066-\u2069]+", re.IGNORECASE)
_TRAILING = ".,;:!?)]}'\""


def link_segments(text: str) -> list[tuple[str, str | None]]:
    """``text`` as (text, href) pieces: http(s) addresses get an href, everything else none."""
    pieces: list[tuple[str, str | None]] = []
    position = 0
    for match in _URL.finditer(text):
        start, end = match.span()
        while end > start and text[end - 1] in _TRAILING:
            end -= 1  # "see https://x.example." ends the sentence, not the address
        href = safe_url(text[start:end])
        if href is None:
            continue
        if start > position:
            pieces.append((text[position:start], None))
        pieces.append((text[start:end], href))
        position = end
    if position < len(text):
        pieces.append((text[position:], None))
    return pieces


def csv_cell(value: str) -> str:
    """A cell a spreadsheet shows as text: one starting like a formula gets a leading '."""
    return "'" + value if value.startswith(_CSV_FORMULA) else value


_MARKDOWN_INLINE = re.compile(r"([\\`*_\[\]<>&|~!@$])")
_MARKDOWN_LINE_START = re.compile(r"^(?:([#>+=-])|(\d+)([.)]))")


def markdown_text(text: str) -> str:
    """Untrusted text as Markdown that shows it literally: no links, HTML, emphasis or blocks.

    The marks that start links, images, HTML, entities, emphasis, code, tables or
    mentions are backslash-escaped wherever they are (CommonMark allows escaping any
    ASCII punctuation), and so are the marks that start a block at a line's start
    (headings, quotes, lists, setext lines). Lines lose leading spaces (no code
    blocks) and end with a hard break, so a multi-line answer stays one paragraph.
    """
    lines = []
    for raw in text.split("\n"):
        line = _MARKDOWN_INLINE.sub(r"\\\1", raw.strip())
        if line:
            lines.append(_MARKDOWN_LINE_START.sub(_escape_line_start, line))
    return "\\\n".join(lines)


def _escape_line_start(match: re.Match[str]) -> str:
    if match.group(1):
        return "\\" + match.group(1)  # a heading, quote, list or setext line
    return match.group(2) + "\\" + match.group(3)  # "1." or "1)": an ordered list
