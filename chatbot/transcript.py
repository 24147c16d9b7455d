"""A chat's transcript as data, organised by question: what every format shows.

The transcript is public: answers from people who opted out of bots, or who keep
off the open web, are counted but never quoted, named or linked; blocked and
deleted posts never appear. Everything participants wrote is untrusted and made
safe here, once (see :mod:`chatbot.public`); :mod:`chatbot.archive` writes it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import NamedTuple
from zoneinfo import ZoneInfo

from chatbot import localtime
from chatbot.errors import ChatbotError
from chatbot.kinds import PARTICIPANT_KINDS, PostKind, is_participant
from chatbot.public import (
    OPTED_OUT,
    clean_name,
    clean_text,
    on_the_web,
    safe_url,
)
from chatbot.store import ChatRow, CommandState, RoundRow, Store, UnitRow, UnitState


class UnknownChat(ChatbotError):
    """No chat with that id in the store."""


class Entry(NamedTuple):
    """One public post in the transcript: an answer or an introduction.

    A named tuple: a transcript holds tens of thousands, and it is the fastest to build.
    """

    label: str  # "A1", "A2b"; "" for an introduction
    name: str  # display name, cleaned; the handle when there is none
    handle: str  # "@user@server.example", "@name.bsky.social"
    network: str
    at: datetime  # aware UTC
    utc: str  # "2030-01-04T01:14:05Z"
    local: str  # the time on the chat's clock, short
    local_iso: str
    url: str  # as the network gave it, on one line (untrusted)
    href: str | None  # the url when it is safe to link
    text: str


@dataclass(frozen=True)
class Question:
    """A question as the bot posted it, with its public answers."""

    number: int
    text: str
    posted: bool
    posted_local: str
    links: tuple[tuple[str, str], ...]  # (network, safe url) of the bot's posts
    answers: tuple[Entry, ...]
    opted_out: int  # answers from people who opted out: counted, never shown

    @property
    def heading(self) -> str:
        """The question's text, which normally starts "Q3: "; "Q3. " is added if it does not."""
        if not self.text:
            return f"Q{self.number}"
        if re.match(rf"\s*Q{self.number}\b", self.text):
            return self.text
        return f"Q{self.number}. {self.text}"


@dataclass(frozen=True)
class Transcript:
    """Everything a transcript shows, whatever the format."""

    chat_id: str
    series: str
    title: str
    hashtag: str
    timezone: str
    start_at: datetime
    end_at: datetime
    when: str  # the chat's date and hours on its own clock
    questions: tuple[Question, ...]
    introductions: tuple[Entry, ...]
    introductions_opted_out: int
    conversation_posts: int
    participants: int
    # Why the transcript may be incomplete: answers a network would not let the bot read.
    warnings: tuple[str, ...] = ()
    # What the hosts changed while the chat ran ("20:14 @coachdavis: extended by 5 minutes").
    moderator_notes: tuple[str, ...] = ()

    @property
    def answer_count(self) -> int:
        return sum(len(q.answers) + q.opted_out for q in self.questions)

    @property
    def opted_out_answers(self) -> int:
        return sum(q.opted_out for q in self.questions)


