"""The networks the bot posts to, behind one Protocol (:mod:`chatbot.networks.base`).

One package per network (:mod:`~chatbot.networks.mastodon`,
:mod:`~chatbot.networks.bluesky`), built on what they share: the shape of a call
and the classification of its failures (:mod:`~chatbot.networks.calls`), pacing
(:mod:`~chatbot.networks.pacing`), and the collection round and paging
(:mod:`~chatbot.networks.reading`). Those packages are the only places that talk
to the Mastodon.py and atproto clients. :func:`chatbot.networks.connect.connect`
builds the clients a config asks for.
"""
