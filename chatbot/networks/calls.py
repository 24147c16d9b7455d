"""One request to a network, the same way for every network: paced, sent, its failure classified.

Mastodon.py and atproto raise their own exceptions, and each says what went
wrong in its own way (an HTTP status in ``args``, an XRPC error name in the
response, a reset time on the client or on the exception). Each adapter only
*reads* its SDK's exception into a :class:`Failure`; :func:`classify` turns
that into one of ours, in one order for every network:

1. rate limited (429, or the SDK's rate-limit error): RateLimited at the
   server's reset time, else a minute from now;
2. no answer at all (refused connection, timeout): Transient;
3. credentials refused (401, 403, or the SDK's word for it): AuthFailed;
4. a server error (5xx, or what the SDK files as worth retrying): Transient;
5. the request refused (another 4xx, or the SDK's word for it): Rejected;
6. anything else, such as an answer whose body could not be read: Transient
   (the post may exist; its idempotency key makes a retry safe).

:class:`Caller` is the one shape of a call: take the pacers' tokens (outside
the lock, so a waiting read never holds up a post), send under the client's
lock if it has one, classify a failure, hold every request until the reset
after a 429, and ``raise ... from`` the SDK's exception. A read that fails on the
way (Transient: a 5xx, a dropped connection, a body cut short) is sent again
twice, after :data:`READ_RETRY_WAIT` and twice that: a collection round is all or
nothing, so one bad answer among its dozen requests would otherwise cost the
whole round. Posts are never sent again here (the runner does, after looking
for the first attempt), nor is any request before a 429's reset.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Generic, TypeVar

from chatbot import errors
from chatbot.networks.pacing import Pacer, pace

T = TypeVar("T")
E = TypeVar("E", bound=BaseException)

# When a 429 carries no usable reset time.
DEFAULT_RATELIMIT_WAIT = timedelta(seconds=60)
# A read that failed on the way is sent again this many times, after this wait (seconds)
# and then twice it.
READ_RETRIES = 2
READ_RETRY_WAIT = 0.25

# Told of every request: (network, endpoint class "post" or "read", outcome "ok",
# "expected" (a failure the caller handles, such as a post not there), "rate_limited"
# or "error"). The metrics register one when the bot serves them.
RequestObserver = Callable[[str, str, str], None]
_observers: list[RequestObserver] = []


def observe_requests(observer: RequestObserver) -> Callable[[], None]:
    """Tell ``observer`` of every request any network makes; returns how to stop."""
    _observers.append(observer)
    return lambda: _observers.remove(observer)


def _told(network: str, posting: bool, outcome: str) -> None:
    for observer in list(_observers):
        observer(network, "post" if posting else "read", outcome)


@dataclass(frozen=True)
class Failure:
    """An SDK's exception as its adapter reads it: the facts :func:`classify` decides on."""

    network: str  # who answered ("Mastodon"), for messages
    detail: str  # what went wrong as the SDK tells it, for messages
    status: int | None = None  # the HTTP status, when an answer came
    error: str = ""  # the error's name in the answer (an XRPC error), if it has one
    rate_limited: bool = False  # the SDK's own rate-limit error (a 429 is one anyway)
    retry_at: datetime | None = None  # when the server said to come back, if it did
    unreachable: bool = False  # no answer at all: a refused connection, a timeout
    auth: bool = False  # the SDK's own "credentials refused" (401 and 403 are anyway)
    transient: bool = False  # what the SDK files as worth retrying (a 5xx is anyway)
    refused: bool = False  # the SDK's own "request refused" (another 4xx is anyway)
    hint: str = ""  # what to do about refused credentials, added to AuthFailed


def classify(failure: Failure, what: str, now: datetime) -> errors.NetworkError:
    """A failure as one of ours, in the order every network shares (see the module's doc)."""
    status = failure.status
    detail = f"{what}: {failure.detail}"
    if failure.rate_limited or status == 429:
        retry_at = failure.retry_at or now + DEFAULT_RATELIMIT_WAIT
        return errors.RateLimited(
            f"{what}: {failure.network} rate limit until {retry_at:%H:%M:%S} UTC",
            retry_at=retry_at,
        )
    if failure.unreachable:
        return errors.Transient(detail)
    if failure.auth or status in (401, 403):
        hint = f" ({failure.hint})" if failure.hint else ""
        return errors.AuthFailed(f"{detail}{hint}", status=status)
    if failure.transient or (status is not None and status >= 500):
        return errors.Transient(detail, status=status)
    if failure.refused or (status is not None and 400 <= status < 500):
        return errors.Rejected(detail, status=status)
    return errors.Transient(detail, status=status)


class Expected(Exception):
    """A failure the caller handles itself (a post that is not there, a record key taken)."""

    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.detail)
        self.failure = failure


class Caller(Generic[E]):
    """The requests of one SDK client: paced, sent, and their failures classified."""

    def __init__(
        self,
        *,
        sdk_error: type[E],
        read: Callable[[E, datetime], Failure],
        pacer: Pacer,
        clock: Callable[[], datetime],
        lock: contextlib.AbstractContextManager[Any] | None = None,
        network: str = "",
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """``read`` turns the SDK's exception into a Failure; ``pacer`` is held after a 429.
        ``network`` names the requests to the observers (:func:`observe_requests`)."""
        self.network = network
        self._sleep = sleep
        self.pacer = pacer
        self._sdk_error = sdk_error
        self._read = read
        self._clock = clock
        self._lock = lock if lock is not None else contextlib.nullcontext()

    def pace(self, what: str, *, posting: bool, also: Sequence[Pacer] = ()) -> None:
        """Take a token from ``also`` and then the client's pacer, briefly; else RateLimited."""
        pace([*also, self.pacer], posting=posting, what=what, now=self._clock())

    def read(self, exc: E) -> Failure:
        """What the SDK's exception says."""
        return self._read(exc, self._clock())

    def translate(self, exc: E, what: str) -> errors.NetworkError:
        """The SDK's exception as one of ours."""
        return classify(self.read(exc), what, self._clock())

    def __call__(
        self,
        what: str,
        call: Callable[[], T],
        *,
        posting: bool = True,
        also: Sequence[Pacer] = (),
        expect: Callable[[Failure], bool] | None = None,
        renew: Callable[[Failure], bool] | None = None,
    ) -> T:
        """One request: paced, sent, its failure classified and raised from the SDK's.

        ``expect``: failures the caller handles itself, raised as :class:`Expected`.
        ``renew``: called on a failure; True when it renewed what was wrong (a
        session) and the request is worth one more try.
        """
        renewed, retries = False, 0
        while True:
            self.pace(what, posting=posting, also=also)
            with self._lock:
                try:
                    answer = call()
                except self._sdk_error as exc:
                    failure = self.read(exc)
                    if expect is not None and expect(failure):
                        _told(self.network, posting, "expected")
                        raise Expected(failure) from exc
                    problem = classify(failure, what, self._clock())
                    limited = isinstance(problem, errors.RateLimited)
                    _told(self.network, posting, "rate_limited" if limited else "error")
                    if not renewed and renew is not None and renew(failure):
                        renewed = True
                        continue
                    if isinstance(problem, errors.RateLimited):
                        self.pacer.block_until(problem.retry_at)
                    retry = isinstance(problem, errors.Transient) and not posting
                    if not retry or retries >= READ_RETRIES:
                        raise problem from exc
                    retries += 1
                else:
                    _told(self.network, posting, "ok")
                    return answer
            self._sleep(READ_RETRY_WAIT * 2 ** (retries - 1))  # outside the lock
