"""The conversation of a chat as collected: participants, their posts and answers, the cursors
collection resumes from, and whether the last round could read anything at all."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from chatbot.posts import Author
from chatbot.script import NetworkName
from chatbot.store.model import RoundRow, StoredPost
from chatbot.store.repository import Repository, upsert
from chatbot.store.schema import (
    UtcDateTime,
    answers_table,
    collection_table,
    cursors_table,
    participants_table,
    seen_posts_table,
)

# (question, part, text) of one answer in a post.
AnswerParts = tuple[int, str, str]


class Conversation(Repository):
    """Reads and writes of the tables a collection round fills."""

    # --- participants ---------------------------------------------------------------------

    def save_participant(self, author: Author, *, now: datetime) -> None:
        """Record or refresh a participant (profiles change: opt-outs are re-read every time)."""
        with self._tx() as conn:
            upsert(
                conn,
                participants_table,
                {"network": author.network.value, "account_id": author.id},
                {
                    "handle": author.handle,
                    "display_name": author.display_name,
                    "url": author.url,
                    "bot": author.bot,
                    "opt_out": author.opt_out,
                    "web_opt_out": author.web_opt_out,
                    "updated_at": now,
                },
            )

    def participant(self, network: NetworkName, account_id: str) -> Author | None:
        with self._tx() as conn:
            row = conn.execute(
                sa.select(participants_table).where(
                    participants_table.c.network == network.value,
                    participants_table.c.account_id == account_id,
                )
            ).first()
        return author_of(row) if row else None

    # --- posts and answers ----------------------------------------------------------------

    def post_index(self, chat_id: str, network: NetworkName) -> dict[str, StoredPost]:
        """The chat's stored posts on a network by their server id (for reply chains)."""
        with self._tx() as conn:
            rows = conn.execute(
                sa.select(seen_posts_table).where(
                    seen_posts_table.c.chat_id == chat_id,
                    seen_posts_table.c.network == network.value,
                )
            )
            return {r.post_id: post_row(r) for r in rows}

    def save_post(self, post: StoredPost, answers: Sequence[AnswerParts], *, now: datetime) -> bool:
        """Store a post and its answers; replaces an earlier version.

        Returns whether anything changed (a post seen twice unchanged is stored once).
        """
        values = {
            "post_id": post.post_id,
            "url": post.url,
            "author_id": post.author_id,
            "text": post.text,
            "created_at": post.created_at,
            "edited_at": post.edited_at,
            "reply_to": post.reply_to,
            "quote_of": post.quote_of,
            "likes": post.likes,
            "reposts": post.reposts,
            "kind": post.kind,
            "reason": post.reason,
            "resolved": post.resolved,
            "deleted_at": None,
        }
        key = {"chat_id": post.chat_id, "network": post.network.value, "uri": post.uri}
        with self._tx() as conn:
            row = conn.execute(sa.select(seen_posts_table).where(*_post_key(key))).first()
            if row is not None and post_row(row) == post:
                return False
            upsert(conn, seen_posts_table, key, values, on_insert={"seen_at": now})
            conn.execute(answers_table.delete().where(*_answer_key(key)))
            if answers:
                conn.execute(
                    answers_table.insert(),
                    [
                        {
                            **key,
                            "question": question,
                            "part": part,
                            "text": text,
                            "author_id": post.author_id,
                            "created_at": post.created_at,
                        }
                        for question, part, text in answers
                    ],
                )
        return True

    def delete_post(self, chat_id: str, network: NetworkName, uri: str, *, now: datetime) -> bool:
        """A post deleted by its author: its answers go, the record stays marked deleted."""
        key = {"chat_id": chat_id, "network": network.value, "uri": uri}
        with self._tx() as conn:
            changed = conn.execute(
                seen_posts_table.update()
                .where(*_post_key(key), seen_posts_table.c.deleted_at.is_(None))
                .values(deleted_at=now)
            ).rowcount
            conn.execute(answers_table.delete().where(*_answer_key(key)))
        return bool(changed)

    def posts(self, chat_id: str, *, include_deleted: bool = False) -> list[StoredPost]:
        query = (
            sa.select(seen_posts_table)
            .where(seen_posts_table.c.chat_id == chat_id)
            .order_by(seen_posts_table.c.created_at, seen_posts_table.c.uri)
        )
        if not include_deleted:
            query = query.where(seen_posts_table.c.deleted_at.is_(None))
        with self._tx() as conn:
            return [post_row(r) for r in conn.execute(query)]

    # --- where collection resumes, and whether it works -----------------------------------

    def cursors(self, chat_id: str, network: NetworkName) -> dict[str, str]:
        with self._tx() as conn:
            rows = conn.execute(
                sa.select(cursors_table.c.source, cursors_table.c.value).where(
                    cursors_table.c.chat_id == chat_id,
                    cursors_table.c.network == network.value,
                )
            )
            return {r.source: r.value for r in rows}

    def save_cursors(
        self, chat_id: str, network: NetworkName, cursors: dict[str, str], *, now: datetime
    ) -> None:
        with self._tx() as conn:
            for source, value in cursors.items():
                upsert(
                    conn,
                    cursors_table,
                    {"chat_id": chat_id, "network": network.value, "source": source},
                    {"value": value, "updated_at": now},
                )

    def record_round(
        self, chat_id: str, network: NetworkName, *, error: str = "", now: datetime
    ) -> RoundRow:
        """A collection round ended: it read everything (``error`` empty) or failed with ``error``.

        ``failing_since`` is the first of an unbroken run of failing rounds.
        """
        c = collection_table.c
        key = {"chat_id": chat_id, "network": network.value}
        values: dict[str, Any] = {"last_round_at": now, "error": error}
        if error:
            values["failing_since"] = sa.func.coalesce(
                c.failing_since, sa.literal(now, UtcDateTime())
            )
        else:
            values |= {"last_ok_at": now, "failing_since": None}
        with self._tx() as conn:
            where = (c.chat_id == chat_id, c.network == network.value)
            if not conn.execute(
                collection_table.update().where(*where).values(rounds=c.rounds + 1, **values)
            ).rowcount:
                conn.execute(
                    collection_table.insert().values(
                        **key,
                        last_round_at=now,
                        error=error,
                        rounds=1,
                        last_ok_at=None if error else now,
                        failing_since=now if error else None,
                    )
                )
            row = conn.execute(sa.select(collection_table).where(*where)).one()
        return round_row(row)

    def rounds(self, chat_id: str | None = None) -> list[RoundRow]:
        """The last round of each chat and network (of one chat if given)."""
        query = sa.select(collection_table).order_by(
            collection_table.c.chat_id, collection_table.c.network
        )
        if chat_id is not None:
            query = query.where(collection_table.c.chat_id == chat_id)
        with self._tx() as conn:
            return [round_row(r) for r in conn.execute(query)]


