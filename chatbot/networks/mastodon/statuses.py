"""Posting on Mastodon exactly once: idempotency keys, a look before a late retry, images.

Every ``status_post`` carries the step's idempotency key, and the server
returns the original status for a repeated key. Mastodon remembers keys for
one hour only, so a retry of an attempt older than that first looks for the
post among the account's own statuses (:meth:`Statuses.find`).
"""

from __future__ import annotations

import mimetypes
import re
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from functools import partial
from typing import Any

import structlog

from chatbot import errors
from chatbot.markup import html_to_text
from chatbot.networks.base import Attachment, PostRequest
from chatbot.networks.mastodon.calls import Client
from chatbot.networks.reading import Page, follow
from chatbot.posts import PostRef
from chatbot.script import NetworkName

log = structlog.get_logger("chatbot.networks.mastodon")

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

_REMOTE_MENTION = re.compile(r"(?<![\w@])(@\w+)@[\w.-]+\w")


def comparable(text: str) -> str:
    """A status text reduced for comparison: whitespace collapsed, ``@user@domain`` as ``@user``.

    Mastodon's HTML shows a remote mention as ``@user`` only.
    """
    return " ".join(_REMOTE_MENTION.sub(r"\1", text).split())


def status_ref(status: Any) -> PostRef:
    """The reference the runner keeps for a status."""
    return PostRef(
        network=NetworkName.MASTODON,
        id=str(status["id"]),
        url=str(status.get("url") or status.get("uri") or ""),
    )


def _same_post(status: Any, parent: str | None, wanted: str) -> bool:
    """Whether a status replies to ``parent`` (None: to nothing) with the ``wanted`` text."""
    in_reply_to = status.get("in_reply_to_id")
    if (str(in_reply_to) if in_reply_to is not None else None) != parent:
        return False
    return comparable(html_to_text(status.get("content") or "")) == wanted


def _older_than(status: Any, moment: datetime) -> bool:
    created = status.get("created_at")
    return isinstance(created, datetime) and created.tzinfo is not None and created < moment


class Statuses:
    """The bot's statuses: posted once per idempotency key, found again after a crash."""

    def __init__(
        self,
        client: Client,
        *,
        account: Callable[[], Any],
        clock: Callable[[], datetime],
        sleep: Callable[[float], None],
    ) -> None:
        """``account``: the bot's account (verify_credentials), read once."""
        self._client = client
        self._account = account
        self._clock = clock
        self._sleep = sleep

    def post(self, request: PostRequest) -> PostRef:
        """Publish, or return the status an earlier attempt published."""
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
        api = self._client.api
        status = self._client(
            "posting",
            lambda: api.status_post(
                request.text,
                in_reply_to_id=request.parent.id if request.parent else None,
                media_ids=media_ids or None,
                visibility=request.visibility.value,
                idempotency_key=request.idempotency_key,
            ),
        )
        return status_ref(status)

    def find(self, request: PostRequest) -> PostRef | None:
        """The status an earlier attempt published: same parent, same text; newest first."""
        me = self._account()
        parent = request.parent.id if request.parent else None
        wanted = comparable(request.text)
        oldest = request.first_attempt_at - FIND_SKEW if request.first_attempt_at else None

        def decides(status: Any) -> bool:
            # Older than the first attempt: neither it nor anything after can be ours.
            older = oldest is not None and _older_than(status, oldest)
            return older or _same_post(status, parent, wanted)

        found = follow(
            self._own_statuses(me["id"]),
            None,
            what="reading the bot's statuses",
            most=FIND_MAX_PAGES,
            enough=lambda page: any(map(decides, page)),
            warn=False,
        )
        for status in found:
            if decides(status):
                return status_ref(status) if _same_post(status, parent, wanted) else None
        return None

    def _own_statuses(self, account_id: str) -> Callable[[Any], Page[Any, Any]]:
        """The account's statuses page by page: each page leads to the next (its Link header)."""
        api = self._client.api

        def fetch(before: Any) -> Page[Any, Any]:
            if before is None:
                call = partial(
                    api.account_statuses, account_id, limit=FIND_PAGE_SIZE, exclude_reblogs=True
                )
            else:
                call = partial(api.fetch_next, before)
            page: Sequence[Any] | None = self._client("reading the bot's statuses", call)
            return Page(page or [], page)

        return fetch

    def _upload(self, attachment: Attachment) -> Any:
        mime, _encoding = mimetypes.guess_type(attachment.path.name)
        api = self._client.api
        try:
            # Opened here (not by path) so the file is closed whatever happens.
            with attachment.path.open("rb") as data:
                media = self._client(
                    "uploading an image",
                    lambda: api.media_post(
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
            media = self._client("uploading an image", partial(api.media, media))
        return media
