"""The chat job's work: everything due for a chat now is done now, in order.

:meth:`Steps.advance` asks :func:`chatbot.run.policy.decide` what to do at this
instant (post, reconcile, skip as late, call the chat missed), does it, and
repeats until nothing more is due; it returns when to look again. The runner
calls it under the chat's lock, from the chat's job.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime

import structlog

from chatbot.config import LatePolicy
from chatbot.kinds import StepKind
from chatbot.run import policy
from chatbot.run.posting import Poster
from chatbot.run.recaps import Held, Recaps
from chatbot.store import ChatState, Fence, Store, UnitRow, UnitState

log = structlog.get_logger("chatbot.run.steps")
Clock = Callable[[], datetime]


class Steps:
    """Does what is due for one chat at a time."""

    def __init__(
        self,
        *,
        store: Store,
        clock: Clock,
        late: LatePolicy,
        poster: Poster,
        recaps: Recaps,
        stopping: threading.Event,
    ) -> None:
        self._store = store
        self._clock = clock
        self._late = late
        self._poster = poster
        self._recaps = recaps
        self._stopping = stopping

    def advance(self, chat_id: str, fence: Fence | None = None) -> datetime | None:
        """Do everything due for the chat now; return when to look again (None: nothing left).

        Under ``fence`` (the chat's lease), every write is refused once another replica
        holds the chat: :class:`~chatbot.store.LeaseLost` then ends the work.
        """
        while not self._stopping.is_set():
            chat = self._store.chats.get(chat_id)
            if chat is None:
                return None
            now = self._clock()
            decision = policy.decide(chat, self._store.units.of_chat(chat_id), now, self._late)
            for note in decision.notes:
                log.warning("late policy", chat=chat_id, note=note)
                self._store.events.add("warning", note, chat_id=chat_id, now=now)
            if decision.state is not None or decision.shift is not None or decision.notes:
                self._store.chats.update(
                    chat_id,
                    state=decision.state,
                    shift=decision.shift,
                    note="; ".join(decision.notes) if decision.notes else None,
                    now=now,
                )
                if decision.state in (ChatState.DONE, ChatState.MISSED):
                    log.info("chat over", chat=chat_id, state=decision.state.value)
            if not decision.actions:
                if decision.shift is not None:
                    continue
                return decision.wake_at
            for action in decision.actions:
                if self._stopping.is_set():
                    break
                self._execute(chat_id, action, fence)
        return None

    def _execute(self, chat_id: str, action: policy.Action, fence: Fence | None) -> None:
        unit = action.unit
        if isinstance(action, policy.Skip):
            self._poster.close(chat_id, unit, UnitState.SKIPPED, action.reason, fence)
        elif isinstance(action, policy.Reconcile):
            self._poster.reconcile(chat_id, unit, action.reason, fence)
        else:
            self._post(chat_id, unit, fence)

    def _post(self, chat_id: str, unit: UnitRow, fence: Fence | None) -> None:
        if unit.kind == StepKind.RECAP and not unit.text:
            composed = self._recaps.compose(chat_id, unit)
            if isinstance(composed, str):
                self._poster.close(chat_id, unit, UnitState.SKIPPED, composed, fence)
                return
            if isinstance(composed, Held):
                self._poster.retry(chat_id, unit, composed.until, composed.reason, fence)
                return
            unit = composed
        self._poster.post(chat_id, unit, fence)
