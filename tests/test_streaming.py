"""Streams as wake-ups: a stream that drops is reconnected after a growing wait, a server
without streams is polled, a wake-up makes the next round read the network at once, and
what arrived during a gap is read by the cursors once. Fakes only at the network seam
(the blocking stream call; the Reader)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from chatbot.collect import collector as collector_module
from chatbot.collect.cadence import Cadence, poll_interval
from chatbot.collect.collector import WOKEN_GAP, Collector
from chatbot.networks.base import Arrived, ChatThread, Collected, Listening, Reader
from chatbot.networks.mastodon.server import MASTODON, SNAC
from chatbot.networks.mastodon.stream import NoStream, Stream, Streams, _Listener, backoff
from chatbot.posts import Author, PostRef, SeenPost
from chatbot.script import NetworkName
from chatbot.store import ChatState, PlannedUnit, Store
from chatbot.text import Limits

NET = NetworkName.MASTODON
START = datetime(2030, 1, 3, 20, 0, tzinfo=UTC)
CHAT = "chat"
EVERY = timedelta(seconds=15)
WAIT = 5.0  # seconds a test waits for a stream's thread, at most


# --- the stream: reconnects, backoff, fallback ---------------------------------------------


def test_the_wait_between_attempts_doubles_up_to_the_longest() -> None:
    assert [backoff(n, first=1, longest=10) for n in range(1, 7)] == [1, 2, 4, 8, 10, 10]


class Connection:
    """A fake blocking stream call: each connection runs a script against the listener."""

    def __init__(self, *scripts: Callable[[Any], None]) -> None:
        self.scripts = list(scripts)
        self.opened: list[float] = []
        self.done = threading.Event()

    def __call__(self, listener: Any) -> None:
        self.opened.append(time.monotonic())
        if not self.scripts:
            self.done.set()
            threading.Event().wait(WAIT)  # stays open, silent
            return
        self.scripts.pop(0)(listener)


def drop(after_events: int) -> Callable[[Any], None]:
    def script(listener: Any) -> None:
        listener.handle_heartbeat()  # ":connected"
        for _ in range(after_events):
            listener.on_any_event("update", {})
        raise ConnectionError("the server closed the stream")

    return script


def refuse(listener: Any) -> None:
    raise OSError("connection refused")


def not_found(listener: Any) -> None:
    raise RuntimeError("Could not connect to streaming server: Not Found")


def recorder() -> tuple[list[str], Callable[[str], Callable[..., None]]]:
    calls: list[str] = []
    return calls, lambda what: lambda *_carried: calls.append(what)


def test_a_dropped_stream_asks_for_a_catch_up_round_and_reconnects() -> None:
    """Up, two events, dropped: a round when up, one per event, one at the drop, and
    one when it is up again."""
    connection = Connection(drop(after_events=2), drop(after_events=0))
    calls, record = recorder()
    stream = Stream(
        "#t", connection, on_event=record("event"), on_gap=record("gap"), first_wait=0.01
    )
    stream.start()
    assert connection.done.wait(WAIT)
    stream.stop()
    assert stream.connections == 2
    assert calls == ["gap", "event", "event", "gap", "gap", "gap"]


def test_a_new_or_edited_status_and_a_mention_are_handed_over_other_events_only_wake() -> None:
    status = {"id": "7", "content": "<p>A1: stations #edchat</p>"}
    carried: list[list[Any]] = []
    stream = Stream("#t", Connection(), on_event=carried.append, on_gap=lambda: None)
    listener = _Listener(stream)
    listener.on_any_event("update", status)
    listener.on_any_event("status.update", status)
    listener.on_any_event("notification", {"type": "mention", "status": status})
    listener.on_any_event("notification", {"type": "favourite", "status": status})
    listener.on_any_event("delete", "7")
    assert carried == [[status], [status], [status], [], []]


def test_failed_attempts_wait_longer_each_time() -> None:
    connection = Connection(refuse, refuse, refuse)
    _calls, record = recorder()
    stream = Stream("#t", connection, on_event=record("e"), on_gap=record("g"), first_wait=0.05)
    stream.start()
    assert connection.done.wait(WAIT)
    stream.stop()
    gaps = [b - a for a, b in zip(connection.opened, connection.opened[1:], strict=False)]
    assert len(gaps) == 3
    assert gaps[0] >= 0.05
    assert gaps[2] >= 0.2 > gaps[0]


def test_a_server_without_streams_is_not_asked_again_and_the_chat_is_polled() -> None:
    connection = Connection(not_found)
    calls, record = recorder()
    stream = Stream("#t", connection, on_event=record("e"), on_gap=record("g"), first_wait=0.01)
    stream.run()  # returns: no stream here
    assert stream.unsupported
    assert len(connection.opened) == 1
    assert not stream.live()
    assert calls == []


def test_a_server_known_to_have_no_streams_is_polled_without_asking() -> None:
    def snac(listener: Any) -> None:
        raise NoStream("snac 2.75 has no streaming API")

    stream = Stream("#t", snac, on_event=lambda _s: None, on_gap=lambda: None)
    stream.run()
    assert stream.unsupported
    assert not stream.live()
    assert not SNAC.streams and MASTODON.streams


def test_a_stream_is_live_only_while_the_server_speaks() -> None:
    now = [100.0]
    stream = Stream(
        "#t",
        Connection(),
        on_event=lambda _s: None,
        on_gap=lambda: None,
        monotonic=lambda: now[0],
        quiet=40.0,
    )
    assert not stream.live()
    stream.heard(event=False)
    assert stream.live()
    now[0] += 41
    assert not stream.live()


def test_a_chat_is_live_only_while_its_hashtag_and_the_user_stream_both_are() -> None:
    hashtag_up = threading.Event()

    def hashtag(_tag: str) -> Callable[[Any], None]:
        def opener(listener: Any) -> None:
            listener.handle_heartbeat()
            hashtag_up.set()
            threading.Event().wait(WAIT)

        return opener

    streams = Streams(hashtag, Connection(refuse, refuse, refuse))
    streams.listen(CHAT, "edchat", lambda _chat, _statuses: None)
    assert hashtag_up.wait(WAIT)
    assert not streams.live(CHAT)  # the user stream (mentions, replies) is down
    streams.close()


# --- the cadence: where the answers are, when ------------------------------------------------

CADENCE = Cadence(every=EVERY, fast=EVERY / 2, fresh_for=timedelta(minutes=4))


def test_a_fresh_question_is_read_fast() -> None:
    now = START + timedelta(minutes=1)
    assert poll_interval(now, last_question_at=START, ended=False, cadence=CADENCE) == EVERY / 2


def test_a_stale_question_is_read_at_the_base_interval() -> None:
    now = START + timedelta(minutes=5)
    assert poll_interval(now, last_question_at=START, ended=False, cadence=CADENCE) == EVERY


def test_before_any_question_the_base_interval_holds() -> None:
    assert poll_interval(START, last_question_at=None, ended=False, cadence=CADENCE) == EVERY


def test_the_tail_is_read_four_times_less_often_but_never_past_the_longest() -> None:
    now = START + timedelta(hours=2)
    assert poll_interval(now, last_question_at=START, ended=True, cadence=CADENCE) == EVERY * 4
    capped = Cadence(every=EVERY, fast=EVERY, longest=timedelta(seconds=20))
    got = poll_interval(now, last_question_at=START, ended=True, cadence=capped)
    assert got == timedelta(seconds=20)


# --- the collector: wake-ups, slower polling while live, catch-up ----------------------------


class ListReader:
    """A network whose posts are a list; its cursor is how many were read. No streams."""

    name = NET

    def __init__(self) -> None:
        self.posts: list[SeenPost] = []
        self.reads = 0

    def collect(self, thread: ChatThread, cursors: dict[str, str]) -> Collected:
        self.reads += 1
        start = int(cursors.get("n", "0"))
        return Collected(posts=tuple(self.posts[start:]), cursors={"n": str(len(self.posts))})

    def limits(self) -> Limits:
        return Limits()

    def post(self, request: Any) -> PostRef:
        raise AssertionError("no posting here")

    def find(self, request: Any) -> PostRef | None:
        return None

    def close(self) -> None:
        pass


class StreamingReader(ListReader):
    """The same, with a stream the test raises and drops."""

    def __init__(self) -> None:
        super().__init__()
        self.arrived: Arrived | None = None
        self.is_live = False
        self.unlistened: list[str] = []
        self.gap = timedelta(0)

    def listen(self, chat_id: str, hashtag: str, arrived: Arrived) -> None:
        self.arrived = arrived

    def unlisten(self, chat_id: str) -> None:
        self.unlistened.append(chat_id)

    def live(self, chat_id: str) -> bool:
        return self.is_live

    def woken_gap(self) -> timedelta:
        return self.gap


class Clock:
    def __init__(self) -> None:
        self.now = START + timedelta(minutes=30)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def store(tmp_path: Path) -> Store:
    store = Store.open(f"sqlite:///{tmp_path / 'state.db'}", now=datetime.now(UTC))
    store.chats.upsert(
        chat_id=CHAT,
        script_id="s",
        title="T",
        hashtag="edchat",
        timezone="UTC",
        start_at=START,
        end_at=START + timedelta(hours=1),
        now=datetime.now(UTC),
    )
    store.units.plan(
        CHAT,
        [PlannedUnit("q1", NET, 0, "question", 1, START, "k0", "q1")],
        now=datetime.now(UTC),
    )
    store.units.mark_intent(CHAT, "q1", NET, now=datetime.now(UTC))
    store.units.mark_posted(CHAT, "q1", PostRef(NET, "bot0", "https://x.example/bot0"), now=START)
    return store


def answer(n: int) -> SeenPost:
    return SeenPost(
        network=NET,
        uri=f"https://school.example/statuses/p{n}",
        id=f"p{n}",
        url=f"https://school.example/@alice/p{n}",
        author=Author(NET, "1", "alice@school.example", "Alice"),
        text=f"A1: answer {n} #edchat",
        created_at=START + timedelta(minutes=20, seconds=n),
        reply_to="bot0",
    )


class Harness:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.clock = Clock()
        self.network = StreamingReader()
        self.woken: list[datetime] = []
        self.collector = Collector(
            store=store,
            networks={NET: self.network},
            clock=self.clock,
            setup=lambda _chat: None,
            every=EVERY,
            answer_tail=timedelta(minutes=30),
            wake=lambda _chat, when: self.woken.append(when),
            streamed_every=timedelta(seconds=60),
        )

    def stored(self) -> list[str]:
        return sorted(a.text for a in self.store.reports.answers(CHAT))


@pytest.fixture
def harness(store: Store) -> Harness:
    return Harness(store)


def test_the_fake_is_a_listening_reader(harness: Harness) -> None:
    assert isinstance(harness.network, Reader)
    assert isinstance(harness.network, Listening)


def test_a_round_starts_listening_to_the_chat(harness: Harness) -> None:
    harness.collector.round(CHAT, scheduled=True)
    assert harness.network.arrived is not None


def test_while_the_stream_is_live_the_next_read_is_the_safety_net(harness: Harness) -> None:
    harness.network.is_live = True
    again = harness.collector.round(CHAT, scheduled=True)
    assert again == harness.clock.now + timedelta(seconds=60)


def test_while_the_stream_is_down_the_chat_is_polled_at_the_usual_interval(
    harness: Harness,
) -> None:
    again = harness.collector.round(CHAT, scheduled=True)
    assert again == harness.clock.now + EVERY


def test_a_scheduled_round_before_the_network_is_due_reads_nothing(harness: Harness) -> None:
    harness.network.is_live = True
    harness.collector.round(CHAT, scheduled=True)
    harness.clock.now += timedelta(seconds=5)
    harness.collector.round(CHAT, scheduled=True)
    assert harness.network.reads == 1


def test_a_wake_up_books_a_round_soon_and_that_round_reads_the_network(harness: Harness) -> None:
    harness.network.is_live = True
    harness.collector.round(CHAT, scheduled=True)
    harness.clock.now += timedelta(seconds=5)
    harness.network.posts.append(answer(1))
    assert harness.network.arrived is not None
    harness.network.arrived(CHAT, [])
    assert harness.woken == [harness.clock.now + timedelta(milliseconds=300)]
    harness.collector.round(CHAT, scheduled=True)
    assert harness.network.reads == 2
    assert harness.stored() == ["answer 1 #edchat"]


def test_a_post_the_stream_carried_is_stored_at_once_and_the_round_after_adds_nothing(
    harness: Harness,
) -> None:
    harness.network.is_live = True
    harness.collector.round(CHAT, scheduled=True)
    harness.clock.now += timedelta(seconds=5)
    harness.network.posts.append(answer(1))
    assert harness.network.arrived is not None
    harness.network.arrived(CHAT, [answer(1)])
    assert harness.stored() == ["answer 1 #edchat"]
    assert harness.network.reads == 1  # stored without a read
    assert harness.woken  # and a round comes soon, for what the stream does not carry
    harness.collector.round(CHAT, scheduled=True)
    assert harness.network.reads == 2
    assert harness.stored() == ["answer 1 #edchat"]


def test_a_streamed_post_neither_under_the_hashtag_nor_replying_to_the_chat_is_not_stored(
    harness: Harness,
) -> None:
    """The user stream hands every chat each mention of the bot: only the chat's own are
    stored by it (another chat's reply is that chat's; a stray mention is the round's)."""
    harness.collector.round(CHAT, scheduled=True)
    stray = replace(answer(2), reply_to="someone-else", tags=())
    tagged = replace(answer(3), reply_to=None, tags=("edchat",))
    assert harness.network.arrived is not None
    harness.network.arrived(CHAT, [stray, tagged])
    assert harness.stored() == ["answer 3 #edchat"]


def test_a_post_streamed_to_a_replica_that_does_not_read_the_chat_is_left_to_the_round(
    harness: Harness,
) -> None:
    """No round ran here for two safety-net intervals (another replica took the chat):
    nothing is stored from the stream, only a round asked for (which the runner refuses
    without the chat's lease)."""
    harness.collector.begin(CHAT)
    harness.clock.now += timedelta(minutes=3)
    assert harness.network.arrived is not None
    harness.network.arrived(CHAT, [answer(1)])
    assert harness.stored() == []
    assert len(harness.woken) == 1


def test_a_post_streamed_before_the_first_round_is_stored_at_once(harness: Harness) -> None:
    """Collection began here (this replica posted the chat's first step): the first answers
    need not wait for the first round, which a busy chat's posts may put off."""
    harness.collector.begin(CHAT)
    assert harness.network.arrived is not None
    harness.network.arrived(CHAT, [answer(1)])
    assert harness.stored() == ["answer 1 #edchat"]
    assert harness.network.reads == 0


def test_a_post_streamed_during_a_round_is_stored_as_soon_as_that_round_is_done(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The round may have read its sources before the post came: it is held, not left to a
    round that a busy chat's share of the rate limit may put off for seconds."""
    monkeypatch.setattr(collector_module, "TAKE_WAIT", 0.05)
    harness.collector.round(CHAT, scheduled=True)
    assert harness.network.arrived is not None
    with harness.collector.lock_of(CHAT):  # a round is reading the chat
        harness.network.arrived(CHAT, [answer(1)])
        assert harness.stored() == []
    assert harness.network.posts == []  # so no round can read it: only the stream had it
    harness.collector.round(CHAT, scheduled=True)
    assert harness.stored() == ["answer 1 #edchat"]


def test_wake_ups_right_after_a_round_wait_for_the_gap(harness: Harness) -> None:
    began = harness.clock.now
    harness.collector.round(CHAT, scheduled=True)
    assert harness.network.arrived is not None
    harness.network.arrived(CHAT, [])
    assert harness.woken == [began + WOKEN_GAP]


def test_wake_ups_wait_for_the_networks_own_gap_when_it_is_longer(harness: Harness) -> None:
    """A busy chat on a server with a tight limit: woken rounds keep to their share of it."""
    harness.network.gap = timedelta(seconds=9)
    began = harness.clock.now
    harness.collector.round(CHAT, scheduled=True)
    assert harness.network.arrived is not None
    harness.network.arrived(CHAT, [])
    assert harness.woken == [began + timedelta(seconds=9)]


def test_answers_posted_while_the_stream_was_down_are_stored_once_after_the_gap(
    harness: Harness,
) -> None:
    """The stream drops, answers come, the stream is back: the round its return asks for
    reads them all from the cursor; later rounds store none of them again."""
    harness.network.is_live = True
    harness.network.posts.append(answer(1))
    harness.collector.round(CHAT, scheduled=True)
    harness.network.is_live = False  # dropped
    harness.network.posts += [answer(2), answer(3)]
    harness.clock.now += timedelta(seconds=10)
    harness.network.is_live = True  # back: the stream asks for a catch-up round
    assert harness.network.arrived is not None
    harness.network.arrived(CHAT, [])
    harness.collector.round(CHAT, scheduled=True)
    harness.clock.now += timedelta(seconds=60)
    harness.collector.round(CHAT, scheduled=True)
    assert harness.stored() == ["answer 1 #edchat", "answer 2 #edchat", "answer 3 #edchat"]


def test_when_collection_is_over_the_chat_stops_listening(harness: Harness) -> None:
    harness.collector.round(CHAT, scheduled=True)
    harness.store.chats.update(CHAT, state=ChatState.DONE, now=harness.clock.now)
    harness.clock.now = START + timedelta(hours=2)
    assert harness.collector.round(CHAT, scheduled=True) is None
    assert harness.network.unlistened == [CHAT]


def polled_collector(store: Store, clock: Clock) -> tuple[Collector, ListReader]:
    reader = ListReader()
    assert not isinstance(reader, Listening)
    collector = Collector(
        store=store,
        networks={NET: reader},
        clock=clock,
        setup=lambda _chat: None,
        every=EVERY,
        answer_tail=timedelta(minutes=30),
        cadences={NET: CADENCE},
    )
    return collector, reader


def test_a_polled_network_is_read_fast_while_its_question_is_fresh(store: Store) -> None:
    clock = Clock()
    clock.now = START + timedelta(minutes=1)  # the question went out at START
    collector, _reader = polled_collector(store, clock)
    assert collector.round(CHAT, scheduled=True) == clock.now + EVERY / 2


def test_a_polled_network_is_read_slowly_in_the_tail(store: Store) -> None:
    clock = Clock()
    clock.now = START + timedelta(hours=1, minutes=5)  # after the chat's end
    collector, _reader = polled_collector(store, clock)
    assert collector.round(CHAT, scheduled=True) == clock.now + EVERY * 4


def test_the_runner_reads_bluesky_twice_as_often_while_fresh_and_mastodon_at_its_pace() -> None:
    from chatbot.run.runner import _cadences

    cadences = _cadences(EVERY, 1.0, timedelta(minutes=30))
    assert cadences[NetworkName.BLUESKY].fast == EVERY / 2
    assert cadences[NetworkName.MASTODON].fast == EVERY
    assert all(c.longest == timedelta(minutes=30) / 8 for c in cadences.values())
