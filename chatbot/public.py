"""What may appear in public output (transcripts, reports), and how untrusted text is made safe.

Participants write whatever they like, and their names are theirs to choose:
everything they wrote is treated as untrusted here, once, for every format.
"""

from __future__ import annotations

import re

from chatbot.posts import Author

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
# C1 controls (U+0080 to U+009F): a terminal may act on them (U+009B starts a sequence).
_C1_CONTROLS = {c: None for c in range(0x80, 0xA0)}
_CSV_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def is_public(author: Author | None) -> bool:
    """Whether an author may be quoted, named or linked in public (they have not opted out)."""
    return author is not None and not author.opt_out


def on_the_web(author: Author | None) -> bool:
    """Whether an author may be shown in what is published on the open web (the transcript):
    not opted out, and not asking to stay away from search engines and logged-out readers."""
    return is_public(author) and author is not None and not author.web_opt_out


_CONTROL_ANY = re.compile("[\x00-\x08\x0b-\x1f\x7f]")
_NAME_UNUSUAL = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]|\\s\\s|^\\s|\\s$")


def clean_text(text: str) -> str:
    """Untrusted text without control characters that no format can show (newlines stay)."""
    if _CONTROL_ANY.search(text) is None:
        return text  # the common case, checked at C speed
    return text.replace("\r\n", "\n").replace("\r", "\n").translate(_CONTROLS)


def clean_name(name: str) -> str:
    """A display name or handle on one line, without bidi controls or other controls."""
    if _NAME_UNUSUAL.search(name) is None:
        return name
    return " ".join(clean_text(name).translate(_STRIP_BIDI).translate(_C1_CONTROLS).split())


_BIDI_ANY = re.compile("[\u202a-\u202e\u2066-\u2069]")


def terminal_text(text: str) -> str:
    """Untrusted text for a terminal: no C0 or C1 control (an escape sequence would be
    acted on), and each line's bidi embeddings closed at its end (newlines stay)."""
    lines = clean_text(text).translate(_C1_CONTROLS).split("\n")
    return "\n".join(contain_bidi(line) for line in lines)


def contain_bidi(text: str) -> str:
    """Close the bidi embeddings and isolates ``text`` leaves open, so they end with it."""
    if _BIDI_ANY.search(text) is None:
        return text
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
    return _BIDI_ANY.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


# An http(s) address with a host and nothing that could end or bend the markup around it.
_SAFE_URL = re.compile(r"https?://[^/?#\s]+[^\s\x00-\x1f\x7f\u202a-\u202e\u2066-\u2069]*\Z", re.I)
# Characters a URL may hold that Markdown or HTML attributes could read: percent-encoded.
_URL_ESCAPES = str.maketrans({c: f"%{ord(c):02X}" for c in "\"'<>()[]{}|\\^`"})


def safe_url(url: str) -> str | None:
    """``url`` if it is an http(s) address, percent-encoded so it cannot break out of markup."""
    url = url.strip()
    if _SAFE_URL.match(url) is None:
        return None
    return url.translate(_URL_ESCAPES)


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


_MARKDOWN_MARKS = "\\`*_[]<>&|~@$"  # "!" is harmless once "[" is escaped
_MARKDOWN_INLINE = re.compile("[" + re.escape(_MARKDOWN_MARKS) + "]")
_MARKDOWN_ESCAPES = str.maketrans({c: "\\" + c for c in _MARKDOWN_MARKS})
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
        line = raw.strip()
        if _MARKDOWN_INLINE.search(line) is not None:
            line = line.translate(_MARKDOWN_ESCAPES)
        if line:
            lines.append(_MARKDOWN_LINE_START.sub(_escape_line_start, line))
    return "\\\n".join(lines)


def _escape_line_start(match: re.Match[str]) -> str:
    if match.group(1):
        return "\\" + match.group(1)  # a heading, quote, list or setext line
    return match.group(2) + "\\" + match.group(3)  # "1." or "1)": an ordered list
