"""Self-introductions and check-ins: "Hi all! Jen, 3rd grade, Oak ES", "Checking in late!".

A post is read as a run of parts (split at sentence ends, line breaks, emoji and commas), each
of which is a greeting ("Hi all", "Boa noite, pessoal"), a check-in ("Checking in", "Present!",
"Lurking tonight but here", "mi unisco al chat"), the poster's name ("I'm Thu", "Jo from
Spokane", "Kris"), a role ("instructional coach", "prof des écoles", "3rd grade"), a place
("Highlands Ranch", "Columbus OH"), or something else. An introduction starts (after any
greetings) with a check-in or the poster's name; a greeting alone is not one.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from enum import Enum

from chatbot.collect.wording import MENTION_OR_TAG, URL

__all__ = ["is_introduction"]


class _Part(Enum):
    GREETING = "greeting"
    CHECK_IN = "check-in"
    SELF = "self"  # "I'm Thu", "Jen here", "Jo from Spokane": the poster names themself
    NAME = "name"  # a name alone: "Kris", "Ms. Park"
    ROLE = "role"
    PLACE = "place"
    OTHER = "other"


_GREETING = (
    r"(?:hi+|hello+|hey+|hiya|howdy|greetings|hola+|holaa+|bonjour|bonsoir|salut|coucou|hallo"
    r"|moin|servus|ol[áa]|oi|ciao|buonasera|buongiorno|goedenavond|goedemorgen|hoi|hej|tjena"
    r"|saludos|happy[ \t]+\w+|(?:good[ \t]+)?(?:morning|afternoon|evening|night)"
    r"|buenas(?:[ \t]+(?:noches|tardes|d[ií]as))?|guten[ \t]+(?:abend|morgen|tag)"
    r"|boa[ \t]+(?:noite|tarde)|bom[ \t]+dia|bon[ \t]+vespre|bona[ \t]+nit|cze[śs][ćc]"
    r"|привіт|привет|안녕하세요|こんばんは|こんにちは)"
)
_AUDIENCE = (
    r"(?:all|everyone|everybody|friends|folks|y'?all|yall|team|there|fam|peeps|todos|todas"
    r"|a[ \t]+todos|tout[ \t]+le[ \t]+monde|à[ \t]+tous|zusammen|alle|pessoal|gente|a[ \t]+tutti"
    r"|tutti|iedereen|allemaal|alla|allihop|chat|again)"
)
_GREETING_PART = re.compile(rf"{_GREETING}(?:[ \t]+{_AUDIENCE})*|{_AUDIENCE}", re.IGNORECASE)
# Check-in phrases, at the start of a part, and what may follow them.
_CHECK_IN_HEAD = (
    r"(?:(?:just|finally|also|and|i'?m|i[ \t]+am|we'?re|sorry[ \t]+i'?m"
    r"|(?:so[ \t]+)?(?:glad|happy|excited)[ \t]+to[ \t]+be)[ \t]+)*"
    r"(?:checking[ \t]+in|check[ \t]+in|jumping[ \t]+in|popping[ \t]+in|joining|joined"
    r"|lurking|present|présente?|presente|here|late|back|reporting[ \t]+in|in[ \t]+the[ \t]+house"
    r"|first[ \t]+(?:time|chat)(?:[ \t]+(?:joining|here|chatting))?|new[ \t]+here"
    r"|me[ \t]+uno|me[ \t]+sumo|conect[áa]ndome|aqu[íi][ \t]+estoy|estoy[ \t]+aqu[íi]"
    r"|je[ \t]+me[ \t]+joins|mi[ \t]+unisco|(?:ich[ \t]+)?bin[ \t]+(?:heute[ \t]+)?dabei"
    r"|ik[ \t]+(?:lees|doe)[ \t]+(?:\w+[ \t]+)?mee|chegando|estou[ \t]+aqui"
    r"|första[ \t]+gången|här)"
)
_CHECK_IN_TAIL = (
    r"(?:[ \t]+(?:late|tonight|again|now|today|agora|ce[ \t]+soir|esta[ \t]+noche|stasera"
    r"|heute|vanavond|ikväll|too|as[ \t]+well|in|here|mee|à[ \t]+vous|al[ \t]+chat|do[ \t]+chat"
    r"|but[ \t]+here|and[ \t]+learning|\+[ \t]+learning|for[ \t]+a[ \t]+bit"
    r"|(?:(?:from|desde|de|depuis|aus|da|with|con|avec|mit)\b|w/).*))*"
)
_CHECK_IN_PART = re.compile(
    rf"{_CHECK_IN_HEAD}{_CHECK_IN_TAIL}"
    rf"|{_GREETING}(?:[ \t]+{_AUDIENCE})*[ \t]+(?:from|desde|depuis|aus|da|de|em)[ \t]+\S.*",
    re.IGNORECASE,
)
# "A 2nd grade teacher from Ohio checking in", "Late but here".
_CHECK_IN_END = re.compile(r".*\b(?:checking[ \t]+in|but[ \t]+here|here[ \t]+too)$", re.IGNORECASE)
_SELF = re.compile(
    r"(?:(?:i['\u2019]?m|i[ \t]+am|my[ \t]+name[ \t]+is|this[ \t]+is|it['\u2019]?s|soy"
    r"|me[ \t]+llamo|je[ \t]+suis|je[ \t]+m['\u2019]appelle|moi[ \t,]+c['\u2019]est|ich[ \t]+bin"
    r"|ich[ \t]+hei(?:ß|ss)e|mein[ \t]+name[ \t]+ist|(?:eu[ \t]+)?sou(?:[ \t]+(?:o|a))?"
    r"|me[ \t]+chamo|sono|mi[ \t]+chiamo|ik[ \t]+ben|jag[ \t]+heter|jag[ \t]+är)[ \t]+"
    r"(?P<name>[^\W\d_][\w'\u2019\-]*)"
    r"|(?P<here>[^\W\d_][\w'\u2019\-.]*)(?:[ \t]+(?-i:[A-Z])[\w'\u2019\-]*)?[ \t]+here\b"
    r"|(?P<from>[^\W\d_][\w'\u2019\-]*)[ \t]+(?:from|desde|aus|depuis)[ \t]+(?P<place>\w))",
    re.IGNORECASE,
)
_LETTERS = r"[^\W\d_](?:[^\W\d_]|['\u2019\-](?=[^\W\d_]))*"  # a word of letters: "O'Neil"
_TITLE = r"(?:mr|mrs|ms|mx|dr|miss|prof|sr|sra|mme|m|herr|frau)\.?[ \t]+"
_NAME_PART = re.compile(
    rf"(?:{_TITLE})?(?P<name>{_LETTERS})(?:[ \t]+{_LETTERS})?",
    re.IGNORECASE,
)
# Words that say what someone does or where: checked word by word (one regex over a long list
# of alternatives, searched at every position, was the slowest step of attribution).
_ROLE_WORDS = frozenset(
    {
        "teacher", "teachers", "teach", "teaches", "teaching", "teachr", "principal", "ap",
        "coach", "librarian", "counselor", "counsellor", "psych", "superintendent", "admin",
        "administrator", "instructional", "instr", "interventionist", "specialist", "director",
        "coordinator", "tosa", "bcba", "slp", "dean", "para", "sped", "eld", "esl", "ell", "ela",
        "stem", "cs", "hs", "ms", "es", "newcomer", "bilingual", "math", "science", "history",
        "english", "reading", "school", "district", "educator", "faculty", "student", "cpe",
        "maestra", "maestro", "maestras", "maestros", "profe", "profesor", "profesora",
        "professor", "professora", "professore", "prof", "docente", "docent", "enseignant",
        "enseignante", "professeur", "professeure", "lehrer", "lehrerin", "gymnasium",
        "insegnante", "leerkracht", "lärare", "coordenadora", "coordenador", "coordinadora",
        "coordinador", "pedagógica", "collège", "lycée", "école", "écoles", "escuela", "colegio",
        "secundaria", "primaria", "scuola", "groep", "вчителька", "вчитель", "учитель",
        "учительница", "교사",
    }
)  # fmt: skip
_ROLE_STEMS = ("kinder",)  # kinder, kindergarten
_ROLE_ENDINGS = ("schule",)  # Grundschule, Berufsschule
# "3rd grade", "grade 8", "K-2", "pre-K", "2nd yr".
_ROLE_SHAPES = re.compile(
    r"(?=[pkg\d])(?<![\w\-])(?:pre-?k|k-?\d+|\d+(?:st|nd|rd|th|º|ª|ro|er|e|o|a)?[ \t]+"
    r"(?:grade|gr|year|yr)|grade[ \t]+\d+)(?![\w\-])",
    re.IGNORECASE,
)
_TOKENS = re.compile(r"[^\W_]+(?:['\u2019\-][^\W_]+)*")  # "pre-teach" and "check-in" are one
_ROLE_LENGTH = 10  # "CPE dans un collège à Nantes"; a longer part says more than a role
# Possessive: a run of capitals could otherwise be split into words in cubic many ways.
_PLACE = re.compile(
    r"(?:(?:in|at|from|en|em|à|a|aus|i|da|de)[ \t]+)?(?:[A-Z][\w'\-.]*+[ \t]*+){1,4}"
)
_PARTS = re.compile(r"[.!?¡¿…\n]+|[^\w\s,'\u2019&/#@+\-().]+|,")
# A word that every check-in or self-naming has (more than enough: rules most posts out at once).
_HINT = frozenset(
    {
        "check", "checking", "check-in", "checkin", "jumping", "popping", "joining", "joined",
        "join", "lurking", "present", "presente", "présent", "présente", "here", "late", "back",
        "first", "new", "reporting", "house", "i'm", "im", "am", "name", "this", "it's", "soy",
        "sou", "je", "ich", "sono", "mi", "ik", "jag", "me", "estoy", "aquí", "aqui", "chegando",
        "conectándome", "conectandome", "dabei", "mee", "här", "första", "from", "desde", "aus",
        "depuis", "llamo", "chamo", "appelle", "heiße", "heisse", "uno", "sumo", "unisco",
        "joins", "i",
    }
)  # fmt: skip
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
        "hello", "hi", "hey", "thanks", "lurking", "checking", "jumping", "sorry", "welcome",
        "yes", "no", "and", "but", "or", "if", "when", "they", "them", "their", "you", "your",
        "its", "is", "was", "today", "tonight", "first", "coffee", "teacher", "teachers",
    }
)  # fmt: skip


def is_introduction(folded: str, *, only: bool = False) -> bool:
    """A self-introduction or check-in ("Hi all! Jen, 3rd grade at Oak ES", "Present! 🙋").

    With `only`, nothing else may be in the post (a reply under a question that only checks in
    is an introduction; one that also answers is an answer)."""
    if only and _HINT.isdisjoint(_TOKENS.findall(folded.lower())):
        return False  # no word of a check-in or of a name said outright: cheaply out
    # Parts are classified lazily: the first one or two usually decide.
    parts = (_classify(part) for part in _split(folded))
    meaningful: Iterator[_Part] = (p for p in parts if p is not None and p is not _Part.GREETING)
    first = next(meaningful, None)
    if first is None or first in (_Part.OTHER, _Part.PLACE):
        return False
    seen: list[_Part] = [first]
    if first is _Part.NAME:
        second = next(meaningful, None)
        if second not in (_Part.ROLE, _Part.PLACE):
            return False
        seen.append(second)
    elif first is _Part.ROLE:
        # "A 2nd grade teacher from Ohio checking in" reads as a role, then the check-in.
        seen += list(meaningful)
        if _Part.CHECK_IN not in seen:
            return False
    if not only:
        return True
    seen += list(meaningful)
    # Nothing but introducing, and a check-in or a name said outright.
    return _Part.OTHER not in seen and (_Part.CHECK_IN in seen or _Part.SELF in seen)


def _split(folded: str) -> list[str]:
    text = MENTION_OR_TAG.sub(" ", URL.sub(" ", folded))
    return [part.strip(" \t-()") for part in _PARTS.split(text)]


def _classify(part: str) -> _Part | None:
    if not part or not any(c.isalpha() for c in part):
        return None
    if _GREETING_PART.fullmatch(part):
        return _Part.GREETING
    if _CHECK_IN_PART.fullmatch(part) or _CHECK_IN_END.match(part):
        return _Part.CHECK_IN
    self_match = _SELF.match(part)
    if self_match:
        name = self_match.group("name") or self_match.group("here") or self_match.group("from")
        place = self_match.group("place")
        if _looks_like_name(name) and (place is None or place.isupper()):
            return _Part.SELF
    name = _NAME_PART.fullmatch(part)
    role = _is_role(part)
    if name and _looks_like_name(name.group("name")) and not role:
        return _Part.NAME
    if role and len(part.split()) <= _ROLE_LENGTH:
        return _Part.ROLE
    if _PLACE.fullmatch(part):
        return _Part.PLACE
    return _Part.OTHER


def _is_role(part: str) -> bool:
    for word in _TOKENS.findall(part.lower()):
        if word in _ROLE_WORDS or word.startswith(_ROLE_STEMS) or word.endswith(_ROLE_ENDINGS):
            return True
    return bool(_ROLE_SHAPES.search(part))


def _looks_like_name(word: str) -> bool:
    return word[:1].isupper() and word.lower() not in _NOT_NAMES
