"""Pacing requests within a network's limits, with posting ahead of reading.

One :class:`Pacer` per account and network is shared by the posting and the
reading of every chat. It is a token bucket that keeps a reserve for posts:
reading waits while the bucket is low, posting only when it is empty. After a
429, nobody sends until the server's reset time; then the bucket is full again.

A request waits for its tokens only briefly (:func:`pace`): the runner's jobs
must not stall, so a longer wait raises RateLimited and the runner comes back.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta

from chatbot import errors

# Seconds a request may wait for the pacer before it gives up with RateLimited
# (the runner tries again then). Longer than one token of the slowest bucket
# (Mastodon's paging: 300 per 15 minutes = one per 3 s), so a collection round
# in a pacer-limited stretch still makes progress.
MAX_PACING_WAIT = 3.5


class Pacer:
    """A token bucket of ``limit`` requests per ``period`` seconds, with a reserve for posts."""

    def __init__(
        self,
        limit: int,
        period: float,
        *,
        reserve: float = 0.2,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        if limit < 1 or period <= 0:
            raise ValueError("a pacer needs a positive limit and period")
        self.capacity = float(limit)
        self.rate = limit / period  # tokens per second
        self.reserve = self.capacity * reserve  # tokens reading leaves for posting
        self._tokens = self.capacity
        self._stamp = monotonic()
        self._blocked_until: datetime | None = None
        self._monotonic = monotonic
        self._sleep = sleep
        self._wall = wall
        self._lock = threading.Lock()

    def _refill(self) -> None:
        now = self._monotonic()
        if self._blocked_until is not None and self._wall() >= self._blocked_until:
            # The server's window starts afresh at its reset (Mastodon's and Bluesky's
            # limits are windows): the whole allowance is back, not one token at a time.
            self._blocked_until = None
            self._tokens = self.capacity
        else:
            self._tokens = min(self.capacity, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    def wait_time(self, *, posting: bool) -> float:
        """Seconds until a request of this kind may go (0: now)."""
        with self._lock:
            self._refill()
            if self._blocked_until is not None:
                # Blocked after a 429: at the reset the whole allowance is back (_refill),
                # so the wait is the block, not the time to earn tokens one by one.
                return max(0.0, (self._blocked_until - self._wall()).total_seconds())
            floor = 0.0 if posting else self.reserve
            missing = floor + 1.0 - self._tokens
            return missing / self.rate if missing > 0 else 0.0

    def acquire(self, *, posting: bool, deadline: float | None = None) -> bool:
        """Wait for a token and take it; False if ``deadline`` (seconds) would pass first."""
        waited = 0.0
        while True:
            delay = self.wait_time(posting=posting)
            if delay <= 0:
                with self._lock:
                    self._refill()
                    floor = 0.0 if posting else self.reserve
                    if self._tokens - 1.0 >= floor - 1e-9:
                        self._tokens -= 1.0
                        return True
                continue
            if deadline is not None and waited + delay > deadline:
                return False
            self._sleep(delay)
            waited += delay

    def block_until(self, when: datetime) -> None:
        """The server said 429 until ``when``: nobody sends before then."""
        with self._lock:
            if self._blocked_until is None or when > self._blocked_until:
                self._blocked_until = when
            self._tokens = 0.0


def pace(
    pacers: Iterable[Pacer],
    *,
    posting: bool,
    what: str,
    now: datetime,
    max_wait: float = MAX_PACING_WAIT,
) -> None:
    """Take a token from each pacer, waiting at most ``max_wait`` s for each; else RateLimited."""
    for pacer in pacers:
        if not pacer.acquire(posting=posting, deadline=max_wait):
            wait = max(pacer.wait_time(posting=posting), 1.0)
            retry_at = now + timedelta(seconds=wait)
            raise errors.RateLimited(
                f"{what}: pacing requests within the network's limits until "
                f"{retry_at:%H:%M:%S} UTC",
                retry_at=retry_at,
                status=None,
            )
