"""The bot's Bluesky account behind the Network and Reader Protocols, put together."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import httpx
from pydantic import SecretStr

from chatbot import errors
from chatbot.networks.base import (
    Account,
    ChatThread,
    Collected,
    PostRequest,
    ServerFacts,
    ThreadCheck,
)
from chatbot.networks.bluesky.calls import REQUEST_TIMEOUT, SdkRequest
from chatbot.networks.bluesky.interactions import Interactions
from chatbot.networks.bluesky.messages import DirectMessages, is_message
from chatbot.networks.bluesky.profiles import Profiles
from chatbot.networks.bluesky.reading import (
    BSKY_WEB,
    NOTIFICATION_REASONS,
    BlueskySources,
    post_url,
)
from chatbot.networks.bluesky.records import Records
from chatbot.networks.bluesky.session import Client
from chatbot.networks.reading import SWEEP_ROUNDS, CollectionRound
from chatbot.posts import PostRef
from chatbot.script import NetworkName
from chatbot.text import Limits

PROFILE_COLLECTION = "app.bsky.actor.profile"


class BlueskyNetwork:
    """The bot's Bluesky account, behind the :class:`~chatbot.networks.base.Network` Protocol."""

    name = NetworkName.BLUESKY

    def __init__(
        self,
        *,
        service: str,
        handle: str,
        app_password: SecretStr,
        session_dir: Path,
        timeout: float = REQUEST_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], datetime] | None = None,
        sweep_every: int = SWEEP_ROUNDS,
        web: str = BSKY_WEB,
    ) -> None:
        """No network call happens here: the session is resumed (or created) on first use."""
        self.service = service
        self.handle = handle.removeprefix("@").lower()
        clock = clock or (lambda: datetime.now(UTC))
        request = (
            SdkRequest(timeout=timeout, transport=transport)
            if transport is not None
            else SdkRequest(timeout=timeout)
        )
        self._client = Client(
            service,
            request,
            handle=self.handle,
            app_password=app_password,
            session_dir=session_dir,
            clock=clock,
        )
        self._web = web
        self._records = Records(self._client, clock=clock, web=web)
        self._sources = BlueskySources(self._client, web=web)
        self._round = CollectionRound(self._sources, sweep_every=sweep_every)
        self._interactions = Interactions(self._client, clock=clock)
        self._messages = DirectMessages(self._client, clock=clock, web=web)
        self._profiles = Profiles(self._client, clock=clock)

    @property
    def session_file(self) -> Path:
        """Where the session is kept between runs (mode 0600)."""
        return self._client.session_file

    @property
    def logins(self) -> int:
        """Sessions created (password logins) by this process."""
        return self._client.logins

    # --- the Protocol ---------------------------------------------------------------------

    def limits(self) -> Limits:
        """Bluesky's limits are the same everywhere (300 graphemes): nothing to ask."""
        return Limits()

    def post(self, request: PostRequest) -> PostRef:
        """A post made once; an answer to a direct message is a message in its conversation."""
        if request.parent is not None and is_message(request.parent.id):
            return self._messages.send(request)
        return self._records.post(request)

    def find(self, request: PostRequest) -> PostRef | None:
        if request.parent is not None and is_message(request.parent.id):
            return self._messages.find(request)
        return self._records.find(request)

    def close(self) -> None:
        self._client.close()

    # --- reading: the Reader Protocol -----------------------------------------------------

    def collect(self, thread: ChatThread, cursors: dict[str, str]) -> Collected:
        """The chat's posts new or changed since ``cursors``; errors raise before any cursor moves.

        Cursors: ``search`` and ``notifications`` (the newest indexedAt read
        there, ISO 8601), ``threads`` and ``searched`` (the uris seen in the
        chat's threads and under its hashtag, to notice deletions), ``to_bot``
        (the mentions handed over last round), ``dms`` (the newest message read in
        each direct conversation, where the service offers direct messages).
        ``to_bot`` holds the mentions, the replies that name the bot, and the
        direct messages (which never reach ``posts``), oldest first; every author
        carries the opt-out of their profile's description.
        """
        collected = self._round(thread, cursors)
        if thread.bot_posts:
            messages, moved = self._messages.read(thread, cursors)
            collected = dataclasses.replace(
                collected,
                cursors={**collected.cursors, **moved},
                to_bot=collected.to_bot + tuple(messages),
            )
        return self._profiles.mark(collected)

    # --- likes and identities: the Interacting Protocol -----------------------------------

    def like(self, post: PostRef) -> PostRef:
        """Like ``post`` once (see :mod:`~chatbot.networks.bluesky.interactions`)."""
        return self._interactions.like(post)

    def resolve(self, handle: str) -> str | None:
        """The DID of ``handle`` (a DID is its own); None if it names no account."""
        return self._interactions.resolve(handle)

    # --- for `chatbot check` --------------------------------------------------------------

    def account(self) -> Account:
        """The bot's DID, handle and whether its profile carries the ``bot`` self-label."""
        did = self._client.did()
        sdk = self._client.sdk
        labels: list[str] = []
        try:
            profile = self._client(
                "reading the profile",
                lambda: sdk.com.atproto.repo.get_record(
                    {"repo": did, "collection": PROFILE_COLLECTION, "rkey": "self"}
                ),
            )
        except errors.Rejected:
            profile = None  # no profile record yet
        if profile is not None:
            self_labels = getattr(profile.value, "labels", None)
            labels = [str(getattr(v, "val", "")) for v in getattr(self_labels, "values", []) or []]
        return Account(
            network=self.name,
            id=did,
            handle=self._client.signed_in_handle(),
            is_bot="bot" in labels,
            details={"service": self.service, "labels": ", ".join(labels)},
        )

    def hashtag_feed(self, tag: str, limit: int = 10) -> int:
        """How many recent posts a search for ``#tag`` returns (raises if it cannot be read)."""
        search = self._client.sdk.app.bsky.feed.search_posts
        result = self._client(
            f"searching #{tag}",
            lambda: search({"q": f"#{tag.removeprefix('#')}", "limit": limit}),
        )
        return len(result.posts)

    def server(self) -> ServerFacts:
        """Bluesky's facts are the same on every server: nothing to ask."""
        return ServerFacts()

    def notifications_feed(self, limit: int = 10) -> int:
        """How many recent reply, mention and quote notifications there are (raises if not)."""
        listing = self._client.sdk.app.bsky.notification.list_notifications
        answer = self._client("reading notifications", lambda: listing({"limit": limit}))
        return sum(1 for note in answer.notifications if note.reason in NOTIFICATION_REASONS)

    def thread_replies(self) -> ThreadCheck | None:
        """The replies in the thread of the bot's newest post; None if it has posted nothing."""
        did = self._client.did()
        feed = self._client.sdk.app.bsky.feed.get_author_feed
        answer = self._client("reading the bot's posts", lambda: feed({"actor": did, "limit": 10}))
        # Reposts show in the author's feed too: the bot's own posts only.
        own = [item.post for item in answer.feed if item.post.author.did == did]
        if not own:
            return None
        post = own[0]
        url = post_url(post.author.handle, post.uri, self._web)
        replies = self._sources.replies(PostRef(self.name, post.uri, url))
        if replies is None:
            raise errors.Rejected(f"reading the replies to {url}: the post is gone")
        return ThreadCheck(url, max(0, len(replies.items) - 1))  # the post itself is the first
