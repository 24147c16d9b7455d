"""What to do now with a chat: post, wait, skip as late, or call the chat missed.

Pure functions of (chat, its units, now, policy): the runner executes what they
return. The late policy lives here in one place, so ``chatbot status``, the
runner and the tests agree on it. Live controls (pause, resume, skip, next,
extend, end) are here too, as pure changes to a chat's shift and units.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from chatbot.config import LatePolicy, MissedStart
from chatbot.kinds import REPLY_KINDS, StepKind
from chatbot.script import NetworkName
from chatbot.scriptvalues import format_duration
from chatbot.store import DONE_STATES, ChatRow, ChatState, UnitRow, UnitState

LEAD_KINDS = frozenset({StepKind.REMINDER.value})  # steps before the chat proper
# A recap is worth posting long after its time (the bot was down at the end of the
# chat): it summarises, it does not interrupt.
RECAP_GRACE = timedelta(hours=24)
# A reply to someone (a welcome, an acknowledgement) later than this is no longer useful.
REPLY_GRACE = timedelta(minutes=10)


@dataclass(frozen=True)
class Post:
    """Send this unit now (idempotent: a unit already in INTENT is re-sent with its key)."""

    unit: UnitRow


@dataclass(frozen=True)
class Reconcile:
    """An intent too late to post: find out whether it was posted; if not, skip it."""

    unit: UnitRow
    reason: str


@dataclass(frozen=True)
class Skip:
    """Close this unit without posting, for the reason given."""

    unit: UnitRow
    reason: str


Action = Post | Reconcile | Skip


@dataclass(frozen=True)
class Decision:
    """The next actions (at most one per network, in order), chat changes and when to look again."""

    actions: tuple[Action, ...] = ()
    state: ChatState | None = None  # new chat state, if it changes
    shift: timedelta | None = None  # new shift of the chat's remaining steps
    wake_at: datetime | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)


def due_at(chat: ChatRow, unit: UnitRow) -> datetime:
    """When a unit is due: its planned time moved by the chat's shift (pauses, extensions).

    A reply to someone is due when it was decided: the chat's shift does not move it.
    """
    if unit.kind in REPLY_KINDS:
        return unit.planned_at
    return unit.planned_at + chat.shift


def _fmt(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds < 120:
        return f"{seconds}s"
    return f"{seconds // 60}m{seconds % 60:02d}s"


def decide(chat: ChatRow, units: Sequence[UnitRow], now: datetime, policy: LatePolicy) -> Decision:
    """The next step for each network of the chat at ``now``."""
    if chat.state in (ChatState.DONE, ChatState.MISSED, ChatState.CANCELLED):
        return Decision()
    if all(u.state in DONE_STATES for u in units):
        return Decision(state=ChatState.DONE) if units else Decision()

    missed = _missed_start(chat, units, now, policy) if chat.paused_at is None else None
    if missed is not None:
        return missed

    actions: list[Action] = []
    wakes: list[datetime] = []
    started = any(
        u.kind not in LEAD_KINDS and u.kind not in REPLY_KINDS and due_at(chat, u) <= now
        for u in units
    )
    # One lane per network for the chat's thread, and one for replies to people: a reply
    # never waits for the next question, and the thread's actions come first.
    lanes = [(n, False) for n in _networks(units)] + [(n, True) for n in _networks(units)]
    if chat.paused_at is not None:  # a pause holds the chat's thread, not the replies
        lanes = [(n, replies) for n, replies in lanes if replies]
    for network, replies in lanes:
        chain = [u for u in units if u.network is network and (u.kind in REPLY_KINDS) == replies]
        for unit in chain:
            if unit.state in DONE_STATES:
                continue
            if unit.retry_at is not None and unit.retry_at > now:
                wakes.append(unit.retry_at)
                break
            due = due_at(chat, unit)
            if due > now:
                wakes.append(due)
                break
            late = now - due
            grace = _grace(unit, policy)
            if late <= grace:
                actions.append(Post(unit))
            elif unit.state is UnitState.INTENT:
                actions.append(Reconcile(unit, _late_reason(late, policy)))
            elif unit.kind == StepKind.RECAP and unit.reason:
                # Held (answers unreadable) for longer than a recap may wait: not posted,
                # so no untrue counts go out in the community's name.
                actions.append(
                    Skip(
                        unit,
                        f"{unit.reason}, for more than the {format_duration(RECAP_GRACE)} "
                        "a recap may wait: not posted",
                    )
                )
            else:
                actions.append(Skip(unit, _late_reason(late, policy)))
            break
    starting = started and chat.state is ChatState.SCHEDULED and chat.paused_at is None
    state = ChatState.RUNNING if starting else None
    return Decision(tuple(actions), state=state, wake_at=min(wakes) if wakes else None)


def _grace(unit: UnitRow, policy: LatePolicy) -> timedelta:
    if unit.kind == StepKind.RECAP:
        return RECAP_GRACE
    if unit.kind in REPLY_KINDS:
        return REPLY_GRACE
    return policy.step_grace


def _late_reason(late: timedelta, policy: LatePolicy) -> str:
    return f"{_fmt(late)} late, more than the {_fmt(policy.step_grace)} a step may be late"


def _networks(units: Sequence[UnitRow]) -> list[NetworkName]:
    seen: list[NetworkName] = []
    for unit in units:
        if unit.network not in seen:
            seen.append(unit.network)
    return seen


def _missed_start(
    chat: ChatRow, units: Sequence[UnitRow], now: datetime, policy: LatePolicy
) -> Decision | None:
    """A chat none of whose steps went out by the start's grace: skip it or start it late."""
    chat_units = [u for u in units if u.kind not in LEAD_KINDS and u.kind not in REPLY_KINDS]
    if not chat_units or any(u.state is not UnitState.PENDING for u in chat_units):
        return None
    first_due = min(due_at(chat, u) for u in chat_units)
    late = now - first_due
    if late <= policy.step_grace:
        return None
    if policy.missed_start is MissedStart.SHIFT and late <= policy.max_shift:
        return Decision(
            shift=chat.shift + late,
            state=ChatState.RUNNING,
            notes=(
                f"start missed by {_fmt(late)}: the whole chat starts late (late policy: shift)",
            ),
        )
    reason = (
        f"chat start missed by {_fmt(late)} (the bot was not running); "
        f"late policy: {policy.missed_start.value}"
        + (
            f", at most {_fmt(policy.max_shift)}"
            if policy.missed_start is MissedStart.SHIFT
            else ""
        )
    )
    skips = tuple(Skip(u, reason) for u in units if u.state is UnitState.PENDING)
    return Decision(skips, state=ChatState.MISSED, notes=(reason,))


