"""The seam between the runner and a network: one Protocol, plain data in and out."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Protocol, runtime_checkable

from chatbot.kinds import Visibility
from chatbot.posts import PostRef, SeenPost
from chatbot.script import NetworkName
from chatbot.text import Facet, Limits


@dataclass(frozen=True)
class Attachment:
    """An image file with its alt text."""

    path: Path
    alt: str


@dataclass(frozen=True)
class PostRequest:
    """Everything a network needs to publish one step of a chat, exactly once."""

    idempotency_key: str
    text: str
    facets: tuple[Facet, ...] = ()
    attachments: tuple[Attachment, ...] = ()
    root: PostRef | None = None  # the chat's first post on this network
    parent: PostRef | None = None  # the post this one replies to
    visibility: Visibility = Visibility.PUBLIC
    tags: tuple[str, ...] = ()  # extra tags a network can carry outside the text
    kind: str = ""  # the step's kind (welcome, question, recap ...), for the local simulation
    number: int | None = None  # the question's number
    created_at: datetime | None = None  # the step's planned time: stable across retries
    first_attempt_at: datetime | None = None  # when an earlier attempt began, if there was one


@dataclass(frozen=True)
class Account:
    """The bot's own account on a network, as `chatbot check` reports it."""

    network: NetworkName
    id: str
    handle: str
    is_bot: bool
    details: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ServerFacts:
    """What ``chatbot check`` reports about the server an account lives on, and where each
    fact was read."""

    software: str = ""  # "snac 2.75"; "" where the network has one software (Bluesky)
    kind: str = ""  # the software's name as nodeinfo gives it ("mastodon", "snac"); "" unknown
    software_source: str = ""  # "its nodeinfo"; "" if the server did not say
    domain: str = ""  # the domain in local accounts' handles
    domain_source: str = ""  # "/api/v1/instance", "the configured address"
    max_characters: int | None = None  # the length limit in force; None: the network's own
    limit_source: str = ""  # "/api/v1/instance", "the config's max_characters"; "": a default
    visibility_changes: tuple[tuple[str, str], ...] = ()  # (asked, given), done by the server


@dataclass(frozen=True)
class ThreadCheck:
    """One of the bot's recent posts, and how many replies its thread showed."""

    url: str
    replies: int


def idempotency_key(chat_id: str, step_key: str, network: NetworkName) -> str:
    """A key derived from the chat, the step and the network: the same post, the same key.

    Mastodon remembers an Idempotency-Key per account for an hour and returns the
    original status on a repeat; the Bluesky adapter derives its record key from it.
    """
    raw = f"chatbot/{chat_id}/{step_key}/{network.value}"
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


@runtime_checkable
class Network(Protocol):
    """What the runner needs from a network. Adapters translate SDK errors into ours."""

    name: NetworkName

    def limits(self) -> Limits:
        """The length limits in force on this account's server."""
        ...

    def post(self, request: PostRequest) -> PostRef:
        """Publish, or return the post already published under ``request.idempotency_key``.

        Must be idempotent for the key: the runner calls it again after a crash
        between recording the intent and recording the result.
        Raises RateLimited, Transient, AuthFailed or Rejected.
        """
        ...

    def find(self, request: PostRequest) -> PostRef | None:
        """The post an earlier attempt of ``request`` published, if any, without posting.

        Used when an attempt's result was never recorded (a crash) and posting
        again is no longer wanted (too late): the runner records what exists.
        """
        ...

    def close(self) -> None:
        """Release connections; the network object is not used afterwards."""
        ...


@runtime_checkable
class CheckableNetwork(Protocol):
    """What ``chatbot check`` asks of a network client, besides posting: every read a chat
    needs, once. Each raises a NetworkError when the read fails."""

    name: NetworkName

    def account(self) -> Account:
        """The bot's own account."""
        ...

    def server(self) -> ServerFacts:
        """What the server is: software, domain, limit, and where each was read."""
        ...

    def limits(self) -> Limits: ...

    def hashtag_feed(self, tag: str, limit: int = 10) -> int:
        """How many recent posts the hashtag shows."""
        ...

    def notifications_feed(self, limit: int = 10) -> int:
        """How many recent notifications of the kinds a chat reads there are."""
        ...

    def thread_replies(self) -> ThreadCheck | None:
        """The replies under the bot's most recent post; None if it has posted nothing."""
        ...


@runtime_checkable
class Interacting(Protocol):
    """A network on which the bot also likes posts and knows who an account is."""

    name: NetworkName

    def like(self, post: PostRef) -> PostRef:
        """Like (favourite) ``post``; idempotent: a post liked before stays liked once."""
        ...

    def resolve(self, handle: str) -> str | None:
        """The stable id of the account ``handle`` names (Mastodon: the account id on the
        bot's instance for ``@user@domain``; Bluesky: the DID), or None if there is none."""
        ...


# --- reading: the posts of a chat ---------------------------------------------------------


@dataclass(frozen=True)
class ChatThread:
    """What a reader needs to know about a chat to collect its conversation."""

    chat_id: str
    hashtag: str
    since: datetime  # the chat's first post
    bot_posts: tuple[PostRef, ...]  # the bot's posts of the chat on this network, in order


@dataclass(frozen=True)
class Collected:
    """One collection round: new or changed posts, deletions, and where to resume."""

    posts: tuple[SeenPost, ...] = ()
    deleted: tuple[str, ...] = ()  # uris of posts that no longer exist
    cursors: dict[str, str] = field(default_factory=dict)
    # Posts addressed to the bot (mentions, and direct messages, which are not among
    # ``posts``): where co-moderators' commands come from.
    to_bot: tuple[SeenPost, ...] = ()


@runtime_checkable
class Reader(Protocol):
    """A network that can return a chat's conversation (hashtag, threads, mentions)."""

    name: NetworkName

    def collect(self, thread: ChatThread, cursors: dict[str, str]) -> Collected:
        """Posts new or changed since ``cursors`` (opaque, per source), and the new cursors.

        Must not skip posts between rounds: a short page is not the end, and a
        rate limit raises RateLimited so the caller resumes from the same cursors.
        """
        ...


# A stream's call: the chat, and the posts it carried (none: only "read the chat soon").
Arrived = Callable[[str, Sequence[SeenPost]], None]


@runtime_checkable
class Listening(Protocol):
    """A network that can say "something arrived for this chat" (a stream) instead of only
    being polled. The posts a stream carries are stored at once, and the collector's round
    reads the chat soon after, from the cursors, so nothing is missed across a gap (a post
    stored twice is the same post: storing is by id)."""

    name: NetworkName

    def listen(self, chat_id: str, hashtag: str, arrived: Arrived) -> None:
        """Watch the chat (idempotent); ``arrived(chat_id, posts)`` is called, from another
        thread, when something came for it (``posts``: what the stream carried under the
        chat's hashtag, readable and not the bot's; often none), and when a stream comes back
        after a gap."""
        ...

    def unlisten(self, chat_id: str) -> None:
        """Stop watching the chat."""
        ...

    def live(self, chat_id: str) -> bool:
        """Whether the chat's streams are up now: polling may slow down while they are."""
        ...

    def woken_gap(self) -> timedelta:
        """The least time between two rounds a stream wakes, so that the rounds it wakes in a
        busy chat stay within the share of the account's request limit left for them."""
        ...
