"""Test-only fault injection: the real ``chatbot`` command, holding after its n-th post.

    python -m tests.holding NETWORK:N chatbot-args...

runs ``chatbot chatbot-args...`` with the account of NETWORK wrapped so that its
N-th post is published and then held (the result is never recorded) until the
test kills the process: the window between the write-ahead intent and the result
that a crash must survive without posting twice. Production code has no switch
for this; the wrapping happens here, at the seam where the accounts are built.
"""

from __future__ import annotations

import sys
import threading

import structlog

from chatbot.errors import Rejected
from chatbot.networks import connect as connecting
from chatbot.networks.base import (
    ChatThread,
    Collected,
    Interacting,
    Network,
    PostRequest,
    Reader,
)
from chatbot.posts import PostRef
from chatbot.script import NetworkName
from chatbot.text import Limits

HOLD_SECONDS = 120.0
log = structlog.get_logger("tests.holding")


class HoldAfterPost:
    """A network that holds after its ``nth`` successful post."""

    def __init__(self, inner: Network, nth: int) -> None:
        self.name = inner.name
        self._inner = inner
        self._nth = nth
        self._posts = 0

    def limits(self) -> Limits:
        return self._inner.limits()

    def post(self, request: PostRequest) -> PostRef:
        ref = self._inner.post(request)
        self._posts += 1
        if self._posts == self._nth:
            log.warning("fault injection: holding after post", network=self.name.value, id=ref.id)
            threading.Event().wait(HOLD_SECONDS)
        return ref

    def find(self, request: PostRequest) -> PostRef | None:
        return self._inner.find(request)

    def collect(self, thread: ChatThread, cursors: dict[str, str]) -> Collected:
        if not isinstance(self._inner, Reader):
            return Collected()
        return self._inner.collect(thread, cursors)

    def like(self, post: PostRef) -> PostRef:
        if not isinstance(self._inner, Interacting):
            raise Rejected(f"liking posts is not possible on {self.name.value}")
        return self._inner.like(post)

    def resolve(self, handle: str) -> str | None:
        return self._inner.resolve(handle) if isinstance(self._inner, Interacting) else None

    def close(self) -> None:
        self._inner.close()


def install(network: NetworkName, nth: int) -> None:
    """Wrap ``network``'s account, wherever the command builds the accounts."""
    build = connecting.connect_accounts

    def connect_accounts(loaded: connecting.LoadedConfig) -> dict[NetworkName, Network]:
        accounts = build(loaded)
        if network in accounts:
            accounts[network] = HoldAfterPost(accounts[network], nth)
        return accounts

    connecting.connect_accounts = connect_accounts  # type: ignore[assignment]


def main(argv: list[str]) -> None:
    network, _, nth = argv[0].partition(":")
    install(NetworkName(network), int(nth or 1))
    from chatbot.cli import main as chatbot

    sys.argv = ["chatbot", *argv[1:]]
    chatbot()


if __name__ == "__main__":
    main(sys.argv[1:])
