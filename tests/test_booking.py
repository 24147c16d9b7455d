"""A chat has one booking of its job: the earlier one wins, so that a wake-up made while the
job runs (a command answered) is not lost when the job then books the chat's next step."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from apscheduler.schedulers.background import BackgroundScheduler

from chatbot.run.runner import book

SOON = datetime(2030, 1, 3, 20, 0, tzinfo=UTC)
LATER = SOON + timedelta(minutes=20)


@pytest.fixture
def scheduler() -> Iterator[BackgroundScheduler]:
    made = BackgroundScheduler(timezone=UTC)
    made.start(paused=True)
    yield made
    made.shutdown(wait=False)


def _job(_chat_id: str) -> None:
    raise AssertionError("a paused scheduler runs nothing")


def _booked(scheduler: BackgroundScheduler) -> datetime:
    job = scheduler.get_job("chat:c")
    assert job is not None
    return job.next_run_time  # type: ignore[no-any-return]


def test_a_later_booking_keeps_the_earlier_wake_up(scheduler: BackgroundScheduler) -> None:
    book(scheduler, "chat:c", _job, "c", SOON)
    book(scheduler, "chat:c", _job, "c", LATER)
    assert _booked(scheduler) == SOON


def test_an_earlier_booking_replaces_a_later_one(scheduler: BackgroundScheduler) -> None:
    book(scheduler, "chat:c", _job, "c", LATER)
    book(scheduler, "chat:c", _job, "c", SOON)
    assert _booked(scheduler) == SOON
    assert len(scheduler.get_jobs()) == 1


def test_each_chat_has_its_own_booking(scheduler: BackgroundScheduler) -> None:
    book(scheduler, "chat:c", _job, "c", SOON)
    book(scheduler, "chat:d", _job, "d", LATER)
    assert sorted(j.id for j in scheduler.get_jobs()) == ["chat:c", "chat:d"]
