"""The offline guard: unit tests never reach the internet, loopback stays open."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from typing import Any

import pytest

# TEST-NET-1 (RFC 5737): documentation addresses that route nowhere, so even a
# guard that failed open would not reach a real host.
OUTSIDE = ("192.0.2.1", 443)


def test_connecting_off_the_machine_raises(offline: Any) -> None:
    """A socket connection to a non-loopback address is refused before it leaves."""
    with socket.socket() as sock, pytest.raises(RuntimeError, match="tests are offline"):
        sock.connect(OUTSIDE)
    assert offline.attempts == [repr(OUTSIDE)]
    offline.forgive()


def test_create_connection_off_the_machine_raises(offline: Any) -> None:
    """socket.create_connection (what requests and urllib3 use) is refused too."""
    with pytest.raises(RuntimeError, match="tests are offline"):
        socket.create_connection(OUTSIDE, timeout=1)
    offline.forgive()


def test_asyncio_connection_off_the_machine_raises(offline: Any) -> None:
    """An asyncio connection (what httpx and atproto use) is refused too."""

    async def connect() -> None:
        await asyncio.open_connection(*OUTSIDE)

    with pytest.raises(RuntimeError, match="tests are offline"):
        asyncio.run(connect())
    offline.forgive()


def test_a_swallowed_attempt_still_fails_the_test(offline: Any) -> None:
    """Code that catches the refusal (a retry loop) cannot hide the attempt: the test fails."""
    with contextlib.suppress(RuntimeError):  # what a careless retry loop would do
        socket.create_connection(OUTSIDE, timeout=1)
    with pytest.raises(pytest.fail.Exception, match="tried to reach the network"):
        offline.verify()
    offline.forgive()


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_loopback_connections_are_allowed(host: str, offline: Any) -> None:
    """A connection to a server on loopback works, as the integration tests need."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as server:
        try:
            server.bind((host, 0))
        except OSError:
            pytest.skip(f"{host} is not configured on this machine")
        server.listen(1)
        with socket.socket(family) as client:
            client.connect(server.getsockname())
            conn, _ = server.accept()
            conn.close()
    assert offline.attempts == []


def test_localhost_by_name_is_allowed(offline: Any) -> None:
    """Connecting to "localhost" by name is loopback, so it is allowed."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        port = server.getsockname()[1]
        with socket.socket() as client:
            client.connect(("localhost", port))
    assert offline.attempts == []
