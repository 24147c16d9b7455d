"""Where a chat's statuses come from on the bot's server, for the shared collection round
(:mod:`chatbot.networks.reading`).

One server only knows the posts that reach it, so a round reads three sources:
the hashtag timeline, the mention notifications, and the context of the chat's
own posts (replies that forgot the hashtag); other instances' public timelines
widen that (:mod:`chatbot.networks.mastodon.others`).

How they are read depends on what the server is (:mod:`chatbot.networks.mastodon.server`):

- on Mastodon, by id (:func:`~chatbot.networks.mastodon.paging.forward`): the
  ``tag`` and ``mentions`` cursors are the newest ids read; one context (the
  chat's first post) lists every reply at any depth;
- on any other server, by time (:func:`~chatbot.networks.mastodon.paging.read_back`):
  the ``tag_time`` and ``mentions_time`` cursors are the newest creation times
  read; every bot post's context is read (snac lists only direct replies); the
  notifications are filtered here (snac ignores ``types[]``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from functools import partial
from typing import Any

import structlog

from chatbot.errors import NetworkError
from chatbot.networks.base import ChatThread
from chatbot.networks.calls import Expected
from chatbot.networks.mastodon import paging
from chatbot.networks.mastodon.calls import Client, gone
from chatbot.networks.mastodon.interactions import is_favourite
from chatbot.networks.mastodon.paging import PAGE_SIZE, created
from chatbot.networks.mastodon.reading import readable, seen_status
from chatbot.networks.mastodon.server import Server
from chatbot.networks.reading import Found, Replies, id_order
from chatbot.posts import PostRef, SeenPost

log = structlog.get_logger("chatbot.networks.mastodon")

# A context answers at most 4,096 descendants to a user token; a bot post found
# in a smaller answer had all its replies in it and need not be read again.
CONTEXT_DESCENDANTS = 4096
# The mention notifications of a chat (Mastodon 4.5 adds "quote" for quotes of
# the bot's posts; older servers ignore the type, snac ignores types[] altogether).
NOTIFICATION_TYPES = ("mention", "quote")
# A notification of a status addressed to the bot: a mention, of any visibility (a
# direct status is one; snac files a reply to the bot's post as one too).
ADDRESSED = "mention"
# When the chat's first post cannot be read, the chat starts this long before the
# time the bot recorded for it (the server's clock and ours may differ a little).
START_MARGIN = timedelta(minutes=1)


class MastodonSources:
    """Where a chat's statuses come from on the bot's server, for the shared round."""

    tagged_key = "tagged"

    def __init__(
        self,
        client: Client,
        *,
        server: Server,
        account: Callable[[], Any],
        domain: Callable[[], str],
        indexable_opts_out: bool = False,
    ) -> None:
        """``account``: the bot's (verify_credentials); ``domain``: the one in local handles."""
        self._client = client
        self._server = server
        self._account = account
        self._domain = domain
        self._indexable_opts_out = indexable_opts_out
        self._starts: dict[str, datetime] = {}  # first post's id -> its time on the server

    def me(self) -> str:
        return str(self._account()["id"])

    def key(self, item: Any) -> tuple[str, str]:
        return str(item["id"]), str(item["uri"])

    def author(self, item: Any) -> str:
        return str(item["account"]["id"])

    def readable(self, item: Any) -> bool:
        return readable(item)

    def reply_count(self, item: Any) -> int:
        return int(item.get("replies_count") or 0)

    def hashtag(self, thread: ChatThread, cursors: Mapping[str, str], *, sweep: bool) -> Found[Any]:
        """The hashtag's posts since the cursor; a sweep starts again from the chat's first
        post, which shows edits, deletions and posts that arrived late."""
        tag = thread.hashtag.removeprefix("#")
        api = self._client.api
        what = f"reading #{tag}"
        if not self._server.traits().numeric_ids:
            start = self.start(thread)
            floor = start if sweep else paging.resume_from(cursors.get("tag_time"), start)
            fetch = partial(api.timeline_hashtag, tag, limit=PAGE_SIZE)
            items = paging.read_back(self._client, what, fetch, floor)
            items = [i for i in items if (t := created(i)) is not None and t >= floor]
            newest = paging.newest(items, cursors.get("tag_time"))
            return Found(items, {"tag_time": newest} if newest else {})
        floor_id = min((ref.id for ref in thread.bot_posts), key=id_order)
        cursor = cursors.get("tag") or floor_id
        tagged, newest_id = paging.forward(
            self._client,
            what,
            lambda min_id: api.timeline_hashtag(tag, min_id=min_id, limit=PAGE_SIZE),
            floor_id if sweep else cursor,
        )
        return Found(tagged, {"tag": max(newest_id, cursor, key=id_order)})

    def notified(self, thread: ChatThread, cursors: Mapping[str, str]) -> Found[Any]:
        """Mentions (and, on Mastodon 4.5+, quotes) of the bot during the chat; the mentions,
        direct ones included, oldest first, as the posts addressed to the bot."""
        api = self._client.api
        fetch = partial(api.notifications, types=list(NOTIFICATION_TYPES), limit=PAGE_SIZE)
        what = "reading mentions"
        if self._server.traits().numeric_ids:
            start = thread.since
            notes, newest = paging.timeline(
                self._client, what, fetch, cursors.get("mentions"), start
            )
            moved = {"mentions": newest} if newest is not None else {}
        else:
            start = self.start(thread)
            floor = paging.resume_from(cursors.get("mentions_time"), start)
            notes = paging.read_back(self._client, what, fetch, floor)
            notes = [n for n in notes if (t := created(n)) is not None and t >= floor]
            newest = paging.newest(notes, cursors.get("mentions_time"))
            moved = {"mentions_time": newest} if newest is not None else {}
        if self._server.traits().numeric_ids:
            notes = sorted(notes, key=lambda n: id_order(str(n["id"])))
        else:
            notes = list(reversed(notes))  # read newest first, in the server's own order
        statuses, addressed = [], []
        for note in notes:
            status = note.get("status")
            when = created(status) if status else None
            if note.get("type") in NOTIFICATION_TYPES and when is not None and when >= start:
                statuses.append(status)
                if note.get("type") == ADDRESSED:
                    addressed.append(status)
        return Found(statuses, moved, addressed)

    def replies(self, ref: PostRef) -> Replies[Any] | None:
        """The context of a bot post: its descendants, with or without the hashtag."""
        if is_favourite(ref):
            return Replies()  # a like, not a post: nothing replies to it
        try:
            context = self._client(
                "reading the replies to the chat",
                partial(self._client.api.status_context, ref.id),
                posting=False,
                expect=gone,
            )
        except Expected:
            return None  # the bot's post itself is gone
        descendants = list(context.get("descendants") or [])
        # Only a context that lists every depth, and all of it, covers the posts in it.
        complete = self._server.traits().deep_context and len(descendants) < CONTEXT_DESCENDANTS
        covered = frozenset(str(d["id"]) for d in descendants) if complete else frozenset()
        return Replies(descendants, covered)

    def still_there(self, ids: Sequence[str]) -> list[Any]:
        """The statuses among ``ids`` that a 404 does not say are deleted."""
        found = []
        for sid in ids:
            try:
                found.append(
                    self._client(
                        "checking a post that left the chat",
                        partial(self._client.api.status, sid),
                        posting=False,
                        expect=gone,
                    )
                )
            except Expected:
                continue
        return found

    def streamed(self, statuses: Sequence[Any]) -> list[SeenPost]:
        """The statuses a stream carried, as the chat's posts: the readable ones of others."""
        if not statuses:
            return []
        try:
            me = self.me()
        except NetworkError:
            return []  # the round the stream asks for reads them
        return [
            post
            for status in statuses
            if self.readable(status)
            and self.author(status) != me
            and (post := self.seen(status)) is not None
        ]

    def seen(self, item: Any) -> SeenPost | None:
        try:
            return seen_status(
                item, domain=self._domain(), indexable_opts_out=self._indexable_opts_out
            )
        except (KeyError, TypeError, ValueError) as exc:
            log.warning("mastodon status unreadable", id=item.get("id"), error=str(exc))
            return None

    def start(self, thread: ChatThread) -> datetime:
        """When the chat began by the server's clock: its first post's creation time."""
        first = thread.bot_posts[0].id
        if first not in self._starts:
            try:
                status = self._client(
                    "reading the chat's first post",
                    partial(self._client.api.status, first),
                    posting=False,
                    expect=gone,
                )
            except Expected:
                status = None
            when = created(status) if status is not None else None
            self._starts[first] = when if when is not None else thread.since - START_MARGIN
        return self._starts[first]
