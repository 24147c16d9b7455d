"""Build the network clients a config asks for."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from datetime import datetime

import structlog

from chatbot.config import LoadedConfig
from chatbot.networks.base import ChatThread, Collected, Network, PostRequest, Reader
from chatbot.networks.bluesky import BlueskyNetwork
from chatbot.networks.local import LocalNetwork
from chatbot.networks.mastodon import MastodonNetwork
from chatbot.posts import PostRef
from chatbot.script import NetworkName
from chatbot.store import Store
from chatbot.text import Limits

log = structlog.get_logger("chatbot.networks")

# Fault injection for the integration tests, and nothing else: with
# CHATBOT_TEST_HOLD_AFTER_POST=<network>:<n>, the n-th post this process makes
# on <network> is published and then held (the result is never recorded) until
# the test kills the process. That is the window between the write-ahead intent
# and the result which a crash must survive without posting twice.
HOLD_AFTER_POST_ENV = "CHATBOT_TEST_HOLD_AFTER_POST"
HOLD_SECONDS = 120.0


def connect(
    loaded: LoadedConfig,
    store: Store,
    *,
    speed: float = 1.0,
    clock: Callable[[], datetime] | None = None,
) -> dict[NetworkName, Network]:
    """One client per configured account, plus the embedded local network."""
    local = loaded.config.accounts.local
    networks: dict[NetworkName, Network] = {
        NetworkName.LOCAL: LocalNetwork(
            store,
            clock=clock,
            time_scale=speed,
            participants=local.participants,
            delay_before_post=local.delay_before_post,
            delay_after_post=local.delay_after_post,
        ),
    }
    networks.update(connect_accounts(loaded))
    hold = os.environ.get(HOLD_AFTER_POST_ENV)
    if hold:
        network_name, _, nth = hold.partition(":")
        name = NetworkName(network_name)
        if name in networks:
            networks[name] = _HoldAfterPost(networks[name], int(nth or 1))
    return networks


def connect_accounts(loaded: LoadedConfig) -> dict[NetworkName, Network]:
    """The configured Mastodon and Bluesky accounts; no network call is made here.

    Secrets are read now, so a missing one stops the start with a clear message.
    """
    accounts = loaded.config.accounts
    networks: dict[NetworkName, Network] = {}
    if accounts.mastodon is not None:
        networks[NetworkName.MASTODON] = MastodonNetwork(
            instance=accounts.mastodon.instance,
            access_token=accounts.mastodon.access_token.resolve(loaded.base_dir),
            max_characters=accounts.mastodon.max_characters,
            indexable_opts_out=accounts.mastodon.indexable_opt_out,
            extra_instances=accounts.mastodon.extra_instances,
        )
    if accounts.bluesky is not None:
        networks[NetworkName.BLUESKY] = BlueskyNetwork(
            service=accounts.bluesky.service,
            handle=accounts.bluesky.handle,
            app_password=accounts.bluesky.app_password.resolve(loaded.base_dir),
            session_dir=loaded.data_dir / "sessions",
        )
    return networks


class _HoldAfterPost:
    """Test-only: holds after the n-th successful post (see HOLD_AFTER_POST_ENV)."""

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

    def close(self) -> None:
        self._inner.close()
