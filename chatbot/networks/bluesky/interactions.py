"""The bot's interactions with people on Bluesky: likes, and who an account is.

- :meth:`Interactions.like`: an ``app.bsky.feed.like`` record, created once. Its
  record key is derived from the post liked (the lexicon's key is a TID: the
  post's own TID time with a clock id from a hash of its uri), and it is written
  with ``putRecord`` and ``swapRecord: null``, which only creates: a repeat
  answers ``InvalidSwap`` and the like already there is kept (the same way posts
  are made once, :mod:`chatbot.networks.bluesky.records`).
- :meth:`Interactions.resolve`: ``com.atproto.identity.resolveHandle``, handle ->
  DID; a DID resolves to itself. An unknown handle answers 400 ``HandleNotFound``
  (the dev-env PDS) or ``InvalidRequest``: None, never a near match.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import datetime
from typing import Any

import structlog

from chatbot import errors
from chatbot.networks.bluesky.keys import TID_ALPHABET, TID_LENGTH, tid_from, tid_parts
from chatbot.networks.bluesky.records import field_of, split_uri
from chatbot.networks.bluesky.session import Client
from chatbot.networks.calls import Expected, Failure
from chatbot.posts import PostRef
from chatbot.script import NetworkName

log = structlog.get_logger("chatbot.networks.bluesky")

LIKE_COLLECTION = "app.bsky.feed.like"
# Record keys tried for one like: the next ones only if another like holds the first.
KEY_CANDIDATES = 4
# resolveHandle's answers for a handle that names no account.
UNKNOWN_HANDLE = frozenset({"HandleNotFound", "InvalidRequest"})


def like_key(subject_uri: str, candidate: int = 0) -> str:
    """The record key of the bot's like of ``subject_uri``: the same at every attempt.

    A post's record key is normally a TID (its creation time); the like takes that
    time, or one from a hash of the uri for any other key, and a clock id from the
    uri's hash, so likes of posts made in the same microsecond still differ.
    """
    digest = hashlib.sha256(subject_uri.encode()).digest()
    rkey = subject_uri.rsplit("/", 1)[-1]
    # Any other key: 48 bits of the hash, a time within the TID range.
    micros = tid_parts(rkey)[0] if _is_tid(rkey) else int.from_bytes(digest[2:8], "big")
    clock_id = int.from_bytes(digest[:2], "big") & 0x3FF
    return tid_from(micros + candidate, clock_id)


def _is_tid(rkey: str) -> bool:
    """Whether a record key is a TID (13 base32-sortable characters, the top bit 0)."""
    return (
        len(rkey) == TID_LENGTH
        and all(c in TID_ALPHABET for c in rkey)
        and rkey[0] in TID_ALPHABET[:16]
    )


def unknown_handle(failure: Failure) -> bool:
    return failure.status == 400 and failure.error in UNKNOWN_HANDLE


class Interactions:
    """Likes and handle look-ups for the bot's Bluesky account."""

    def __init__(self, client: Client, *, clock: Callable[[], datetime]) -> None:
        self._client = client
        self._clock = clock

    def like(self, post: PostRef) -> PostRef:
        """Like ``post`` once, however often asked; returns the like (its record, whose
        address is the post's page: the post stays a participant's, in the conversation)."""
        subject = {"uri": post.id, "cid": post.cid or self._cid(post.id)}
        record = {
            "$type": LIKE_COLLECTION,
            "subject": subject,
            "createdAt": self._clock().isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        }
        for candidate in range(KEY_CANDIDATES):
            rkey = like_key(post.id, candidate)
            held = None
            for _try in range(2):  # twice: the record may vanish between the two calls
                if self._create(rkey, record):
                    return self._ref(rkey, post)
                held = self._liked_at(rkey)
                if held is not None:
                    break
            if held is None:
                raise errors.Transient(f"liking a post: the record at {rkey} keeps changing")
            if held == post.id:  # an earlier attempt's like
                log.info("bluesky like already there", rkey=rkey)
                return self._ref(rkey, post)
            # Another post's like holds this key: the next one.
        raise errors.Rejected(
            f"every record key for this like is taken by other likes ({KEY_CANDIDATES} tried)"
        )

    def resolve(self, handle: str) -> str | None:
        """The DID ``handle`` names (a DID names itself); None if it names no account."""
        handle = handle.strip().removeprefix("@")
        if handle.startswith("did:"):
            return handle
        handle = handle.lower()
        sdk = self._client.sdk
        try:
            answer = self._client(
                f"resolving @{handle}",
                lambda: sdk.com.atproto.identity.resolve_handle({"handle": handle}),
                posting=False,
                expect=unknown_handle,
            )
        except Expected:
            return None
        return str(answer.did)

    def _ref(self, rkey: str, liked: PostRef) -> PostRef:
        uri = f"at://{self._client.did()}/{LIKE_COLLECTION}/{rkey}"
        return PostRef(NetworkName.BLUESKY, uri, liked.url)

    def _create(self, rkey: str, record: dict[str, Any]) -> bool:
        """Create the like at ``rkey``; False if a record is already there."""
        return (
            self._client.create_record("liking a post", LIKE_COLLECTION, rkey, record) is not None
        )

    def _liked_at(self, rkey: str) -> str | None:
        """The uri of the post the like at ``rkey`` is of; None if there is none."""
        found = self._client.own_record("reading a like", LIKE_COLLECTION, rkey)
        if found is None:
            return None
        uri = field_of(field_of(found.value, "subject"), "uri")
        return str(uri) if uri else None

    def _cid(self, uri: str) -> str:
        """The content hash of the post at ``uri`` (a strong ref needs it)."""
        repo, collection, rkey = split_uri(uri)
        sdk = self._client.sdk
        found = self._client(
            "reading the post to like",
            lambda: sdk.com.atproto.repo.get_record(
                {"repo": repo, "collection": collection, "rkey": rkey}
            ),
        )
        return str(found.cid or "")
