"""A post -> which question(s) of a chat it answers: answer labels, thread context, introductions.

Pure and offline: the caller tells us where the post sits in the chat (a `PostContext` built from
the network's reply/quote references); this module reads only the text.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from enum import Enum

from chatbot.kinds import PostKind
from chatbot.markup import html_to_text

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
# Labels: "A1:", "a1 -", "A 1:", "A1a", "A1/A2", "Answer 1:", "R1:" (respuesta, réponse, ...)

_PREFIX = r"(?:answers?|ans|respuestas?|r[eé]ponses?|respostas?|antwort(?:en)?|a|r)"
_WORD_PREFIXES = frozenset(
    {
        "answer", "answers", "ans", "respuesta", "respuestas", "reponse", "reponses",
        "réponse", "réponses", "resposta", "respostas", "antwort", "antworten",
    }
)  # fmt: skip
_JOINER = r"(?:,?[ \t]*(?:and|y|et|und|e|&|\+)|[ \t]*/|,)"
_LABEL = re.compile(
    rf"""
    (?<![\w@#+\-])                   # not inside a word, mention or hashtag
    (?P<pre>{_PREFIX})
    (?P<gap>[ \t]*\#[ \t]*|\.[ \t]?|-|[ \t]*)   # "A1", "A 1", "A#1", "a.1", "A-1"
    (?P<first>\d{{1,2}}[a-h]?)(?!\w)
    (?P<more>(?:{_JOINER}[ \t]*(?:{_PREFIX}[ \t]*[#.]?[ \t]*)?\d{{1,2}}[a-h]?(?!\w))*)
    """,
    re.IGNORECASE | re.VERBOSE,
)
_BARE_LABEL = re.compile(rf"(?<![\w@#+\-])(?P<pre>{_PREFIX})[ \t]*:(?![:/\d])", re.IGNORECASE)
_INNER_PREFIX = re.compile(rf"{_PREFIX}(?=[ \t]*[#.]?[ \t]*\d)", re.IGNORECASE)
_NUMBER = re.compile(r"(\d{1,2})([a-h]?)(?!\w)", re.IGNORECASE)
_SEPARATOR = re.compile(
    r"""
      [ \t]*(?P<colon>[:;]+)
    | [ \t]*(?P<paren>[)\]])
    | (?P<dot>\.)
    | [ \t]*(?P<dash>[-\u2012-\u2015\u2212~]+>?)
    | (?P<comma>,)
    | (?P<bang>!+)
    | (?P<space>(?=\s|$))
    """,
    re.VERBOSE,
)
# Leading matter that may precede a label at the start of a post or line: spaces, emoji,
# bullets and punctuation, mentions, hashtags, a question reference ("Q3 A3: ..."), a thread
# counter ("1/2", "(2/2)").
# Possessive and ordered (mentions first) so that "@a@a@a..." cannot backtrack exponentially.
_LEAD = re.compile(
    r"(?:[@#]\w[\w.@\-]*+|q[ \t]?\d{1,2}[a-h]?(?!\w)|\d{1,2}/\d{0,2}(?!\w)|re(?=[ \t]*:)"
    r"|\s|[^\w\s])*+",
    re.IGNORECASE,
)
_TOKEN = re.compile(r"\S+")
_WORD_BEFORE = re.compile(r"([^\W\d_]+)[ \t]*$")
_WORD_AFTER = re.compile(r"[ \t]*([^\W\d_]+)")
_WINDOW = 100  # how far back the look-behind helpers read: keeps hostile input linear
_TRAILING_TOKEN = re.compile(r"[@#][\w][\w.@\-]*$")
_URL = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
# "A1 sauce", "A4 paper", "A2 level": a label followed only by a space must not be a thing.
_NOT_AFTER_SPACE_LABEL = frozenset(
    {
        "sauce", "steak", "steaks", "paper", "papers", "size", "sized", "sheet", "sheets",
        "level", "levels", "format", "envelope", "envelopes", "grade", "rating", "rated",
        "poster", "posters", "print", "printer", "page", "pages", "tier", "highway", "road",
        "motorway", "route",
        # talking about a question's answers rather than answering: "A1 answers were great"
        "answers", "responses", "replies", "thread", "threads", "question", "questions",
        "was", "were",
    }
)  # fmt: skip
# Words that take a letter-number designator: "Room A3: PLC meeting", "section A1".
_NOT_BEFORE_LABEL = frozenset(
    {
        "room", "rm", "section", "table", "row", "building", "bldg", "page", "p", "grade",
        "level", "model", "plan", "seat", "gate", "cell", "column", "box", "hall", "wing",
        "portable", "lab", "unit", "vitamin", "paper", "size", "format", "form", "step",
        "part", "chapter", "figure", "fig", "exhibit", "appendix", "bus", "route",
    }
)  # fmt: skip
_SENTENCE_END = frozenset(".!?;:)]}\"'\u201d\u2019\u00bb*")
_STRICT = frozenset({"colon", "paren", "dot", "dash"})
_TRAILER = re.compile(r"(?:[@#]\w[\w.@\-]*+|\s|[^\w\s])*+")
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


def _fold(text: str) -> tuple[str, list[int]]:
    """NFKC per character (full-width "A1" -> "A1"), with a map back to the original offsets."""
    folded: list[str] = []
    origin: list[int] = []
    for i, char in enumerate(text):
        norm = unicodedata.normalize("NFKC", char) if ord(char) > 0x7F else char
        folded.append(norm)
        origin.extend([i] * len(norm))
    origin.append(len(text))
    return "".join(folded), origin


def _mask_urls(folded: str) -> str:
    return _URL.sub(lambda m: "_" * len(m.group()), folded)


def _where(folded: str, start: int) -> _Where:
    line_start = folded.rfind("\n", 0, start) + 1
    before = folded[line_start:start]
    if _LEAD.fullmatch(before):
        return _Where.START
    stripped = before.rstrip()
    if not stripped:
        return _Where.START
    last = stripped[-1]
    if (
        last in _SENTENCE_END
        or unicodedata.category(last) in {"So", "Sk", "Mn", "Me", "Cf", "Cs"}
        or _TRAILING_TOKEN.search(stripped[-_WINDOW:])
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
    if kind in {"dash", "dot", "paren", "colon"} and following and not following.isspace():
        token = _TOKEN.match(folded, end)
        if token and any(c.isdigit() for c in token.group()):
            return None  # "R2-D2"
    return kind, end


def _previous_word(folded: str, pos: int) -> str:
    match = _WORD_BEFORE.search(folded, max(0, pos - _WINDOW), pos)
    return match.group(1).lower() if match else ""


def _next_word(folded: str, pos: int) -> str:
    match = _WORD_AFTER.match(folded, pos)
    return match.group(1).lower() if match else ""


def _targets(match: re.Match[str], question_count: int) -> tuple[tuple[int, str | None], ...]:
    found: list[tuple[int, str | None]] = []
    # Blank the prefixes inside "A1 & A2" so that only numbers (and parts) are read.
    more = _INNER_PREFIX.sub(" ", match.group("more"))
    for chunk in (match.group("first"), more):
        for number, part in _NUMBER.findall(chunk):
            question = int(number)
            if 1 <= question <= question_count:
                target = (question, part.lower() or None)
                if target not in found:
                    found.append(target)
    return tuple(found)


def _find_labels(folded: str, context: PostContext) -> list[_Found]:
    masked = _mask_urls(folded)
    found: list[_Found] = []
    earlier: set[str] = set()  # separators of the labels accepted so far
    for match in _LABEL.finditer(masked):
        targets = _targets(match, context.question_count)
        sep = _separator(masked, match.end())
        if not targets or sep is None:
            continue
        kind, text_start = sep
        where = _where(masked, match.start())
        prefix = match.group("pre").lower()
        gap = match.group("gap")
        spaced = bool(gap) and not gap.strip(" \t")
        loose = kind == "space" or (
            kind == "dash" and not masked[text_start : text_start + 1].isspace()
        )
        if loose and _next_word(masked, text_start) in _NOT_AFTER_SPACE_LABEL:
            continue
        if spaced and prefix not in _WORD_PREFIXES and kind == "space":
            continue  # "a 2 minute video": a lone letter, a space and a number is prose
        if where is not _Where.START and _previous_word(masked, match.start()) in _NOT_BEFORE_LABEL:
            continue
        if where is _Where.START:
            ok = True  # any separator, even "A3!!! ..."
        elif where is _Where.AFTER_BREAK:
            ok = kind in _STRICT or (kind == "space" and bool(found))
        else:
            ok = kind == "colon" or (kind in _STRICT and kind in earlier)
        if ok:
            found.append(_Found(match.start(), text_start, targets, kind))
            earlier.add(kind)
    return found or _find_trailing_label(masked, context)


def _find_trailing_label(masked: str, context: PostContext) -> list[_Found]:
    """ "Restorative circles - A3 #SELchat", "... (A3)": a label set off at the very end."""
    for match in _LABEL.finditer(masked):
        targets = _targets(match, context.question_count)
        sep = _separator(masked, match.end())
        if not targets or sep is None or not _TRAILER.fullmatch(masked, sep[1]):
            continue
        before = masked[: match.start()].rstrip()
        if len(before) > 1 and before[-1] in _TRAILING_LABEL_MARKS:
            return [_Found(len(before) - 1, sep[1], targets, sep[0])]
        if len(before) > 1 and before[-1] in ".!?":  # "Choice boards!! A3 #chat"
            return [_Found(match.start(), sep[1], targets, sep[0])]
    return []


def _find_bare_label(folded: str, question: int | None) -> _Found | None:
    """ "A: ..." with no number answers the question the post sits under, if any."""
    if question is None:
        return None
    masked = _mask_urls(folded)
    for match in _BARE_LABEL.finditer(masked):
        if _where(masked, match.start()) is _Where.START:
            return _Found(match.start(), match.end(), ((question, None),), "colon")
    return None


def _join(before: str, after: str) -> str:
    head, tail = before.rstrip(), after.lstrip()
    if not head or not tail:
        return head + tail
    gap = before[len(head) :]
    return head + ("\n" if "\n" in gap else " ") + tail


def _answers(text: str, origin: list[int], labels: list[_Found]) -> tuple[Answer, ...]:
    texts: dict[tuple[int, str | None], str] = {}
    for i, label in enumerate(labels):
        end = origin[labels[i + 1].start] if i + 1 < len(labels) else len(text)
        body = text[origin[label.end] : end]
        if i == 0:  # what precedes the first label (mentions, hashtags, a remark) stays with it
            body = _join(text[: origin[label.start]], body)
        body = body.strip()
        for target in label.targets:
            texts[target] = f"{texts[target]}\n{body}".strip() if target in texts else body
    return tuple(Answer(question=q, text=body, part=part) for (q, part), body in texts.items())


# --------------------------------------------------------------------------------------------
# Posts without a label: pleasantries and introductions

_PLEASANTRIES = frozenset(
    {
        "great question", "good question", "excellent question", "awesome question",
        "fantastic question", "tough question", "love this question", "love this", "love it",
        "love that", "love these", "i love this", "i love that", "love", "loving this",
        "thanks", "thank you", "thx", "ty", "thanks for hosting", "thank you for hosting",
        "thanks for sharing", "thank you for sharing", "thanks for the chat", "great chat",
        "fun chat", "so true", "true", "agreed", "agree", "i agree", "this", "exactly",
        "same", "me too", "ditto", "well said", "great idea", "great point", "great answer",
        "great share", "so good", "this is great", "this is so good", "amazing", "awesome",
        "wow", "nice", "brilliant", "fantastic", "powerful", "stealing this",
        "same here", "so do we",
        "i'm stealing this", "so much this", "all of this", "see you next time",
        "see you next month", "can't wait", "gracias", "muchas gracias", "buena pregunta",
        "excelente pregunta", "gran pregunta", "me encanta", "merci", "merci beaucoup",
        "bonne question", "excellente question", "danke", "vielen dank", "danke schön",
        "gute frage", "tolle frage", "obrigado", "obrigada", "boa pergunta", "ótima pergunta",
        "adorei", "yesss", "yess", "omg", "haha", "lol", "plus one",
    }
)  # fmt: skip
_FILLERS = frozenset(
    {
        "oh", "so", "such", "a", "really", "very", "all", "everyone", "y'all", "yall",
        "folks", "friends", "again", "tonight", "and", "the", "what", "for", "too",
        "just", "yes", "yay", "ooh", "ah", "aw", "truly", "totally", "soooo", "sooo",
        "much", "team", "fam", "guys", "everybody", "today", "always", "muy", "très",
        "sehr", "muito", "todos", "à", "tous", "@", "is", "it", "was",
    }
)  # fmt: skip
_THANKS = frozenset({"thanks", "thank", "thx", "gracias", "merci", "danke", "obrigado", "obrigada"})
_FOR = frozenset({"for", "you", "por", "pour", "de", "für", "pelo", "pela"})
_WELCOMING = re.compile(
    r"(?:welcome|bienvenid[oa]s?|bienvenue|willkommen|bem[- ]vind[oa]s?)\b", re.IGNORECASE
)
_LONGEST_PLEASANTRY = max(len(p.split()) for p in _PLEASANTRIES)
_MENTION_OR_TAG = re.compile(r"[@#][\w][\w.@\-]*")


def _is_pleasantry(folded: str, *, words_required: bool = False) -> bool:
    """A reaction ("Great question!", "Love this 🙌", "+1") with nothing of an answer in it."""
    if _URL.search(folded):
        return False  # a shared link is content
    plain = _MENTION_OR_TAG.sub(" ", folded).replace("\u2019", "'").lower()
    words = re.findall(r"[^\W_]+(?:'[^\W_]+)?", plain.replace("+1", " plus one "))
    if not words:
        return not words_required
    i = 0
    while i < len(words):
        if words[i] in _THANKS and words[i + 1 : i + 2] and words[i + 1] in _FOR:
            i += 5  # "thanks for hosting tonight", "gracias por todo", "obrigada por organizar"
            continue
        for size in range(min(_LONGEST_PLEASANTRY, len(words) - i), 0, -1):
            if " ".join(words[i : i + size]) in _PLEASANTRIES:
                i += size
                break
        else:
            if words[i] not in _FILLERS:
                return False
            i += 1
    return True


def _is_only_a_question(folded: str) -> bool:
    """ "@msgarcia how long did that take?": asking back in a thread is not an answer."""
    if _URL.search(folded):
        return False
    plain = _MENTION_OR_TAG.sub(" ", folded).strip()
    sentences = [s for s in re.split(r"(?<=[.!?])\s+", plain) if re.search(r"[^\W_]", s)]
    return bool(sentences) and all(re.search(r"\?[^\w]*$", s) for s in sentences)


def _is_welcoming(folded: str) -> bool:
    """A host's "Welcome, Andre!" or "Bienvenidos": a greeting to others, not an introduction."""
    lead = _LEAD.match(folded)
    return bool(_WELCOMING.match(folded, lead.end() if lead else 0))


_GREETING = (
    r"(?:hi+|hello+|hey+|hiya|howdy|greetings|good[ \t]+(?:morning|afternoon|evening|night)"
    r"|hola|buenas(?:[ \t]+(?:noches|tardes|d[ií]as))?|bonjour|bonsoir|salut|coucou|hallo"
    r"|guten[ \t]+(?:abend|morgen|tag)|servus|moin|ol[áa]|oi|boa[ \t]+(?:noite|tarde))"
)
_AUDIENCE = (
    r"(?:[ \t,]+(?:all|everyone|everybody|friends|folks|y'?all|team|there|fam|todos"
    r"|a[ \t]+todos|tout[ \t]+le[ \t]+monde|à[ \t]+tous|zusammen|alle|pessoal|gente"
    r"|[@#][\w][\w.@\-]*))*"
)
_OPENING = rf"(?:{_GREETING}{_AUDIENCE}[^\w]*)"  # may end a paragraph: "Hi all!\n\nI'm Mo"
_SELF = (
    r"(?:i['\u2019]?m|i[ \t]+am|my[ \t]+name[ \t]+is|soy|me[ \t]+llamo|mi[ \t]+nombre[ \t]+es"
    r"|je[ \t]+suis|je[ \t]+m['\u2019]appelle|moi[ \t,]+c['\u2019]est|ich[ \t]+bin"
    r"|ich[ \t]+hei(?:ß|ss)e"
    r"|mein[ \t]+name[ \t]+ist|eu[ \t]+sou|sou|meu[ \t]+nome[ \t]+é|me[ \t]+chamo)"
)
_NAME = r"(?P<name>[^\W\d_][\w'\u2019\-]*)"
_INTRO_PATTERNS = (
    # "Hi all! I'm Jen, ..." / "Soy Marta, ..." / "Hi! It's Sam from ..."
    # Portuguese puts an article before the name: "Sou o Paulo", "Eu sou a Bia".
    re.compile(rf"{_OPENING}?{_SELF}(?:[ \t]+(?:o|a))?[ \t]+{_NAME}", re.IGNORECASE),
    re.compile(rf"{_OPENING}(?:this[ \t]+is|it['\u2019]?s)[ \t]+{_NAME}", re.IGNORECASE),
    # "Jen here, 3rd grade" / "Hi! Jen Smith here"
    re.compile(
        rf"{_OPENING}?{_NAME}(?:[ \t]+(?P<surname>[^\W\d_][\w'\u2019\-]*))?[ \t]+here"
        r"(?=[ \t]*(?:[^\w\s]|$)|[ \t]+(?:from|in|at|joining|checking|tonight|again)\b)",
        re.IGNORECASE,
    ),
)
_CHECK_IN = re.compile(
    rf"{_OPENING}?(?:just[ \t]+)?(?:checking[ \t]+in|jumping[ \t]+in|popping[ \t]+in|joining"
    r"|lurking|hello|greetings|saludos|hola|bonjour|hallo|ol[áa]|howdy)"
    r"(?:[ \t]+(?:late|tonight|again|us))?"
    r"(?:\b(?:[@#]\w[\w.@\-]*+|[^\w\n])*+$|[ \t]+(?:from|desde|de|depuis|aus)\b)",
    re.IGNORECASE,
)
_NAME_ROLE = re.compile(
    rf"{_OPENING}?(?P<name>[^\W\d_][\w'\u2019\-]*)"
    r"(?:[ \t]+[^\W\d_][\w'\u2019\-]*)?[ \t]*[,\u2013\u2014]",
    re.IGNORECASE,
)
# "Liz from Prairie View MS", "Hey all! Sam from Denver"
_NAME_FROM = re.compile(
    rf"(?P<opening>{_OPENING})?(?P<name>[^\W\d_][\w'\u2019\-]*)[ \t]+from[ \t]+(?P<place>\w)",
    re.IGNORECASE,
)
_ROLE = re.compile(
    r"\b(?:teacher|teach|teaching|principal|coach|librarian|counselor|superintendent|admin"
    r"|administrator|instructional|specialist|director|coordinator|tosa|kinder\w*"
    r"|\d+(?:st|nd|rd|th)[ \t]+grade|grade[ \t]+\d+|hs|ms|es|k-?\d+|maestr[ao]|profesora?"
    r"|docente|enseignante?|professeure?|lehrer(?:in)?|professora?)\b",
    re.IGNORECASE,
)
_NOT_NAMES = frozenset(
    {
        "so", "not", "here", "back", "excited", "happy", "glad", "late", "also", "just",
        "really", "very", "still", "a", "an", "the", "in", "at", "on", "going", "sure",
        "thrilled", "ready", "thankful", "grateful", "looking", "curious", "new", "always",
        "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday",
        "time", "great", "good", "that", "this", "it", "all", "my", "our", "we", "from",
        "teaching", "currently", "now", "with", "muy", "très", "sehr", "feliz", "contento",
        "contenta", "ravi", "ravie", "froh", "aqui", "aquí", "ici", "hier", "um", "uma",
        "un", "una", "une", "ein", "eine", "el", "la", "le", "der", "die", "o", "same",
        "me", "everyone", "anyone", "someone", "nobody", "who", "what", "nice", "love",
        "hello", "hi", "hey", "thanks", "lurking", "checking", "jumping",
    }
)  # fmt: skip


def _is_introduction(folded: str) -> bool:
    """A top-level self-introduction or check-in: "Hi all! I'm Jen, 3rd grade at Oak ES"."""
    body = _LEAD.match(folded)
    start = body.end() if body else 0
    text = folded[start:]
    if _is_welcoming(text):
        return False
    for pattern in _INTRO_PATTERNS:
        match = pattern.match(text)
        if match and _looks_like_name(match.group("name")):
            surname = match.groupdict().get("surname")
            if surname is None or surname[:1].isupper():
                return True
    if _CHECK_IN.match(text.split("\n", 1)[0]):
        return True
    from_place = _NAME_FROM.match(text)
    if (
        from_place
        and _looks_like_name(from_place.group("name"))
        and from_place.group("place").isupper()
        and (from_place.group("opening") or _ROLE.search(text, 0, from_place.end() + 60))
    ):
        return True
    named = _NAME_ROLE.match(text)
    return bool(
        named
        and _looks_like_name(named.group("name"))
        and _ROLE.search(text, named.end(), named.end() + 60)
    )


def _looks_like_name(word: str) -> bool:
    return word[:1].isupper() and word.lower() not in _NOT_NAMES


# --------------------------------------------------------------------------------------------


def attribute(text: str, context: PostContext) -> Attribution:
    """Decide whether a post answers questions (and which), introduces its author, or chats."""
    folded, origin = _fold(text)
    labels = _find_labels(folded, context)
    thread_question = context.quote_of_question or context.reply_to_question
    if thread_question is not None and not 1 <= thread_question <= context.question_count:
        thread_question = None
    if not labels:
        bare = _find_bare_label(folded, thread_question or context.current_question)
        labels = [bare] if bare else []
    if labels:
        return Attribution(PostKind.ANSWER, _answers(text, origin, labels))
    if thread_question is not None:
        if _is_pleasantry(folded) or _is_only_a_question(folded):
            return Attribution(PostKind.CONVERSATION)
        return Attribution(PostKind.ANSWER, (Answer(thread_question, text.strip()),))
    if context.reply_to_welcome:
        # A wave alone ("👋") under the welcome is a check-in; thanks or a host's welcome is not.
        if _is_pleasantry(folded, words_required=True) or _is_welcoming(folded):
            return Attribution(PostKind.CONVERSATION)
        return Attribution(PostKind.INTRODUCTION)
    if _is_introduction(folded):
        return Attribution(PostKind.INTRODUCTION)
    return Attribution(PostKind.CONVERSATION)


def attribute_html(html: str, context: PostContext) -> Attribution:
    """`attribute` for a Mastodon status' HTML content."""
    return attribute(html_to_text(html), context)
