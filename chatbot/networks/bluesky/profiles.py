"""Who opted out of bots on Bluesky: ``#nobot`` (``#nobots``, ``#noindex``) in a profile's
description, as on Mastodon.

A post view names its author with a basic profile, without the description, so
the descriptions of a round's new authors are read with
``app.bsky.actor.getProfiles`` (25 actors a call) and kept for a while: a person
who adds ``#nobot`` during a chat is left alone from the next read on.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from chatbot.networks.base import Collected
from chatbot.networks.bluesky.session import Client
from chatbot.networks.reading import opt_out_in
from chatbot.posts import SeenPost

# getProfiles: at most 25 actors a call.
BATCH = 25
# A description read is trusted this long.
KEEP_FOR = timedelta(minutes=10)


class Profiles:
    """The opt-outs in the profiles of the people a chat reads, read once in a while."""

    def __init__(self, client: Client, *, clock: Callable[[], datetime]) -> None:
        self._client = client
        self._clock = clock
        self._known: dict[str, tuple[str, datetime]] = {}  # did -> (opt-out, read at)

    def mark(self, collected: Collected) -> Collected:
        """``collected`` with each author's opt-out, from their profile's description."""
        posts = [*collected.posts, *collected.to_bot]
        if not posts:
            return collected
        self._read({p.author.id for p in posts})
        return dataclasses.replace(
            collected,
            posts=tuple(self._marked(p) for p in collected.posts),
            to_bot=tuple(self._marked(p) for p in collected.to_bot),
        )

    def _marked(self, post: SeenPost) -> SeenPost:
        reason = self._known.get(post.author.id, ("", self._clock()))[0]
        if not reason or post.author.opt_out:
            return post
        return dataclasses.replace(post, author=dataclasses.replace(post.author, opt_out=reason))

    def _read(self, dids: set[str]) -> None:
        now = self._clock()
        wanted = sorted(
            d for d in dids if d not in self._known or now - self._known[d][1] > KEEP_FOR
        )
        get_profiles = self._client.sdk.app.bsky.actor.get_profiles
        for start in range(0, len(wanted), BATCH):
            batch = wanted[start : start + BATCH]
            answer = self._client(
                "reading profiles", partial(get_profiles, {"actors": batch}), posting=False
            )
            for did in batch:
                self._known[did] = ("", now)  # an actor the AppView does not return: no opt-out
            for profile in answer.profiles:
                self._known[str(profile.did)] = (opt_out_in(_description(profile)), now)


def _description(profile: Any) -> str:
    return str(getattr(profile, "description", None) or "")
