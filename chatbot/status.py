"""``chatbot status``: what is coming, what is running, what went out, what went wrong."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from chatbot import localtime
from chatbot.archive import file_stem
from chatbot.config import LatePolicy
from chatbot.public import clean_name, terminal_text
from chatbot.run.policy import due_at
from chatbot.scriptvalues import format_duration
from chatbot.store import (
    ChatRow,
    ChatState,
    CommandRow,
    RoundRow,
    Store,
    StoredAnswer,
    UnitRow,
    UnitState,
)

FINISHED_SHOWN = 5  # the latest finished chats listed


@dataclass(frozen=True)
class ChatLine:
    chat: ChatRow
    next_unit: UnitRow | None
    next_at: datetime | None


@dataclass(frozen=True)
class FinishedLine:
    chat: ChatRow
    answers: int
    transcript: Path | None  # the Markdown transcript, if it has been written


@dataclass(frozen=True)
class StatusReport:
    now: datetime
    policy: LatePolicy
    running: list[ChatLine]
    upcoming: list[ChatLine]
    finished: list[FinishedLine]
    recent: list[UnitRow]
    collection: list[RoundRow]  # chats whose answers cannot be read now
    problems: list[UnitRow]
    missed: list[ChatRow]
    errors: list[str]
    commands: list[CommandRow]  # the latest commands from co-moderators and hosts


def build_status(
    store: Store,
    now: datetime,
    policy: LatePolicy,
    recent: int = 10,
    *,
    archive_dir: Path | None = None,
) -> StatusReport:
    """What ``chatbot status`` shows, read from the store (and the transcripts folder)."""
    lines: dict[ChatState, list[ChatLine]] = {ChatState.RUNNING: [], ChatState.SCHEDULED: []}
    problems: list[UnitRow] = []
    posted_in_running: list[UnitRow] = []
    for chat in store.chats.list(
        [ChatState.RUNNING, ChatState.SCHEDULED, ChatState.MISSED, ChatState.DONE]
    ):
        units = store.units.of_chat(chat.chat_id)
        problems += [
            u
            for u in units
            if (u.state in (UnitState.SKIPPED, UnitState.FAILED) and u.reason)
            or u.retry_at is not None
        ]
        if chat.state in lines:
            pending = [u for u in units if u.state in (UnitState.PENDING, UnitState.INTENT)]
            nxt = min(pending, key=lambda u: u.seq) if pending else None
            lines[chat.state].append(ChatLine(chat, nxt, due_at(chat, nxt) if nxt else None))
        if chat.state is ChatState.RUNNING:
            # A running chat's posts all stay in view, however many there are.
            posted_in_running += [u for u in units if u.state is UnitState.POSTED]
    others = [u for u in store.units.recent(recent) if u not in posted_in_running]
    shown = sorted(
        [*posted_in_running, *others], key=lambda u: u.posted_at or u.planned_at, reverse=True
    )
    finished = [
        FinishedLine(
            chat,
            len(store.reports.answers(chat.chat_id)),
            _transcript(archive_dir, chat.chat_id),
        )
        for chat in store.chats.list([ChatState.DONE])[-FINISHED_SHOWN:]
    ]
    return StatusReport(
        now=now,
        policy=policy,
        running=lines[ChatState.RUNNING],
        upcoming=lines[ChatState.SCHEDULED],
        finished=finished,
        recent=shown,
        collection=[r for r in store.conversation.rounds() if r.failing],
        problems=sorted(problems, key=lambda u: (u.chat_id, u.seq))[-20:],
        missed=store.chats.list([ChatState.MISSED]),
        errors=[e.message for e in store.events.recent(limit=5, levels=["error"])],
        commands=store.commands.recent(10),
    )


def _transcript(folder: Path | None, chat_id: str) -> Path | None:
    if folder is None:
        return None
    path = folder / f"{file_stem(chat_id)}.md"
    return path if path.exists() else None


def _when(at: datetime, timezone: str) -> str:
    tz = localtime.zone(timezone)
    return f"{localtime.format_local(at, tz, '%a %d %b %H:%M %Z')} ({at:%Y-%m-%d %H:%M} UTC)"


def failing_since(row: RoundRow) -> str:
    """One line on a chat whose answers cannot be read: where, since when, why."""
    since = f"{row.failing_since:%Y-%m-%d %H:%M:%S} UTC" if row.failing_since else "the start"
    never = "" if row.last_ok_at else " (never read yet)"
    return f"answers on {row.network.value} cannot be read since {since}{never}: {row.error}"


def render_status(report: StatusReport) -> str:
    policy = report.policy
    out = [
        f"late policy: a step up to {format_duration(policy.step_grace)} late is posted, later "
        f"ones are skipped; a missed start: {policy.missed_start.value}"
        + (
            f" (up to {format_duration(policy.max_shift)})"
            if policy.missed_start.value == "shift"
            else ""
        ),
        "",
        "In progress:",
    ]
    out += _chat_lines(report.running) or ["  none"]
    out += ["", "Upcoming:"]
    out += _chat_lines(report.upcoming) or ["  none"]
    out += ["", "Finished:"]
    out += [
        f"  {f.chat.chat_id}: {f.chat.title} #{f.chat.hashtag}, {f.answers} answers"
        + (f", transcript {f.transcript}" if f.transcript else ", transcript not written yet")
        for f in report.finished
    ] or ["  none"]
    out += ["", "Answers that cannot be read:"]
    out += [f"  {r.chat_id}: {failing_since(r)}" for r in report.collection] or ["  none"]
    out += ["", "Moderator actions:"]
    out += [
        f"  {c.received_at:%Y-%m-%d %H:%M:%S} UTC  {c.chat_id}: {c.author} ({c.source}): "
        f"{clean_name(c.text)!r}: {c.state.value}" + (f": {c.detail}" if c.detail else "")
        for c in reversed(report.commands)
    ] or ["  none"]
    out += ["", "Recent posts:"]
    posted = [u for u in report.recent if u.state is UnitState.POSTED]
    out += [
        f"  {u.posted_at:%Y-%m-%d %H:%M:%S} UTC  {u.chat_id} {u.step_key} [{u.network.value}] "
        f"{u.remote.url if u.remote else ''}"
        for u in posted
    ] or ["  none"]
    out += ["", "Late, skipped, failed, held or retrying:"]
    issues = [
        f"  {u.chat_id} {u.step_key} [{u.network.value}] {u.state.value}"
        + (f", retry at {u.retry_at:%H:%M:%S} UTC" if u.retry_at else "")
        + f": {u.reason}"
        for u in report.problems
    ]
    issues += [f"  {c.chat_id}: missed: {c.note}" for c in report.missed if c.note]
    issues += [f"  error: {e}" for e in report.errors]
    out += issues or ["  none"]
    return "\n".join(out)


def _chat_lines(lines: list[ChatLine]) -> list[str]:
    out = []
    for line in lines:
        chat = line.chat
        starts = _when(chat.start_at + chat.shift, chat.timezone)
        text = f"  {chat.chat_id}: {chat.title} #{chat.hashtag}, starts {starts}"
        if chat.paused_at:
            text += ", PAUSED"
        out.append(text)
        if line.next_unit and line.next_at:
            out.append(
                f"    next: {line.next_unit.step_key} at {_when(line.next_at, chat.timezone)}"
            )
    return out


def render_answers(
    answers: list[StoredAnswer],
    timezone: str,
    *,
    header: bool = True,
    unreadable: Sequence[RoundRow] = (),
) -> list[str]:
    """Answers grouped by question, for the terminal of a co-moderator; first, whether
    collection is failing (then "no answers" is not the truth, and is not said)."""
    tz = localtime.zone(timezone)
    lines: list[str] = []
    current = None
    if header:
        lines += [f"WARNING: {failing_since(r)}" for r in unreadable]
        if unreadable and not answers:
            lines.append("no answers could be read so far")
        elif not answers:
            lines.append("no answers yet")
    for answer in answers:
        if answer.question != current:
            current = answer.question
            lines.append(f"Q{current}")
        name = clean_name(answer.display_name)
        who = f"@{clean_name(answer.handle)}" + (f" ({name})" if name else "")
        flag = (
            "  [opted out: never shown in public]"
            if answer.opt_out
            else "  [kept off the web: not in the transcript]"
            if answer.web_opt_out
            else ""
        )
        when = localtime.format_local(answer.created_at, tz, "%H:%M")
        label = f"A{answer.question}{answer.part}"
        lines.append(f"  {when} {answer.network.value:8} {who}{flag}")
        lines.append(f"      {label}: {terminal_text(answer.text)}")
    return lines
