"""Bluesky through the atproto SDK: threads, clickable hashtags, images, sessions kept.

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
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
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
from chatbot.networks.base import Account, Attachment, PostRef, PostRequest
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
                    self._client.login(session_string=stored, fetch_bsky_profile=False)
                    # Ask the server: this also refreshes an access token near expiry.
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
    ) -> T:
        """Run an SDK call signed in, translate its errors, log in anew once if the session died."""
        self._sign_in()
        for attempt in range(2):
            try:
                return call()
            except AtProtocolError as exc:
                status, error, _message = xrpc_error(exc)
                if swap_ok and error == "InvalidSwap":
                    raise _AlreadyThere from exc
                if not_found_ok and error == "RecordNotFound":
                    raise _NotFound from exc
                fresh = self._login_at is not None and (
                    time.monotonic() - self._login_at < LOGIN_COOLDOWN
                )
                if attempt == 0 and not fresh and (error in _SESSION_ERRORS or status == 401):
                    log.info("bluesky session expired", handle=self.handle, error=error)
                    self._sign_in(force_new=True)
                    continue
                raise translate(exc, what, self._clock()) from exc
        raise AssertionError("unreachable")  # pragma: no cover


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
