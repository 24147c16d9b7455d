"""Events: what the bot did or could not do, where ``chatbot status`` shows it."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa

from chatbot.script import NetworkName
from chatbot.store.model import EventRow
from chatbot.store.repository import Repository
from chatbot.store.schema import events_table


class Events(Repository):
    """Reads and writes of the events table."""

    def add(
        self,
        level: str,
        message: str,
        *,
        now: datetime,
        chat_id: str | None = None,
        step_key: str | None = None,
        network: NetworkName | None = None,
    ) -> None:
        with self._tx() as conn:
            conn.execute(
                events_table.insert().values(
                    at=now,
                    level=level,
                    chat_id=chat_id,
                    step_key=step_key,
                    network=network.value if network else None,
                    message=message,
                )
            )

    def recent(
        self,
        limit: int = 20,
        levels: Sequence[str] | None = None,
        *,
        chat_id: str | None = None,
    ) -> list[EventRow]:
        """The newest events first, of ``levels`` and of one chat if given."""
        query = sa.select(events_table).order_by(events_table.c.id.desc()).limit(limit)
        if levels:
            query = query.where(events_table.c.level.in_(list(levels)))
        if chat_id is not None:
            query = query.where(events_table.c.chat_id == chat_id)
        with self._tx() as conn:
            return [
                EventRow(r.at, r.level, r.chat_id, r.step_key, r.network, r.message)
                for r in conn.execute(query)
            ]
