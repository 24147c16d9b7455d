"""Bluesky through the atproto SDK: threads, clickable hashtags, images, sessions kept,
and the chat's conversation read back (hashtag search, threads, notifications).

Exactly once: every post gets a record key (a TID) derived from the step's
planned time and its idempotency key, and is written with
``com.atproto.repo.putRecord`` and ``swapRecord: null``, which only creates: a
repeat of the same key answers 400 ``InvalidSwap`` (or, for a byte-identical
record, 200 without a new commit), and the adapter returns the post that is
already there. A crash between the call and recording its result therefore
never posts twice.

Sessions: ``createSession`` is limited to 30 per 5 minutes and 100-300 a day
per account (then a lock-out of about a day), so the session is stored in
``<data_dir>/sessions/bluesky-<handle>.session`` (mode 0600) whenever it is
created or refreshed, and resumed at the next start; the app password is used
only when there is no stored session or the server rejects it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import httpx
import structlog
from atproto_client import Client, models
from atproto_client.client.session import Session, SessionEvent
from atproto_client.exceptions import (
    AtProtocolError,
    InvokeTimeoutError,
    LoginRequiredError,
    ModelError,
    NetworkError,
    RateLimitExceededError,
    RequestErrorBase,
    UnauthorizedError,
)
from atproto_client.models.common import XrpcError
from atproto_client.models.utils import get_model_as_dict
from atproto_client.request import Request
from PIL import Image, UnidentifiedImageError
from pydantic import SecretStr

from chatbot import errors
from chatbot.networks.base import Account, Attachment, ChatThread, Collected, PostRequest
from chatbot.networks.pacing import Pacer, pace
from chatbot.networks.reading import SWEEP_ROUNDS, Rounds, as_utc, remember, remembered
from chatbot.posts import Author, PostRef, SeenPost
from chatbot.script import NetworkName
from chatbot.text import Facet, Limits

log = structlog.get_logger("chatbot.networks.bluesky")
T = TypeVar("T")

POST_COLLECTION = "app.bsky.feed.post"
PROFILE_COLLECTION = "app.bsky.actor.profile"
# Seconds per HTTP request: the runner finishes the call in flight on SIGTERM
# and must be done within 10 s.
REQUEST_TIMEOUT = 7.0
# app.bsky.embed.images: at most 4 images a post.
MAX_IMAGES = 4
# app.bsky.feed.post: at most 8 extra tags outside the text.
MAX_TAGS = 8
# Record keys tried for one request: the first is the TID of the planned time;
# the next ones are only used if another post already holds that key.
KEY_CANDIDATES = 4
# Seconds: see BlueskyNetwork._login_at.
LOGIN_COOLDOWN = 300.0
# Rate limits (docs.bsky.app/docs/advanced-guides/rate-limits): 3,000 requests
# per 5 minutes per IP; record writes 5,000 points an hour, a create costs 3.
REQUEST_LIMIT = (3000, 300.0)
WRITE_POINTS = (5000, 3600.0)
CREATE_POINTS = 3
# Errors that mean the stored session is no longer good: log in again.
_SESSION_ERRORS = frozenset({"ExpiredToken", "InvalidToken", "AuthMissing"})
_AUTH_ERRORS = _SESSION_ERRORS | {
    "AuthenticationRequired",
    "AccountTakedown",
    "AccountDeactivated",
    "AuthFactorTokenRequired",
}

# --- record keys ------------------------------------------------------------------------

# TIDs (atproto.com/specs/tid): 64 bits, top bit 0, then 53 bits of microseconds
# since the Unix epoch and a 10-bit clock id, written as 13 characters of
# base32-sortable, so that keys sort by time.
TID_ALPHABET = "234567abcdefghijklmnopqrstuvwxyz"
TID_LENGTH = 13
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def tid_from(micros: int, clock_id: int) -> str:
    """The TID for a timestamp (microseconds since the epoch) and a clock id (0..1023)."""
    if not 0 <= micros < 1 << 53:
        raise ValueError("a TID timestamp is 0 <= microseconds < 2**53")
    if not 0 <= clock_id < 1 << 10:
        raise ValueError("a TID clock id is 0 <= clock_id < 1024")
    value = (micros << 10) | clock_id
    chars = []
    for _ in range(TID_LENGTH):
        chars.append(TID_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def tid_parts(tid: str) -> tuple[int, int]:
    """(microseconds, clock id) of a TID: the inverse of :func:`tid_from`."""
    value = 0
    for char in tid:
        value = value * 32 + TID_ALPHABET.index(char)
    return value >> 10, value & 0x3FF


def record_key(created_at: datetime, idempotency_key: str, candidate: int = 0) -> str:
    """The deterministic record key of a post: its planned time plus a clock id from its key.

    Two steps planned for the same microsecond still differ by clock id (from a
    hash of the idempotency key); ``candidate`` > 0 moves the time by that many
    microseconds for the rare case of a clash.
    """
    if created_at.tzinfo is None:
        raise ValueError("record_key needs an aware datetime")
    micros = (created_at - _EPOCH) // timedelta(microseconds=1)
    clock_id = int.from_bytes(hashlib.sha256(idempotency_key.encode()).digest()[:2], "big") & 0x3FF
    return tid_from(micros + candidate, clock_id)


# --- facets -------------------------------------------------------------------------------


def to_bluesky_facets(
    facets: Iterable[Facet], resolve_handle: Callable[[str], str | None]
) -> list[models.AppBskyRichtextFacet.Main]:
    """Our facets as atproto facets; a mention whose handle does not resolve is dropped."""
    result: list[models.AppBskyRichtextFacet.Main] = []
    for facet in facets:
        feature: Any
        if facet.kind == "tag":
            feature = models.AppBskyRichtextFacet.Tag(tag=facet.value.removeprefix("#"))
        elif facet.kind == "link":
            feature = models.AppBskyRichtextFacet.Link(uri=facet.value)
        else:
            did = resolve_handle(facet.value.removeprefix("@"))
            if did is None:
                continue
            feature = models.AppBskyRichtextFacet.Mention(did=did)
        result.append(
            models.AppBskyRichtextFacet.Main(
                features=[feature],
                index=models.AppBskyRichtextFacet.ByteSlice(
                    byte_start=facet.byte_start, byte_end=facet.byte_end
                ),
            )
        )
    return sorted(result, key=lambda f: f.index.byte_start)


def same_text(a: str, b: str) -> bool:
    """Whether two post texts are the same, whitespace aside."""
    return " ".join(a.split()) == " ".join(b.split())


# --- errors -------------------------------------------------------------------------------


def xrpc_error(exc: BaseException) -> tuple[int | None, str, str]:
    """(HTTP status, XRPC error name, message) of an SDK error, as far as it has them."""
    response = exc.response if isinstance(exc, RequestErrorBase) else None
    if response is None:
        return None, "", ""
    content = response.content
    if isinstance(content, XrpcError):
        return response.status_code, content.error or "", content.message or ""
    if isinstance(content, dict):
        return response.status_code, str(content.get("error", "")), str(content.get("message", ""))
    return response.status_code, "", ""


def translate(exc: AtProtocolError, what: str, now: datetime | None = None) -> errors.NetworkError:
    """An SDK error as one of ours: rate limit, auth, rejected, or worth retrying."""
    now = now or datetime.now(UTC)
    status, error, message = xrpc_error(exc)
    detail = f"{what}: {status or ''} {error}{': ' if message else ''}{message}".strip()
    if isinstance(exc, RateLimitExceededError) or status == 429:
        retry_at = None
        if isinstance(exc, RateLimitExceededError):
            retry_at = exc.reset_at
            if retry_at is None and exc.retry_after is not None:
                retry_at = now + timedelta(seconds=exc.retry_after)
        retry_at = retry_at or now + timedelta(seconds=60)
        return errors.RateLimited(
            f"{what}: Bluesky rate limit until {retry_at:%H:%M:%S} UTC", retry_at=retry_at
        )
    if isinstance(exc, InvokeTimeoutError):
        return errors.Transient(f"{what}: Bluesky did not answer in time")
    if isinstance(exc, NetworkError) and status is None:
        return errors.Transient(f"{what}: could not reach Bluesky ({exc.__cause__ or exc})")
    if status == 413:
        return errors.Rejected(detail, status=status)
    if isinstance(exc, UnauthorizedError | LoginRequiredError) or error in _AUTH_ERRORS:
        return errors.AuthFailed(detail or f"{what}: not signed in", status=status)
    if isinstance(exc, NetworkError) or (status is not None and status >= 500):
        return errors.Transient(detail, status=status)
    if status is not None and 400 <= status < 500:
        return errors.Rejected(detail, status=status)
    if isinstance(exc, ModelError):
        return errors.Transient(f"{what}: unexpected answer from Bluesky ({exc})")
    return errors.Transient(detail or f"{what}: {type(exc).__name__}", status=status)


# --- reading: post views -> SeenPost ------------------------------------------------------

# searchPosts, listNotifications: at most 100 a page; getPosts: 25 uris a call.
SEARCH_PAGE = 100
NOTIFICATION_PAGE = 100
GET_POSTS_BATCH = 25
# A safety stop for one source in one round; the cursor only moves as far as was read.
MAX_PAGES = 100
# getPostThread: replies this deep below the post asked for (the lexicon's maximum).
THREAD_DEPTH = 1000
# A bot post found this close to the top of a thread read at THREAD_DEPTH had
# its replies in that answer (900 levels of them) and is not read again.
THREAD_COVERED = 100
# searchPosts' ``since`` compares sortAt, the earlier of createdAt and indexedAt:
# a post whose author's clock is behind sorts before newer ones. Each round
# reads again this far before the newest post it saw, and sweeps reread all.
SEARCH_OVERLAP = timedelta(minutes=5)
# The notifications that bring posts of a chat (a reply that also mentions the
# bot arrives once, as a mention).
NOTIFICATION_REASONS = ("reply", "mention", "quote")
# A profile self-label asking that the account's content not be shown to
# logged-out viewers: a public transcript leaves such a person out.
NO_UNAUTHENTICATED = "!no-unauthenticated"


def _get(obj: Any, name: str, alias: str | None = None) -> Any:
    """A field of an SDK model, or of a plain dict (records of unknown types stay dicts)."""
    if obj is None:
        return None
    if isinstance(obj, dict):
        return obj.get(alias or name)
    return getattr(obj, name, None)


def post_labels(author: Any) -> list[str]:
    """The label values on an author (profile self-labels included), negations left out."""
    return [
        str(_get(label, "val"))
        for label in _get(author, "labels") or []
        if _get(label, "val") and not _get(label, "neg")
    ]


def post_tags(record: Any) -> tuple[str, ...]:
    """Hashtags of a post record, lowercase, without '#': tag facets and the extra ``tags``."""
    found = []
    for facet in _get(record, "facets") or []:
        for feature in _get(facet, "features") or []:
            kind = str(_get(feature, "py_type", "$type") or "")
            tag = _get(feature, "tag")
            if tag and kind.endswith("#tag"):
                found.append(str(tag).lower())
    found += [str(t).lower() for t in _get(record, "tags") or []]
    return tuple(dict.fromkeys(found))


def quoted_uri(record: Any) -> str | None:
    """The post a record quotes: app.bsky.embed.record, or the record of recordWithMedia."""
    embed = _get(record, "embed")
    inner = _get(embed, "record")
    if inner is None:
        return None
    nested = _get(inner, "record")  # recordWithMedia: {record: {record: strongRef}, media}
    ref = nested if nested is not None and _get(nested, "uri") else inner
    uri = _get(ref, "uri")
    return str(uri) if uri and "/app.bsky.feed.post/" in str(uri) else None


def post_url(handle: str, uri: str) -> str:
    """The post's page on bsky.app."""
    return f"https://bsky.app/profile/{handle}/post/{uri.rsplit('/', 1)[-1]}"


