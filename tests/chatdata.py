"""Chats written straight into a real store, for the transcript and participation tests.

Posts go in through the store's own writes (participants, posts with their answers,
deletions), as collection leaves them; attribution itself is tested elsewhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml

from chatbot.posts import Author, PostRef
from chatbot.script import NetworkName
from chatbot.store import ChatState, PlannedUnit, Store, StoredPost

START = datetime(2030, 1, 3, 1, 0, tzinfo=UTC)  # 20:00 on 2 January in New York
CORPUS = Path(__file__).parent / "data" / "hostile_answers.yaml"
MASTODON = NetworkName.MASTODON
BLUESKY = NetworkName.BLUESKY


def open_store(data_dir: Path) -> Store:
    """The store ``chatbot ... --data-dir data_dir`` opens."""
    return Store.open(f"sqlite:///{data_dir / 'chatbot.db'}", now=datetime.now(UTC))


def add_chat(
    store: Store,
    chat_id: str,
    *,
    script_id: str = "blchat",
    start: datetime = START,
    questions: Sequence[str] = (),
    timezone: str = "America/New_York",
    state: ChatState = ChatState.DONE,
) -> None:
    """A chat whose questions were posted on Mastodon, 10 minutes apart from 0:10."""
    store.chats.upsert(
        chat_id=chat_id,
        script_id=script_id,
        title="Blended learning: station rotation",
        hashtag="BLchat",
        timezone=timezone,
        start_at=start,
        end_at=start + timedelta(hours=1),
        now=datetime.now(UTC),
    )
    store.units.plan(
        chat_id,
        [
            PlannedUnit(
                f"q{n}",
                MASTODON,
                n,
                "question",
                n,
                start + timedelta(minutes=10 * n),
                f"{chat_id}-q{n}",
                text,
            )
            for n, text in enumerate(questions, start=1)
        ],
        now=datetime.now(UTC),
    )
    for n in range(1, len(questions) + 1):
        store.units.mark_intent(chat_id, f"q{n}", MASTODON, now=datetime.now(UTC))
        store.units.mark_posted(
            chat_id,
            f"q{n}",
            PostRef(MASTODON, f"{chat_id}-bot-q{n}", f"https://mastodon.example/@blchat/{n}"),
            now=start + timedelta(minutes=10 * n),
        )
    store.chats.update(chat_id, state=state, now=datetime.now(UTC))


def person(
    account: str,
    name: str = "",
    *,
    network: NetworkName = MASTODON,
    opt_out: str = "",
    web_opt_out: str = "",
    bot: bool = False,
    account_id: str | None = None,
) -> Author:
    """An account: ``account`` is its handle (user@server on Mastodon)."""
    return Author(
        network=network,
        id=account_id or account,
        handle=account,
        display_name=name,
        url=f"https://{account.rsplit('@', 1)[-1]}/@{account.split('@', 1)[0]}",
        bot=bot,
        opt_out=opt_out,
        web_opt_out=web_opt_out,
    )


def add_post(
    store: Store,
    chat_id: str,
    author: Author,
    post_id: str,
    text: str,
    *,
    kind: str = "answer",
    answers: Sequence[tuple[int, str, str]] = (),
    minutes: float = 15,
    start: datetime = START,
    deleted: bool = False,
    url: str | None = None,
) -> None:
    """A post seen in the chat, as collection stores it: its author, kind and answers."""
    store.conversation.save_participant(author, now=start)
    uri = f"https://{author.network.value}.example/posts/{chat_id}/{post_id}"
    store.conversation.save_post(
        StoredPost(
            chat_id=chat_id,
            network=author.network,
            uri=uri,
            post_id=post_id,
            url=uri if url is None else url,
            author_id=author.id,
            text=text,
            created_at=start + timedelta(minutes=minutes),
            edited_at=None,
            reply_to=None,
            quote_of=None,
            likes=0,
            reposts=0,
            kind=kind,
            reason="blocked word" if kind == "blocked" else "",
            resolved=True,
            deleted=False,
        ),
        answers,
        now=start + timedelta(minutes=minutes),
    )
    if deleted:
        store.conversation.delete_post(chat_id, author.network, uri, now=datetime.now(UTC))


@dataclass(frozen=True)
class Hostile:
    """An answer from the hostile corpus, and the display name it is posted under."""

    name: str
    text: str
    author: str


def hostile_answers() -> list[Hostile]:
    """tests/data/hostile_answers.yaml, with repeated texts written out."""
    entries = yaml.safe_load(CORPUS.read_text(encoding="utf-8"))
    return [
        Hostile(
            e["name"],
            e.get("prefix", "") + e["text"] * e.get("repeat", 1),
            e.get("author", f"Teacher {i}"),
        )
        for i, e in enumerate(entries)
    ]
