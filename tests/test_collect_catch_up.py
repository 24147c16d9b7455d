"""Collection after the bot was down, or busy, when a chat's answer window closed: the
answers given in the window are read once more before collection ends (the crash suite
found them lost). Real SQLite; the network is faked at its seam."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from chatbot.collect.collector import CATCH_UP, Collector
from chatbot.kinds import StepKind
from chatbot.networks.base import ChatThread, Collected
from chatbot.posts import Author, PostRef, SeenPost
from chatbot.script import NetworkName
from chatbot.store import ChatState, PlannedUnit, Store

NET = NetworkName.MASTODON
START = datetime(2030, 1, 3, 20, 0, tzinfo=UTC)
END = START + timedelta(minutes=40)
TAIL = timedelta(minutes=5)
CHAT = "chat"
ANA = Author(NET, "1", "ana@school.example", "Ana")


class Answers:
    """A network holding one answer to Q1, given inside the answer window."""

    name = NET

    def __init__(self) -> None:
        self.reads = 0

    def collect(self, thread: ChatThread, cursors: dict[str, str]) -> Collected:
        self.reads += 1
        answer = SeenPost(
            network=NET, uri="https://school.example/s/9", id="9",
            url="https://school.example/@ana/9", author=ANA, text="A1: station rotation",
            created_at=START + timedelta(minutes=12), reply_to="bot1",
        )  # fmt: skip
        return Collected(posts=(answer,), cursors={"tag": "9"})


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def store(tmp_path: Path) -> Store:
    store = Store.open(f"sqlite:///{tmp_path / 'state.db'}", now=START)
    store.chats.upsert(chat_id=CHAT, script_id="s", title="T", hashtag="edchat", timezone="UTC",
                       start_at=START, end_at=END, now=START)  # fmt: skip
    steps = [("welcome", StepKind.WELCOME, None), ("q1", StepKind.QUESTION, 1)]
    store.units.plan(
        CHAT,
        [
            PlannedUnit(
                key, NET, seq, kind.value, n, START + timedelta(minutes=10 * seq), f"k{seq}", key
            )
            for seq, (key, kind, n) in enumerate(steps)
        ],
        now=START,
    )
    for seq, (key, _kind, _n) in enumerate(steps):
        store.units.mark_intent(CHAT, key, NET, now=START)
        store.units.mark_posted(CHAT, key, PostRef(NET, f"bot{seq}", f"https://x/{seq}"), now=START)
    return store


def collector(store: Store, clock: Clock, network: Answers) -> Collector:
    return Collector(store=store, networks={NET: network}, clock=clock, setup=lambda _c: None,  # type: ignore[dict-item]
                     every=timedelta(seconds=30), answer_tail=TAIL)  # fmt: skip


def test_a_chat_whose_window_closed_while_the_bot_was_down_is_read_once_more(
    store: Store,
) -> None:
    """Down from before the window closed until after: on restart the chat is resumed, one
    round reads the answer, and only then is collection over."""
    store.chats.update(CHAT, state=ChatState.DONE, now=END)
    clock = Clock(END + TAIL + timedelta(minutes=10))
    network = Answers()
    reading = collector(store, clock, network)
    collecting, _unwritten = reading.to_resume(None)
    assert collecting == [CHAT]
    assert reading.round(CHAT) is None  # read, then over
    assert network.reads == 1
    assert [a.text for a in store.reports.answers(CHAT)] == ["station rotation"]
    assert reading.to_resume(None) == ([], [])


def test_a_chat_closed_longer_ago_than_the_catch_up_is_not_read_again(store: Store) -> None:
    store.chats.update(CHAT, state=ChatState.DONE, now=END)
    clock = Clock(END + TAIL + CATCH_UP + timedelta(minutes=1))
    assert collector(store, clock, Answers()).to_resume(None)[0] == []


def test_the_round_before_the_recap_reads_even_with_a_post_due_in_a_moment(
    store: Store,
) -> None:
    """A post due within the posting guard holds ordinary rounds back, never the last one."""
    store.units.plan(
        CHAT,
        [
            PlannedUnit(
                "q2", NET, 2, StepKind.QUESTION.value, 2, START + timedelta(minutes=20), "k2", "q2"
            )
        ],
        now=START,
    )
    clock = Clock(START + timedelta(minutes=20) - timedelta(seconds=1))
    network = Answers()
    reading = collector(store, clock, network)
    reading.round(CHAT)
    assert network.reads == 0  # an ordinary round waits for the post
    reading.final_round(CHAT)
    assert network.reads == 1
