"""``chatbot status``: what is coming, what is running, what went out, what went wrong."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from chatbot import localtime
from chatbot.config import LatePolicy
from chatbot.run.policy import due_at
from chatbot.script import format_duration
from chatbot.store import ChatRow, ChatState, Store, StoredAnswer, UnitRow, UnitState


@dataclass(frozen=True)
class ChatLine:
    chat: ChatRow
    next_unit: UnitRow | None
    next_at: datetime | None


@dataclass(frozen=True)
class StatusReport:
    now: datetime
    policy: LatePolicy
    running: list[ChatLine]
    upcoming: list[ChatLine]
    recent: list[UnitRow]
    problems: list[UnitRow]
    missed: list[ChatRow]
    errors: list[str]


def build_status(store: Store, now: datetime, policy: LatePolicy, recent: int = 10) -> StatusReport:
    lines: dict[ChatState, list[ChatLine]] = {ChatState.RUNNING: [], ChatState.SCHEDULED: []}
    problems: list[UnitRow] = []
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
    missed = store.chats.list([ChatState.MISSED])
    errors = [e.message for e in store.events.recent(limit=5, levels=["error"])]
    return StatusReport(
        now=now,
        policy=policy,
        running=lines[ChatState.RUNNING],
        upcoming=lines[ChatState.SCHEDULED],
        recent=store.units.recent(recent),
        problems=sorted(problems, key=lambda u: (u.chat_id, u.seq))[-20:],
        missed=missed,
        errors=errors,
    )


def _when(at: datetime, timezone: str) -> str:
    tz = localtime.zone(timezone)
    return f"{localtime.format_local(at, tz, '%a %d %b %H:%M %Z')} ({at:%Y-%m-%d %H:%M} UTC)"


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
    out += ["", "Recent posts:"]
    posted = [u for u in report.recent if u.state is UnitState.POSTED]
    out += [
        f"  {u.posted_at:%Y-%m-%d %H:%M:%S} UTC  {u.chat_id} {u.step_key} [{u.network.value}] "
        f"{u.remote.url if u.remote else ''}"
        for u in posted
    ] or ["  none"]
    out += ["", "Late, skipped, failed or retrying:"]
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


def render_answers(answers: list[StoredAnswer], timezone: str, *, header: bool = True) -> list[str]:
    """Answers grouped by question, for the terminal of a co-moderator."""
    tz = localtime.zone(timezone)
    lines: list[str] = []
    current = None
    if header and not answers:
        lines.append("no answers yet")
    for answer in answers:
        if answer.question != current:
            current = answer.question
            lines.append(f"Q{current}")
        who = f"@{answer.handle}" + (f" ({answer.display_name})" if answer.display_name else "")
        flag = "  [opted out: never shown in public]" if answer.opt_out else ""
        when = localtime.format_local(answer.created_at, tz, "%H:%M")
        label = f"A{answer.question}{answer.part}"
        lines.append(f"  {when} {answer.network.value:8} {who}{flag}")
        lines.append(f"      {label}: {answer.text}")
    return lines
