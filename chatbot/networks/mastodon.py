"""Mastodon through Mastodon.py: one thread per chat, idempotent posts, images with alt text.

Exactly once: every ``status_post`` carries the step's idempotency key, and the
server returns the original status for a repeated key. Mastodon remembers keys
for one hour only, so a retry of an attempt older than that first looks for the
post among the account's own statuses.
"""

from __future__ import annotations

import mimetypes
import re
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import urlsplit

import requests
import structlog
from mastodon import (
    Mastodon,
    MastodonAPIError,
    MastodonError,
    MastodonIllegalArgumentError,
    MastodonIOError,
    MastodonNetworkError,
    MastodonNotFoundError,
    MastodonRatelimitError,
    MastodonServerError,
    MastodonUnauthorizedError,
)
from pydantic import SecretStr

from chatbot import errors
from chatbot.answers import html_to_text
from chatbot.networks.base import Account, Attachment, PostRef, PostRequest
from chatbot.script import NetworkName
from chatbot.text import MASTODON_DEFAULT_MAX_CHARACTERS, Limits

log = structlog.get_logger("chatbot.networks.mastodon")
T = TypeVar("T")

# Seconds per HTTP request: the runner finishes the call in flight on SIGTERM
# and must be done within 10 s.
REQUEST_TIMEOUT = 7.0
# The server keeps an Idempotency-Key for 1 hour; past ~50 minutes we no longer
# trust it and look for the post ourselves before posting.
IDEMPOTENCY_TRUST = timedelta(minutes=50)
# find(): the account's own statuses, newest first, 40 a page (the API's maximum).
FIND_PAGE_SIZE = 40
FIND_MAX_PAGES = 5
# A post found by find() cannot be older than its first attempt (clock skew aside).
FIND_SKEW = timedelta(minutes=10)
# Media: Mastodon may answer 202 and process an image asynchronously.
MEDIA_WAIT = 5.0
MEDIA_POLL = 0.5
# When the instance's limits cannot be read, ask again after this long.
LIMITS_RETRY = timedelta(minutes=5)
# The oldest Mastodon the bot supports (the first with /api/v2/instance).
ASSUMED_MASTODON_VERSION = "4.0.0"
# When a 429 carries no usable reset time.
DEFAULT_RATELIMIT_WAIT = timedelta(seconds=60)

_REMOTE_MENTION = re.compile(r"(?<![\w@])(@\w+)@[\w.-]+\w")


def comparable(text: str) -> str:
    """A status text reduced for comparison: whitespace collapsed, ``@user@domain`` as ``@user``.

    Mastodon's HTML shows a remote mention as ``@user`` only.
    """
    return " ".join(_REMOTE_MENTION.sub(r"\1", text).split())


def status_code(exc: MastodonError) -> int | None:
    """The HTTP status of a Mastodon.py API error (its second argument), if it has one."""
    if len(exc.args) > 1 and isinstance(exc.args[1], int):
        return exc.args[1]
    return None


def translate(
    exc: MastodonError, what: str, *, ratelimit_reset: float | None, now: datetime
) -> errors.NetworkError:
    """A Mastodon.py error as one of ours, keeping the status code and the retry time."""
    status = status_code(exc)
    reason = exc.args[3] if len(exc.args) > 3 and exc.args[3] else ""
    detail = f"{what}: Mastodon answered {status or 'an error'}{': ' if reason else ''}{reason}"
    if isinstance(exc, MastodonRatelimitError) or status == 429:
        # Mastodon.py reads X-RateLimit-Reset (ISO 8601), corrected for the
        # server's clock, into ratelimit_reset (epoch seconds).
        retry_at = (
            datetime.fromtimestamp(ratelimit_reset, UTC)
            if ratelimit_reset is not None and ratelimit_reset > now.timestamp()
            else now + DEFAULT_RATELIMIT_WAIT
        )
        return errors.RateLimited(
            f"{what}: Mastodon rate limit until {retry_at:%H:%M:%S} UTC", retry_at=retry_at
        )
    if isinstance(exc, MastodonNetworkError):
        return errors.Transient(f"{what}: could not reach Mastodon ({exc})")
    if isinstance(exc, MastodonUnauthorizedError) or status in (401, 403):
        return errors.AuthFailed(
            f"{detail} (the access token was refused: create a new one with read and write scopes)",
            status=status,
        )
    if isinstance(exc, MastodonServerError) or (status is not None and status >= 500):
        return errors.Transient(detail, status=status)
    if isinstance(exc, MastodonNotFoundError) or (status is not None and 400 <= status < 500):
        return errors.Rejected(detail, status=status)
    if isinstance(exc, MastodonIllegalArgumentError | MastodonIOError):
        return errors.Rejected(f"{what}: {exc}")
    if isinstance(exc, MastodonAPIError):
        # A 2xx whose body could not be read: the post may exist; the key makes a retry safe.
        return errors.Transient(f"{what}: unexpected answer from Mastodon ({exc.args[0]})")
    return errors.Transient(f"{what}: {type(exc).__name__}: {exc}")


