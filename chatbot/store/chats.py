"""The chats: one row per dated chat, with where it stands and how far it has been moved."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from chatbot.store.model import ChatRow, ChatState
from chatbot.store.repository import Repository, upsert
from chatbot.store.schema import chats_table


class _Keep:
    """``update(paused_at=...)`` not given: the pause stays as it is (None means resume)."""


class Chats(Repository):
    """Reads and writes of the chats table."""

    def upsert(
        self,
        *,
        chat_id: str,
        script_id: str,
        title: str,
        hashtag: str,
        timezone: str,
        start_at: datetime,
        end_at: datetime,
        now: datetime,
    ) -> None:
        """Create the chat, or update what the script says about it (not its progress)."""
        values: dict[str, Any] = {
            "script_id": script_id,
            "title": title,
            "hashtag": hashtag,
            "timezone": timezone,
            "start_at": start_at,
            "end_at": end_at,
            "updated_at": now,
        }
        self._racing(
            lambda conn: upsert(
                conn,
                chats_table,
                {"chat_id": chat_id},
                values,
                on_insert={"state": ChatState.SCHEDULED.value},
            )
        )

    def get(self, chat_id: str) -> ChatRow | None:
        with self._tx() as conn:
            row = conn.execute(
                sa.select(chats_table).where(chats_table.c.chat_id == chat_id)
            ).first()
        return _chat_row(row) if row else None

    def list(self, states: Sequence[ChatState] | None = None) -> list[ChatRow]:
        """Chats, soonest first; only those in ``states`` if given."""
        query = sa.select(chats_table).order_by(chats_table.c.start_at)
        if states is not None:
            query = query.where(chats_table.c.state.in_([s.value for s in states]))
        with self._tx() as conn:
            return [_chat_row(r) for r in conn.execute(query)]

    def update(
        self,
        chat_id: str,
        *,
        now: datetime,
        state: ChatState | None = None,
        shift: timedelta | None = None,
        paused_at: datetime | type[_Keep] | None = _Keep,
        note: str | None = None,
    ) -> None:
        """Set the chat's state, shift, pause or note (what is not given stays)."""
        values: dict[str, Any] = {"updated_at": now}
        if state is not None:
            values["state"] = ChatState(state).value
        if shift is not None:
            values["shift_seconds"] = shift.total_seconds()
        if paused_at is not _Keep:
            values["paused_at"] = paused_at
        if note is not None:
            values["note"] = note
        with self._tx() as conn:
            conn.execute(
                chats_table.update().where(chats_table.c.chat_id == chat_id).values(**values)
            )


def _chat_row(row: sa.Row[Any]) -> ChatRow:
    return ChatRow(
        chat_id=row.chat_id,
        script_id=row.script_id,
        title=row.title,
        hashtag=row.hashtag,
        timezone=row.timezone,
        start_at=row.start_at,
        end_at=row.end_at,
        state=ChatState(row.state),
        shift=timedelta(seconds=row.shift_seconds),
        paused_at=row.paused_at,
        note=row.note,
    )
