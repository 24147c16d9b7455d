"""Posts that react rather than answer: praise, agreement, thanks, a question back, a welcome.

A reply under a question that only reacts ("Great question!", "Love this 🙌", "Genau so!",
"+1 to everything said here") is conversation; a reaction with content ("Same here! Morning
meetings all the way") is an answer. A reaction is told by its words: at least one word that
reacts (praise, agreement, thanks, laughter), and no word beyond the small ones that go with
them ("so", "this", "idea", "question", "tonight" ...), in the languages the chats use.
"""

from __future__ import annotations

import re

from chatbot.collect.wording import LEAD, MENTION_OR_TAG, URL, WORDS

__all__ = ["is_only_a_question", "is_reaction", "is_welcoming"]

# Words that react: praise, agreement, thanks, cheering, laughter, following along.
_REACTING = frozenset(
    {
        # English
        "love", "loving", "loved", "loves", "lovely", "great", "good", "excellent", "awesome",
        "amazing", "fantastic", "brilliant", "wonderful", "nice", "cool", "wow", "whoa", "yes",
        "yess", "yesss", "yessss", "yep", "yup", "yeah", "agree", "agreed", "true", "exactly",
        "same", "ditto", "this", "thanks", "thank", "thx", "ty", "tysm", "stealing", "steal",
        "following", "nailed", "plus", "lol", "haha", "hahaha", "lmao", "omg", "ooh", "oooh",
        "perfect", "beautiful", "powerful", "absolutely", "totally", "definitely", "preach",
        "facts", "bravo", "congrats", "aplus", "spot", "yass", "yasss", "word", "mood", "relatable",
        "fire", "gold", "gem", "inspiring", "insightful", "helpful", "smart", "favorite",
        "favourite", "sooo", "soooo", "well", "cheers", "kudos", "bookmarking", "saving",
        "noted", "taking", "notes", "tough", "interesting", "hmm", "hmmm", "ooof", "oof",
        # Spanish, Catalan
        "gracias", "encanta", "encantó", "buena", "buenísima", "buenisima", "bueno", "excelente",
        "genial", "cierto", "verdad", "acuerdo", "totalmente", "gran", "increíble", "sí", "claro",
        "exacto", "exactamente", "brutal", "gràcies", "molt",
        # French
        "merci", "génial", "excellente", "bonne", "vrai", "accord", "exactement", "tellement",
        "super", "oui", "j'adore", "adore", "top", "parfait", "bien", "d'accord",
        # Portuguese
        "obrigado", "obrigada", "concordo", "adorei", "ótima", "otima", "boa", "verdade", "isso",
        "demais", "perfeito", "incrível", "sim",
        # German
        "danke", "genau", "stimmt", "toll", "tolle", "gute", "guter", "klasse", "richtig", "ja",
        "absolut", "prima", "spitze",
        # Italian
        "grazie", "bellissima", "bellissimo", "bella", "ottima", "ottimo", "esatto", "vero",
        "d'accordo", "assolutamente", "giusto", "brava", "bravi",
        # Dutch
        "dank", "bedankt", "eens", "precies", "klopt", "mooi", "goede", "goed", "helemaal",
        # Greek, Polish, Swedish, Turkish
        "τέλεια", "τελεια", "ευχαριστώ", "συμφωνώ", "dzięki", "świetne", "tak", "tack",
        "håller", "teşekkürler", "harika",
    }
)  # fmt: skip
# Small words that go with a reaction without making it an answer.
_ALONG = frozenset(
    {
        "i", "i'm", "im", "me", "my", "we", "you", "you're", "your", "it", "it's", "its", "that",
        "that's", "these", "those", "the", "a", "an", "and", "so", "such", "very", "really",
        "much", "too", "all", "of", "to", "for", "is", "are", "was", "be", "what", "one", "ones",
        "idea", "ideas", "question", "questions", "q", "answer", "answers", "point", "points",
        "share", "sharing", "shared", "post", "thread", "chat", "convo", "convos",
        "conversation", "conversations", "everything", "said", "here", "there", "now", "tonight",
        "again", "every", "month", "week", "always", "hosting", "host", "hosts", "oh", "ah", "aw",
        "just", "truly", "more", "on", "with", "in", "at", "everyone", "y'all", "yall", "folks",
        "friends", "fam", "team", "guys", "everybody", "today", "got", "has", "have",
        "been", "being", "glad", "happy", "important", "timely", "needed", "simple", "huge",
        "big", "bit", "lot", "lots", "least", "most", "ever", "still", "also", "organizing",
        "organising", "us", "our", "this", "one's", "cent", "percent",
        "100", "10", "1000", "x", "reminder", "way", "there's", "thought", "thoughts",
        # Spanish, Catalan
        "el", "la", "los", "las", "de", "del", "que", "qué", "por", "muy", "lo", "es",
        "pregunta", "preguntas", "todo", "todos", "tu", "tus", "esta", "este", "eso",
        "organizar", "compartir", "mucho", "muchas", "muchísimas", "una",
        "un", "y", "así", "com", "bé",
        # French
        "tout", "à", "fait", "beaucoup", "le", "les", "très", "pour", "l'organisation",
        "organisation", "c'est", "ça", "cette", "ce", "et", "du", "des", "partage",
        # Portuguese
        "muito", "pergunta", "e", "o", "os", "as", "essa", "esse", "pelo", "pela", "compartilhar",
        # German
        "frage", "sehr", "vielmals", "das", "ist", "fürs", "für", "teilen", "die", "der", "und",
        # Italian
        "domanda", "che", "mille", "tante", "per", "il", "molto", "sono",
        # Dutch
        "mee", "vraag", "zo", "het", "voor", "met", "delen", "ben",
        # Greek, Polish, Swedish, Turkish
        "ερώτηση", "ερωτηση", "pytanie", "fråga", "med", "soru",
    }
)  # fmt: skip
_THANKS = frozenset(
    {"thanks", "thank", "thx", "gracias", "merci", "danke", "obrigado", "obrigada", "grazie",
     "bedankt", "dank"}
)  # fmt: skip
_FOR = frozenset({"for", "you", "por", "pour", "de", "für", "pelo", "pela", "per", "voor", "je"})
_PRAISE_MARKS = re.compile(r"(?=[+a\d])(?<!\w)(?:\+1|a\+(?!\w)|\d+%)", re.IGNORECASE)
_WELCOMING = re.compile(
    r"(?:welcome|bienvenid[oa]s?|bienvenue|willkommen|bem[- ]vind[oa]s?|benvenut[oi]"
    r"|welkom)\b",
    re.IGNORECASE,
)
_SENTENCES = re.compile(r"(?<=[.!?])\s+")
# "Isn't it always about relationships?": a question that states a view is an answer.
_RHETORICAL = re.compile(
    r"[^\w]*(?:isn'?t|aren'?t|wasn'?t|don'?t|doesn'?t|didn'?t|wouldn'?t|shouldn'?t|won'?t"
    r"|can'?t|couldn'?t)[ \t]+(?:it|that|this|we|they|you|everything|all)\b",
    re.IGNORECASE,
)


