"""Test-only crash windows: the real ``chatbot`` command, held at a chosen point.

    python -m tests.integration.reliability.crashpoints WINDOW:N chatbot-args...

runs ``chatbot chatbot-args...`` and holds the thread that reaches the window (for
good: the test SIGKILLs the process there), after writing the file named by
``CHATBOT_CRASHPOINT_MARK`` so that the test knows the window is reached:

- ``post:N``: the N-th post is published and its result not yet recorded (the window
  between a post's write-ahead intent and its result);
- ``collect:N``: the N-th reading of a network has its posts and nothing is stored
  yet (the middle of a collection round);
- ``recap:N``: the N-th recap's first post is composed and its other posts are not
  yet added (the middle of recap composition);
- ``migrate:V``: migration V has run inside its transaction and is not yet recorded
  (the middle of a migration at start-up).

Production code has no switch for this: the wrapping is done here, at the seams where
the command builds its accounts, composes a recap and migrates its database, as
tests/holding.py does for posts.
"""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path
from typing import Any

from chatbot.networks import connect as connecting
from chatbot.networks.base import ChatThread, Collected, Network, PostRequest, Reader
from chatbot.posts import PostRef
from chatbot.store import schema
from chatbot.store.units import Units
from tests.holding import HoldAfterPost

HOLD_SECONDS = 120.0
MARK = "CHATBOT_CRASHPOINT_MARK"


def hold(window: str) -> None:
    """Say the window is reached (the mark file), then wait to be killed."""
    mark = os.environ.get(MARK)
    if mark:
        Path(mark).write_text(window, encoding="utf-8")
    threading.Event().wait(HOLD_SECONDS)


class Counter:
    """Counts arrivals at a window; holds at the ``nth``."""

    def __init__(self, window: str, nth: int) -> None:
        self.window = window
        self._nth = nth
        self._seen = 0
        self._lock = threading.Lock()

    def arrive(self) -> None:
        with self._lock:
            self._seen += 1
            reached = self._seen == self._nth
        if reached:
            hold(f"{self.window}:{self._nth}")


class HeldPost(HoldAfterPost):
    """tests/holding.py's network, writing the mark when it holds."""

    def __init__(self, inner: Network, counter: Counter) -> None:
        super().__init__(inner, nth=0)
        self._counter = counter

    def post(self, request: PostRequest) -> PostRef:
        ref = self._inner.post(request)
        self._counter.arrive()
        return ref


class HeldCollect(HoldAfterPost):
    """A network that holds in the middle of its ``nth`` collection round."""

    def __init__(self, inner: Network, counter: Counter) -> None:
        super().__init__(inner, nth=0)
        self._counter = counter

    def post(self, request: PostRequest) -> PostRef:
        return self._inner.post(request)

    def collect(self, thread: ChatThread, cursors: dict[str, str]) -> Collected:
        if not isinstance(self._inner, Reader):
            return Collected()
        collected = self._inner.collect(thread, cursors)
        self._counter.arrive()
        return collected


def _wrap_accounts(make: Any) -> None:
    build = connecting.connect_accounts

    def connect_accounts(loaded: connecting.LoadedConfig) -> dict[Any, Network]:
        return {name: make(account) for name, account in build(loaded).items()}

    connecting.connect_accounts = connect_accounts  # type: ignore[assignment]


def install(window: str, nth: int) -> None:
    counter = Counter(window, nth)
    if window == "post":
        _wrap_accounts(lambda account: HeldPost(account, counter))
    elif window == "collect":
        _wrap_accounts(lambda account: HeldCollect(account, counter))
    elif window == "recap":
        compose = Units.compose

        def composing(self: Units, *args: Any, **kwargs: Any) -> None:
            compose(self, *args, **kwargs)
            counter.arrive()

        Units.compose = composing  # type: ignore[method-assign]
    elif window == "migrate":
        migrations = list(schema.MIGRATIONS)
        at = next(i for i, m in enumerate(migrations) if m.version == nth)
        original = migrations[at]

        def apply(conn: Any) -> None:
            original.apply(conn)
            hold(f"migrate:{nth}")

        migrations[at] = schema.Migration(original.version, original.name, apply)
        schema.MIGRATIONS = tuple(migrations)
    else:
        raise SystemExit(f"unknown crash window {window!r}")


def main(argv: list[str]) -> None:
    window, _, nth = argv[0].partition(":")
    install(window, int(nth or 1))
    from chatbot.cli import main as chatbot

    sys.argv = ["chatbot", *argv[1:]]
    chatbot()


if __name__ == "__main__":
    main(sys.argv[1:])
