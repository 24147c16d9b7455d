"""Never false: a recap is posted only when the chat's answers could be read; while they cannot,
it is held, and after the recap's grace it is skipped, never posted with untrue counts."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from chatbot.archive import render
from chatbot.config import LatePolicy
from chatbot.errors import NetworkError, Transient
from chatbot.networks.base import ChatThread, Collected
from chatbot.networks.local import LocalNetwork
from chatbot.public import contain_bidi
from chatbot.run.runner import Runner
from chatbot.script import NetworkName
from chatbot.status import build_status, render_answers, render_status
from chatbot.store import BOT_AUTHOR, Store, StoredAnswer, UnitState
from chatbot.testing import FakeClock, Wrapped
from chatbot.transcript import build_transcript

START = datetime(2030, 1, 3, 20, 0, tzinfo=UTC)
CHAT = "held"
SCRIPT = """\
    id: held
    title: Held
    hashtag: Held
    timezone: UTC
    start: 2030-01-03 20:00
    networks: [local]
    moderators: [{name: Host}]
    welcome: {text: "Welcome to {hashtag}, introduce yourself"}
    question_spacing: 5m
    questions:
      - text: "First question?"
      - text: "Second question?"
    closing: {text: "Thanks! {hashtag}"}
    recap: {after: 5m}
"""


class Unreadable(Wrapped[LocalNetwork]):
    """The local network, whose answers cannot be read while ``error`` is set."""

    def __init__(self, inner: LocalNetwork) -> None:
        super().__init__(inner)
        self.error: NetworkError | None = None

    def collect(self, thread: ChatThread, cursors: dict[str, str]) -> Collected:
        if self.error is not None:
            raise self.error
        return self.inner.collect(thread, cursors)


class Harness:
    def __init__(self, tmp_path: Path) -> None:
        schedules = tmp_path / "schedules"
        schedules.mkdir()
        (schedules / "held.yaml").write_text(textwrap.dedent(SCRIPT), encoding="utf-8")
        self.clock = FakeClock(START - timedelta(minutes=1))
        self.store = Store.open(f"sqlite:///{tmp_path / 'state.db'}", now=self.clock())
        self.local = LocalNetwork(self.store, clock=self.clock)
        self.network = Unreadable(self.local)
        self.runner = Runner(
            store=self.store,
            networks={NetworkName.LOCAL: self.network},
            schedules=schedules,
            late=LatePolicy(),
            clock=self.clock,
            watch=False,
        )
        self.runner.sync()

    def at(self, minutes: float) -> None:
        self.clock.set(START + timedelta(minutes=minutes))
        self.runner.advance(CHAT)
        self.runner.collect(CHAT)

    def recap_posts(self) -> list[str]:
        texts = [p.text for p in self.local.posts(include_future=True) if p.author == BOT_AUTHOR]
        return [t for t in texts if t.startswith("Recap")]

    def recap(self) -> tuple[UnitState, str]:
        unit = next(u for u in self.store.units.of_chat(CHAT) if u.step_key == "recap")
        return unit.state, unit.reason


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Harness]:
    h = Harness(tmp_path)
    yield h
    h.store.close()


def _run_chat(harness: Harness) -> None:
    for minutes in (0, 6, 11, 16, 20):
        harness.at(minutes)


def test_a_chat_whose_answers_cannot_be_read_gets_no_recap(harness: Harness) -> None:
    """With every collection round failing, the recap is held, not posted with zero counts."""
    harness.network.error = Transient("reading #Held: the server answered 404")
    _run_chat(harness)
    harness.at(21)
    assert harness.recap_posts() == []
    state, reason = harness.recap()
    assert state is UnitState.PENDING
    assert "cannot be read" in reason and "404" in reason


def test_the_held_recap_is_posted_true_once_the_answers_can_be_read(harness: Harness) -> None:
    """When reading recovers, the recap goes out with the answers that were there all along."""
    harness.network.error = Transient("reading #Held: the server answered 404")
    _run_chat(harness)
    harness.at(21)
    harness.network.error = None
    harness.at(30)
    (headline, *_rest) = harness.recap_posts()
    answers = len(harness.store.reports.answers(CHAT))
    assert answers > 0
    assert f"shared {answers} answers" in headline


def test_a_recap_held_past_its_grace_is_skipped_with_the_reason(harness: Harness) -> None:
    """Answers never readable: a day later the recap is skipped, and status says why."""
    harness.network.error = Transient("reading #Held: the server answered 404")
    _run_chat(harness)
    harness.at(21)
    harness.at(21 + 25 * 60)
    assert harness.recap_posts() == []
    state, reason = harness.recap()
    assert state is UnitState.SKIPPED
    assert "cannot be read" in reason and "not posted" in reason
    status = render_status(build_status(harness.store, harness.clock(), LatePolicy()))
    assert "recap" in status and "cannot be read" in status


def test_status_and_answers_say_the_answers_cannot_be_read(harness: Harness) -> None:
    """While collection fails, status lists the chat with the reason and since when, and the
    answers view says so instead of "no answers yet"."""
    harness.network.error = Transient("reading #Held: the server answered 404")
    harness.at(0)
    harness.at(6)
    status = render_status(build_status(harness.store, harness.clock(), LatePolicy()))
    section = status.split("Answers that cannot be read:")[1].split("Recent posts:")[0]
    assert "held: answers on local cannot be read since 2030-01-03" in section
    assert "404" in section
    lines = render_answers(
        [], "UTC", unreadable=[r for r in harness.store.conversation.rounds(CHAT) if r.failing]
    )
    assert "no answers yet" not in "\n".join(lines)
    assert lines[0].startswith("WARNING: answers on local cannot be read")


def test_a_transcript_written_while_answers_cannot_be_read_says_it_may_be_incomplete(
    harness: Harness,
) -> None:
    """The transcript warns, in every format, when the last reading of a network failed."""
    harness.network.error = Transient("reading #Held: the server answered 404")
    _run_chat(harness)
    transcript = build_transcript(harness.store, CHAT)
    for fmt in ("md", "html", "json"):
        assert "may be incomplete" in render(transcript, fmt), fmt


def test_the_answers_view_shows_control_characters_to_no_terminal() -> None:
    """`chatbot answers` drops the escape sequences and C1 controls a participant wrote, and
    closes each line's right-to-left override, in the text and in the name."""
    answer = StoredAnswer(
        chat_id=CHAT, network=NetworkName.LOCAL, uri="local:1", url="", question=1, part="",
        text="\x1b[2Jcleared \x9b31m\nsecond \u202eline", handle="ana\x1b[31m",
        display_name="Ana \u202eRivera", created_at=datetime(2030, 1, 3, 20, 5, tzinfo=UTC),
        author_id="ana", opt_out="", likes=0, reposts=0,
    )  # fmt: skip
    shown = "\n".join(render_answers([answer], "UTC"))
    assert "\x1b" not in shown and "\x9b" not in shown
    assert "[2Jcleared 31m" in shown
    assert all(contain_bidi(line) == line for line in shown.splitlines())
