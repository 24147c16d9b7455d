"""Every job and thread of the runner is guarded: a failure is recorded where people look
(events, ``chatbot status``) and the bot goes on. Collection rounds of one chat never overlap."""

from __future__ import annotations

import shutil
import textwrap
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from chatbot.config import LatePolicy
from chatbot.networks.base import ChatThread, Collected, PostRequest
from chatbot.networks.local import LocalNetwork
from chatbot.posts import PostRef
from chatbot.run.runner import Runner
from chatbot.script import NetworkName
from chatbot.status import build_status, render_status
from chatbot.store import Store
from chatbot.testing import FakeClock, Wrapped
from chatbot.text import Limits

START = datetime(2030, 1, 3, 20, 0, tzinfo=UTC)
CHAT = "guarded"
SCRIPT = """\
    id: guarded
    title: Guarded
    hashtag: Guarded
    timezone: UTC
    start: 2030-01-03 20:00
    networks: [local]
    moderators: [{name: Host}]
    welcome: {text: "Welcome to {hashtag}"}
    questions:
      - text: "First question?"
    closing: {text: "Thanks! {hashtag}"}
"""


class Flaky(Wrapped[LocalNetwork]):
    """The local network, with collection rounds a test can break or hold."""

    def __init__(self, inner: LocalNetwork) -> None:
        super().__init__(inner)
        self.error: Exception | None = None
        self.hold = threading.Event()
        self.hold.set()
        self.entered = threading.Event()
        self.inside = 0
        self.most_inside = 0
        self.cursors_seen: list[dict[str, str]] = []
        self._lock = threading.Lock()

    def collect(self, thread: ChatThread, cursors: dict[str, str]) -> Collected:
        with self._lock:
            self.inside += 1
            self.most_inside = max(self.most_inside, self.inside)
        try:
            self.cursors_seen.append(dict(cursors))
            self.entered.set()
            self.hold.wait(timeout=10)
            if self.error is not None:
                raise self.error
            rounds = int(cursors.get("rounds", "0")) + 1
            return Collected(cursors={"rounds": str(rounds)})
        finally:
            with self._lock:
                self.inside -= 1


class Harness:
    def __init__(self, tmp_path: Path, *, watch: bool = False) -> None:
        self.schedules = tmp_path / "schedules"
        self.schedules.mkdir()
        (self.schedules / "guarded.yaml").write_text(textwrap.dedent(SCRIPT), encoding="utf-8")
        self.clock = FakeClock(START - timedelta(minutes=1))
        self.store = Store.open(f"sqlite:///{tmp_path / 'state.db'}", now=self.clock())
        self.network = Flaky(LocalNetwork(self.store, clock=self.clock, participants=False))
        self.runner = Runner(
            store=self.store,
            networks={NetworkName.LOCAL: self.network},
            schedules=self.schedules,
            late=LatePolicy(),
            clock=self.clock,
            watch=watch,
            watch_restart=timedelta(milliseconds=50),
        )

    def status(self) -> str:
        return render_status(build_status(self.store, self.clock(), LatePolicy()))

    def errors(self) -> list[str]:
        return [e.message for e in self.store.events.recent(levels=["error"])]


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Harness]:
    h = Harness(tmp_path)
    yield h
    h.store.close()


class ExplodingLimits:
    """A Mastodon account whose limits cannot be read for a reason nobody foresaw."""

    name = NetworkName.MASTODON

    def limits(self) -> Limits:
        raise RuntimeError("the limits exploded")

    def post(self, request: PostRequest) -> PostRef:
        raise AssertionError("never posts")

    def find(self, request: PostRequest) -> PostRef | None:
        return None

    def close(self) -> None:
        """Nothing to release."""


def test_an_exception_in_sync_is_recorded_shown_and_the_next_sync_works(
    harness: Harness,
) -> None:
    """A sync that raises is an event that status shows; the next good sync plans the chat."""
    harness.runner.networks[NetworkName.MASTODON] = ExplodingLimits()
    harness.runner.sync()
    assert any("reloading the scripts failed" in e and "exploded" in e for e in harness.errors())
    assert "the limits exploded" in harness.status()
    del harness.runner.networks[NetworkName.MASTODON]
    harness.runner.sync()
    assert harness.runner.planned_chats() == [CHAT]


def test_an_exception_in_a_collection_round_is_recorded_and_the_round_rebooked(
    harness: Harness,
) -> None:
    """A round that raises something unforeseen is an event, and collection is tried again."""
    harness.runner.sync()
    harness.clock.set(START)
    harness.runner.advance(CHAT)
    harness.network.error = RuntimeError("the reader exploded")
    harness.runner.scheduler.start(paused=True)
    try:
        harness.runner.collect_job(CHAT)
        assert any("collecting answers failed" in e for e in harness.errors())
        assert "the reader exploded" in harness.status()
        job = harness.runner.scheduler.get_job(f"collect:{CHAT}")
        assert job is not None
        assert job.next_run_time > START
    finally:
        harness.runner.scheduler.shutdown(wait=False)


def test_an_exception_in_the_chat_job_is_recorded_and_the_chat_rebooked(
    harness: Harness,
) -> None:
    """A chat job that raises is an event; the chat's job is booked again, not lost."""
    harness.runner.sync()
    harness.clock.set(START)
    harness.store.close()  # the next store access raises: the database is gone
    shutil.rmtree(harness.schedules)
    harness.runner.scheduler.start(paused=True)
    try:
        harness.runner.chat_job(CHAT)
        assert harness.runner.scheduler.get_job(f"chat:{CHAT}") is not None
    finally:
        harness.runner.scheduler.shutdown(wait=False)


def test_a_watcher_whose_folder_vanished_records_it_and_watches_again(tmp_path: Path) -> None:
    """The schedules folder removed under the watcher: the failure is an event, and once the
    folder is back, a new script in it is picked up again."""
    harness = Harness(tmp_path, watch=True)
    harness.runner.start()
    try:
        shutil.rmtree(harness.schedules)
        _wait(lambda: any("watching the schedules folder failed" in e for e in harness.errors()))
        assert "watching the schedules folder failed" in harness.status()
        harness.schedules.mkdir()
        (harness.schedules / "second.yaml").write_text(
            textwrap.dedent(SCRIPT).replace("id: guarded", "id: second"), encoding="utf-8"
        )
        _wait(lambda: harness.store.chats.get("second") is not None)
    finally:
        harness.runner.stop()
        harness.store.close()


def test_two_rounds_of_one_chat_started_at_once_run_one_after_the_other(
    harness: Harness,
) -> None:
    """The second round waits for the first, and reads from the cursors the first saved."""
    harness.runner.sync()
    harness.clock.set(START)
    harness.runner.advance(CHAT)
    harness.network.hold.clear()
    first = threading.Thread(target=harness.runner.collect, args=(CHAT,))
    second = threading.Thread(target=harness.runner.collect, args=(CHAT,))
    first.start()
    assert harness.network.entered.wait(timeout=10)
    second.start()
    time.sleep(0.2)  # give the second round the chance to enter, which it must not take
    assert harness.network.inside == 1
    harness.network.hold.set()
    first.join(timeout=10)
    second.join(timeout=10)
    assert harness.network.most_inside == 1
    assert harness.network.cursors_seen == [{}, {"rounds": "1"}]
    assert harness.store.conversation.cursors(CHAT, NetworkName.LOCAL) == {"rounds": "2"}


def _wait(condition: object, timeout: float = 15.0) -> None:
    """Poll ``condition`` (a callable) until it is true, failing after ``timeout`` seconds."""
    assert callable(condition)
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the condition never held"
        time.sleep(0.05)