def seen_post(view: Any) -> SeenPost:
    """A post view (app.bsky.feed.defs#postView) as the conversation sees it."""
    record = _get(view, "record")
    author = _get(view, "author")
    uri = str(_get(view, "uri"))
    handle = str(_get(author, "handle") or _get(author, "did"))
    labels = post_labels(author)
    indexed = as_utc(_get(view, "indexed_at", "indexedAt"))
    created = as_utc(_get(record, "created_at", "createdAt")) or indexed
    if created is None:
        raise ValueError(f"post {uri} has no time")
    parent = _get(_get(record, "reply"), "parent")
    return SeenPost(
        network=NetworkName.BLUESKY,
        uri=uri,
        id=uri,  # what PostRef.id holds for the bot's own posts
        url=post_url(handle, uri),
        author=Author(
            network=NetworkName.BLUESKY,
            id=str(_get(author, "did")),
            handle=handle,
            display_name=str(_get(author, "display_name", "displayName") or ""),
            url=f"https://bsky.app/profile/{handle}",
            bot="bot" in labels,  # the self-label a bot account carries on its profile
            opt_out=f"{NO_UNAUTHENTICATED} label" if NO_UNAUTHENTICATED in labels else "",
        ),
        text=str(_get(record, "text") or ""),
        created_at=created,
        reply_to=str(_get(parent, "uri")) if _get(parent, "uri") else None,
        quote_of=quoted_uri(record),
        tags=post_tags(record),
        likes=int(_get(view, "like_count", "likeCount") or 0),
        reposts=int(_get(view, "repost_count", "repostCount") or 0),
    )


