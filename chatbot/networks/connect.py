"""Build the network clients a config asks for."""

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
    return networks
