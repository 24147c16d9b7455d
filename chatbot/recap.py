"""The recap thread: a headline, one post per question with its highlights, a closing post.

Pure: facts in, post texts out, each within its network's limit. Long content is
split at sentence, then word, boundaries. Only the hosts are @-mentioned;
participants are credited by name and linked, never mentioned, and people who
opted out are never quoted, named or linked.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from chatbot.kinds import PARTICIPANT_KINDS, StepKind, is_participant
from chatbot.plan import ChatPlan, credit, describe_start, join_names
from chatbot.posts import Author
from chatbot.public import clean_name, terminal_text
from chatbot.script import ChatScript, NetworkName
from chatbot.store import Store
from chatbot.text import Limits, measure

QUOTE_CHARS = 90  # a highlight quotes at most this much of an answer
HIGHLIGHTS = 2  # answers highlighted per question


@dataclass(frozen=True)
class Highlight:
    """An answer worth showing: who, a short quote and a link."""

    name: str
    text: str
    url: str
    score: int  # likes + reposts


@dataclass(frozen=True)
class QuestionFacts:
    number: int
    text: str  # the question as posted, without "Qn:" and the hashtag
    answers: int
    highlights: tuple[Highlight, ...] = ()


@dataclass(frozen=True)
class RecapFacts:
    """Everything the recap says about one chat on one network."""

    title: str
    hashtag: str
    participants: int
    answers: int
    first_timers: int
    credits: str  # "our guest X and co-moderators Y and Z", already formatted for the network
    questions: tuple[QuestionFacts, ...] = ()
    next_chat: str = ""  # e.g. "Thursday, February 4 at 8:00 PM EST"
    transcript_url: str = ""
    milestones: tuple[tuple[str, int], ...] = ()  # (name, chats of the series) reached tonight


def shorten(text: str, limit: int = QUOTE_CHARS) -> str:
    """At most ``limit`` characters, cut at a word boundary, with an ellipsis."""
    clean = " ".join(text.split())
    if len(clean) <= limit:
        return clean
    cut = clean[: limit + 1].rsplit(" ", 1)[0].rstrip(",;:.-\u2013\u2014")  # dashes too
    return f"{cut}…"


# Where a server or our facets would read a mention: "@" after no word character (nor "="
# or "/", as Mastodon's Account::MENTION_RE) and before a name. A full-width at sign
# (U+FF20) there keeps the text readable and pings no one.
_MENTION_AT = re.compile(r"(?<![=/\w])@(?=[\w.-])")


def unmentioned(text: str) -> str:
    """``text`` (a participant's words or name) with every would-be mention disarmed."""
    return _MENTION_AT.sub("\uff20", text)


def _plural(count: int, one: str, many: str | None = None) -> str:
    return f"{count} {one if count == 1 else (many or one + 's')}"


def compose(facts: RecapFacts, network: NetworkName, limits: Limits) -> list[str]:
    """The recap thread's posts for ``network``, in order, each within the limit."""
    tag = f"#{facts.hashtag}"
    head = (
        f"Recap of {tag}: {facts.title}. "
        f"{_plural(facts.participants, 'participant')} shared {_plural(facts.answers, 'answer')}"
        + (
            f", and we welcomed {_plural(facts.first_timers, 'first-timer')}"
            if facts.first_timers
            else ""
        )
        + ". "
        + (f"Thank you to {facts.credits}! " if facts.credits else "Thank you all! ")
        + "Highlights by question follow 🧵"
    )
    items = [head]
    for question in facts.questions:
        lines = [f"Q{question.number}: {shorten(question.text, 140)}"]
        lines.append(f"{_plural(question.answers, 'answer')}.")
        for highlight in question.highlights:
            quote = terminal_text(unmentioned(shorten(highlight.text)))
            name = unmentioned(clean_name(highlight.name))
            lines.append(f"“{quote}” ({name}) {highlight.url}")
        items.append("\n".join(lines))
    if facts.milestones:
        cheers = "; ".join(f"{name}: {count} chats" for name, count in facts.milestones)
        items.append(f"🎉 Milestones tonight: {cheers}. Thank you for coming back!")
    last = []
    if facts.next_chat:
        last.append(f"Next chat: {facts.next_chat}. See you there!")
    if facts.transcript_url:
        last.append(f"The full transcript: {facts.transcript_url}")
    last.append(f"Thanks for joining {tag}.")
    items.append(" ".join(last))
    posts: list[str] = []
    for item in items:
        posts.extend(split_to_fit(item, network, limits))
    return posts


def _fits(text: str, network: NetworkName, limits: Limits) -> bool:
    return measure(network, text, limits).fits


def split_to_fit(text: str, network: NetworkName, limits: Limits) -> list[str]:
    """``text`` as few posts as possible, split at line, then sentence, then word boundaries."""
    if _fits(text, network, limits):
        return [text]
    for pattern in (r"\n", r"(?<=[.!?…])\s+", r"\s+"):
        pieces = [p for p in re.split(pattern, text) if p.strip()]
        if len(pieces) < 2:
            continue
        joiner = "\n" if pattern == r"\n" else " "
        posts: list[str] = []
        current = ""
        for piece in pieces:
            candidate = f"{current}{joiner}{piece}" if current else piece
            if _fits(candidate, network, limits):
                current = candidate
                continue
            if current:
                posts.append(current)
            if _fits(piece, network, limits):
                current = piece
            else:
                posts.extend(split_to_fit(piece, network, limits))
                current = ""
        if current:
            posts.append(current)
        return posts
    # One unbreakable word longer than a post: cut it (a URL this long is not clickable anyway).
    half = len(text) // 2
    return [
        *split_to_fit(text[:half], network, limits),
        *split_to_fit(text[half:], network, limits),
    ]


def _question_text(posted: str, number: int, hashtag: str) -> str:
    text = re.sub(rf"^Q{number}:\s*", "", posted.strip())
    return re.sub(rf"\s*#{re.escape(hashtag)}\s*$", "", text, flags=re.IGNORECASE)


def _without_tag(text: str, hashtag: str) -> str:
    """An answer quoted without the chat's own hashtag (the recap carries it already)."""
    return " ".join(
        re.sub(rf"(?<!\w)#{re.escape(hashtag)}\b", " ", text, flags=re.IGNORECASE).split()
    )


def facts_for(
    store: Store,
    plan: ChatPlan,
    script: ChatScript,
    network: NetworkName,
    *,
    transcript_url: str = "",
) -> RecapFacts:
    """What the recap says, read from the store: counts across networks, highlights, credits."""
    authors = store.reports.participation([plan.chat_id], PARTICIPANT_KINDS)
    people = {(a.network, a.id) for _chat, a, _answers in authors if is_participant(a)}
    earlier = store.reports.authors_before(plan.script_id, plan.chat_id, plan.start)
    answers = store.reports.answers(plan.chat_id)
    questions = []
    for step in plan.steps:
        if step.kind is not StepKind.QUESTION or step.number is None:
            continue
        rendered = step.posts.get(network) or next(iter(step.posts.values()), None)
        mine = [a for a in answers if a.question == step.number]
        public = [a for a in mine if not a.opt_out and a.url]
        public.sort(key=lambda a: (-(a.likes + a.reposts), a.created_at))
        highlights = tuple(
            Highlight(
                a.display_name or a.handle,
                _without_tag(a.text, plan.hashtag),
                a.url,
                a.likes + a.reposts,
            )
            for a in public[:HIGHLIGHTS]
        )
        questions.append(
            QuestionFacts(
                step.number,
                _question_text(rendered.text, step.number, plan.hashtag) if rendered else "",
                len(mine),
                highlights,
            )
        )
    hosts = []
    if script.guest:
        hosts.append(f"our guest {credit(script.guest, network)}")
    if script.co_moderators:
        names = join_names([credit(p, network) for p in script.co_moderators])
        hosts.append(f"co-moderator{'s' if len(script.co_moderators) > 1 else ''} {names}")
    return RecapFacts(
        title=plan.title,
        hashtag=plan.hashtag,
        participants=len(people),
        answers=len(answers),
        first_timers=len(people - earlier),
        credits=" and ".join(hosts),
        questions=tuple(questions),
        next_chat=describe_start(plan.next_start, plan.timezone) if plan.next_start else "",
        transcript_url=transcript_url.format(chat_id=plan.chat_id) if transcript_url else "",
        milestones=_milestones(store, plan, script, authors),
    )


def _milestones(
    store: Store, plan: ChatPlan, script: ChatScript, authors: list[tuple[str, Author, int]]
) -> tuple[tuple[str, int], ...]:
    """The people whose count of chats of the series reaches a milestone tonight (people
    who opted out of bots are never named)."""
    reached = []
    chats: dict[NetworkName, dict[str, set[str]]] = {}  # one query per network, not per person
    for _chat, author, _answers in authors:
        if not is_participant(author) or author.opt_out:
            continue
        if author.network not in chats:
            chats[author.network] = store.reports.chats_by_author(plan.script_id, author.network)
        count = len(chats[author.network].get(author.id, ()))
        if count in script.care.milestones.at:
            reached.append((author.display_name or author.handle, count))
    return tuple(sorted(reached, key=lambda m: (-m[1], m[0])))
