"""The words of a post as attribution reads them: folded forms, links, mentions, leading matter.

Shared by the label reader (:mod:`chatbot.collect.labels`), quoting, reactions and
introductions. Every pattern here runs in linear time: possessive repeats where a run could
be split in many ways ("@a@a@a..."), no unbounded look-back.
"""

from __future__ import annotations

import re
import unicodedata

# Leading matter that may precede a label at the start of a post or line: spaces, emoji,
# bullets and punctuation, mentions, hashtags, a question reference ("Q3 A3: ..."), a thread
# counter ("1/2", "(2/2)").
# Possessive and ordered (mentions first) so that "@a@a@a..." cannot backtrack exponentially.
LEAD = re.compile(
    r"(?:[@#]\w[\w.@\-]*+|q[ \t]?\d{1,2}[a-e]?(?!\w)|\d{1,2}/\d{0,2}(?!\w)|re(?=[ \t]*:)"
    r"|\s|[^\w\s])*+",
    re.IGNORECASE,
)
# What may follow the last words of a post without being words: hashtags, mentions, emoji.
TRAILER = re.compile(r"(?:[@#]\w[\w.@\-]*+|\s|[^\w\s])*+")
URL = re.compile(r"(?=[hw])(?:https?://|www\.)\S+", re.IGNORECASE)  # (?=): a fast first scan
MENTION_OR_TAG = re.compile(r"[@#]\w[\w.@\-]*+")
WORDS = re.compile(r"[^\W_]+(?:['\u2019][^\W_]+)*")
WINDOW = 100  # how far back the look-behind helpers read: keeps hostile input linear


def fold(text: str) -> tuple[str, list[int] | None]:
    """NFKC per character (full-width letters and digits -> ASCII, a no-break space -> " "),
    with a map back to the original offsets (None when the length is unchanged: they match)."""
    if text.isascii() or unicodedata.is_normalized("NFKC", text):
        return text, None
    folded: list[str] = []
    origin: list[int] = []
    for i, char in enumerate(text):
        norm = unicodedata.normalize("NFKC", char) if ord(char) > 0x7F else char
        folded.append(norm)
        origin.extend([i] * len(norm))
    origin.append(len(text))
    joined = "".join(folded)
    if len(joined) == len(text):
        return joined, None
    return joined, origin


def mask_urls(folded: str) -> str:
    """Links blanked out (same length), so that "…/A1:intro" is not read as a label."""
    if "://" not in folded and "www." not in folded.lower():
        return folded
    return URL.sub(lambda m: "_" * len(m.group()), folded)


def words(text: str) -> list[str]:
    """The lower-cased words of `text`, without mentions, hashtags and links."""
    plain = MENTION_OR_TAG.sub(" ", URL.sub(" ", text)).replace("\u2019", "'").lower()
    return WORDS.findall(plain)


def lead_end(folded: str, line_start: int) -> int:
    """Where the leading matter of the line starting at `line_start` ends (within the line:
    reading on into the next lines would make a post of many lines quadratic)."""
    line_end = folded.find("\n", line_start)
    match = LEAD.match(folded, line_start, len(folded) if line_end < 0 else line_end)
    return match.end() if match else line_start
