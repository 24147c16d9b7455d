"""Helpers for the collection tests: what the bot's store holds, read while it runs.

The store is opened through :class:`chatbot.store.Store` (SQLite in WAL mode, so
reading while the bot writes is safe) and closed after every look.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy.exc

from chatbot.store import Store, StoredAnswer, StoredPost
from tests.integration.botrun import BotFolder, BotProcess, wait_until

# (question, author's user name, answer text): one row of the expected table.
Row = tuple[int, str, str]


@dataclass(frozen=True)
class Snapshot:
    """The store's view of one chat at one moment."""

    answers: list[StoredAnswer]
    posts: list[StoredPost]  # deleted ones included
    participants: dict[str, str]  # user name -> opt-out or web opt-out reason

    def table(self) -> list[Row]:
        """The answers as (question, user name, text), sorted; duplicates stay visible."""
        return sorted((a.question, user_name(a.handle), a.text) for a in self.answers)

    def deleted_texts(self) -> set[str]:
        return {p.text for p in self.posts if p.deleted}


def user_name(handle: str) -> str:
    """``ana1f2e3d@localhost:1234`` -> ``ana1f2e3d``; ``ana1f2e3d.test`` -> ``ana1f2e3d``."""
    return handle.removeprefix("@").split("@")[0].split(".")[0]


def snapshot(folder: BotFolder, chat_id: str) -> Snapshot:
    store = Store.open(f"sqlite:///{folder.database}", now=datetime.now(UTC))
    try:
        answers = store.reports.answers(chat_id)
        posts = store.conversation.posts(chat_id, include_deleted=True)
        participants = {}
        for post in posts:
            author = store.conversation.participant(post.network, post.author_id)
            if author is not None:
                participants[user_name(author.handle)] = author.opt_out or author.web_opt_out
        return Snapshot(answers, posts, participants)
    finally:
        store.close()


def chat_id_of(folder: BotFolder) -> str:
    ids = {u["chat_id"] for u in folder.units()}
    assert len(ids) == 1, ids
    return str(ids.pop())


def wait_for_posted(
    folder: BotFolder, network: str, keys: Collection[str], process: BotProcess, timeout: float
) -> dict[str, dict[str, Any]]:
    """Wait until the bot's units ``keys`` are posted; returns them by step key."""

    def posted() -> dict[str, dict[str, Any]]:
        return {
            u["step_key"]: u
            for u in folder.units(network)
            if u["step_key"] in keys and u["state"] == "posted" and u["remote_id"]
        }

    wait_until(
        lambda: posted().keys() >= set(keys), timeout, f"{sorted(keys)} posted", process=process
    )
    return posted()


def wait_for_table(
    folder: BotFolder,
    chat_id: str,
    expected: Iterable[Row],
    process: BotProcess,
    timeout: float,
    *,
    also: Callable[[Snapshot], bool] = lambda _s: True,
) -> Snapshot:
    """Wait (bounded) until the store's answers are exactly ``expected`` and ``also`` holds."""
    want = sorted(expected)
    deadline = time.monotonic() + timeout
    while True:
        if process.exited():
            pytest.fail(f"the bot exited while collecting:\n{process.tail()}")
        try:
            last = snapshot(folder, chat_id)
        except sqlalchemy.exc.OperationalError:
            last = None  # the database is busy or not created yet: look again
        if last is not None and last.table() == want and also(last):
            return last
        if time.monotonic() > deadline:
            got = last.table() if last is not None else []
            pytest.fail(
                f"after {timeout:.0f} s the store does not hold the expected answers\n"
                f"missing: {sorted(set(want) - set(got))}\n"
                f"unexpected: {sorted(set(got) - set(want))}\n"
                f"duplicates: {sorted(r for r in set(got) if got.count(r) > 1)}\n"
                f"{process.tail()}"
            )
        time.sleep(0.25)
