"""The seam between the runner and a network: one Protocol, plain data in and out."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Protocol, runtime_checkable

from chatbot.script import NetworkName
from chatbot.text import Facet, Limits


class Visibility(StrEnum):
    """Who sees a post in timelines (Mastodon's terms; Bluesky posts are always public)."""

    PUBLIC = "public"
    UNLISTED = "unlisted"


@dataclass(frozen=True)
class PostRef:
    """A post that exists on a network."""

    network: NetworkName
    id: str  # Mastodon status id, Bluesky at:// URI, local post id
    url: str = ""
    cid: str = ""  # Bluesky content hash, needed for strong refs in replies


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
