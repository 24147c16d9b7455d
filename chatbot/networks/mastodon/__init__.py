"""Mastodon-API servers through Mastodon.py (Mastodon, its forks, GoToSocial, Akkoma/Pleroma,
snac): one thread per chat, posts made once, images with alt text, and the chat's
conversation read back (hashtag, threads, mentions).

- :mod:`~chatbot.networks.mastodon.calls`: the client, built without a network
  call, and every request through it: paced (posting ahead of reading), its
  Mastodon.py errors read for the shared classification;
- :mod:`~chatbot.networks.mastodon.connections`: HTTP connections that survive a
  server closing them after each answer (snac);
- :mod:`~chatbot.networks.mastodon.server`: which software the server runs, its
  instance (v2, else v1), domain and limit, and what follows from the software;
- :mod:`~chatbot.networks.mastodon.statuses`: posting exactly once (the
  idempotency key as a hint, a look among the bot's statuses before an
  uncertain retry);
- :mod:`~chatbot.networks.mastodon.reading`: statuses as the conversation sees
  them (opt-outs included);
- :mod:`~chatbot.networks.mastodon.paging` and
  :mod:`~chatbot.networks.mastodon.sources`: the hashtag, context and mention
  sources of the shared collection round, by id on Mastodon, by time elsewhere;
- :mod:`~chatbot.networks.mastodon.others`: other instances' public timelines;
- :mod:`~chatbot.networks.mastodon.interactions`: likes (favourites) and who a
  handle names, exactly (a co-moderator's account id);
- :mod:`~chatbot.networks.mastodon.network`: :class:`MastodonNetwork`, all of it
  behind the Network, Reader and Interacting Protocols.

This package is the only place that imports Mastodon.py.
"""

from chatbot.networks.mastodon.network import MastodonNetwork

__all__ = ["MastodonNetwork"]
