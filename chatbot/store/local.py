"""The embedded local network's posts, kept in the state database (see networks/local.py)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from chatbot.store.model import LocalPost
from chatbot.store.repository import Repository
from chatbot.store.schema import local_posts_table

BOT_AUTHOR = "chatbot"


class LocalPosts(Repository):
    """Reads and writes of the local network's posts table."""

    def publish(self, bot_post: LocalPost, others: Sequence[LocalPost] = ()) -> int:
        """Insert the bot's post and, in the same transaction, what people will post after it.

        ``others`` may refer to the bot's post by the id 0: it becomes the new post's id.
        """
        with self._tx() as conn:
            inserted = conn.execute(
                local_posts_table.insert().values(
                    **_values(bot_post), idempotency_key=bot_post.idempotency_key
                )
            ).inserted_primary_key
            new_id = int(inserted[0]) if inserted else 0
            if others:
                conn.execute(
                    local_posts_table.insert(),
                    [
                        _values(post, new_id)
                        | {"idempotency_key": None, "network": bot_post.network}
                        for post in others
                    ],
                )
        return new_id

    def add(self, post: LocalPost) -> int:
        """A participant's post (not the bot's); returns its id."""
        with self._tx() as conn:
            inserted = conn.execute(
                local_posts_table.insert().values(**_values(post), idempotency_key=None)
            ).inserted_primary_key
        return int(inserted[0]) if inserted else 0

    def threads_before(self, root: int | None, network: str) -> int:
        """How many of the bot's threads on ``network`` began before the thread ``root``
        (all of them, for a thread that begins now): the chat's number in the series."""
        c = local_posts_table.c
        query = sa.select(sa.func.count()).where(
            c.author == BOT_AUTHOR, c.root.is_(None), c.network == network
        )
        if root:
            query = query.where(c.id < root)
        with self._tx() as conn:
            return int(conn.execute(query).scalar() or 0)

    def find(self, idempotency_key: str) -> int | None:
        """The id of the bot's post made with ``idempotency_key``, if there is one."""
        with self._tx() as conn:
            return conn.execute(
                sa.select(local_posts_table.c.id).where(
                    local_posts_table.c.idempotency_key == idempotency_key
                )
            ).scalar()

    def visible(
        self,
        *,
        until: datetime | None,
        after: tuple[datetime, int] | None = None,
        network: str | None = None,
    ) -> list[LocalPost]:
        """Posts written up to ``until`` (None: all, future ones too), oldest first, after
        ``after`` = (time, id) if given, of one played network if given."""
        c = local_posts_table.c
        query = sa.select(local_posts_table).order_by(c.created_at, c.id)
        if network is not None:
            query = query.where(c.network == network)
        if until is not None:
            query = query.where(c.created_at <= until)
        if after is not None:
            at, last_id = after
            query = query.where(
                sa.or_(c.created_at > at, sa.and_(c.created_at == at, c.id > last_id))
            )
        with self._tx() as conn:
            return [_post(r) for r in conn.execute(query)]


def _values(post: LocalPost, bot_post_id: int = 0) -> dict[str, Any]:
    def ref(value: int | None) -> int | None:
        return bot_post_id if value == 0 else value

    return {
        "author": post.author,
        "author_name": post.author_name,
        "text": post.text,
        "reply_to": ref(post.reply_to),
        "root": ref(post.root),
        "created_at": post.created_at,
        "image_alt": post.image_alt,
        "network": post.network,
    }


def _post(row: sa.Row[Any]) -> LocalPost:
    return LocalPost(
        row.id,
        row.author,
        row.author_name,
        row.text,
        row.reply_to,
        row.root,
        row.created_at,
        row.image_alt,
        row.idempotency_key,
        row.network,
    )
