"""Someone else's words in a post: retweets, quotes credited to someone, "> " lines, "via @user".

A participant who passes on another's answer ("RT @amy: A3: circles", "“A1: names” — @k")
has not answered; the labels inside the quote are not theirs. This module finds the spans of
a post's text that quote someone else; attribution reads only the rest (the poster's own
words). Scare quotes ("lectura en voz alta") and "cc @user" are not quoting.
"""

from __future__ import annotations

import re

from chatbot.collect.wording import TRAILER

__all__ = ["own_words", "quoted_spans"]

_HANDLE = r"@\w[\w.@\-]*+"
# "RT @user", "RT:", "MT @user": everything after is the other person's post.
_RETWEET = re.compile(rf"(?=[rm])(?<![\w@#])(?:rt|mt)(?=[ \t]*(?::|{_HANDLE}))", re.IGNORECASE)
# "from @user:", "Quoting @user:", "@user said it best:": what follows on the line is theirs.
_CREDIT_BEFORE = re.compile(
    rf"(?=[fqh@])(?<![\w@#.\-])(?:(?:from|quoting|quote[ \t]+from|h/t|ht)[ \t]+{_HANDLE}"
    rf"|{_HANDLE}[ \t]+(?:said|says|wrote|put[ \t]+it)(?:[ \t]+it)?"
    r"(?:[ \t]+(?:best|well|perfectly))?)"
    r"[ \t]*:",
    re.IGNORECASE,
)
# A quotation: "…", “…”, «…», „…“, '…' (at most 1,000 characters, so that marks never closed
# cannot make the search quadratic).
_QUOTATION = re.compile(
    r"\"(?P<straight>[^\"]{1,1000})\""
    r"|\u201c(?P<curly>[^\u201c\u201d]{1,1000})\u201d"
    r"|\u00ab(?P<guillemets>[^\u00ab\u00bb]{1,1000})\u00bb"
    r"|\u201e(?P<low>[^\u201c\u201e]{1,1000})\u201c"
    r"|(?<![\w'])'(?P<single>[^'\n]{1,1000})'(?!\w)"  # no apostrophe inside: each scan ends
)
# A credit after a quotation: "— @user", "- @user", "~@user".
_CREDIT_AFTER = re.compile(rf"[ \t]*[-\u2013\u2014~]+[ \t]*{_HANDLE}")
# Begins like an answer label or header: "A3:", "R1 :", "Re Q2", "Answer 4".
_LABEL_START = re.compile(
    r"[ \t]*(?:[*_]+)?(?:(?:answers?|ans|respuestas?|r[eé]ponses?|respostas?|risposta|antwoord"
    r"|antwort|a|r)[ \t]*[#.]?[ \t]*\d|(?:re|for)[ \t]*:?[ \t]*q[ \t]?\d)",
    re.IGNORECASE,
)
# A whole post passed on: it ends with "via @user" (then only hashtags, emoji, punctuation).
_VIA = re.compile(rf"(?=v)(?<![\w@#])via[ \t]+{_HANDLE}", re.IGNORECASE)
# What every retweet, credit and "via" has; most posts have none of them.
_ANY_CREDIT = re.compile(
    rf"(?=[rmvfqh@])(?:(?<![\w@#])(?:rt|mt|via|from|quoting|quote|h/?t)\b"
    rf"|(?<![\w@#.\-]){_HANDLE}[ \t]+(?:said|says|wrote|put))",
    re.IGNORECASE,
)
_QUOTE_MARK = re.compile("[\"\u201c\u00ab\u201e']")
_QUOTE_LINE = re.compile(r"^[ \t]*>.*$", re.MULTILINE)


def quoted_spans(folded: str) -> list[tuple[int, int]]:
    """The spans of `folded` (a post's folded text) that are someone else's words."""
    spans: list[tuple[int, int]] = []
    if ">" in folded:
        spans += [m.span() for m in _QUOTE_LINE.finditer(folded)]
    if _ANY_CREDIT.search(folded):
        retweet = _RETWEET.search(folded)
        if retweet:
            spans.append((retweet.start(), len(folded)))
        for credit in _CREDIT_BEFORE.finditer(folded):
            line_end = folded.find("\n", credit.end())
            spans.append((credit.start(), len(folded) if line_end < 0 else line_end))
        vias = list(_VIA.finditer(folded))
        if vias and TRAILER.fullmatch(folded, vias[-1].end()):
            spans.append((0, len(folded)))  # only the last one can end the post
    if _QUOTE_MARK.search(folded):
        spans += _quotations(folded)
    return spans


def _quotations(folded: str) -> list[tuple[int, int]]:
    """Quotations that begin with an answer label or are credited to someone."""
    found: list[tuple[int, int]] = []
    for quote in _QUOTATION.finditer(folded):
        inside = quote.group(quote.lastgroup or 0)
        credit = _CREDIT_AFTER.match(folded, quote.end())
        if credit:
            found.append((quote.start(), credit.end()))
        elif _LABEL_START.match(inside):
            found.append(quote.span())
    return found


def own_words(folded: str, spans: list[tuple[int, int]]) -> str:
    """`folded` with the quoted spans blanked (line breaks kept, so offsets and lines hold)."""
    if not spans:
        return folded
    chars = list(folded)
    for start, end in _merge(spans):
        for i in range(start, end):
            if chars[i] != "\n":
                chars[i] = " "
    return "".join(chars)


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged
