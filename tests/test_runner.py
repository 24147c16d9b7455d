"""The runner against the local network with a hand-moved clock: order, exactly once,
retries, script changes and live controls. No sleeps, no scheduler threads."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import tenacity

from chatbot.config import LatePolicy
from chatbot.errors import RateLimited, Rejected, Transient
from chatbot.loader import check_paths
from chatbot.networks.local import LocalNetwork
from chatbot.run import sync as sync_module
from chatbot.run.posting import build_request
from chatbot.run.runner import Runner
from chatbot.run.sync import Sync, VisibilityPolicy
from chatbot.script import NetworkName
from chatbot.store import BOT_AUTHOR, ChatState, Store, UnitState
from chatbot.testing import FailingNetwork, FakeClock
from chatbot.text import Limits

START = datetime(2030, 1, 3, 20, 0, tzinfo=UTC)
SCRIPT = """\
    id: rehearsal
    title: Rehearsal
    hashtag: Rehearse
    timezone: UTC
    start: 2030-01-03 20:00
    networks: [local]
    moderators: [{name: Host}]
    reminders:
      - before: 1h
        text: "In an hour: {title}"
    welcome: {text: "Welcome to {hashtag}"}
    question_spacing: 9m
    questions:
      - text: "First question?"
      - text: "Second question?"
      - text: "Third question?"
    closing: {text: "Thanks! {hashtag}"}
"""
CHAT = "rehearsal"


class Harness:
    """A runner wired to a local network, a fake clock and a schedules folder."""

    def __init__(self, tmp_path: Path) -> None:
        self.schedules = tmp_path / "schedules"
        self.schedules.mkdir()
        self.write(SCRIPT)
        self.clock = FakeClock(START - timedelta(hours=2))
        self.store = Store.open(f"sqlite:///{tmp_path / 'state.db'}", now=datetime.now(UTC))
        self.local = LocalNetwork(self.store, clock=self.clock, participants=False)
        self.network = FailingNetwork(self.local)
        self.runner = Runner(
            store=self.store,
            networks={NetworkName.LOCAL: self.network},
            schedules=self.schedules,
            late=LatePolicy(step_grace=timedelta(minutes=5)),
            clock=self.clock,
            watch=False,
            quick_retry_wait=tenacity.wait_none(),
        )

    def write(self, text: str, name: str = "rehearsal.yaml") -> None:
        (self.schedules / name).write_text(textwrap.dedent(text), encoding="utf-8")

    def at(self, minutes: float) -> None:
        """Move the clock to ``minutes`` after the start and let the chat catch up."""
        self.clock.set(START + timedelta(minutes=minutes))
        self.runner.advance(CHAT)

    def bot_posts(self) -> list[str]:
        return [p.text for p in self.local.posts(include_future=True) if p.author == BOT_AUTHOR]

    def states(self) -> dict[str, UnitState]:
        return {u.step_key: u.state for u in self.store.units.of_chat(CHAT)}


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Harness]:
    h = Harness(tmp_path)
    h.runner.sync()
    yield h
    h.store.close()


def test_a_whole_chat_is_posted_in_order_exactly_once(harness: Harness) -> None:
    """Walking the clock through the chat posts every step once, in order, as one thread."""
    for minutes in (-60, 0, 6, 15, 24, 33):
        harness.at(minutes)
        harness.at(minutes)  # a second wake-up at the same time posts nothing more
    assert harness.bot_posts() == [
        "In an hour: Rehearsal #Rehearse",
        "Welcome to #Rehearse",
        "Q1: First question? #Rehearse",
        "Q2: Second question? #Rehearse",
        "Q3: Third question? #Rehearse",
        "Thanks! #Rehearse",
    ]
    posts = [p for p in harness.local.posts(include_future=True) if p.author == BOT_AUTHOR]
    assert [p.reply_to for p in posts] == [None, *[p.id for p in posts[:-1]]]


def test_the_recap_is_a_thread_of_its_own_after_the_closing(harness: Harness) -> None:
    """At recap time the bot posts a recap thread of its own; then the chat is done."""
    for minutes in (-60, 0, 6, 15, 24, 33, 48, 48.1):
        harness.at(minutes)
    posts = [p for p in harness.local.posts(include_future=True) if p.author == BOT_AUTHOR]
    recap = posts[6:]
    assert recap[0].text.startswith("Recap of #Rehearse: Rehearsal.")
    assert recap[0].reply_to is None
    assert [p.reply_to for p in recap[1:]] == [p.id for p in recap[:-1]]
    assert any(p.text.startswith("Q2: Second question?") for p in recap)
    chat = harness.store.chats.get(CHAT)
    assert chat is not None and chat.state is ChatState.DONE
    harness.at(50)
    again = [p for p in harness.local.posts(include_future=True) if p.author == BOT_AUTHOR]
    assert len(again) == len(posts)


def test_the_runner_returns_the_time_of_the_next_step(harness: Harness) -> None:
    """After posting, the runner asks to be woken when the next step is due."""
    harness.clock.set(START)
    harness.runner.advance(CHAT)
    assert harness.runner.advance(CHAT) == START + timedelta(minutes=6)


def test_a_crash_between_intent_and_result_posts_once(harness: Harness) -> None:
    """An intent left by a crash is sent again with its key, and the network keeps one post."""
    harness.at(-60)
    harness.at(0)
    harness.clock.set(START + timedelta(minutes=6))
    # The process died after the network call, before recording the result.
    harness.store.units.mark_intent(CHAT, "q1", NetworkName.LOCAL, now=harness.clock())
    q1 = next(u for u in harness.store.units.of_chat(CHAT) if u.step_key == "q1")
    harness.local.post(build_request(harness.store.units.of_chat(CHAT), q1))  # result lost
    harness.runner.advance(CHAT)
    assert harness.bot_posts().count("Q1: First question? #Rehearse") == 1
    assert harness.states()["q1"] is UnitState.POSTED


def test_a_rate_limit_delays_the_step_until_the_reset(harness: Harness) -> None:
    """A 429 with a reset time holds the step until then, then posts it once."""
    harness.at(-60)
    harness.at(0)
    reset = START + timedelta(minutes=7)
    harness.network.fail(RateLimited("slow down", retry_at=reset))
    harness.at(6)
    assert harness.states()["q1"] is UnitState.INTENT
    assert harness.runner.advance(CHAT) == reset
    harness.at(7)
    assert harness.states()["q1"] is UnitState.POSTED
    assert harness.bot_posts().count("Q1: First question? #Rehearse") == 1


def test_transient_errors_are_retried_with_the_same_key(harness: Harness) -> None:
    """Two timeouts in a row are retried at once with the same idempotency key."""
    harness.at(-60)
    harness.network.fail(Transient("timeout"), Transient("timeout"))
    harness.at(0)
    welcome_calls = [c for c in harness.network.calls if c.text.startswith("Welcome")]
    assert len(welcome_calls) == 3
    assert len({c.idempotency_key for c in welcome_calls}) == 1
    assert harness.states()["welcome"] is UnitState.POSTED


def test_a_quick_retry_says_the_first_attempt_may_have_published(harness: Harness) -> None:
    """The attempts after a timeout carry ``first_attempt_at`` (the intent's time), so that a
    server ignoring idempotency keys is searched before posting again; the first has none
    (snac made a recap post twice in the fault suite, a retry posting blind)."""
    harness.at(-60)
    harness.network.fail(Transient("timeout"), Transient("timeout"))
    harness.at(0)
    welcome_calls = [c for c in harness.network.calls if c.text.startswith("Welcome")]
    first, *retries = [c.first_attempt_at for c in welcome_calls]
    assert first is None
    assert retries == [START, START]


def test_a_rejected_post_is_recorded_as_failed_and_the_chat_goes_on(harness: Harness) -> None:
    """A post the network refuses is marked failed with the reason; the next step still goes out."""
    harness.at(-60)
    harness.at(0)
    harness.network.fail(Rejected("text too long", status=422))
    harness.at(6)
    q1 = next(u for u in harness.store.units.of_chat(CHAT) if u.step_key == "q1")
    assert q1.state is UnitState.FAILED
    assert "text too long" in q1.reason
    harness.at(15)
    assert harness.states()["q2"] is UnitState.POSTED


def test_editing_a_script_reschedules_what_is_not_posted(harness: Harness) -> None:
    """Changing a question's text and spacing before it is posted changes what goes out."""
    harness.at(-60)
    harness.write(
        SCRIPT.replace("Second question?", "A better second question?").replace("9m", "10m")
    )
    harness.runner.sync()
    q2 = next(u for u in harness.store.units.of_chat(CHAT) if u.step_key == "q2")
    assert q2.planned_at == START + timedelta(minutes=16)
    for minutes in (0, 6, 16):
        harness.at(minutes)
    assert "Q2: A better second question? #Rehearse" in harness.bot_posts()


def test_a_broken_edit_keeps_the_last_good_version_scheduled(harness: Harness) -> None:
    """A script broken mid-run is reported and its previous version keeps its schedule."""
    harness.write(SCRIPT.replace("questions:", "questons:"))
    harness.runner.sync()
    errors = [e.message for e in harness.store.events.recent(levels=["error"])]
    assert any('unknown key "questons"' in e for e in errors)
    assert len(harness.store.units.of_chat(CHAT)) == 7  # six posts and the recap
    for minutes in (-60, 0, 6):
        harness.at(minutes)
    assert "Q1: First question? #Rehearse" in harness.bot_posts()


def test_deleting_a_script_cancels_its_future_steps(harness: Harness) -> None:
    """Removing the file cancels the chat's steps that have not been posted."""
    harness.at(-60)
    (harness.schedules / "rehearsal.yaml").unlink()
    harness.runner.sync()
    states = harness.states()
    assert states["reminder-1"] is UnitState.POSTED
    assert {states[k] for k in ("welcome", "q1", "q2", "q3", "closing")} == {UnitState.CANCELLED}
    harness.at(0)
    assert harness.bot_posts() == ["In an hour: Rehearsal #Rehearse"]


def test_a_chat_whose_start_falls_during_a_restart_starts_within_grace(harness: Harness) -> None:
    """The bot down from before the reminder until 3 minutes after the start: the reminder is
    skipped as late, the welcome is posted."""
    harness.at(3)
    states = harness.states()
    assert states["reminder-1"] is UnitState.SKIPPED
    assert states["welcome"] is UnitState.POSTED


def test_pause_and_resume_move_the_remaining_steps(harness: Harness) -> None:
    """Pausing at 5 minutes and resuming at 15 moves Q1 from 6 to 16 minutes."""
    harness.at(-60)
    harness.at(0)
    harness.clock.set(START + timedelta(minutes=5))
    harness.runner.controls.pause(CHAT)
    harness.at(10)
    assert harness.states()["q1"] is UnitState.PENDING
    harness.clock.set(START + timedelta(minutes=15))
    harness.runner.controls.resume(CHAT)
    assert harness.runner.advance(CHAT) == START + timedelta(minutes=16)


def test_skip_next_extend_and_end(harness: Harness) -> None:
    """Live controls: skip Q1, post Q2 now, extend by 5 minutes, then end with the closing."""
    harness.at(-60)
    harness.at(0)
    harness.clock.set(START + timedelta(minutes=1))
    assert harness.runner.controls.skip(CHAT) == "q1"
    harness.runner.controls.next_now(CHAT)
    harness.runner.advance(CHAT)
    assert harness.states()["q2"] is UnitState.POSTED
    harness.runner.controls.extend(CHAT, timedelta(minutes=5))
    harness.runner.controls.end(CHAT)
    harness.runner.advance(CHAT)
    states = harness.states()
    assert states["q1"] is UnitState.SKIPPED
    assert states["q3"] is UnitState.SKIPPED
    assert states["closing"] is UnitState.POSTED


def test_collection_resumes_after_a_restart_without_losing_or_repeating(tmp_path: Path) -> None:
    """Answers collected in two runs, with a restart mid-chat, equal those a single reading
    of everything finds; none twice, none lost (checked against the network's posts)."""
    harness = Harness(tmp_path)
    harness.local = LocalNetwork(harness.store, clock=harness.clock, participants=True)
    harness.runner.networks[NetworkName.LOCAL] = harness.local
    harness.runner.sync()
    for minutes in (-60, 0, 6, 15):
        harness.at(minutes)
    harness.clock.set(START + timedelta(minutes=20))
    harness.runner.collect(CHAT)
    mid = len(harness.store.conversation.posts(CHAT))

    restarted = Runner(
        store=harness.store,
        networks={NetworkName.LOCAL: harness.local},
        schedules=harness.schedules,
        late=LatePolicy(step_grace=timedelta(minutes=5)),
        clock=harness.clock,
        watch=False,
    )
    restarted.sync()
    for minutes in (24, 33, 60):
        harness.clock.set(START + timedelta(minutes=minutes))
        restarted.advance(CHAT)
    restarted.collect(CHAT)

    participant_posts = [p for p in harness.local.posts() if p.author != BOT_AUTHOR]
    stored = harness.store.conversation.posts(CHAT)
    assert 0 < mid < len(stored)
    assert sorted(p.post_id for p in stored) == sorted(str(p.id) for p in participant_posts)
    keys = [(a.uri, a.question, a.part) for a in harness.store.reports.answers(CHAT)]
    assert len(keys) == len(set(keys))
    assert {a.question for a in harness.store.reports.answers(CHAT)} == {1, 2, 3}


def test_a_restart_after_the_last_post_resumes_collecting_answers(tmp_path: Path) -> None:
    """Restarted after the closing but inside the answer window, the bot reads answers again."""
    harness = Harness(tmp_path)
    harness.runner.sync()
    for minutes in (-60, 0, 6, 15, 24, 33, 48, 48.1):
        harness.at(minutes)
    restarted = Runner(
        store=harness.store,
        networks={NetworkName.LOCAL: harness.local},
        schedules=harness.schedules,
        late=LatePolicy(),
        clock=harness.clock,
        watch=False,
        answer_tail=timedelta(minutes=30),
    )
    restarted.start()
    try:
        assert restarted.scheduler.get_job(f"collect:{CHAT}") is not None
    finally:
        restarted.stop()


def test_a_restart_after_the_answer_window_writes_a_missing_transcript(tmp_path: Path) -> None:
    """A chat whose transcript was never written (the bot was down) gets it at the next start."""
    harness = Harness(tmp_path)
    harness.runner.sync()
    for minutes in (-60, 0, 6, 15, 24, 33, 48, 48.1):
        harness.at(minutes)
    harness.clock.set(START + timedelta(days=1))
    archives = tmp_path / "archives"
    restarted = Runner(
        store=harness.store,
        networks={NetworkName.LOCAL: harness.local},
        schedules=harness.schedules,
        late=LatePolicy(),
        clock=harness.clock,
        watch=False,
        archive_dir=archives,
    )
    restarted.start()
    restarted.stop()
    assert sorted(p.name for p in archives.iterdir()) == [
        f"{CHAT}.csv",
        f"{CHAT}.html",
        f"{CHAT}.json",
        f"{CHAT}.md",
    ]


def _sync(tmp_path: Path, schedules: Path, clock: FakeClock) -> tuple[Store, Sync]:
    """A store and a Sync of ``schedules`` on the local network, as the runner makes them."""
    store = Store.open(f"sqlite:///{tmp_path / 'state.db'}", now=clock())
    sync = Sync(
        store=store,
        networks=[NetworkName.LOCAL],
        schedules=schedules,
        clock=clock,
        limits=Limits,
        visibility=VisibilityPolicy(),
    )
    return store, sync


def test_an_unchanged_one_off_chat_is_not_replanned_at_every_sync(tmp_path: Path) -> None:
    """A one-off's chat id equals its script id; a second sync of the same file changes nothing
    (field report: "rescheduled" every minute)."""
    schedules = tmp_path / "schedules"
    schedules.mkdir()
    (schedules / "rehearsal.yaml").write_text(textwrap.dedent(SCRIPT), encoding="utf-8")
    clock = FakeClock(START - timedelta(hours=2))
    store, sync = _sync(tmp_path, schedules, clock)
    assert sync.run() == [CHAT]
    assert sync.run() == []
    store.close()


def test_a_sync_checks_the_scripts_again_only_when_the_folder_or_the_day_changed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Checking fifty scripts takes a second, and a sync runs every minute: an unchanged
    folder is not checked again until the next day; an edit is checked at once."""
    schedules = tmp_path / "schedules"
    schedules.mkdir()
    script = schedules / "rehearsal.yaml"
    script.write_text(textwrap.dedent(SCRIPT), encoding="utf-8")
    checks: list[datetime] = []
    real = check_paths

    def counted(*args: Any, **kwargs: Any) -> Any:
        checks.append(clock())
        return real(*args, **kwargs)

    monkeypatch.setattr(sync_module, "check_paths", counted)
    clock = FakeClock(START - timedelta(hours=2))
    store, sync = _sync(tmp_path, schedules, clock)
    sync.run()
    clock.set(clock() + timedelta(minutes=1))
    sync.run()
    assert len(checks) == 1
    edited = textwrap.dedent(SCRIPT).replace("First question?", "Opening question?")
    script.write_text(edited, encoding="utf-8")
    sync.run()
    assert len(checks) == 2
    clock.set(clock() + timedelta(days=1))
    sync.run()
    assert len(checks) == 3
    store.close()


def test_a_collection_round_in_flight_keeps_the_chat_unfinished(tmp_path: Path) -> None:
    """While a collection round runs, its one-shot job is out of the scheduler (APScheduler
    drops it when it fires): the chat's answers are not in yet (``run --exit-when-done``
    must not stop then); once a round finds the answer window over, they are."""
    harness = Harness(tmp_path)
    harness.runner.sync()
    for minutes in (-60, 0, 6, 15, 24, 33, 48, 48.1):
        harness.at(minutes)
    runner = Runner(
        store=harness.store,
        networks={NetworkName.LOCAL: harness.local},
        schedules=harness.schedules,
        late=LatePolicy(),
        clock=harness.clock,
        watch=False,
        answer_tail=timedelta(minutes=30),
    )
    runner.start()
    try:
        assert not runner.all_over(answers_in=True)
        runner.scheduler.remove_job(f"collect:{CHAT}")  # fired: the round is running
        assert not runner.all_over(answers_in=True)
        harness.clock.set(START + timedelta(minutes=90))  # past the answer window
        runner.collect_job(CHAT)
        assert runner.scheduler.get_job(f"collect:{CHAT}") is None
        assert runner.all_over(answers_in=True)
    finally:
        runner.stop()


def test_answers_are_not_all_in_while_a_collection_round_runs(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While a chat's last collection job runs (APScheduler has already dropped it from its
    jobs), the answers are not "all in": `run --exit-when-done` stopped in that moment and
    the round's next booking and the transcript were lost."""
    for minutes in (-60, 0, 6, 15, 24, 33, 100):
        harness.at(minutes)
    assert harness.runner.all_over(answers_in=True)  # over, and no collection booked
    seen: list[bool] = []
    collect = harness.runner.collect

    def watched(chat_id: str, *, scheduled: bool = False) -> datetime | None:
        seen.append(harness.runner.all_over(answers_in=True))
        return collect(chat_id, scheduled=scheduled)

    monkeypatch.setattr(harness.runner, "collect", watched)
    harness.runner.collect_job(CHAT)
    assert seen == [False]
    assert harness.runner.all_over(answers_in=True)
