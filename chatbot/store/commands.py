"""Commands to chats: received from co-moderators on a network or from `chatbot control`,
applied in order by the replica that holds the chat, each with what came of it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from chatbot.posts import PostRef
from chatbot.script import NetworkName
from chatbot.store.model import CommandRow, CommandState
from chatbot.store.repository import Repository
from chatbot.store.schema import commands_table


class Commands(Repository):
    """Reads and writes of the commands table."""

    def receive(
        self,
        chat_id: str,
        *,
        source: str,
        author_id: str,
        author: str,
        text: str,
        now: datetime,
        post: PostRef | None = None,
        post_uri: str | None = None,
        target_id: str | None = None,
    ) -> int | None:
        """Record a command; None if the post carrying it was recorded before (seen twice)."""
        c = commands_table.c
        with self._tx() as conn:
            if (
                post_uri is not None
                and conn.execute(sa.select(c.id).where(c.post_uri == post_uri)).first()
            ):
                return None
            inserted = conn.execute(
                commands_table.insert().values(
                    chat_id=chat_id,
                    source=source,
                    post_uri=post_uri,
                    post_id=post.id if post else None,
                    post_cid=post.cid if post else None,
                    target_id=target_id,
                    author_id=author_id,
                    author=author,
                    text=text,
                    received_at=now,
                    state=CommandState.RECEIVED.value,
                )
            ).inserted_primary_key
        return int(inserted[0]) if inserted else None

    def waiting(self, chat_ids: list[str] | None = None) -> list[CommandRow]:
        """Commands received and not yet applied or refused, oldest first."""
        c = commands_table.c
        query = (
            sa.select(commands_table).where(c.state == CommandState.RECEIVED.value).order_by(c.id)
        )
        if chat_ids is not None:
            query = query.where(c.chat_id.in_(chat_ids))
        with self._tx() as conn:
            return [_command(r) for r in conn.execute(query)]

    def done(self, command_id: int, state: CommandState, detail: str, *, now: datetime) -> bool:
        """Record what came of a command; False if it was already done (by another replica)."""
        c = commands_table.c
        with self._tx() as conn:
            return bool(
                conn.execute(
                    commands_table.update()
                    .where(c.id == command_id, c.state == CommandState.RECEIVED.value)
                    .values(state=state.value, detail=detail, done_at=now)
                ).rowcount
            )

    def get(self, command_id: int) -> CommandRow | None:
        with self._tx() as conn:
            row = conn.execute(
                sa.select(commands_table).where(commands_table.c.id == command_id)
            ).first()
        return _command(row) if row else None

    def of_chat(self, chat_id: str) -> list[CommandRow]:
        """Every command of a chat, in the order received (moderator notes)."""
        c = commands_table.c
        with self._tx() as conn:
            return [
                _command(r)
                for r in conn.execute(
                    sa.select(commands_table).where(c.chat_id == chat_id).order_by(c.id)
                )
            ]

    def recent(self, limit: int = 10) -> list[CommandRow]:
        c = commands_table.c
        with self._tx() as conn:
            return [
                _command(r)
                for r in conn.execute(sa.select(commands_table).order_by(c.id.desc()).limit(limit))
            ]


def _command(row: sa.Row[Any]) -> CommandRow:
    post = target = None
    if row.source in {n.value for n in NetworkName}:
        network = NetworkName(row.source)
        post = PostRef(network, row.post_id, "", row.post_cid or "") if row.post_id else None
        target = PostRef(network, row.target_id) if row.target_id else None
    return CommandRow(
        id=row.id,
        chat_id=row.chat_id,
        source=row.source,
        post=post,
        post_uri=row.post_uri,
        target=target,
        author_id=row.author_id,
        author=row.author,
        text=row.text,
        received_at=row.received_at,
        state=CommandState(row.state),
        detail=row.detail,
        done_at=row.done_at,
    )
