"""A chat's transcript, organised by question, in Markdown, HTML, CSV and JSON.

The transcript is public: answers from people who opted out of bots are counted
but never quoted, named or linked; blocked and deleted posts never appear.
Everything participants wrote is untrusted and made safe per format (see
:mod:`chatbot.public`).
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import date, datetime
from functools import cache
from itertools import islice
from pathlib import Path
from typing import Any, NamedTuple, TextIO
from zoneinfo import ZoneInfo

import jinja2
import structlog

from chatbot import localtime
from chatbot.errors import ChatbotError
from chatbot.kinds import PARTICIPANT_KINDS, PostKind, is_participant
from chatbot.public import (
    OPTED_OUT,
    clean_name,
    clean_text,
    contain_bidi,
    csv_cell,
    escape_bidi,
    link_segments,
    markdown_text,
    on_the_web,
    safe_url,
)
from chatbot.store import ChatRow, RoundRow, Store, UnitRow, UnitState

log = structlog.get_logger("chatbot.archive")

FORMATS = ("md", "html", "csv", "json")
ARCHIVES = "archives"  # the folder under data_dir where finished chats' transcripts go

CSV_COLUMNS = (
    "chat",
    "question",
    "question_text",
    "author",
    "handle",
    "network",
    "time_utc",
    "time_local",
    "url",
    "text",
)


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


def _summary(t: Transcript) -> str:
    parts = [
        _count(t.participants, "participant"),
        _count(len(t.questions), "question"),
        _count(t.answer_count, "answer"),
        _count(len(t.introductions) + t.introductions_opted_out, "introduction"),
        _count(t.conversation_posts, "other post"),
    ]
    return ", ".join(parts)


def _count(n: int, noun: str) -> str:
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


# --- writing --------------------------------------------------------------------------------

Writer = Callable[["Transcript", TextIO], None]
_BATCH = 2000  # pieces joined per write: fewer calls than one per piece, little memory


def _write_all(out: TextIO, pieces: Iterable[str]) -> None:
    iterator = iter(pieces)
    while batch := list(islice(iterator, _BATCH)):
        out.write("".join(batch))


# --- Markdown -----------------------------------------------------------------------------


def write_markdown(t: Transcript, out: TextIO) -> None:
    """The transcript as Markdown in which participant text can add no link, HTML or block."""
    _write_all(out, _markdown_lines(t))


def _markdown_lines(t: Transcript) -> Iterator[str]:
    md = markdown_text
    bylines: dict[tuple[str, str], str] = {}  # people answer many times
    yield f"# {md(t.title)}\n\n{md(t.hashtag)} · {md(t.when)}\n\n"
    yield f"{md(_summary(t))}. {md(OPT_OUT_NOTE)}\n\n"
    for warning in t.warnings:
        yield f"**{md(warning)}**\n\n"
    if t.introductions or t.introductions_opted_out:
        yield "## Introductions\n\n"
        for e in t.introductions:
            yield _markdown_entry(e, bylines)
        if t.introductions_opted_out:
            yield f"- *{hidden_note(t.introductions_opted_out, 'introduction')}*\n"
        yield "\n"
    for q in t.questions:
        meta = [f"posted {q.posted_local}" if q.posted else "not posted"]
        meta += [f"[on {network}]({href})" for network, href in q.links]
        meta.append(_count(len(q.answers) + q.opted_out, "answer"))
        yield f"## {md(contain_bidi(q.heading))}\n\n{' · '.join(meta)}\n\n"
        for e in q.answers:
            yield _markdown_entry(e, bylines)
        if q.opted_out:
            yield f"- *{hidden_note(q.opted_out)}*\n"
        yield "\n"
    yield f"{_count(t.conversation_posts, 'other post').capitalize()}: {CONVERSATION_NOTE}.\n"


def _markdown_entry(e: Entry, bylines: dict[tuple[str, str], str]) -> str:
    byline = bylines.get((e.name, e.handle))
    if byline is None:
        byline = bylines[e.name, e.handle] = (
            f"**{markdown_text(e.name)}** {markdown_text(e.handle)}"
        )
    link = f" · [post]({e.href})" if e.href else ""  # only web addresses are worth showing
    body = markdown_text(contain_bidi(e.text)).replace("\n", "\n  ")
    label = f"{e.label}: " if e.label else ""
    return f"- {byline} · {e.local}{link}  \n  {label}{body}\n"


# --- HTML ---------------------------------------------------------------------------------


@cache
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("chatbot", "templates"),
        autoescape=True,  # every value is escaped unless marked safe; nothing is
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["segments"] = link_segments
    env.filters["count"] = _count
    return env


def write_html(t: Transcript, out: TextIO) -> None:
    """The transcript as one self-contained page: inline CSS, no scripts, nothing fetched."""
    template = _environment().get_template("transcript.html")
    sections: list[dict[str, Any]] = []
    if t.introductions or t.introductions_opted_out:
        hidden = hidden_note(t.introductions_opted_out, "introduction")
        sections.append(
            {
                "anchor": "introductions",
                "question": None,
                "entries": t.introductions,
                "hidden": hidden if t.introductions_opted_out else "",
            }
        )
    sections += [
        {
            "anchor": f"q{q.number}",
            "question": q,
            "entries": q.answers,
            "hidden": hidden_note(q.opted_out) if q.opted_out else "",
        }
        for q in t.questions
    ]
    pieces = template.generate(
        t=t,
        sections=sections,
        summary=_summary(t),
        opt_out_note=OPT_OUT_NOTE,
        conversation_note=CONVERSATION_NOTE,
    )
    _write_all(out, pieces)


# --- CSV ----------------------------------------------------------------------------------


def write_csv(t: Transcript, out: TextIO) -> None:
    """One row per answer. An opted-out answer's row keeps only the chat and the question
    (so counts add up), with the author given as "someone who opted out of bots"."""
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    chat = csv_cell(t.chat_id)
    for q in t.questions:
        question = csv_cell(contain_bidi(q.text))  # the bot's, but the script may quote anyone
        writer.writerows(
            [
                chat,
                f"Q{q.number}",
                question,
                csv_cell(e.name),
                csv_cell(e.handle.removeprefix("@")),  # "@" would need the formula guard
                e.network,
                e.utc,
                e.local_iso,
                csv_cell(e.url),
                csv_cell(contain_bidi(e.text)),
            ]
            for e in q.answers
        )
        # At the end of the question's rows: their place would tell the time they came.
        writer.writerows(
            [chat, f"Q{q.number}", question, OPTED_OUT, "", "", "", "", "", ""]
            for _ in range(q.opted_out)
        )


# --- JSON ---------------------------------------------------------------------------------


def write_json(t: Transcript, out: TextIO) -> None:
    """The transcript as one JSON document; bidi controls are written as visible escapes.

    Written in pieces of a few thousand answers: in one piece, a 20,000-answer chat
    would sit in memory several times over; with indent, json would use its
    pure-Python encoder, four times slower.
    """

    def dumps(value: object) -> str:
        return escape_bidi(json.dumps(value, ensure_ascii=False))

    def entries(items: Sequence[Entry]) -> Iterator[str]:
        yield "["
        for start in range(0, len(items), _BATCH):
            chunk = [
                {
                    "label": e.label,
                    "author": e.name,
                    "handle": e.handle,
                    "network": e.network,
                    "time_utc": e.utc,
                    "time_local": e.local_iso,
                    "url": e.url,
                    "text": e.text,
                }
                for e in items[start : start + _BATCH]
            ]
            yield ("," if start else "") + dumps(chunk)[1:-1]
        yield "]"

    head = {
        "chat": {
            "id": t.chat_id,
            "series": t.series,
            "title": t.title,
            "hashtag": t.hashtag,
            "timezone": t.timezone,
            "start_utc": t.start_at.isoformat(timespec="seconds")[:19] + "Z",
            "end_utc": t.end_at.isoformat(timespec="seconds")[:19] + "Z",
            "when": t.when,
        },
        "counts": {
            "participants": t.participants,
            "questions": len(t.questions),
            "answers": t.answer_count,
            "answers_from_people_who_opted_out": t.opted_out_answers,
            "introductions": len(t.introductions) + t.introductions_opted_out,
            "conversation_posts": t.conversation_posts,
        },
        "note": OPT_OUT_NOTE,
        "warnings": list(t.warnings),
        "introductions_from_people_who_opted_out": t.introductions_opted_out,
    }

    def document() -> Iterator[str]:
        yield dumps(head)[:-1] + ',"introductions":'
        yield from entries(t.introductions)
        yield ',"questions":['
        for i, q in enumerate(t.questions):
            question = {
                "number": q.number,
                "text": q.text,
                "posted": q.posted,
                "posted_local": q.posted_local,
                "links": [{"network": n, "url": u} for n, u in q.links],
                "answers_from_people_who_opted_out": q.opted_out,
            }
            yield ("," if i else "") + dumps(question)[:-1] + ',"answers":'
            yield from entries(q.answers)
            yield "}"
        yield "]}\n"

    for piece in document():  # pieces are large already: written as they come
        out.write(piece)


# --- formats and files --------------------------------------------------------------------

WRITERS: dict[str, Writer] = {
    "md": write_markdown,
    "html": write_html,
    "csv": write_csv,
    "json": write_json,
}


def _writer(fmt: str) -> Writer:
    if fmt not in WRITERS:
        raise ChatbotError(f'unknown format "{fmt}": use one of {", ".join(FORMATS)}')
    return WRITERS[fmt]


def render(t: Transcript, fmt: str) -> str:
    """The transcript in one of FORMATS, as a string."""
    buffer = io.StringIO(newline="")
    _writer(fmt)(t, buffer)
    return buffer.getvalue()


@contextmanager
def atomic_file(path: Path) -> Iterator[TextIO]:
    """A UTF-8 text file that appears at ``path`` whole when the block ends, or not at all."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", errors="replace", newline="") as handle:
            yield handle
        Path(tmp).chmod(0o644)  # made to be shared; mkstemp makes files owner-only
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_transcript(t: Transcript, fmt: str, path: Path) -> Path:
    """Write the transcript in one of FORMATS to ``path``; it appears whole or not at all."""
    writer = _writer(fmt)
    with atomic_file(path) as handle:
        writer(t, handle)
    return path


def archive_folder(data_dir: Path) -> Path:
    """Where finished chats' transcripts are kept: ``<data_dir>/archives``."""
    return data_dir / ARCHIVES


def file_stem(chat_id: str) -> str:
    """A chat id safe as a file name (ids are ``<script>-<date>``; this guards the rest)."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", chat_id).lstrip(".") or "chat"


def transcript_missing(folder: Path, chat_id: str) -> bool:
    """Whether no format of the chat's transcript is in ``folder``."""
    return not any((folder / f"{file_stem(chat_id)}.{fmt}").exists() for fmt in FORMATS)


def write_archives(store: Store, chat_id: str, folder: Path) -> list[Path]:
    """Write ``<chat_id>.md/.html/.csv/.json`` into ``folder``: the transcript of a chat
    whose collection has ended. ``folder`` is normally ``archive_folder(data_dir)``."""
    folder.mkdir(parents=True, exist_ok=True)
    transcript = build_transcript(store, chat_id)
    paths = [
        write_transcript(transcript, fmt, folder / f"{file_stem(chat_id)}.{fmt}") for fmt in FORMATS
    ]
    log.info("transcript written", chat=chat_id, files=[str(p) for p in paths])
    return paths
