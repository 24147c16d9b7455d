"""The shared pacer: posting ahead of reading, never over the limit, quiet after a 429."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from chatbot import errors
from chatbot.networks.pacing import Pacer, pace


class Time:
    """A monotonic clock and a sleep that only moves it."""

    def __init__(self) -> None:
        self.now = 0.0
        self.wall = datetime(2030, 1, 1, tzinfo=UTC)

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.wall += timedelta(seconds=seconds)


def pacer(clock: Time, limit: int = 10, period: float = 10.0) -> Pacer:
    return Pacer(
        limit,
        period,
        reserve=0.2,
        monotonic=clock.monotonic,
        sleep=clock.sleep,
        wall=lambda: clock.wall,
    )


def test_requests_never_exceed_the_limit() -> None:
    """Thirty requests against 10 per 10 s take at least 20 s of (fake) time."""
    clock = Time()
    p = pacer(clock)
    for _ in range(30):
        assert p.acquire(posting=False)
    assert clock.now >= 20 - 1e-6


def test_reading_leaves_a_reserve_for_posting() -> None:
    """Reading stops while only the reserve is left; a post can still go at once."""
    clock = Time()
    p = pacer(clock)
    for _ in range(8):
        p.acquire(posting=False)
    assert p.wait_time(posting=False) > 0
    assert p.wait_time(posting=True) == 0
    assert p.acquire(posting=True)
    assert clock.now == 0


def test_after_a_429_nobody_sends_until_the_reset() -> None:
    """A rate limit with a reset blocks posting and reading until then."""
    clock = Time()
    p = pacer(clock)
    p.block_until(clock.wall + timedelta(seconds=30))
    assert p.wait_time(posting=True) >= 30
    p.acquire(posting=True)
    assert clock.now >= 30


def test_a_reader_can_give_up_instead_of_waiting() -> None:
    """With a deadline, a read that would wait too long returns False and takes nothing."""
    clock = Time()
    p = pacer(clock)
    p.block_until(clock.wall + timedelta(seconds=60))
    assert not p.acquire(posting=False, deadline=5)
    assert clock.now == 0


def test_after_the_reset_the_whole_window_is_back() -> None:
    """The server's window starts afresh at its reset: reading need not wait for a refill."""
    clock = Time()
    p = pacer(clock)
    for _ in range(8):
        p.acquire(posting=False)
    p.block_until(clock.wall + timedelta(seconds=5))
    assert p.acquire(posting=False)
    assert 5 <= clock.now < 6
    for _ in range(7):
        assert p.acquire(posting=False)
    assert clock.now < 6


def test_pace_gives_up_with_rate_limited_until_a_token_is_there() -> None:
    """A request that would wait past ``max_wait`` raises RateLimited at the pacer's own time."""
    clock = Time()
    p = pacer(clock)
    p.block_until(clock.wall + timedelta(seconds=60))
    with pytest.raises(errors.RateLimited, match="pacing") as raised:
        pace([p], posting=True, what="posting", now=clock.wall, max_wait=3)
    assert raised.value.retry_at == clock.wall + timedelta(seconds=60)
    assert raised.value.status is None
    assert clock.now == 0


def test_a_reader_after_a_429_is_told_the_reset_not_the_time_to_earn_the_reserve_back() -> None:
    """Mastodon's 300 per 5 minutes: after a 429 with a 3 s reset, a read waits 3 s (the
    whole window is back then), not the minute a token-by-token refill of the reserve
    would take (the fault suite saw collection wait 60 s after each 429)."""
    clock = Time()
    p = pacer(clock, limit=300, period=300.0)
    p.block_until(clock.wall + timedelta(seconds=3))
    assert p.wait_time(posting=False) == pytest.approx(3)
    with pytest.raises(errors.RateLimited) as raised:
        pace([p], posting=False, what="reading", now=clock.wall, max_wait=1)
    assert raised.value.retry_at == clock.wall + timedelta(seconds=3)
