"""Read-only queries for what is built from the store: answers, transcripts, participation."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from chatbot.kinds import PARTICIPANT_KINDS
from chatbot.posts import Author
from chatbot.script import NetworkName
from chatbot.store.conversation import author_of, post_row
from chatbot.store.model import StoredAnswer, StoredPost
from chatbot.store.repository import Repository
from chatbot.store.schema import (
    answers_table,
    chats_table,
    participants_table,
    seen_posts_table,
)


class Reports(Repository):
    """Queries over the conversation of one chat or of a series."""

    def answers(self, chat_id: str, question: int | None = None) -> list[StoredAnswer]:
        """The chat's answers, by question then time, with their authors."""
        a, p, s = answers_table.c, participants_table.c, seen_posts_table.c
        query = (
            _answers_with_authors(
                a.chat_id,
                a.network,
                a.uri,
                a.question,
                a.part,
                a.text,
                a.created_at,
                a.author_id,
                p.handle,
                p.display_name,
                p.opt_out,
                p.web_opt_out,
                s.url,
                s.likes,
                s.reposts,
            )
            .where(a.chat_id == chat_id)
            .order_by(a.question, a.created_at, a.uri, a.part)
        )
        if question is not None:
            query = query.where(a.question == question)
        with self._tx() as conn:
            return [
                StoredAnswer(
                    chat_id=r.chat_id,
                    network=NetworkName(r.network),
                    uri=r.uri,
                    url=r.url,
                    question=r.question,
                    part=r.part,
                    text=r.text,
                    created_at=r.created_at,
                    author_id=r.author_id,
                    handle=r.handle,
                    display_name=r.display_name,
                    opt_out=r.opt_out,
                    web_opt_out=r.web_opt_out,
                    likes=r.likes,
                    reposts=r.reposts,
                )
                for r in conn.execute(query)
            ]

    def authors_before(
        self, script_id: str, chat_id: str, before: datetime
    ) -> set[tuple[NetworkName, str]]:
        """(network, account) of everyone who posted in earlier chats of the same script."""
        s, c = seen_posts_table.c, chats_table.c
        query = (
            sa.select(s.network, s.author_id)
            .join(chats_table, c.chat_id == s.chat_id)
            .where(c.script_id == script_id, c.chat_id != chat_id, c.start_at < before)
            .distinct()
        )
        with self._tx() as conn:
            return {(NetworkName(r.network), r.author_id) for r in conn.execute(query)}

    def chats_of(self, script_id: str, network: NetworkName, author_id: str) -> set[str]:
        """The chats of a series in which an account wrote a post that counts (not a host's,
        not blocked, not deleted)."""
        return self.chats_by_author(script_id, network, author_id).get(author_id, set())

    def chats_by_author(
        self, script_id: str, network: NetworkName, author_id: str | None = None
    ) -> dict[str, set[str]]:
        """Each account's chats of a series (as :meth:`chats_of`), in one query: everyone's,
        or ``author_id``'s only."""
        s, c = seen_posts_table.c, chats_table.c
        conditions = [
            c.script_id == script_id,
            s.network == network.value,
            s.kind.in_(list(PARTICIPANT_KINDS)),
            s.deleted_at.is_(None),
        ]
        if author_id is not None:
            conditions.append(s.author_id == author_id)
        query = (
            sa.select(s.author_id, s.chat_id)
            .join(chats_table, c.chat_id == s.chat_id)
            .where(*conditions)
            .distinct()
        )
        found: dict[str, set[str]] = {}
        with self._tx() as conn:
            for r in conn.execute(query):
                found.setdefault(r.author_id, set()).add(r.chat_id)
        return found

    def post_counts(self, chat_id: str) -> dict[str, int]:
        """How many non-deleted posts of the chat were judged to be of each kind."""
        s = seen_posts_table.c
        query = (
            sa.select(s.kind, sa.func.count().label("posts"))
            .where(s.chat_id == chat_id, s.deleted_at.is_(None))
            .group_by(s.kind)
        )
        with self._tx() as conn:
            return {r.kind: int(r.posts) for r in conn.execute(query)}

    def answer_rows(
        self, chat_id: str, kinds: Sequence[str]
    ) -> list[tuple[int, str, str, datetime, str, str, str, str, str, str]]:
        """(question, part, text, created at, network, url, handle, display name, opt-out,
        web opt-out) of the answers in non-deleted posts of ``kinds``, by question then time.

        The lean form of :meth:`answers` for transcripts of 20,000 answers: no object
        per row (building them took longer than the query).
        """
        a, p, s = answers_table.c, participants_table.c, seen_posts_table.c
        query = (
            _answers_with_authors(
                a.question,
                a.part,
                a.text,
                a.created_at,
                a.network,
                s.url,
                p.handle,
                p.display_name,
                p.opt_out,
                p.web_opt_out,
            )
            .where(a.chat_id == chat_id, s.kind.in_(list(kinds)), s.deleted_at.is_(None))
            .order_by(a.question, a.created_at, a.uri, a.part)
        )
        with self._tx() as conn:
            return [tuple(r) for r in conn.execute(query).all()]

    def posts_of_kind(self, chat_id: str, kinds: Sequence[str]) -> list[StoredPost]:
        """The chat's non-deleted posts of ``kinds``, in time order."""
        s = seen_posts_table.c
        query = (
            sa.select(seen_posts_table)
            .where(s.chat_id == chat_id, s.kind.in_(list(kinds)), s.deleted_at.is_(None))
            .order_by(s.created_at, s.uri)
        )
        with self._tx() as conn:
            return [post_row(r) for r in conn.execute(query)]

    def participation(
        self, chat_ids: Sequence[str], kinds: Sequence[str]
    ) -> list[tuple[str, Author, int]]:
        """(chat id, author, answers) for each author of a non-deleted post of ``kinds``."""
        p, s, a = participants_table.c, seen_posts_table.c, answers_table.c
        posted = (
            sa.select(s.chat_id, s.network, s.author_id)
            .where(s.chat_id.in_(list(chat_ids)), s.kind.in_(list(kinds)), s.deleted_at.is_(None))
            .distinct()
            .subquery()
        )
        authors = (
            sa.select(posted.c.chat_id, participants_table)
            .join(
                participants_table,
                sa.and_(p.network == posted.c.network, p.account_id == posted.c.author_id),
            )
            .order_by(posted.c.chat_id, p.network, p.account_id)
        )
        # Counted apart: SQLite joins two grouped subqueries without an index (slow).
        counts = (
            sa.select(a.chat_id, a.network, a.author_id, sa.func.count().label("answers"))
            .where(a.chat_id.in_(list(chat_ids)))
            .group_by(a.chat_id, a.network, a.author_id)
        )
        with self._tx() as conn:
            answers = {
                (r.chat_id, r.network, r.author_id): int(r.answers) for r in conn.execute(counts)
            }
            return [
                (
                    r.chat_id,
                    author_of(r),
                    answers.get((r.chat_id, r.network, r.account_id), 0),
                )
                for r in conn.execute(authors)
            ]


def _answers_with_authors(*columns: sa.ColumnElement[Any]) -> sa.Select[Any]:
    """``columns`` of each answer joined with its author and its post."""
    a, p, s = answers_table.c, participants_table.c, seen_posts_table.c
    return (
        sa.select(*columns)
        .select_from(answers_table)
        .join(
            participants_table,
            sa.and_(p.network == a.network, p.account_id == a.author_id),
        )
        .join(
            seen_posts_table,
            sa.and_(s.chat_id == a.chat_id, s.network == a.network, s.uri == a.uri),
        )
    )
