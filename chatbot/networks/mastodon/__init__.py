"""Mastodon through Mastodon.py: one thread per chat, idempotent posts, images with alt text,
and the chat's conversation read back (hashtag, threads, mentions).

- :mod:`~chatbot.networks.mastodon.calls`: the client, built without a network
  call, and every request through it: paced (posting ahead of reading), its
  Mastodon.py errors read for the shared classification;
- :mod:`~chatbot.networks.mastodon.statuses`: posting exactly once
  (idempotency keys, a look among the bot's statuses before a late retry);
- :mod:`~chatbot.networks.mastodon.reading`: statuses as the conversation sees
  them (opt-outs included), and the hashtag, context and mention sources of the
  shared collection round;
- :mod:`~chatbot.networks.mastodon.others`: other instances' public timelines;
- :mod:`~chatbot.networks.mastodon.network`: :class:`MastodonNetwork`, all of it
  behind the Network and Reader Protocols.

This package is the only place that imports Mastodon.py.
"""

from chatbot.networks.mastodon.network import MastodonNetwork

__all__ = ["MastodonNetwork"]
