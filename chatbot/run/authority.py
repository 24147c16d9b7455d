"""Who may command a chat: its moderators, co-moderators and guest, by account identity.

The handles a script names are resolved on each network, when the chat is loaded
and again at most every hour: a Mastodon ``@user@domain`` to the account's id on
the bot's instance, a Bluesky handle to its DID. A command is then checked by the
id of the account that sent it, never by its name, so the same user name on
another server, a lookalike display name or a confusable handle is not a
moderator. A moderator removed from the script loses the right at the next
reload; a guest commands their own chat only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta

import structlog

from chatbot.errors import NetworkError
from chatbot.networks.base import Interacting, Network
from chatbot.run.commands import Authority
from chatbot.script import ChatScript, NetworkName, Person

log = structlog.get_logger("chatbot.run.authority")
Clock = Callable[[], datetime]

RESOLVED_FOR = timedelta(hours=1)  # a handle's id is asked again after this
UNRESOLVED_FOR = timedelta(minutes=2)  # a failed look-up is tried again after this


def handle_on(person: Person, network: NetworkName) -> str | None:
    """How a script names a person on a network (None: not on that network)."""
    if network is NetworkName.MASTODON:
        return person.mastodon
    if network is NetworkName.BLUESKY:
        return person.bluesky
    if network is NetworkName.LOCAL:
        return person.local or person.name
    return None


class Identities:
    """Resolves the hosts a script names into account ids, with a cache."""

    def __init__(self, networks: Mapping[NetworkName, Network], clock: Clock) -> None:
        self._networks = networks
        self._clock = clock
        self._cache: dict[tuple[NetworkName, str], tuple[str | None, datetime]] = {}

    def authority(self, script: ChatScript) -> Authority:
        hosts = [
            *script.moderators,
            *script.co_moderators,
            *([script.guest] if script.guest else []),
        ]
        ids: dict[NetworkName, frozenset[str]] = {}
        for network in self._networks:
            found = {
                self.resolve(network, handle) for p in hosts if (handle := handle_on(p, network))
            }
            ids[network] = frozenset(i for i in found if i)
        return Authority(ids)

    def resolve(self, network: NetworkName, handle: str) -> str | None:
        """The account id of ``handle`` on ``network`` (cached), or None if it has none."""
        now = self._clock()
        cached = self._cache.get((network, handle))
        if cached is not None and now < cached[1]:
            return cached[0]
        client = self._networks.get(network)
        found: str | None = None
        if isinstance(client, Interacting):
            try:
                found = client.resolve(handle)
            except NetworkError as exc:
                log.warning(
                    "handle not resolved", network=network.value, handle=handle, error=str(exc)
                )
        self._cache[(network, handle)] = (found, now + (RESOLVED_FOR if found else UNRESOLVED_FOR))
        return found
