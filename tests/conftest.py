"""Shared test fixtures: the offline guard and a way to run the real ``chatbot`` command.

The guard follows python-telegram-bot's ``OfflineRequest``: a unit test never
reaches the internet. Loopback stays open everywhere, because the integration
tests talk to real servers on 127.0.0.1 and a test may open a local socket.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent

RunChatbot = Callable[..., subprocess.CompletedProcess[str]]


class OfflineError(RuntimeError):
    """A test tried to reach a host that is not this machine."""


def is_local_address(address: Any) -> bool:
    """Whether a socket address stays on this machine (loopback, unix socket)."""
    if not isinstance(address, tuple):
        return True  # AF_UNIX paths and abstract names
    host = str(address[0]).split("%", 1)[0]  # drop an IPv6 zone id
    if host == "localhost":
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False  # a name: only "localhost" is known to stay local without a lookup
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


@dataclass
class OfflineGuard:
    """Records every attempt to connect off this machine; the test fails if there was one."""

    attempts: list[str] = field(default_factory=list)

    def check(self, sock: socket.socket, address: Any) -> None:
        """Refuse ``address`` unless it is local; the refused socket is closed.

        A RuntimeError, not an OSError, so that no retry loop takes it for a flaky
        network; closing the socket keeps callers that only clean up on OSError
        (``socket.create_connection``) from leaking it.
        """
        if not is_local_address(address):
            self.attempts.append(repr(address))
            sock.close()
            raise OfflineError(f"tests are offline: connection to {address!r} refused")

    def verify(self) -> None:
        """Fail the test if it tried to connect off this machine, even if the error was caught."""
        if self.attempts:
            pytest.fail("the test tried to reach the network: " + ", ".join(self.attempts))

    def forgive(self) -> None:
        """Forget the attempts so far (for the guard's own tests)."""
        self.attempts.clear()


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch) -> Iterator[OfflineGuard]:
    """Fail any test that connects a socket to a non-loopback address."""
    guard = OfflineGuard()
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex

    def connect(self: socket.socket, address: Any) -> None:
        guard.check(self, address)
        real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        guard.check(self, address)
        return real_connect_ex(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    yield guard
    # The code under test may have swallowed the OfflineError (a retry loop, an
    # adapter that turns errors into Transient): the attempt still fails the test.
    guard.verify()


@pytest.fixture(scope="session")
def chatbot_command() -> list[str]:
    """The installed ``chatbot`` console script next to this Python, else ``-m chatbot.cli``."""
    script = Path(sys.executable).with_name("chatbot")
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-m", "chatbot.cli"]


@pytest.fixture(scope="session")
def cli_env() -> dict[str, str]:
    """The environment of a CLI run: no user config, no colours, UTF-8 output."""
    env = {k: v for k, v in os.environ.items() if k not in ("CHATBOT_CONFIG", "FORCE_COLOR")}
    env.update({"NO_COLOR": "1", "PYTHONIOENCODING": "utf-8", "TERM": "dumb"})
    return env


@pytest.fixture
def run_chatbot(chatbot_command: list[str], cli_env: dict[str, str]) -> RunChatbot:
    """Run the real ``chatbot`` command in the repository root, output piped (not a terminal)."""

    def run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*chatbot_command, *args],
            cwd=cwd,
            env=cli_env,
            capture_output=True,
            text=True,
            encoding="utf-8",
            timeout=120,
            check=False,
        )

    return run


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[Any]:
    """A real PostgreSQL server on loopback, started the first time a test asks for it."""
    from tests.servers import PostgresServer

    with PostgresServer() as server:
        yield server


_databases = iter(range(1, 1_000_000))


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A new, empty database: an SQLite file, and (an integration test) one on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state.db'}"
    server = request.getfixturevalue("postgres_server")
    return str(server.recreate_database(f"store_{next(_databases)}"))
