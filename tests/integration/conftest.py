"""Fixtures for the integration tests: real servers, started once per session.

Each server starts the first time a test asks for it and stops at the end of
the session. Nothing is skipped: a server that is not installed fails the test
with a message naming `tests/servers/install`. Every test in this folder is
marked `integration`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.botrun import BotRunner
from tests.integration.venues import DIFFERENCES, BlueskyVenue, MastodonVenue, Venue
from tests.servers import AtprotoNetwork, MastodonServer, SnacServer

_HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test under tests/integration/ as `integration`."""
    for item in items:
        if item.path.resolve().is_relative_to(_HERE):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def atproto_network() -> Iterator[AtprotoNetwork]:
    """A real AT Protocol network on loopback: PLC, PDS and bsky AppView on PostgreSQL.

    Point `atproto.Client(base_url=atproto_network.pds_url)` at it; create
    accounts with `create_account(handle, password)` (handles end in `.test`)
    and call `process_all()` before reading what was just written.
    """
    with AtprotoNetwork() as network:
        yield network


@pytest.fixture(scope="session")
def mastodon_server() -> Iterator[MastodonServer]:
    """A mastodon-mock server on loopback, shared by the session.

    `Mastodon(access_token=..., api_base_url=mastodon_server.api_base_url)`;
    accounts from `create_account(username)`. A test that injects faults
    clears them (`clear_faults()`) before it ends.
    """
    with MastodonServer() as server:
        yield server


@pytest.fixture(scope="session")
def snac_server() -> Iterator[SnacServer]:
    """A real snac2 server (a Mastodon API in C) on loopback, shared by the session.

    `Mastodon(access_token=..., api_base_url=snac_server.api_base_url,
    session=snac_server.session())`: snac serves one request per connection.
    Accounts from `create_account(name)`; deliveries between them take seconds.
    """
    with SnacServer() as server:
        yield server


@pytest.fixture
def bots(chatbot_command: list[str], cli_env: dict[str, str]) -> Iterator[BotRunner]:
    """Real ``chatbot`` processes; whatever still runs at the end of the test is killed."""
    runner = BotRunner(chatbot_command, cli_env)
    yield runner
    runner.close()


@pytest.fixture(params=sorted(DIFFERENCES))
def venue(request: pytest.FixtureRequest) -> Iterator[Venue]:
    """Each real server in turn; only the one a test runs on is started."""
    name: str = request.param
    with contextlib.ExitStack() as closing:
        if name == "atproto":
            network = request.getfixturevalue("atproto_network")
            yield BlueskyVenue(network, closing, differences=DIFFERENCES[name])
        else:
            fixture = "snac_server" if name == "snac2" else "mastodon_server"
            server = request.getfixturevalue(fixture)
            yield MastodonVenue(name, server, closing, DIFFERENCES[name])
