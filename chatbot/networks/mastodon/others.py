"""Other instances' public hashtag timelines: the posts of a chat the bot's instance never saw.

A server only knows the posts that reach it (mostly from accounts its users
follow), so one instance's hashtag feed is incomplete. Reading the public
``#tag`` timeline of other instances, without a token, widens what the bot sees.
Their ids mean nothing on our instance: such a post gets its uri as id, its
author our instance's id for the account (resolved once), and a ``reply_to``
only when the parent is among the posts known by uri. Their software is not
known either, so they are read by time, which works on any server: the
``tag@<host>`` cursor is the newest creation time read there.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from functools import partial
from typing import Any

import requests
import structlog

from chatbot.networks.base import ChatThread
from chatbot.networks.mastodon import paging
from chatbot.networks.mastodon.calls import REQUEST_TIMEOUT, Client
from chatbot.networks.mastodon.paging import PAGE_SIZE
from chatbot.networks.mastodon.reading import full_handle, readable, seen_status
from chatbot.networks.reading import as_utc
from chatbot.posts import Author, SeenPost

log = structlog.get_logger("chatbot.networks.mastodon")


class OtherInstances:
    """The public ``#tag`` timelines of other instances, read after our instance's round."""

    def __init__(
        self,
        urls: Sequence[str],
        *,
        ours: Client,
        domain: Callable[[], str],
        clock: Callable[[], datetime],
        timeout: float = REQUEST_TIMEOUT,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        indexable_opts_out: bool = False,
    ) -> None:
        """No network call happens here. ``ours``: the bot's instance, to look accounts up."""
        # Public timelines: no token, and a pacer per instance (its limit is per IP).
        self._clients = [
            Client(
                url,
                access_token=None,
                clock=clock,
                timeout=timeout,
                session=session,
                sleep=sleep,
                paging=False,
            )
            for url in urls
        ]
        self._ours = ours
        self._domain = domain
        self._indexable_opts_out = indexable_opts_out
        self._accounts: dict[str, str] = {}  # user@domain -> account id on our instance

    def __bool__(self) -> bool:
        return bool(self._clients)

    def read(
        self,
        thread: ChatThread,
        cursors: Mapping[str, str],
        ours: Sequence[SeenPost],
        me: str,
    ) -> tuple[list[SeenPost], dict[str, str]]:
        """Posts under the hashtag on other instances that ours does not hold (by uri), and the
        ``tag@<host>`` cursors."""
        tag = thread.hashtag.removeprefix("#")
        local_by_uri = {p.uri: p.id for p in ours}
        posts: dict[str, SeenPost] = {}
        new_cursors: dict[str, str] = {}
        for client in self._clients:
            key = f"tag@{client.host}"
            api = client.api
            found = paging.read_back(
                client,
                f"reading #{tag} on {client.host}",
                partial(api.timeline_hashtag, tag, limit=PAGE_SIZE),
                paging.resume_from(cursors.get(key), thread.since),
            )
            cursor = paging.newest(found, cursors.get(key))
            if cursor is not None:
                new_cursors[key] = cursor
            uri_by_remote_id = {str(s["id"]): str(s["uri"]) for s in found}
            for status in found:
                uri = str(status.get("uri") or "")
                created = as_utc(status.get("created_at"))
                if (
                    not uri
                    or uri in local_by_uri
                    or uri in posts
                    or not readable(status)
                    or created is None
                    or created < thread.since
                ):
                    continue
                seen = self._seen(status, client.host)
                if seen is None:
                    continue
                author_id = self._account_id(seen.author.handle)
                if author_id == me:
                    continue
                parent_uri = uri_by_remote_id.get(seen.reply_to or "")
                quoted = status.get("quote") or {}
                quoted_uri = str((quoted.get("quoted_status") or {}).get("uri") or "")
                posts[uri] = SeenPost(
                    **{
                        **seen.__dict__,
                        "id": uri,
                        "author": Author(**{**seen.author.__dict__, "id": author_id}),
                        "reply_to": (
                            local_by_uri.get(parent_uri, parent_uri) if parent_uri else None
                        ),
                        "quote_of": local_by_uri.get(quoted_uri) if quoted_uri else None,
                    }
                )
        return list(posts.values()), new_cursors

    def close(self) -> None:
        for client in self._clients:
            client.close()

    def _seen(self, status: Any, host: str) -> SeenPost | None:
        try:
            return seen_status(status, domain=host, indexable_opts_out=self._indexable_opts_out)
        except (KeyError, TypeError, ValueError) as exc:
            log.warning("mastodon remote status unreadable", uri=status.get("uri"), error=str(exc))
            return None

    def _account_id(self, handle: str) -> str:
        """Our instance's id for a remote account (one search, remembered); else the handle."""
        if handle not in self._accounts:
            found = self._ours(
                f"looking up @{handle}",
                partial(self._ours.api.account_search, handle, limit=1, resolve=True),
                posting=False,
            )
            domain = self._domain()
            match = [
                a
                for a in found
                if full_handle(str(a.get("acct") or ""), domain).lower() == handle.lower()
            ]
            self._accounts[handle] = str(match[0]["id"]) if match else f"acct:{handle}"
        return self._accounts[handle]
