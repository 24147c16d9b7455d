"""A chat's transcript written as Markdown, HTML, CSV and JSON, and kept with the bot's data.

Everything shown was made safe when the transcript was built
(:mod:`chatbot.transcript`); each writer only escapes for its own format.
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
from functools import cache
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import structlog

from chatbot.errors import ChatbotError

if TYPE_CHECKING:
    import jinja2
from chatbot.public import (
    OPTED_OUT,
    contain_bidi,
    csv_cell,
    escape_bidi,
    link_segments,
    markdown_text,
)
from chatbot.store import Store
from chatbot.transcript import (
    CONVERSATION_NOTE,
    OPT_OUT_NOTE,
    Entry,
    Transcript,
    build_transcript,
    count_of,
    hidden_note,
    summary_line,
)

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
    yield f"{md(summary_line(t))}. {md(OPT_OUT_NOTE)}\n\n"
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
        meta.append(count_of(len(q.answers) + q.opted_out, "answer"))
        yield f"## {md(contain_bidi(q.heading))}\n\n{' · '.join(meta)}\n\n"
        for e in q.answers:
            yield _markdown_entry(e, bylines)
        if q.opted_out:
            yield f"- *{hidden_note(q.opted_out)}*\n"
        yield "\n"
    yield f"{count_of(t.conversation_posts, 'other post').capitalize()}: {CONVERSATION_NOTE}.\n"
    if t.moderator_notes:
        yield "\n## Moderator notes\n\n"
        yield "".join(f"- {md(note)}\n" for note in t.moderator_notes)


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
    import jinja2  # only when a transcript is written: a bot at rest never loads it

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("chatbot", "templates"),
        autoescape=True,  # every value is escaped unless marked safe; nothing is
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["segments"] = link_segments
    env.filters["count"] = count_of
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
        summary=summary_line(t),
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
        "moderator_notes": list(t.moderator_notes),
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
