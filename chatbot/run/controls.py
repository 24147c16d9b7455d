"""Live controls of a running chat: pause, resume, skip, next, extend, end.

Each is a change to the chat's shift or units, decided by the pure functions
in :mod:`chatbot.run.policy`, made under the chat's lock, recorded as an event,
and followed by a wake-up of the chat's job so it takes effect at once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime, timedelta

import structlog

from chatbot.errors import ChatbotError
from chatbot.run import policy
from chatbot.store import ChatRow, Store, UnitState

log = structlog.get_logger("chatbot.run.controls")
Clock = Callable[[], datetime]


class UnknownChat(ChatbotError):
    """A control named a chat the store does not have."""


class Controls:
    """What a co-moderator (or the host) can do to a chat while it runs."""

    def __init__(
        self,
        *,
        store: Store,
        clock: Clock,
        lock_of: Callable[[str], threading.Lock],
        wake: Callable[[str, datetime], None],
        speed: float = 1.0,
    ) -> None:
        self._store = store
        self._clock = clock
        self._lock_of = lock_of
        self._wake = wake
        self._speed = speed  # a rehearsal's minutes are shorter: extend by the chat's minutes

    def pause(self, chat_id: str) -> None:
        """Hold every remaining step until resume."""
        with self._lock_of(chat_id):
            self._chat(chat_id)
            self._store.chats.update(chat_id, paused_at=self._clock(), now=self._clock())
        self._done(chat_id, "paused")

    def resume(self, chat_id: str) -> None:
        """Go on after a pause: the remaining steps move by the time paused."""
        with self._lock_of(chat_id):
            chat = self._chat(chat_id)
            now = self._clock()
            self._store.chats.update(
                chat_id, shift=policy.shift_for_resume(chat, now), paused_at=None, now=now
            )
        self._done(chat_id, "resumed")

    def skip(self, chat_id: str, step_key: str | None = None) -> str | None:
        """Skip a step (default: the next one) on every network; returns its key."""
        with self._lock_of(chat_id):
            self._chat(chat_id)
            units = self._store.units.of_chat(chat_id)
            key = step_key or policy.next_step_key(units)
            for unit in units:
                if unit.step_key == key and unit.state is UnitState.PENDING:
                    self._store.units.mark_done(
                        chat_id,
                        unit.step_key,
                        unit.network,
                        UnitState.SKIPPED,
                        "skipped by a moderator",
                        now=self._clock(),
                    )
        self._done(chat_id, f"skipped {key}")
        return key

    def next_now(self, chat_id: str) -> None:
        """Post the next step now; the ones after keep their spacing."""
        with self._lock_of(chat_id):
            chat = self._chat(chat_id)
            now = self._clock()
            shift = policy.shift_for_next(chat, self._store.units.of_chat(chat_id), now)
            self._store.chats.update(chat_id, shift=shift, now=now)
        self._done(chat_id, "next step now")

    def extend(self, chat_id: str, by: timedelta) -> None:
        """Give the current question more time: every remaining step moves by ``by``."""
        with self._lock_of(chat_id):
            chat = self._chat(chat_id)
            self._store.chats.update(
                chat_id, shift=chat.shift + by / self._speed, now=self._clock()
            )
        self._done(chat_id, f"extended by {by}")

    def end(self, chat_id: str) -> None:
        """End early: skip the remaining questions and post the closing now."""
        with self._lock_of(chat_id):
            self._chat(chat_id)
            now = self._clock()
            skipped, _closing = policy.units_to_end(self._store.units.of_chat(chat_id))
            for unit in skipped:
                self._store.units.mark_done(
                    chat_id,
                    unit.step_key,
                    unit.network,
                    UnitState.SKIPPED,
                    "the chat was ended early",
                    now=now,
                )
            chat = self._chat(chat_id)
            shift = policy.shift_for_next(chat, self._store.units.of_chat(chat_id), now)
            self._store.chats.update(chat_id, shift=shift, now=now)
        self._done(chat_id, "ended early")

    def _chat(self, chat_id: str) -> ChatRow:
        chat = self._store.chats.get(chat_id)
        if chat is None:
            raise UnknownChat(f"no chat {chat_id!r} in the store")
        return chat

    def _done(self, chat_id: str, what: str) -> None:
        now = self._clock()
        log.info("control", chat=chat_id, action=what)
        self._store.events.add("info", what, chat_id=chat_id, now=now)
        self._wake(chat_id, now)
