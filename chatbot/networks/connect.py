"""Build the network clients a config asks for.

An SDK is imported only when its account is configured: a bot on one network (or on the
local network alone) never loads the other's SDK (atproto alone is about 40 MB at rest).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from chatbot.config import LoadedConfig
from chatbot.networks.base import Network
from chatbot.networks.local import LocalNetwork
from chatbot.script import NetworkName
from chatbot.store import Store


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
    return networks


def connect_accounts(loaded: LoadedConfig) -> dict[NetworkName, Network]:
    """The configured Mastodon and Bluesky accounts; no network call is made here.

    Secrets are read now, so a missing one stops the start with a clear message.
    """
    loaded.check_secrets()
    accounts = loaded.config.accounts
    networks: dict[NetworkName, Network] = {}
    if accounts.mastodon is not None:
        from chatbot.networks.mastodon import MastodonNetwork

        networks[NetworkName.MASTODON] = MastodonNetwork(
            instance=accounts.mastodon.instance,
            access_token=accounts.mastodon.access_token.resolve(loaded.base_dir),
            max_characters=accounts.mastodon.max_characters,
            indexable_opts_out=accounts.mastodon.indexable_opt_out,
            extra_instances=accounts.mastodon.extra_instances,
            streaming=accounts.mastodon.streaming,
        )
    if accounts.bluesky is not None:
        from chatbot.networks.bluesky import BlueskyNetwork

        networks[NetworkName.BLUESKY] = BlueskyNetwork(
            service=accounts.bluesky.service,
            handle=accounts.bluesky.handle,
            app_password=accounts.bluesky.app_password.resolve(loaded.base_dir),
            session_dir=loaded.data_dir / "sessions",
            web=accounts.bluesky.web,
        )
    return networks
