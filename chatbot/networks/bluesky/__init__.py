"""Bluesky through the atproto SDK: threads, clickable hashtags, images, sessions kept,
and the chat's conversation read back (hashtag search, threads, notifications).

- :mod:`~chatbot.networks.bluesky.keys`: record keys (TIDs) derived from a step,
  so that a post is written at the same key at every attempt;
- :mod:`~chatbot.networks.bluesky.records`: posting exactly once (``putRecord``
  with ``swapRecord: null`` only creates), reply refs, facets, images;
- :mod:`~chatbot.networks.bluesky.session`: the client kept signed in (the
  session stored 0600 and resumed: logins are scarce), every request through it;
- :mod:`~chatbot.networks.bluesky.calls`: what an atproto error says, for the
  shared classification;
- :mod:`~chatbot.networks.bluesky.reading`: post views as the conversation sees
  them (opt-out labels included), and the search, notification and thread
  sources of the shared collection round;
- :mod:`~chatbot.networks.bluesky.messages`: direct messages, where the
  account's service offers them (commands from co-moderators, and the answers);
- :mod:`~chatbot.networks.bluesky.interactions`: likes made once, and handles
  resolved to DIDs;
- :mod:`~chatbot.networks.bluesky.profiles`: ``#nobot`` in a profile's description;
- :mod:`~chatbot.networks.bluesky.network`: :class:`BlueskyNetwork`, all of it
  behind the Network, Reader and Interacting Protocols.

This package is the only place (with :mod:`chatbot.text`, for the length and
facet rules) that imports atproto.
"""

from chatbot.networks.bluesky.network import BlueskyNetwork
from chatbot.networks.bluesky.session import write_private

__all__ = ["BlueskyNetwork", "write_private"]
