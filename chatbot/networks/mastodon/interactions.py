"""The bot's interactions with people on a Mastodon-API server: likes, and who an account is.

- :meth:`Interactions.like`: ``POST /api/v1/statuses/:id/favourite``, which is
  idempotent on Mastodon (a status favourited before stays favourited once). snac
  favourites only statuses in the bot's own timeline (``timeline_get_by_md5`` in
  mastoapi.c): a reply to its posts or a mention, not a hashtag post of someone it
  does not follow; the 404 it answers otherwise is a refusal.
- :meth:`Interactions.resolve`: the account id of ``@user@domain`` on the bot's
  instance: ``GET /api/v1/accounts/lookup`` (no WebFinger: an account the
  instance knows), else ``GET /api/v1/accounts/search`` with ``resolve=true``
  (WebFinger: an account it has not seen yet). Only an account whose full handle is exactly
  the one asked for is taken, never the search's nearest match: a co-moderator's
  rights follow the account, and a lookalike must not get them.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import structlog

from chatbot.networks.calls import Expected, Failure
from chatbot.networks.mastodon.calls import Client
from chatbot.networks.mastodon.reading import full_handle
from chatbot.networks.mastodon.statuses import status_ref
from chatbot.posts import PostRef
from chatbot.script import NetworkName

log = structlog.get_logger("chatbot.networks.mastodon")

# Accounts a search may answer for one handle; the exact one is among the first few.
SEARCH_LIMIT = 5
FAVOURITE = "favourite:"


def favourite_ref(liked: PostRef) -> PostRef:
    """The bot's favourite of ``liked``: a favourite has no id of its own, and the runner
    keeps what it made among the bot's posts, so it is named apart from the status (which
    stays a participant's post, in the conversation); its address is the status's."""
    return PostRef(NetworkName.MASTODON, f"{FAVOURITE}{liked.id}", liked.url)


def is_favourite(ref: PostRef) -> bool:
    return ref.id.startswith(FAVOURITE)


def not_found(failure: Failure) -> bool:
    """The server knows no such account (lookup), or does not serve the endpoint."""
    return failure.status in (404, 410, 501)


def split_handle(handle: str) -> tuple[str, str]:
    """``@user@domain`` (or ``user@domain``, ``user``) -> (user, domain); domain "" if none."""
    user, _, domain = handle.strip().removeprefix("@").partition("@")
    return user, domain


class Interactions:
    """Likes and account look-ups for the bot's account on one server."""

    def __init__(self, client: Client, *, domain: Callable[[], str]) -> None:
        """``domain``: the one in local accounts' handles (the instance's, read once)."""
        self._client = client
        self._domain = domain

    def like(self, post: PostRef) -> PostRef:
        """Favourite ``post`` (once, however often asked); the favourite, as
        :func:`favourite_ref` names it."""
        status = self._client(
            "liking a post", partial(self._client.api.status_favourite, post.id), posting=True
        )
        return favourite_ref(status_ref(status) if status else post)

    def resolve(self, handle: str) -> str | None:
        """The id on this instance of the account ``handle`` names exactly, or None."""
        user, domain = split_handle(handle)
        if not user:
            return None
        local = self._domain()
        domain = domain or local
        wanted = f"{user}@{domain}".casefold()
        # A local account is looked up by its bare name: Mastodon keeps no domain for
        # its own accounts, and mastodon-mock finds none with one.
        ask = user if domain.casefold() == local.casefold() else f"{user}@{domain}"
        found = self._lookup(ask)
        if found is not None and self._handle(found) == wanted:
            return str(found["id"])
        for account in self._search(f"{user}@{domain}"):
            if self._handle(account) == wanted:
                return str(account["id"])
        if found is not None:
            log.warning("lookup answered another account", asked=handle, got=found.get("acct"))
        return None

    def _handle(self, account: Any) -> str:
        return full_handle(str(account.get("acct") or ""), self._domain()).casefold()

    def _lookup(self, acct: str) -> Any:
        try:
            return self._client(
                f"looking up @{acct}",
                partial(self._client.api.account_lookup, acct),
                posting=False,
                expect=not_found,
            )
        except Expected:
            return None

    def _search(self, acct: str) -> list[Any]:
        try:
            found = self._client(
                f"searching for @{acct}",
                partial(self._client.api.account_search, acct, limit=SEARCH_LIMIT, resolve=True),
                posting=False,
                expect=not_found,
            )
        except Expected:
            return []
        return list(found or [])