# --- live controls ------------------------------------------------------------------------


def _pending(units: Sequence[UnitRow]) -> list[UnitRow]:
    return [u for u in units if u.state not in DONE_STATES]


def next_step_key(units: Sequence[UnitRow]) -> str | None:
    """The first step not yet done on some network."""
    pending = sorted(_pending(units), key=lambda u: u.seq)
    return pending[0].step_key if pending else None


def shift_for_next(chat: ChatRow, units: Sequence[UnitRow], now: datetime) -> timedelta:
    """The shift that makes the next step due now, keeping the spacing of the ones after."""
    pending = [
        u for u in _pending(units) if u.state is UnitState.PENDING and u.kind not in REPLY_KINDS
    ]
    if not pending:
        return chat.shift
    first = min(pending, key=lambda u: u.seq)
    return chat.shift - (due_at(chat, first) - now)


def shift_for_resume(chat: ChatRow, now: datetime) -> timedelta:
    """After a pause, every remaining step moves by the pause's length."""
    if chat.paused_at is None:
        return chat.shift
    return chat.shift + (now - chat.paused_at)


# Ending early keeps these: the closing (posted now), the recap (after it, as planned) and
# the replies to people already decided (an answer to the ``end`` itself among them).
KEPT_AT_END = frozenset({StepKind.CLOSING.value, StepKind.RECAP.value, *REPLY_KINDS})


def units_to_end(units: Sequence[UnitRow]) -> tuple[list[UnitRow], str | None]:
    """Ending early: the pending units to skip (the script's remaining steps but the
    closing and the recap) and the closing's step."""
    pending = [u for u in units if u.state is UnitState.PENDING]
    closing = next((u.step_key for u in pending if u.kind == StepKind.CLOSING), None)
    return [u for u in pending if u.kind not in KEPT_AT_END], closing
