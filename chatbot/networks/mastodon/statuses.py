"""Posting on a Mastodon-API server exactly once: idempotency keys as a hint, a look before
an uncertain retry, images.

Every ``status_post`` carries the step's idempotency key. Mastodon returns the
original status for a repeated key, for one hour; other servers may ignore the
header (snac does). So the key is only a hint: a retry after an attempt whose
result is unknown (``first_attempt_at`` is set) first looks for the post among
the account's own statuses (:meth:`Statuses.find`), as the Bluesky adapter
does, and is never sent again blind: at once on a server not known to keep
keys, after ~50 minutes on Mastodon.
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
from chatbot.networks.calls import Expected
from chatbot.networks.mastodon.calls import Client, gone
from chatbot.networks.mastodon.server import Server
from chatbot.networks.reading import Page, follow
from chatbot.posts import PostRef
from chatbot.script import NetworkName

log = structlog.get_logger("chatbot.networks.mastodon")

# Mastodon keeps an Idempotency-Key for 1 hour; past ~50 minutes we no longer
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

_REMOTE_MENTION = re.compile(r"(?<![\w@])(@\w+)@[\w.-]+\w(?::\d+)?")


def comparable(text: str) -> str:
    """A status text reduced for comparison: whitespace collapsed, ``@user@domain`` as ``@user``.

    Mastodon's HTML shows a remote mention as ``@user`` only.
    """
    return " ".join(_REMOTE_MENTION.sub(r"\1", text).split())


def local_mentions(text: str, domain: str) -> str:
    """``text`` with mentions of the server's own accounts by their bare name: ``@user``.

    Every Mastodon-API server reads ``@user`` as its local account (and counts
    ``@user@domain`` as ``@user`` anyway); mastodon-mock finds no account for
    ``@user@its-own-domain``, so the person would never be notified.
    """
    if not domain:
        return text
    pattern = rf"(?<![\w@])(@\w+)@{re.escape(domain)}(?![\w.:-]*\w)"
    return re.sub(pattern, r"\1", text, flags=re.IGNORECASE)


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
        server: Server,
        account: Callable[[], Any],
        clock: Callable[[], datetime],
        sleep: Callable[[float], None],
    ) -> None:
        """``account``: the bot's account (verify_credentials), read once."""
        self._client = client
        self._server = server
        self._account = account
        self._clock = clock
        self._sleep = sleep
        self._changes_seen: set[tuple[str, str]] = set()

    def post(self, request: PostRequest) -> PostRef:
        """Publish, or return the status an earlier attempt published."""
        if request.first_attempt_at is not None and not self._key_answers(request):
            # The server may ignore or have forgotten the key: look before posting again.
            found = self.find(request)
            if found is not None:
                log.info("mastodon post found from an earlier attempt", id=found.id)
                return found
        media_ids = [self._upload(attachment) for attachment in request.attachments]
        api = self._client.api
        text = local_mentions(request.text, self._local_domain())
        status = self._client(
            "posting",
            lambda: api.status_post(
                text,
                in_reply_to_id=request.parent.id if request.parent else None,
                media_ids=media_ids or None,
                visibility=request.visibility.value,
                idempotency_key=request.idempotency_key,
            ),
        )
        self._note_visibility(request, status)
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
                if _same_post(status, parent, wanted):
                    return status_ref(status)
                break
        return self._among_replies(me["id"], parent, wanted) if parent else None

    def _among_replies(self, me: str, parent: str, wanted: str) -> PostRef | None:
        """The bot's reply to ``parent`` with the ``wanted`` text, from the parent's context:
        snac leaves a private (direct) status out of its author's own statuses."""
        try:
            context = self._client(
                "reading the replies to a post",
                partial(self._client.api.status_context, parent),
                expect=gone,
            )
        except Expected:
            return None
        for status in context.get("descendants") or []:
            if str(status["account"]["id"]) == str(me) and _same_post(status, parent, wanted):
                return status_ref(status)
        return None

    def _local_domain(self) -> str:
        """The domain of local handles; "" while the instance cannot be read (a post does
        not wait for it: its mentions then stay as written)."""
        try:
            return self._server.domain()[0]
        except errors.NetworkError:
            return ""

    def _key_answers(self, request: PostRequest) -> bool:
        """Whether the server still answers a repeat of the key with the first status."""
        assert request.first_attempt_at is not None
        age = self._clock() - request.first_attempt_at
        return self._server.traits().keeps_idempotency_keys and age <= IDEMPOTENCY_TRUST

    def _note_visibility(self, request: PostRequest, status: Any) -> None:
        """Log, once per kind, a visibility the server changed on its own (snac: unlisted ->
        public, direct -> private); `chatbot check` names it before a chat."""
        asked = request.visibility.value
        given = str(status.get("visibility") or asked)
        if asked != given and (asked, given) not in self._changes_seen:
            self._changes_seen.add((asked, given))
            log.warning("server changed the visibility", asked=asked, given=given)

    def _own_statuses(self, account_id: str) -> Callable[[Any], Page[Any, Any]]:
        """The account's statuses page by page, newest first: each page leads to the next by
        its Link header, or else by max_id = its last status (snac sends no Link); a page
        with nothing new ends it (a server may ignore max_id)."""
        api = self._client.api
        seen: set[str] = set()
        first = partial(
            api.account_statuses, account_id, limit=FIND_PAGE_SIZE, exclude_reblogs=True
        )

        def fetch(before: Any) -> Page[Any, Any]:
            page: Sequence[Any] | None = self._client(
                "reading the bot's statuses",
                first if before is None else partial(self._next_page, first, before),
            )
            new = [s for s in page or [] if str(s["id"]) not in seen]
            seen.update(str(s["id"]) for s in new)
            return Page(new, page if new else None)

        return fetch

    def _next_page(self, first: Callable[..., Any], before: Any) -> Any:
        page = self._client.api.fetch_next(before)
        return first(max_id=before[-1]["id"]) if page is None else page

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
