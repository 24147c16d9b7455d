"""The networks the bot posts to, behind one Protocol (:mod:`chatbot.networks.base`).

One module per network; this package is the only place that talks to the
Mastodon.py and atproto clients. :func:`chatbot.networks.connect.connect` builds
the clients a config asks for.
"""