def is_reaction(folded: str, *, words_required: bool = False) -> bool:
    """A reaction ("Great question!", "Love this 🙌", "+1") with nothing of an answer in it."""
    if URL.search(folded):
        return False  # a shared link is content
    marked = _PRAISE_MARKS.sub(lambda m: " aplus " if "+" in m.group() else " 100 ", folded)
    plain = MENTION_OR_TAG.sub(" ", marked).replace("\u2019", "'").lower()
    found = WORDS.findall(plain)
    if not found:
        return not words_required and "aplus" not in marked
    reacting = False
    i = 0
    while i < len(found):
        word = found[i]
        if word in _THANKS and found[i + 1 : i + 2] and found[i + 1] in _FOR:
            # "thanks for hosting tonight", "gracias por todo", "merci pour l'organisation"
            reacting = True
            i += 5
            continue
        if word in _REACTING:
            reacting = True
        elif word not in _ALONG:
            return False
        i += 1
    return reacting


def is_only_a_question(folded: str) -> bool:
    """ "@msgarcia how long did that take?": asking back in a thread is not an answer."""
    if URL.search(folded):
        return False
    plain = MENTION_OR_TAG.sub(" ", folded).strip()
    sentences = [s for s in _SENTENCES.split(plain) if WORDS.search(s)]
    return (
        bool(sentences)
        and all(_ends_with_a_question_mark(s) for s in sentences)
        and not any(_RHETORICAL.match(s) for s in sentences)
    )


def _ends_with_a_question_mark(sentence: str) -> bool:
    """ "... that take? 🤔": a "?" after the last word (read from the end: linear)."""
    end = len(sentence)
    while end and not (sentence[end - 1].isalnum() or sentence[end - 1] == "_"):
        end -= 1
    return "?" in sentence[end:]


def is_welcoming(folded: str) -> bool:
    """A host's "Welcome, Andre!" or "Bienvenidos": a greeting to others, not an introduction."""
    lead = LEAD.match(folded)
    return bool(_WELCOMING.match(folded, lead.end() if lead else 0))