def _same_post(status: Any, parent: str | None, wanted: str) -> bool:
    """Whether a status replies to ``parent`` (None: to nothing) with the ``wanted`` text."""
    in_reply_to = status.get("in_reply_to_id")
    if (str(in_reply_to) if in_reply_to is not None else None) != parent:
        return False
    return comparable(html_to_text(status.get("content") or "")) == wanted


def _older_than(status: Any, moment: datetime) -> bool:
    created = status.get("created_at")
    return isinstance(created, datetime) and created.tzinfo is not None and created < moment


class MastodonNetwork:
    """The bot's Mastodon account, behind the :class:`~chatbot.networks.base.Network` Protocol."""

    name = NetworkName.MASTODON

    def __init__(
        self,
        *,
        instance: str,
        access_token: SecretStr,
        max_characters: int | None = None,
        timeout: float = REQUEST_TIMEOUT,
        session: requests.Session | None = None,
        clock: Callable[[], datetime] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """No network call happens here."""
        self.instance = instance.rstrip("/")
        self._api = Mastodon(
            access_token=access_token.get_secret_value(),
            api_base_url=self.instance,
            # "wait" (the default) sleeps inside the call; the runner decides instead.
            ratelimit_method="throw",
            request_timeout=timeout,
            session=session,
            user_agent="chatbot (hashtag chats for teachers)",
            # Declared, not probed: the bot needs /api/v2/instance (Mastodon 4.0+),
            # and Mastodon.py 2.3's own probe recurses without end when
            # /api/v1/instance fails. "created" only refuses methods newer than that.
            mastodon_version=ASSUMED_MASTODON_VERSION,
            version_check_mode="created",
        )
        self._max_characters = max_characters
        self._clock = clock or (lambda: datetime.now(UTC))
        self._sleep = sleep
        # Mastodon.py keeps rate-limit state on the client: one call at a time.
        self._lock = threading.RLock()
        self._limits: Limits | None = None
        self._limits_failed_at: datetime | None = None
        self._me: Any = None

    # --- the Protocol ---------------------------------------------------------------------

    def limits(self) -> Limits:
        """The instance's ``configuration.statuses.max_characters`` (the config's value wins)."""
        if self._max_characters:
            return Limits(mastodon_max_characters=self._max_characters)
        if self._limits is not None:
            return self._limits
        now = self._clock()
        if self._limits_failed_at is not None and now - self._limits_failed_at < LIMITS_RETRY:
            return Limits()
        try:
            instance = self._call("reading the instance's limits", self._api.instance_v2)
            value = int(instance["configuration"]["statuses"]["max_characters"])
        except (errors.NetworkError, KeyError, TypeError, ValueError) as exc:
            self._limits_failed_at = now
            log.warning(
                "mastodon limits unreadable",
                instance=self.instance,
                default=MASTODON_DEFAULT_MAX_CHARACTERS,
                error=str(exc),
            )
            return Limits()
        self._limits = Limits(mastodon_max_characters=value)
        return self._limits

    def post(self, request: PostRequest) -> PostRef:
        if (
            request.first_attempt_at is not None
            and self._clock() - request.first_attempt_at > IDEMPOTENCY_TRUST
        ):
            # The server may have forgotten the key by now: look before posting again.
            found = self.find(request)
            if found is not None:
                log.info("mastodon post found from an earlier attempt", id=found.id)
                return found
        media_ids = [self._upload(attachment) for attachment in request.attachments]
        status = self._call(
            "posting",
            lambda: self._api.status_post(
                request.text,
                in_reply_to_id=request.parent.id if request.parent else None,
                media_ids=media_ids or None,
                visibility=request.visibility.value,
                idempotency_key=request.idempotency_key,
            ),
        )
        return self._ref(status)

    def find(self, request: PostRequest) -> PostRef | None:
        me = self._account()
        parent = request.parent.id if request.parent else None
        wanted = comparable(request.text)
        oldest = request.first_attempt_at - FIND_SKEW if request.first_attempt_at else None
        page: Any = self._call(
            "reading the bot's statuses",
            lambda: self._api.account_statuses(
                me["id"], limit=FIND_PAGE_SIZE, exclude_reblogs=True
            ),
        )
        for _ in range(FIND_MAX_PAGES):
            if not page:
                return None
            for status in page:
                if _same_post(status, parent, wanted):
                    return self._ref(status)
                if oldest is not None and _older_than(status, oldest):
                    return None  # older than the first attempt: cannot be ours
            page = self._next_page(page)
        return None

    def close(self) -> None:
        self._api.session.close()

    # --- for `chatbot check` --------------------------------------------------------------

    def account(self) -> Account:
        """The bot's account id, handle and bot flag."""
        me = self._account(refresh=True)
        acct = str(me["acct"])
        if "@" not in acct:
            acct = f"{acct}@{urlsplit(self.instance).netloc}"
        return Account(
            network=self.name,
            id=str(me["id"]),
            handle=f"@{acct}",
            is_bot=bool(me.get("bot")),
            details={"url": str(me.get("url") or ""), "instance": self.instance},
        )

    def hashtag_feed(self, tag: str, limit: int = 10) -> int:
        """How many recent posts the instance's #tag timeline shows (raises if unreadable)."""
        page = self._call(
            f"reading #{tag}",
            lambda: self._api.timeline_hashtag(tag.removeprefix("#"), limit=limit),
        )
        return len(page)

    # --- internals ------------------------------------------------------------------------

    def _account(self, *, refresh: bool = False) -> Any:
        if self._me is None or refresh:
            self._me = self._call("checking the access token", self._api.account_verify_credentials)
        return self._me

    def _upload(self, attachment: Attachment) -> Any:
        mime, _encoding = mimetypes.guess_type(attachment.path.name)
        try:
            # Opened here (not by path) so the file is closed whatever happens.
            with attachment.path.open("rb") as data:
                media = self._call(
                    "uploading an image",
                    lambda: self._api.media_post(
                        data,
                        mime_type=mime,
                        description=attachment.alt,
                        file_name=attachment.path.name,
                    ),
                )
        except OSError as exc:
            raise errors.Rejected(f"cannot read the image {attachment.path}: {exc}") from exc
        # /api/v2/media may answer before the image is processed (url still null);
        # a status cannot attach it until it is. Wait a little, bounded.
        polls = round(MEDIA_WAIT / MEDIA_POLL)
        while media.get("url") is None:
            if polls <= 0:
                raise errors.Transient("uploading an image: Mastodon is still processing it")
            polls -= 1
            self._sleep(MEDIA_POLL)
            media = self._media(media)
        return media

    def _next_page(self, page: Any) -> Any:
        return self._call("reading the bot's statuses", lambda: self._api.fetch_next(page))

    def _media(self, media: Any) -> Any:
        return self._call("uploading an image", lambda: self._api.media(media))

    def _ref(self, status: Any) -> PostRef:
        return PostRef(
            network=self.name,
            id=str(status["id"]),
            url=str(status.get("url") or status.get("uri") or ""),
        )

    def _call(self, what: str, call: Callable[[], T]) -> T:
        with self._lock:
            try:
                return call()
            except MastodonError as exc:
                raise translate(
                    exc, what, ratelimit_reset=self._api.ratelimit_reset, now=self._clock()
                ) from exc
