"""Fakes shipped with the package, for tests and rehearsals: a clock you move by hand
and a network wrapper that fails on purpose. Both sit at the seams production uses."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Generic, TypeVar

from chatbot.errors import NetworkError
from chatbot.networks.base import Network, PostRequest
from chatbot.posts import PostRef
from chatbot.script import NetworkName
from chatbot.text import Limits

N = TypeVar("N", bound=Network)


@dataclass
class FakeClock:
    """A clock that stands still until a test moves it."""

    current: datetime = field(default_factory=lambda: datetime(2030, 1, 1, tzinfo=UTC))

    def __call__(self) -> datetime:
        return self.current

    def set(self, when: datetime) -> None:
        if when.tzinfo is None:
            raise ValueError("FakeClock takes aware UTC datetimes")
        self.current = when

    def advance(self, delta: timedelta) -> datetime:
        self.current += delta
        return self.current


class Wrapped(Generic[N]):
    """A network passed through as it is: a subclass changes only what it is about."""

    def __init__(self, inner: N) -> None:
        self.inner = inner
        self.name: NetworkName = inner.name

    def limits(self) -> Limits:
        return self.inner.limits()

    def post(self, request: PostRequest) -> PostRef:
        return self.inner.post(request)

    def find(self, request: PostRequest) -> PostRef | None:
        return self.inner.find(request)

    def close(self) -> None:
        self.inner.close()


class FailingNetwork(Wrapped[Network]):
    """Wraps a network; the next calls to ``post`` raise the errors queued with ``fail``."""

    def __init__(self, inner: Network) -> None:
        super().__init__(inner)
        self.failures: deque[NetworkError] = deque()
        self.calls: list[PostRequest] = []

    def fail(self, *errors: NetworkError) -> None:
        self.failures.extend(errors)

    def post(self, request: PostRequest) -> PostRef:
        self.calls.append(request)
        if self.failures:
            raise self.failures.popleft()
        return self.inner.post(request)
