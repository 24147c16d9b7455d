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
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jinja2

from chatbot import localtime
from chatbot.errors import ChatbotError
from chatbot.networks.base import Author
from chatbot.public import (
    OPTED_OUT,
    PARTICIPANT_KINDS,
    clean_name,
    clean_text,
    contain_bidi,
    csv_cell,
    escape_bidi,
    is_participant,
    is_public,
    link_segments,
    markdown_text,
    safe_url,
)
from chatbot.store import ChatRow, Store, UnitRow, UnitState

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


@dataclass(frozen=True)
class Entry:
    """One public post in the transcript: an answer or an introduction."""

    label: str  # "A1", "A2b"; "" for an introduction
    name: str  # display name, cleaned; the handle when there is none
    handle: str  # "@user@server.example", "@name.bsky.social"
    network: str
    at: datetime  # aware UTC
    local: str  # the time on the chat's clock, short
    local_iso: str
    url: str  # as the network gave it (untrusted)
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

    @property
    def answer_count(self) -> int:
        return sum(len(q.answers) + q.opted_out for q in self.questions)

    @property
    def opted_out_answers(self) -> int:
        return sum(q.opted_out for q in self.questions)


def build_transcript(store: Store, chat_id: str) -> Transcript:
    """Read a chat from the store and keep what may be shown in public."""
    chat = store.chat(chat_id)
    if chat is None:
        known = ", ".join(c.chat_id for c in store.chats()[-5:]) or "none yet"
        raise UnknownChat(f'no chat "{chat_id}" (recent chats: {known})')
    tz = localtime.zone(chat.timezone)
    day = localtime.to_local(chat.start_at + chat.shift, tz).date()

    def clock(at: datetime) -> str:
        local = localtime.to_local(at, tz)
        return f"{local:%H:%M}" if local.date() == day else f"{local:%d %b %H:%M}"

    posts = store.posts(chat_id)  # deleted posts are not returned
    authors = store.post_authors(chat_id)
    visible = {(p.network.value, p.uri) for p in posts if p.kind in PARTICIPANT_KINDS}

    def entry(label: str, author: Author, network: str, at: datetime, url: str, text: str) -> Entry:
        name = clean_name(author.display_name) or clean_name(author.handle)
        return Entry(
            label=label,
            name=name,
            handle="@" + clean_name(author.handle).removeprefix("@"),
            network=network,
            at=at,
            local=clock(at),
            local_iso=localtime.to_local(at, tz).isoformat(),
            url=url,
            href=safe_url(url),
            text=clean_text(text),
        )

    shown: dict[int, list[Entry]] = {}
    hidden: dict[int, int] = {}
    for answer in store.answers(chat_id):
        if (answer.network.value, answer.uri) not in visible:
            continue  # blocked, a host's, or deleted since (defence in depth)
        author = authors.get((answer.network, answer.author_id))
        if author is None or not is_public(author):
            hidden[answer.question] = hidden.get(answer.question, 0) + 1
            continue
        shown.setdefault(answer.question, []).append(
            entry(
                f"A{answer.question}{answer.part}",
                author,
                answer.network.value,
                answer.created_at,
                answer.url,
                answer.text,
            )
        )

    introductions: list[Entry] = []
    intros_hidden = conversation = 0
    people: set[tuple[str, str]] = set()
    for post in posts:
        if post.kind not in PARTICIPANT_KINDS:
            continue
        author = authors.get((post.network, post.author_id))
        if author is None or is_participant(author):
            people.add((post.network.value, post.author_id))
        if post.kind == "conversation":
            conversation += 1
        elif post.kind == "introduction":
            if author is None or not is_public(author):
                intros_hidden += 1
            else:
                introductions.append(
                    entry("", author, post.network.value, post.created_at, post.url, post.text)
                )

    questions = _questions(store.units(chat_id), clock)
    numbers = sorted({q.number for q in questions} | shown.keys() | hidden.keys())
    by_number = {q.number: q for q in questions}
    return Transcript(
        chat_id=chat.chat_id,
        series=chat.script_id,
        title=clean_name(chat.title),
        hashtag=clean_name(chat.hashtag),
        timezone=chat.timezone,
        start_at=chat.start_at + chat.shift,
        end_at=chat.end_at + chat.shift,
        when=_when(chat, tz),
        questions=tuple(
            Question(
                number=n,
                text=by_number[n].text if n in by_number else "",
                posted=by_number[n].posted if n in by_number else False,
                posted_local=by_number[n].posted_local if n in by_number else "",
                links=by_number[n].links if n in by_number else (),
                answers=tuple(shown.get(n, ())),
                opted_out=hidden.get(n, 0),
            )
            for n in numbers
        ),
        introductions=tuple(introductions),
        introductions_opted_out=intros_hidden,
        conversation_posts=conversation,
        participants=len(people),
    )


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
    return (
        f"{localtime.format_local(start, tz, '%a %d %b %Y, %H:%M')}"
        f"–{localtime.format_local(end, tz, '%H:%M %Z')} ({chat.timezone})"
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


CONVERSATION_NOTE = (
    "not part of this transcript: replies and remarks without an answer number"
)
OPT_OUT_NOTE = (
    "People who opted out of bots (#nobot and the like) are counted, "
    "never quoted, named or linked."
)


# --- Markdown -----------------------------------------------------------------------------


def render_markdown(t: Transcript) -> str:
    """The transcript as Markdown in which participant text can add no link, HTML or block."""
    md = markdown_text
    out = [
        f"# {md(t.title)}",
        "",
        f"{md(t.hashtag)} · {md(t.when)}",
        "",
        f"{md(_summary(t))}. {md(OPT_OUT_NOTE)}",
        "",
    ]
    if t.introductions or t.introductions_opted_out:
        out += ["## Introductions", ""]
        out += [_markdown_entry(e) for e in t.introductions]
        if t.introductions_opted_out:
            out.append(f"- *{hidden_note(t.introductions_opted_out, 'introduction')}*")
        out.append("")
    for q in t.questions:
        out += [f"## Q{q.number}. {md(contain_bidi(q.text))}", ""]
        meta = [f"posted {q.posted_local}" if q.posted else "not posted"]
        meta += [f"[on {network}]({href})" for network, href in q.links]
        meta.append(_count(len(q.answers) + q.opted_out, "answer"))
        out += [" · ".join(meta), ""]
        out += [_markdown_entry(e) for e in q.answers]
        if q.opted_out:
            out.append(f"- *{hidden_note(q.opted_out)}*")
        out.append("")
    out.append(f"{_count(t.conversation_posts, 'other post').capitalize()}: {CONVERSATION_NOTE}.")
    return "\n".join(out) + "\n"


def _markdown_entry(e: Entry) -> str:
    link = f"[post]({e.href})" if e.href else markdown_text(clean_name(e.url))
    head = " · ".join(
        x for x in (f"**{markdown_text(e.name)}** {markdown_text(e.handle)}", e.local, link) if x
    )
    body = markdown_text(contain_bidi(e.text)).replace("\n", "\n  ")
    label = f"{e.label}: " if e.label else ""
    return f"- {head}  \n  {label}{body}"


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
    env.globals["hidden_note"] = hidden_note
    return env


def render_html(t: Transcript) -> str:
    """The transcript as one self-contained page: inline CSS, no scripts, nothing fetched."""
    template = _environment().get_template("transcript.html")
    return template.render(
        t=t,
        summary=_summary(t),
        opt_out_note=OPT_OUT_NOTE,
        conversation_note=CONVERSATION_NOTE,
    )


# --- CSV ----------------------------------------------------------------------------------


def render_csv(t: Transcript) -> str:
    """One row per answer. An opted-out answer's row keeps only the chat and the question
    (so counts add up), with the author given as "someone who opted out of bots"."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for q in t.questions:
        question = csv_cell(contain_bidi(q.text))
        for e in q.answers:
            writer.writerow(
                [
                    csv_cell(t.chat_id),
                    f"Q{q.number}",
                    question,
                    csv_cell(e.name),
                    csv_cell(e.handle),
                    e.network,
                    e.at.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    e.local_iso,
                    csv_cell(clean_name(e.url)),
                    csv_cell(contain_bidi(e.text)),
                ]
            )
        for _ in range(q.opted_out):
            writer.writerow(
                [csv_cell(t.chat_id), f"Q{q.number}", question, OPTED_OUT, "", "", "", "", "", ""]
            )
    return buffer.getvalue()


# --- JSON ---------------------------------------------------------------------------------


def render_json(t: Transcript) -> str:
    """The transcript as structured data; bidi controls are written as visible escapes."""

    def entry(e: Entry) -> dict[str, Any]:
        return {
            "label": e.label,
            "author": e.name,
            "handle": e.handle,
            "network": e.network,
            "time_utc": e.at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "time_local": e.local_iso,
            "url": e.url,
            "text": e.text,
        }

    data = {
        "chat": {
            "id": t.chat_id,
            "series": t.series,
            "title": t.title,
            "hashtag": t.hashtag,
            "timezone": t.timezone,
            "start_utc": t.start_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "end_utc": t.end_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
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
        "introductions": [entry(e) for e in t.introductions],
        "introductions_from_people_who_opted_out": t.introductions_opted_out,
        "questions": [
            {
                "number": q.number,
                "text": q.text,
                "posted": q.posted,
                "posted_local": q.posted_local,
                "links": [{"network": n, "url": u} for n, u in q.links],
                "answers": [entry(e) for e in q.answers],
                "answers_from_people_who_opted_out": q.opted_out,
            }
            for q in t.questions
        ],
    }
    return escape_bidi(json.dumps(data, ensure_ascii=False, indent=1)) + "\n"


# --- files --------------------------------------------------------------------------------

RENDERERS: dict[str, Callable[[Transcript], str]] = {
    "md": render_markdown,
    "html": render_html,
    "csv": render_csv,
    "json": render_json,
}


def render(t: Transcript, fmt: str) -> str:
    """The transcript in one of FORMATS."""
    if fmt not in RENDERERS:
        raise ChatbotError(f'unknown format "{fmt}": use one of {", ".join(FORMATS)}')
    return RENDERERS[fmt](t)


def archive_folder(data_dir: Path) -> Path:
    """Where finished chats' transcripts are kept: ``<data_dir>/archives``."""
    return data_dir / ARCHIVES


def file_stem(chat_id: str) -> str:
    """A chat id safe as a file name (ids are ``<script>-<date>``; this guards the rest)."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", chat_id).lstrip(".") or "chat"


def write_archives(store: Store, chat_id: str, folder: Path) -> list[Path]:
    """Write ``<chat_id>.md/.html/.csv/.json`` into ``folder`` (normally
    :func:`archive_folder` of the data folder); each file appears whole or not at all."""
    transcript = build_transcript(store, chat_id)
    folder.mkdir(parents=True, exist_ok=True)
    return [
        write_file(folder / f"{file_stem(chat_id)}.{fmt}", render(transcript, fmt))
        for fmt in FORMATS
    ]


def write_file(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file, so readers never see half of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", errors="replace", newline="") as handle:
            handle.write(text)
        Path(tmp).chmod(0o644)  # a transcript is for sharing; mkstemp makes it owner-only
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
