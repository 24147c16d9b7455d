"""A post -> which question(s) of a chat it answers: answer labels, thread context, introductions.

Pure and offline: the caller tells us where the post sits in the chat (a `PostContext` built from
the network's reply/quote references); this module reads only the text, and only the poster's
own words in it (:mod:`chatbot.collect.quoting` sets aside retweets and quotes).
The rules are those of tests/data/attribution_policy.md; the corpora in tests/data hold them.
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_left
from dataclasses import dataclass
from enum import Enum

from chatbot.collect.introductions import is_introduction
from chatbot.collect.quoting import own_words, quoted_spans
from chatbot.collect.reactions import is_only_a_question, is_reaction, is_welcoming
from chatbot.collect.wording import TRAILER, WINDOW, fold, lead_end, mask_urls
from chatbot.kinds import PostKind
from chatbot.markup import read_html

__all__ = [
    "Answer",
    "Attribution",
    "PostContext",
    "attribute",
    "attribute_html",
]


@dataclass(frozen=True)
class Answer:
    """One answer found in a post."""

    question: int  # 1-based question number
    text: str  # the answer text for that question, label ("A1:") removed, stripped
    part: str | None = None  # "a" for "A1a", else None


@dataclass(frozen=True)
class Attribution:
    """The verdict on one post: its kind and, for answers, which questions it answers."""

    kind: PostKind
    answers: tuple[Answer, ...] = ()  # empty unless kind == ANSWER


@dataclass(frozen=True)
class PostContext:
    """Where the post sits in the chat, as known from the network (not from the text)."""

    question_count: int  # answers to A9 in a 6-question chat are not answers
    reply_to_question: int | None = None  # a reply (direct, or anywhere below) to question n
    quote_of_question: int | None = None  # the post quotes the post of question n
    reply_to_welcome: bool = False  # a reply to the welcome / introductions prompt
    # The last question posted before this post. Used only for a label without a number
    # ("A: ..."); an unlabelled top-level post is conversation, never a guess.
    current_question: int | None = None


# --------------------------------------------------------------------------------------------
# Labels: "A1:", "a1 -", "A 1:", "A1a", "A1/A2", "Answer 1:", "R1:" (respuesta, réponse, ...),
# and headers naming a question: "Re Q3:", "For Q2 -", "Answer to Q4", "Q5 answer:", "Q1 →".

_PREFIX = (
    r"(?:answers?|ans|respuestas?|r[eé]ponses?|respostas?|risposta|antwoord|antwort(?:en)?|a|r)"
)
_WORD_PREFIXES = frozenset(
    {
        "answer", "answers", "ans", "respuesta", "respuestas", "reponse", "reponses",
        "réponse", "réponses", "resposta", "respostas", "risposta", "antwoord", "antwort",
        "antworten",
    }
)  # fmt: skip
_HEADER = (
    r"(?:re[ \t]*:?|for|back[ \t]+to|answers?[ \t]+(?:to|for)|answering|responding[ \t]+to)"
    r"[ \t]+q[ \t]?"
)
_JOINER = r"(?:,?[ \t]*+(?:and|y|et|und|e|en|&|\+)|[ \t]*+/|,)"
_NUMBER = r"\d{1,2}[a-e]?(?!\w)"
_LABEL = re.compile(
    rf"""
    (?=[abfqr])                      # the first letters of all (lets the search skip ahead)
    (?<![\w@#+\-'\u2019])           # not inside a word, mention or hashtag
    (?:(?P<header>{_HEADER})
      |(?P<pre>{_PREFIX})(?P<gap>[ \t]*+\#[ \t]*+|\.[ \t]?|-|[ \t]*+)  # "A1", "A 1", "A#1", "a.1"
      |(?P<q>q)[ \t]?)                                                # "Q3 answer", "Q4 →"
    (?P<first>{_NUMBER})
    (?P<more>(?:{_JOINER}[ \t]*+(?:(?:{_PREFIX}|q)[ \t]*+[#.]?[ \t]*+)?{_NUMBER})*+)  # possessive:
    # a run of spaces is never split two ways (else "A1 & A" + spaces is quadratic)
    (?P<answer_word>[ \t]+answers?(?!\w))?
    """,
    re.IGNORECASE | re.VERBOSE,
)
_BARE_LABEL = re.compile(
    rf"(?=[ar])(?<![\w@#+\-])(?P<pre>{_PREFIX})[ \t]*:(?![:/\d])", re.IGNORECASE
)
_INNER_PREFIX = re.compile(rf"(?:{_PREFIX}|q)(?=[ \t]*[#.]?[ \t]*\d)", re.IGNORECASE)
_TARGET = re.compile(r"(\d{1,2})([a-e]?)(?!\w)", re.IGNORECASE)
_SEPARATOR = re.compile(
    r"""
      [ \t]*(?P<colon>[:;]+)
    | [ \t]*(?P<paren>[)\]])
    | (?P<dot>\.)
    | [ \t]*(?P<arrow>->|=>|[\u2192\u21d2\u27a1\u27f6]\ufe0f?|\U0001f449[\U0001f3fb-\U0001f3ff]?)
    | [ \t]*(?P<dash>[-\u2012-\u2015\u2212~]+)
    | (?P<comma>,)
    | (?P<bang>!+)
    | (?P<space>(?=\s|$))
    """,
    re.VERBOSE,
)
_DIGIT = re.compile(r"\d")
_TOKEN = re.compile(r"\S{1,20}")  # enough to see "3rd" or "5%"; bounded: linear
_WORD_AFTER = re.compile(r"[ \t]*([^\W\d_]+)")
_TRAILING_TOKEN = re.compile(r"[@#][\w][\w.@\-]*$")
# "A1 sauce", "A4 paper", "A2 level", "A1 is my favourite": a thing, or talk about an answer.
_NOT_AFTER_SPACE_LABEL = frozenset(
    {
        "sauce", "steak", "steaks", "paper", "papers", "size", "sized", "sheet", "sheets",
        "level", "levels", "niveau", "format", "envelope", "envelopes", "grade", "rating",
        "rated", "poster", "posters", "print", "printer", "page", "pages", "tier", "highway",
        "road", "motorway", "route",
        # talking about a question's answers rather than answering: "A1 answers were great"
        "answers", "responses", "replies", "thread", "threads", "question", "questions",
        "is", "are", "was", "were", "has", "had",
    }
)  # fmt: skip
# Words that take a letter-number designator: "Room A3: PLC meeting", "section A1".
_NOT_BEFORE_LABEL = frozenset(
    {
        "room", "rm", "section", "table", "row", "building", "bldg", "page", "p", "grade",
        "level", "niveau", "model", "plan", "seat", "gate", "cell", "column", "box", "hall",
        "wing", "portable", "lab", "unit", "vitamin", "paper", "size", "format", "form", "step",
        "part", "chapter", "figure", "fig", "exhibit", "appendix", "bus", "route",
    }
)  # fmt: skip
_SENTENCE_END = frozenset(".!?;:)]}\"'\u201d\u2019\u00bb*")
_STRICT = frozenset({"colon", "paren", "dot", "dash", "arrow"})
_TRAILING_LABEL_MARKS = frozenset("-\u2013\u2014(|[")


class _Where(Enum):
    START = "start"  # start of the post or of a line, after leading matter
    AFTER_BREAK = "after-break"  # after sentence punctuation, an emoji, a hashtag or a mention
    MID = "mid"  # anywhere else


@dataclass(frozen=True)
class _Found:
    start: int  # span of the label (with its separator) in the folded text
    end: int
    targets: tuple[tuple[int, str | None], ...]
    separator: str


class _Lines:
    """Where labels stand on their lines, asked in order: each line is read once."""

    def __init__(self, folded: str) -> None:
        self.folded = folded
        self._read_to = 0  # the text before this offset has been searched for line breaks
        self._line_start = 0
        self._lead_end = -1  # not read yet

    def where(self, start: int) -> _Where:
        folded = self.folded
        if start > self._read_to:
            line_break = folded.rfind("\n", self._read_to, start)
            self._read_to = start
            if line_break >= 0:
                self._line_start = line_break + 1
                self._lead_end = -1
        line_start = self._line_start
        if self._lead_end < 0:
            self._lead_end = lead_end(folded, line_start)
        if start <= self._lead_end:
            return _Where.START
        stripped = folded[max(line_start, start - WINDOW) : start].rstrip()
        if not stripped:
            return _Where.MID
        last = stripped[-1]
        if (
            last in _SENTENCE_END
            or unicodedata.category(last) in {"So", "Sk", "Mn", "Me", "Cf", "Cs"}
            or _TRAILING_TOKEN.search(stripped)
        ):
            return _Where.AFTER_BREAK
        return _Where.MID


def _separator(folded: str, pos: int) -> tuple[str, int] | None:
    """The separator after a label at `pos`: its kind and where the answer text begins."""
    match = _SEPARATOR.match(folded, pos)
    if match is None:
        return None
    kind = match.lastgroup or "space"
    end = match.end()
    following = folded[end : end + 1]
    if kind != "space" and following.isdigit():
        return None  # "A1:30", "A1.5", "A1-3", "a 1:1 program"
    if kind == "dash" and match.group("dash") == "-" and following and not following.isspace():
        return None  # a hyphen glued to a word makes one: "a 2-day PD", "A1-Niveau", "R2-D2"
    if kind in {"dot", "paren", "colon"} and following and not following.isspace():
        token = _TOKEN.match(folded, end)
        if token and any(c.isdigit() for c in token.group()):
            return None  # "A2:3rd", "A1.5%"
    return kind, end


def _previous_word(folded: str, pos: int) -> str:
    """The word just before `pos` ("room" in "Room A3"), read back at most WINDOW characters."""
    end = pos
    while end > 0 and pos - end < WINDOW and folded[end - 1] in " \t":
        end -= 1
    start = end
    while start > 0 and end - start < WINDOW and folded[start - 1].isalpha():
        start -= 1
    return folded[start:end].lower()


def _next_word(folded: str, pos: int) -> str:
    match = _WORD_AFTER.match(folded, pos)
    return match.group(1).lower() if match else ""


def _targets(match: re.Match[str], question_count: int) -> tuple[tuple[int, str | None], ...]:
    found: list[tuple[int, str | None]] = []
    # Blank the prefixes inside "A1 & A2" so that only numbers (and parts) are read.
    more = match.group("more")
    if more:
        more = _INNER_PREFIX.sub(" ", more)
    for chunk in (match.group("first"), more):
        for number, part in _TARGET.findall(chunk):
            question = int(number)
            if 1 <= question <= question_count:
                target = (question, part.lower() or None)
                if target not in found:
                    found.append(target)
    return tuple(found)


def _label_at(
    masked: str, match: re.Match[str], context: PostContext
) -> tuple[tuple[tuple[int, str | None], ...], str, int] | None:
    """(targets, separator kind, where the answer text begins) if the match is a label."""
    targets = _targets(match, context.question_count)
    sep = _separator(masked, match.end())
    if not targets or sep is None:
        return None
    kind, text_start = sep
    if match.group("q") is not None:
        # A bare "Q3" is how questions are posted and retyped: a header only as "Q3 answer"
        # or "Q3 →".
        if match.group("answer_word") is None and kind != "arrow":
            return None
    elif match.group("answer_word") is not None:
        return None  # "A1 answers were great"
    if match.group("pre") is not None:
        prefix = match.group("pre").lower()
        gap = match.group("gap")
        spaced = bool(gap) and not gap.strip(" \t")
        if spaced and prefix not in _WORD_PREFIXES and kind == "space":
            return None  # "a 2 hour block", "A 3 de mis alumnos": a letter, a space, a number
        loose = kind == "space" or (
            kind == "dash" and not masked[text_start : text_start + 1].isspace()
        )
        if loose and _next_word(masked, text_start) in _NOT_AFTER_SPACE_LABEL:
            return None
    return targets, kind, text_start


def _find_labels(masked: str, context: PostContext) -> list[_Found]:
    if not _DIGIT.search(masked):
        return []
    lines = _Lines(masked)
    found: list[_Found] = []
    earlier: set[str] = set()  # separators of the labels accepted so far
    position = 0
    last = None
    while match := _LABEL.search(masked, position):
        position = match.end()
        last = match
        label = _label_at(masked, match, context)
        if label is None:
            if match.group("q") is not None:
                position = match.end("first")  # "Q3/A3:": the label after the question
            continue
        targets, kind, text_start = label
        where = lines.where(match.start())
        if where is not _Where.START and _previous_word(masked, match.start()) in _NOT_BEFORE_LABEL:
            continue
        if where is _Where.START:
            ok = True  # any separator, even "A3!!! ..."
        elif match.group("pre") is None:
            ok = where is _Where.AFTER_BREAK and kind == "colon"  # headers stand at label places
        elif where is _Where.AFTER_BREAK:
            # "Great question! A2: ...", "... today. A3) ...", "A1 Kahoot. A2 Padlet."
            ok = kind in _STRICT or (kind == "space" and kind in earlier)
        else:
            ok = kind == "colon" or (kind in _STRICT and kind in earlier)
        if ok:
            found.append(_Found(match.start(), text_start, targets, kind))
            earlier.add(kind)
    return found or _find_trailing_label(masked, last, context)


def _find_trailing_label(
    masked: str, last: re.Match[str] | None, context: PostContext
) -> list[_Found]:
    """ "Restorative circles - A3 #SELchat", "... (A3)": a label set off at the very end (only
    the last label-like match of the post can be)."""
    if last is None or last.group("pre") is None:
        return []
    label = _label_at(masked, last, context)
    if label is None or not TRAILER.fullmatch(masked, label[2]):
        return []
    targets, kind, text_start = label
    before = masked[: last.start()].rstrip()
    if len(before) > 1 and before[-1] in _TRAILING_LABEL_MARKS:
        return [_Found(len(before) - 1, text_start, targets, kind)]
    if len(before) > 1 and before[-1] in ".!?":  # "Choice boards!! A3 #chat"
        return [_Found(last.start(), text_start, targets, kind)]
    return []


def _find_bare_label(masked: str, question: int | None) -> _Found | None:
    """ "A: ..." with no number answers the question the post sits under, if any."""
    if question is None or ":" not in masked:
        return None
    lines = _Lines(masked)
    for match in _BARE_LABEL.finditer(masked):
        if lines.where(match.start()) is _Where.START:
            return _Found(match.start(), match.end(), ((question, None),), "colon")
    return None


def _join(before: str, after: str) -> str:
    head, tail = before.rstrip(), after.lstrip()
    if not head or not tail:
        return head + tail
    gap = before[len(head) :]
    return head + ("\n" if "\n" in gap else " ") + tail


def _own(text: str, start: int, end: int, quoted: list[tuple[int, int]]) -> str:
    """text[start:end] without the quoted spans (someone else's words), the pieces rejoined."""
    if not quoted:
        return text[start:end]
    body = ""
    for quote_start, quote_end in quoted:
        if quote_end <= start or quote_start >= end:
            continue
        body = _join(body, text[start : max(start, quote_start)])
        start = max(start, quote_end)
    return _join(body, text[start:end]) if body else text[start:end]


def _answers(
    text: str, origin: list[int] | None, labels: list[_Found], quoted: list[tuple[int, int]]
) -> tuple[Answer, ...]:
    def at(i: int) -> int:
        return origin[i] if origin is not None else i

    quoted = sorted((at(start), at(end)) for start, end in quoted)
    texts: dict[tuple[int, str | None], str] = {}
    for i, label in enumerate(labels):
        end = at(labels[i + 1].start) if i + 1 < len(labels) else len(text)
        body = _own(text, at(label.end), end, quoted)
        if i == 0:  # what precedes the first label (mentions, hashtags, a remark) stays with it
            body = _join(_own(text, 0, at(label.start), quoted), body)
        body = body.strip()
        for target in label.targets:
            texts[target] = f"{texts[target]}\n{body}".strip() if target in texts else body
    return tuple(Answer(question=q, text=body, part=part) for (q, part), body in texts.items())


# --------------------------------------------------------------------------------------------


def attribute(
    text: str, context: PostContext, quoted: tuple[tuple[int, int], ...] = ()
) -> Attribution:
    """Decide whether a post answers questions (and which), introduces its author, or chats.

    `quoted`: spans of `text` that quote someone else (from the markup: ``<blockquote>``);
    quotes written in the text ("RT @amy: ...", "“A1: ...” — @k") are found here."""
    folded, origin = fold(text)
    spans = quoted_spans(folded)
    if quoted:
        spans += _folded_spans(quoted, origin)
    own = own_words(folded, spans)
    masked = mask_urls(own)
    labels = _find_labels(masked, context)
    thread_question = context.reply_to_question or context.quote_of_question
    if thread_question is not None and not 1 <= thread_question <= context.question_count:
        thread_question = None
    if not labels:
        bare = _find_bare_label(masked, thread_question or context.current_question)
        labels = [bare] if bare else []
    if labels:
        return Attribution(PostKind.ANSWER, _answers(text, origin, labels, spans))
    if spans and (not own.strip() or is_reaction(own)):
        return Attribution(PostKind.CONVERSATION)  # passing on someone else's words
    if thread_question is not None:
        if is_reaction(own) or is_only_a_question(own):
            return Attribution(PostKind.CONVERSATION)
        if is_introduction(own, only=True):
            return Attribution(PostKind.INTRODUCTION)
        return Attribution(PostKind.ANSWER, (Answer(thread_question, text.strip()),))
    if context.reply_to_welcome:
        # A wave alone ("👋") under the welcome is a check-in; thanks or a host's welcome is not.
        if is_reaction(own, words_required=True) or is_welcoming(own):
            return Attribution(PostKind.CONVERSATION)
        return Attribution(PostKind.INTRODUCTION)
    if not is_welcoming(own) and is_introduction(own):
        return Attribution(PostKind.INTRODUCTION)
    return Attribution(PostKind.CONVERSATION)


def _folded_spans(
    quoted: tuple[tuple[int, int], ...], origin: list[int] | None
) -> list[tuple[int, int]]:
    """Spans of the original text as spans of the folded text."""
    if origin is None:
        return list(quoted)
    return [(bisect_left(origin, start), bisect_left(origin, end)) for start, end in quoted]


def attribute_html(html: str, context: PostContext) -> Attribution:
    """`attribute` for a Mastodon status' HTML content (its blockquotes are someone else's)."""
    post = read_html(html)
    return attribute(post.text, context, post.quoted)