def _post_key(key: dict[str, str]) -> tuple[sa.ColumnElement[bool], ...]:
    c = seen_posts_table.c
    return (c.chat_id == key["chat_id"], c.network == key["network"], c.uri == key["uri"])


def _answer_key(key: dict[str, str]) -> tuple[sa.ColumnElement[bool], ...]:
    c = answers_table.c
    return (c.chat_id == key["chat_id"], c.network == key["network"], c.uri == key["uri"])


def author_of(row: sa.Row[Any]) -> Author:
    """A participants row (or a query with its columns) as an Author."""
    return Author(
        network=NetworkName(row.network),
        id=row.account_id,
        handle=row.handle,
        display_name=row.display_name,
        url=row.url,
        bot=row.bot,
        opt_out=row.opt_out,
        web_opt_out=row.web_opt_out,
    )


def post_row(row: sa.Row[Any]) -> StoredPost:
    return StoredPost(
        chat_id=row.chat_id,
        network=NetworkName(row.network),
        uri=row.uri,
        post_id=row.post_id,
        url=row.url,
        author_id=row.author_id,
        text=row.text,
        created_at=row.created_at,
        edited_at=row.edited_at,
        reply_to=row.reply_to,
        quote_of=row.quote_of,
        likes=row.likes,
        reposts=row.reposts,
        kind=row.kind,
        reason=row.reason,
        resolved=row.resolved,
        deleted=row.deleted_at is not None,
    )


def round_row(row: sa.Row[Any]) -> RoundRow:
    return RoundRow(
        chat_id=row.chat_id,
        network=NetworkName(row.network),
        last_round_at=row.last_round_at,
        last_ok_at=row.last_ok_at,
        failing_since=row.failing_since,
        error=row.error,
        rounds=row.rounds,
    )