def sort_time(view: Any) -> datetime | None:
    """When search sorts a post: the earlier of createdAt and indexedAt (the AppView's sortAt)."""
    times = [
        t
        for t in (
            as_utc(_get(_get(view, "record"), "created_at", "createdAt")),
            as_utc(_get(view, "indexed_at", "indexedAt")),
        )
        if t is not None
    ]
    return min(times) if times else None


def has_hashtag(view: Any, tag: str) -> bool:
    """Whether a search hit really carries ``#tag`` (search also matches words and prefixes)."""
    record = _get(view, "record")
    wanted = tag.casefold()
    if wanted in (t.casefold() for t in post_tags(record)):
        return True
    text = str(_get(record, "text") or "")
    return re.search(rf"#{re.escape(wanted)}(?![\w])", text.casefold()) is not None


def _flatten(node: Any) -> Iterator[tuple[int, Any]]:
    """(depth, post view) for a thread and every reply in it, at any depth; not-found and
    blocked replies are skipped. Iterative: threads may be 1,000 levels deep."""
    stack = [(node, 0)]
    while stack:
        current, depth = stack.pop()
        post = _get(current, "post")
        if post is None:
            continue
        yield depth, post
        stack.extend((reply, depth + 1) for reply in reversed(_get(current, "replies") or []))


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# --- the network --------------------------------------------------------------------------


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
    ) -> None:
        """No network call happens here: the session is resumed (or created) on first use."""
        self.service = service
        self.handle = handle.removeprefix("@").lower()
        self._password = app_password
        self._session_dir = session_dir
        self._clock = clock or (lambda: datetime.now(UTC))
        request = (
            Request(timeout=timeout, transport=transport)
            if transport is not None
            else Request(timeout=timeout)
        )
        self._client = Client(base_url=service, request=request)
        self._client.on_session_change(self._on_session_change)
        self._session_lock = threading.Lock()
        self._signed_in = False
        self._dids: dict[str, str | None] = {}
        self.logins = 0  # sessions created (password logins) by this process
        # createSession is limited (30 per 5 minutes, 100-300 a day, then a lock-out
        # of about a day): never loop on it. A refused password is not tried again,
        # and a session made here is not replaced by another, for LOGIN_COOLDOWN.
        self._login_at: float | None = None  # time.monotonic() of the last login here
        self._login_refused: tuple[float, errors.NetworkError] | None = None
        # One pacer per account for every request, posting ahead of reading, and
        # one for record writes, which are limited by points (a create costs 3).
        self._pacer = Pacer(*REQUEST_LIMIT, wall=self._clock)
        self._writes = Pacer(WRITE_POINTS[0] // CREATE_POINTS, WRITE_POINTS[1], wall=self._clock)
        self._rounds = Rounds(sweep_every)

    # --- the Protocol ---------------------------------------------------------------------

    def limits(self) -> Limits:
        """Bluesky's limits are the same everywhere (300 graphemes): nothing to ask."""
        return Limits()

    def post(self, request: PostRequest) -> PostRef:
        if request.created_at is None:
            raise errors.Rejected("a Bluesky post needs the step's planned time for its record key")
        if request.first_attempt_at is not None:
            # An earlier attempt may have landed: don't upload its images again.
            found = self.find(request)
            if found is not None:
                return found
        record = self._record(request)
        for candidate in range(KEY_CANDIDATES):
            rkey = record_key(request.created_at, request.idempotency_key, candidate)
            existing = None
            for _try in range(2):  # twice: the record may vanish between the two calls
                created = self._create(rkey, record)
                if created is not None:
                    return created
                existing = self._get_post(rkey)
                if existing is not None:
                    break
            if existing is None:
                raise errors.Transient(f"posting: the record at {rkey} keeps changing")
            ref, text = existing
            if same_text(text, request.text):
                log.info("bluesky post already there", rkey=rkey)
                return ref
            # Another post holds this key (same planned time, same clock id): next one.
        raise errors.Rejected(
            f"every record key for this post is taken by other posts ({KEY_CANDIDATES} tried)"
        )

    def find(self, request: PostRequest) -> PostRef | None:
        if request.created_at is None:
            return None
        for candidate in range(KEY_CANDIDATES):
            rkey = record_key(request.created_at, request.idempotency_key, candidate)
            existing = self._get_post(rkey)
            if existing is None:
                return None
            ref, text = existing
            if same_text(text, request.text):
                return ref
        return None

    def close(self) -> None:
        self._client.request.close()

    # --- reading: the Reader Protocol -----------------------------------------------------

    def collect(self, thread: ChatThread, cursors: dict[str, str]) -> Collected:
        """The chat's posts new or changed since ``cursors``; errors raise before any cursor moves.

        Cursors: ``search`` and ``notifications`` (the newest indexedAt read
        there, ISO 8601), ``threads`` and ``searched`` (the uris seen in the
        chat's threads and under its hashtag, to notice deletions).
        """
        bot_uris = {ref.id for ref in thread.bot_posts}
        if not bot_uris:
            return Collected()
        me = self._did()
        tag = thread.hashtag.removeprefix("#")
        sweep = self._rounds.next_is_sweep(thread.chat_id)
        views: dict[str, Any] = {}  # uri -> post view, everything worth returning this round

        def keep(view: Any) -> bool:
            uri = str(_get(view, "uri"))
            if uri in bot_uris or _get(_get(view, "author"), "did") == me:
                return False
            views[uri] = view
            return True

        # 1. The hashtag: a search, newest first, back to what the last round saw
        # (a sweep goes back to the chat's start: deletions show as absences).
        high = None if sweep else as_utc(cursors.get("search"))
        found, newest_search = self._search(tag, thread.since, high)
        searched_now = [uri for uri, view in found.items() if keep(view)]

        # 2. Replies, mentions and quotes notified to the bot during the chat.
        notified, newest_note = self._notified(as_utc(cursors.get("notifications")), thread.since)
        for view in self._posts(notified):
            created = as_utc(_get(_get(view, "record"), "created_at", "createdAt"))
            if created is None or created >= thread.since:
                keep(view)

        # 3. The threads under the bot's posts (replies that forgot the hashtag, at any
        # depth), read every round; one read usually covers the whole chat.
        thread_now: list[str] = []
        covered: set[str] = set()
        for ref in thread.bot_posts:
            if ref.id in covered:
                continue
            try:
                answer = self._call(
                    "reading the replies to the chat",
                    partial(
                        self._client.app.bsky.feed.get_post_thread,
                        {"uri": ref.id, "depth": THREAD_DEPTH, "parent_height": 0},
                    ),
                    not_found_ok=True,
                    posting=False,
                )
            except _NotFound:
                continue  # the bot's post itself is gone
            for depth, view in _flatten(answer.thread):
                uri = str(_get(view, "uri"))
                if uri in bot_uris and depth <= THREAD_COVERED:
                    covered.add(uri)
                if keep(view):
                    thread_now.append(uri)

        # 4. What was seen before and is not there now: deleted if getPosts no longer
        # has it; else only out of sight (its parent was deleted): returned as it is.
        known_threads = set(remembered(cursors, "threads"))
        known_searched = set(remembered(cursors, "searched"))
        vanished = known_threads - set(thread_now)
        if sweep:
            vanished |= known_searched - set(searched_now)
        vanished -= views.keys()
        alive = {str(_get(v, "uri")) for v in self._posts(sorted(vanished)) if keep(v)}
        deleted = sorted(vanished - alive)
        searched = set(searched_now) if sweep else known_searched | set(searched_now)
        searched -= set(deleted)

        posts = []
        for view in views.values():
            try:
                posts.append(seen_post(view))
            except (AttributeError, TypeError, ValueError) as exc:
                log.warning("bluesky post unreadable", uri=_get(view, "uri"), error=str(exc))
        new_cursors = {
            "threads": remember({u: u for u in thread_now}),
            "searched": remember({u: u for u in searched}),
        }
        if newest_search is not None:
            new_cursors["search"] = newest_search.isoformat()
        if newest_note is not None:
            new_cursors["notifications"] = newest_note.isoformat()
        return Collected(posts=tuple(posts), deleted=tuple(deleted), cursors=new_cursors)

    def _search(
        self, tag: str, since: datetime, high: datetime | None
    ) -> tuple[dict[str, Any], datetime | None]:
        """Posts with ``#tag`` sorted after ``high`` (less an overlap), or since the chat's start.

        Pages follow ``cursor`` until a page reaches back past that point or there
        is no cursor: a short page is not the end.
        """
        floor = since if high is None else max(since, high - SEARCH_OVERLAP)
        params: dict[str, Any] = {
            "q": f"#{tag}",  # the test AppView (no search service) matches text only
            "tag": [tag],  # production search: posts with this tag facet
            "sort": "latest",
            "since": _iso(floor),
            "limit": SEARCH_PAGE,
        }
        found: dict[str, Any] = {}
        newest = high
        cursor: str | None = None
        for _ in range(MAX_PAGES):
            page = self._call(
                f"searching #{tag}",
                partial(self._client.app.bsky.feed.search_posts, {**params, "cursor": cursor}),
                posting=False,
            )
            reached = False
            for view in page.posts:
                indexed = as_utc(view.indexed_at)
                if indexed is not None and (newest is None or indexed > newest):
                    newest = indexed
                at = sort_time(view)
                if at is not None and at < floor:
                    reached = True
                    continue
                if has_hashtag(view, tag):
                    found[view.uri] = view
            cursor = page.cursor
            if reached or not cursor or not page.posts:
                break
        else:
            log.warning("bluesky: more search pages than one round reads", tag=tag)
        return found, newest

    def _notified(
        self, high: datetime | None, since: datetime
    ) -> tuple[list[str], datetime | None]:
        """Uris of the posts in reply, mention and quote notifications after ``high``."""
        floor = high or since
        uris: list[str] = []
        newest = high
        cursor: str | None = None
        for _ in range(MAX_PAGES):
            page = self._call(
                "reading notifications",
                partial(
                    self._client.app.bsky.notification.list_notifications,
                    {
                        "limit": NOTIFICATION_PAGE,
                        "cursor": cursor,
                        "reasons": list(NOTIFICATION_REASONS),
                    },
                ),
                posting=False,
            )
            reached = False
            for note in page.notifications:
                indexed = as_utc(note.indexed_at)
                if indexed is None:
                    continue
                if newest is None or indexed > newest:
                    newest = indexed
                if indexed < floor:
                    reached = True
                    continue
                if note.reason in NOTIFICATION_REASONS and "/app.bsky.feed.post/" in note.uri:
                    uris.append(note.uri)
            cursor = page.cursor
            if reached or not cursor or not page.notifications:
                break
        return list(dict.fromkeys(uris)), newest

    def _posts(self, uris: Sequence[str]) -> list[Any]:
        """Post views for ``uris`` (getPosts, 25 at a time); deleted posts are simply absent."""
        views: list[Any] = []
        for start in range(0, len(uris), GET_POSTS_BATCH):
            batch = list(uris[start : start + GET_POSTS_BATCH])
            answer = self._call(
                "reading posts",
                partial(self._client.app.bsky.feed.get_posts, {"uris": batch}),
                posting=False,
            )
            views += answer.posts
        return views

    # --- for `chatbot check` --------------------------------------------------------------

    def account(self) -> Account:
        """The bot's DID, handle and whether its profile carries the ``bot`` self-label."""
        did = self._did()
        labels: list[str] = []
        try:
            profile = self._call(
                "reading the profile",
                lambda: self._client.com.atproto.repo.get_record(
                    {"repo": did, "collection": PROFILE_COLLECTION, "rkey": "self"}
                ),
            )
        except errors.Rejected:
            profile = None  # no profile record yet
        if profile is not None:
            self_labels = getattr(profile.value, "labels", None)
            labels = [str(getattr(v, "val", "")) for v in getattr(self_labels, "values", []) or []]
        session = self._client._session
        handle = session.handle if session else self.handle
        return Account(
            network=self.name,
            id=did,
            handle=handle,
            is_bot="bot" in labels,
            details={"service": self.service, "labels": ", ".join(labels)},
        )

    def hashtag_feed(self, tag: str, limit: int = 10) -> int:
        """How many recent posts a search for ``#tag`` returns (raises if it cannot be read)."""
        result = self._call(
            f"searching #{tag}",
            lambda: self._client.app.bsky.feed.search_posts(
                {"q": f"#{tag.removeprefix('#')}", "limit": limit}
            ),
        )
        return len(result.posts)

    # --- posting --------------------------------------------------------------------------

    def _record(self, request: PostRequest) -> dict[str, Any]:
        reply = None
        if request.parent is not None:
            parent = self._strong_ref(request.parent)
            root = self._strong_ref(request.root) if request.root is not None else parent
            reply = models.AppBskyFeedPost.ReplyRef(root=root, parent=parent)
        record = models.AppBskyFeedPost.Record(
            text=request.text,
            created_at=self._clock().isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            facets=to_bluesky_facets(request.facets, self._resolve_handle) or None,
            reply=reply,
            embed=self._images(request.attachments),
            tags=list(request.tags[:MAX_TAGS]) or None,
        )
        record_dict: dict[str, Any] = get_model_as_dict(record)
        return record_dict

    def _create(self, rkey: str, record: dict[str, Any]) -> PostRef | None:
        """Create the post at ``rkey``; None if a record is already there (InvalidSwap)."""
        did = self._did()
        body = {
            "repo": did,
            "collection": POST_COLLECTION,
            "rkey": rkey,
            "record": record,
            # Explicit null, not absent: "only if there is no record yet". The
            # SDK's models drop None fields, so the JSON is written here.
            "swapRecord": None,
        }
        content = json.dumps(body).encode()
        try:
            response = self._call(
                "posting",
                lambda: self._client.invoke_procedure(
                    "com.atproto.repo.putRecord",
                    content=content,
                    headers={"Content-Type": "application/json"},
                ),
                swap_ok=True,
                write=True,
            )
        except _AlreadyThere:
            return None
        answer = response.content if isinstance(response.content, dict) else {}
        uri, cid = str(answer.get("uri", "")), str(answer.get("cid", ""))
        if not uri:
            raise errors.Transient("posting: Bluesky answered without the post's address")
        return self._ref(uri, cid)

    def _get_post(self, rkey: str) -> tuple[PostRef, str] | None:
        did = self._did()
        try:
            found = self._call(
                "reading a post",
                lambda: self._client.com.atproto.repo.get_record(
                    {"repo": did, "collection": POST_COLLECTION, "rkey": rkey}
                ),
                not_found_ok=True,
            )
        except _NotFound:
            return None
        return self._ref(found.uri, found.cid or ""), str(getattr(found.value, "text", ""))

    def _strong_ref(self, ref: PostRef) -> models.ComAtprotoRepoStrongRef.Main:
        cid = ref.cid
        if not cid:
            # A reference stored without its content hash: ask the repo for it.
            repo, collection, rkey = _split_uri(ref.id)
            found = self._call(
                "reading the post replied to",
                lambda: self._client.com.atproto.repo.get_record(
                    {"repo": repo, "collection": collection, "rkey": rkey}
                ),
            )
            cid = found.cid or ""
        return models.ComAtprotoRepoStrongRef.Main(uri=ref.id, cid=cid)

    def _images(self, attachments: Sequence[Attachment]) -> models.AppBskyEmbedImages.Main | None:
        if not attachments:
            return None
        images = []
        for attachment in attachments[:MAX_IMAGES]:
            try:
                data = attachment.path.read_bytes()
                with Image.open(attachment.path) as picture:
                    width, height = picture.size
                    mime = Image.MIME.get(picture.format or "", "application/octet-stream")
            except (OSError, UnidentifiedImageError) as exc:
                raise errors.Rejected(f"cannot read the image {attachment.path}: {exc}") from exc
            blob = self._upload(data, mime)
            images.append(
                models.AppBskyEmbedImages.Image(
                    alt=attachment.alt,
                    image=blob,
                    aspect_ratio=models.AppBskyEmbedDefs.AspectRatio(width=width, height=height),
                )
            )
        return models.AppBskyEmbedImages.Main(images=images)

    def _upload(self, data: bytes, mime: str) -> Any:
        # Raw bytes as the body (the SDK's upload_blob passes them in a way
        # httpx deprecates).
        response = self._call(
            "uploading an image",
            lambda: self._client.invoke_procedure(
                "com.atproto.repo.uploadBlob", content=data, headers={"Content-Type": mime}
            ),
        )
        try:
            return models.ComAtprotoRepoUploadBlob.Response.model_validate(response.content).blob
        except ValueError as exc:
            raise errors.Transient(f"uploading an image: unexpected answer ({exc})") from exc

    def _resolve_handle(self, handle: str) -> str | None:
        handle = handle.lower()
        if handle not in self._dids:
            try:
                answer = self._call(
                    f"resolving @{handle}",
                    lambda: self._client.com.atproto.identity.resolve_handle({"handle": handle}),
                )
                self._dids[handle] = answer.did
            except errors.Rejected:
                self._dids[handle] = None  # 400: the handle does not resolve
        return self._dids[handle]

    def _ref(self, uri: str, cid: str) -> PostRef:
        repo, _collection, rkey = _split_uri(uri)
        return PostRef(
            network=self.name,
            id=uri,
            url=f"https://bsky.app/profile/{repo}/post/{rkey}",
            cid=cid,
        )

    # --- session --------------------------------------------------------------------------

    @property
    def session_file(self) -> Path:
        safe = re.sub(r"[^a-z0-9._-]", "_", self.handle)
        return self._session_dir / f"bluesky-{safe}.session"

    def _did(self) -> str:
        self._sign_in()
        session = self._client._session
        if session is None:
            raise errors.AuthFailed("not signed in to Bluesky")
        return str(session.did)

    def _sign_in(self, *, force_new: bool = False) -> None:
        """Resume the stored session, or log in with the app password if there is none."""
        with self._session_lock:
            if self._signed_in and not force_new:
                return
            stored = None if force_new else self._read_session()
            if stored is not None:
                try:
                    self._pace("resuming the Bluesky session", posting=True)
                    self._client.login(session_string=stored, fetch_bsky_profile=False)
                    # Ask the server: this also refreshes an access token near expiry.
                    self._pace("resuming the Bluesky session", posting=True)
                    self._client.com.atproto.server.get_session()
                except (ValueError, AtProtocolError) as exc:
                    if isinstance(exc, AtProtocolError) and _unreachable(exc):
                        # Not a verdict on the session: keep it, try again later.
                        raise translate(exc, "resuming the Bluesky session") from exc
                    _status, error, _message = xrpc_error(exc)
                    log.info(
                        "bluesky stored session rejected",
                        handle=self.handle,
                        error=error or type(exc).__name__,
                    )
                else:
                    self._signed_in = True
                    log.info("bluesky session resumed", handle=self.handle)
                    return
            self._password_login()

    def _password_login(self) -> None:
        now = time.monotonic()
        if self._login_refused is not None and now - self._login_refused[0] < LOGIN_COOLDOWN:
            refused = self._login_refused[1]
            raise errors.AuthFailed(f"{refused} (not tried again yet)", status=refused.status)
        self._pace(f"logging in to Bluesky as {self.handle}", posting=True)
        try:
            self._client.login(
                self.handle, self._password.get_secret_value(), fetch_bsky_profile=False
            )
        except AtProtocolError as exc:
            problem = translate(exc, f"logging in to Bluesky as {self.handle}")
            if isinstance(problem, errors.AuthFailed):
                self._login_refused = (now, problem)
            raise problem from exc
        self._login_refused = None
        self._login_at = now
        self.logins += 1
        self._signed_in = True
        log.info("bluesky login (new session)", handle=self.handle)

    def _read_session(self) -> str | None:
        try:
            text = self.session_file.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        except OSError as exc:
            log.warning("cannot read the stored bluesky session", error=exc.strerror)
            return None
        return text or None

    def _on_session_change(self, event: SessionEvent, session: Session) -> None:
        if event is SessionEvent.IMPORT:
            return  # it came from the file
        write_private(self.session_file, session.export())

    # --- calls ----------------------------------------------------------------------------

    def _call(
        self,
        what: str,
        call: Callable[[], T],
        *,
        swap_ok: bool = False,
        not_found_ok: bool = False,
        posting: bool = True,
        write: bool = False,
    ) -> T:
        """Run an SDK call signed in and paced, translate its errors, log in anew once if the
        session died."""
        self._sign_in()
        for attempt in range(2):
            self._pace(what, posting=posting, write=write)
            try:
                return call()
            except AtProtocolError as exc:
                status, error, _message = xrpc_error(exc)
                if swap_ok and error == "InvalidSwap":
                    raise _AlreadyThere from exc
                if not_found_ok and error in ("RecordNotFound", "NotFound"):
                    raise _NotFound from exc
                fresh = self._login_at is not None and (
                    time.monotonic() - self._login_at < LOGIN_COOLDOWN
                )
                if attempt == 0 and not fresh and (error in _SESSION_ERRORS or status == 401):
                    log.info("bluesky session expired", handle=self.handle, error=error)
                    self._sign_in(force_new=True)
                    continue
                problem = translate(exc, what, self._clock())
                if isinstance(problem, errors.RateLimited):
                    self._pacer.block_until(problem.retry_at)
                raise problem from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def _pace(self, what: str, *, posting: bool, write: bool = False) -> None:
        """Wait for the account's pacers (posting ahead of reading), briefly; else RateLimited."""
        pacers = [self._writes, self._pacer] if write else [self._pacer]
        pace(pacers, posting=posting, what=what, now=self._clock())


def _unreachable(exc: AtProtocolError) -> bool:
    """Whether an error says nothing about the request itself (no answer, 5xx, 429)."""
    status, _error, _message = xrpc_error(exc)
    if isinstance(exc, NetworkError) and status in (None, 502):
        return True
    return status is not None and (status == 429 or status >= 500)


class _AlreadyThere(Exception):
    """putRecord with swapRecord null found a record at the key."""


class _NotFound(Exception):
    """getRecord found no record at the key."""


def _split_uri(uri: str) -> tuple[str, str, str]:
    """(repo, collection, rkey) of an at:// URI."""
    parts = uri.removeprefix("at://").split("/")
    if len(parts) != 3:
        raise errors.Rejected(f"not an at:// post address: {uri}")
    return parts[0], parts[1], parts[2]


def write_private(path: Path, text: str) -> None:
    """Write a secret file readable by this user only (folder 0700, file 0600), atomically."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with contextlib.suppress(OSError):
        path.parent.chmod(0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # also when the file was left over with other bits
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
        out.flush()
        os.fsync(out.fileno())
    tmp.replace(path)