def build_transcript(store: Store, chat_id: str) -> Transcript:
    """Read a chat from the store and keep what may be shown in public."""
    chat = store.chats.get(chat_id)
    if chat is None:
        known = ", ".join(c.chat_id for c in store.chats.list()[-5:]) or "none yet"
        raise UnknownChat(f'no chat "{chat_id}" (recent chats: {known})')
    tz = localtime.zone(chat.timezone)
    day = localtime.to_local(chat.start_at + chat.shift, tz).date()
    names: dict[tuple[str, str], tuple[str, str]] = {}

    def entry(
        label: str, name: str, handle: str, network: str, at: datetime, url: str, text: str
    ) -> Entry:
        local = localtime.to_local(at, tz)
        who = names.get((name, handle))
        if who is None:  # people answer many times: their names are cleaned once
            shown_handle = "@" + clean_name(handle).removeprefix("@")
            who = names[name, handle] = (clean_name(name) or shown_handle[1:], shown_handle)
        return Entry(
            label=label,
            name=who[0],
            handle=who[1],
            network=network,
            at=at,
            utc=at.isoformat(timespec="seconds")[:19] + "Z",
            local=(
                f"{local.hour:02d}:{local.minute:02d}"
                if local.date() == day
                else f"{local:%d %b %H:%M}"
            ),
            local_iso=local.isoformat(timespec="seconds"),
            url=clean_name(url),
            href=safe_url(url),
            text=clean_text(text),
        )

    # Deleted posts, hosts' and blocked posts are left out by the query (the store keeps
    # no answers for them either: a rule kept twice is kept).
    shown: dict[int, list[Entry]] = {}
    hidden: dict[int, int] = {}
    rows = store.reports.answer_rows(chat_id, PARTICIPANT_KINDS)
    for question, part, text, at, network, url, handle, name, opt_out, web_opt_out in rows:
        if opt_out or web_opt_out:
            hidden[question] = hidden.get(question, 0) + 1
            continue
        shown.setdefault(question, []).append(
            entry(f"A{question}{part}", name, handle, network, at, url, text)
        )

    participants = store.reports.participation([chat_id], PARTICIPANT_KINDS)
    authors = {(author.network, author.id): author for _chat, author, _n in participants}
    introductions: list[Entry] = []
    intros_hidden = 0
    for post in store.reports.posts_of_kind(chat_id, [PostKind.INTRODUCTION]):
        author = authors.get((post.network, post.author_id))
        if author is None or not on_the_web(author):
            intros_hidden += 1
            continue
        introductions.append(
            entry(
                "",
                author.display_name,
                author.handle,
                post.network.value,
                post.created_at,
                post.url,
                post.text,
            )
        )
    people = sum(1 for author in authors.values() if is_participant(author))

    questions = {
        q.number: q
        for q in _questions(store.units.of_chat(chat_id), lambda at: entry_clock(at, tz, day))
    }
    numbers = sorted(questions.keys() | shown.keys() | hidden.keys())
    return Transcript(
        chat_id=chat.chat_id,
        series=chat.script_id,
        title=clean_name(chat.title),
        hashtag="#" + clean_name(chat.hashtag).removeprefix("#"),
        timezone=chat.timezone,
        start_at=chat.start_at + chat.shift,
        end_at=chat.end_at + chat.shift,
        when=_when(chat, tz),
        questions=tuple(
            replace(
                questions.get(n) or Question(n, "", False, "", (), (), 0),
                answers=tuple(shown.get(n, ())),
                opted_out=hidden.get(n, 0),
            )
            for n in numbers
        ),
        introductions=tuple(introductions),
        introductions_opted_out=intros_hidden,
        conversation_posts=store.reports.post_counts(chat_id).get(PostKind.CONVERSATION, 0),
        participants=people,
        warnings=tuple(_incomplete(r) for r in store.conversation.rounds(chat_id) if r.failing),
        moderator_notes=tuple(
            f"{entry_clock(c.received_at, tz, day)} {clean_name(c.author)}: {clean_text(c.detail)}"
            for c in store.commands.of_chat(chat_id)
            if c.state is CommandState.APPLIED
        ),
    )


def _incomplete(row: RoundRow) -> str:
    since = f"{row.failing_since:%Y-%m-%d %H:%M} UTC" if row.failing_since else "the start"
    return (
        f"This transcript may be incomplete: the answers on {row.network.value} could not be "
        f"read from {since} ({clean_text(row.error)})."
    )


def entry_clock(at: datetime, tz: ZoneInfo, day: date) -> str:
    """A time on the chat's clock: "20:14", with the date when it is not the chat's day."""
    local = localtime.to_local(at, tz)
    return f"{local:%H:%M}" if local.date() == day else f"{local:%d %b %H:%M}"


def _questions(units: list[UnitRow], clock: Callable[[datetime], str]) -> list[Question]:
    """Each question step once: the text as posted (the fullest where networks differ)."""
    steps: dict[int, list[UnitRow]] = {}
    for unit in units:
        if unit.kind == "question" and unit.number is not None:
            steps.setdefault(unit.number, []).append(unit)
    questions = []
    for number, group in sorted(steps.items()):
        posted = [u for u in group if u.state is UnitState.POSTED]
        text = max((u.text for u in posted or group), key=len)
        times = [u.posted_at for u in posted if u.posted_at is not None]
        links = tuple(
            (u.network.value, href)
            for u in posted
            if u.remote is not None and (href := safe_url(u.remote.url)) is not None
        )
        questions.append(
            Question(
                number=number,
                text=clean_text(text),
                posted=bool(posted),
                posted_local=clock(min(times)) if times else "",
                links=links,
                answers=(),
                opted_out=0,
            )
        )
    return questions


def _when(chat: ChatRow, tz: ZoneInfo) -> str:
    start = chat.start_at + chat.shift
    end = chat.end_at + chat.shift
    abbreviation = localtime.format_local(end, tz, "%Z")
    # "UTC (UTC)" says nothing twice; "EST (America/New_York)" says where.
    zone = "" if abbreviation == chat.timezone else f" ({chat.timezone})"
    return (
        f"{localtime.format_local(start, tz, '%a %d %b %Y, %H:%M')}"
        f" to {localtime.format_local(end, tz, '%H:%M %Z')}{zone}"
    )


def summary_line(t: Transcript) -> str:
    parts = [
        count_of(t.participants, "participant"),
        count_of(len(t.questions), "question"),
        count_of(t.answer_count, "answer"),
        count_of(len(t.introductions) + t.introductions_opted_out, "introduction"),
        count_of(t.conversation_posts, "other post"),
    ]
    return ", ".join(parts)


def count_of(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def hidden_note(count: int, noun: str = "answer") -> str:
    """ "1 answer from someone who opted out of bots", "3 answers from people who ..." """
    if count == 1:
        return f"1 {noun} from {OPTED_OUT}"
    return f"{count:,} {noun}s from people who opted out of bots"


CONVERSATION_NOTE = "not part of this transcript: replies and remarks without an answer number"
OPT_OUT_NOTE = (
    "People who opted out of bots (#nobot and the like) are counted, never quoted, named or linked."
)
