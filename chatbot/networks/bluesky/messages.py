"""Direct messages on Bluesky: commands a co-moderator sends the bot privately, and the
answers to them.

Bluesky's direct messages live in a chat service, not in the account's repo: the
PDS forwards ``chat.bsky.*`` calls to it when asked with the header
``atproto-proxy: did:web:api.bsky.chat#bsky_chat`` (docs.bsky.app, "Direct
messages"). Not every account's service offers them: an app password made without
"allow access to your direct messages" is refused ("Bad token scope"), a PDS
without a chat service does not know the methods (501) or cannot reach the
service (the dev-env PDS: 500, it cannot resolve ``did:web:api.bsky.chat``).
So the service is asked, and while it does not answer, the bot reads only
mentions (:mod:`chatbot.networks.bluesky.reading`) and asks again later: an
hour after a refusal, a minute after a failure.

- reading: ``chat.bsky.convo.listConvos`` (most recent first), then for each
  conversation whose ``rev`` moved since the ``dms`` cursor,
  ``chat.bsky.convo.getMessages`` (newest first) back to the cursor's ``rev``
  or the chat's start. A message's id in the bot is :func:`message_ref`
  (``bsky-dm:<convo>/<message>``): never an at:// uri, since it is no record.
- answering: ``chat.bsky.convo.sendMessage`` into the same conversation, once:
  the messages after the one answered are looked through first for the same
  text from the bot (a message cannot be written at a key of our choosing).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from functools import partial
from typing import Any

import structlog

from chatbot import errors
from chatbot.networks.base import ChatThread, PostRequest
from chatbot.networks.bluesky.calls import SESSION_ERRORS
from chatbot.networks.bluesky.reading import (
    BSKY_WEB,
    NO_UNAUTHENTICATED,
    post_labels,
    profile_url,
)
from chatbot.networks.bluesky.session import Client
from chatbot.networks.calls import Expected, Failure
from chatbot.networks.reading import as_utc, remembered
from chatbot.posts import Author, PostRef, SeenPost
from chatbot.script import NetworkName

log = structlog.get_logger("chatbot.networks.bluesky")

# The chat service, for the PDS to forward chat.bsky.* calls to.
CHAT_PROXY = {"atproto-proxy": "did:web:api.bsky.chat#bsky_chat"}
PREFIX = "bsky-dm:"
# The cursor: {conversation id: the rev of the newest message read there}.
CURSOR = "dms"
# listConvos and getMessages: at most 100 a page.
PAGE = 100
MAX_PAGES = 20
# When the service refused (no chat service, no permission), ask again after this;
# when it failed (a 5xx, no answer), after this.
REFUSED_FOR = timedelta(hours=1)
FAILED_FOR = timedelta(minutes=1)


def message_ref(convo_id: str, message_id: str) -> str:
    """The id a direct message has in the bot (as a post's id is its at:// uri)."""
    return f"{PREFIX}{convo_id}/{message_id}"


def is_message(ref_id: str) -> bool:
    return ref_id.startswith(PREFIX)


def split_ref(ref_id: str) -> tuple[str, str]:
    """(conversation id, message id) of :func:`message_ref`'s id."""
    convo, _, message = ref_id.removeprefix(PREFIX).partition("/")
    if not convo or not message:
        raise errors.Rejected(f"not a direct message's address: {ref_id}")
    return convo, message


def not_offered(failure: Failure) -> bool:
    """The service does not offer direct messages to this session (or cannot now)."""
    if failure.status == 429:
        return False  # a rate limit is the round's, like any other
    if failure.error in SESSION_ERRORS and "scope" not in failure.detail.lower():
        return False  # a dead session: the client signs in again
    return failure.unreachable or failure.status is None or failure.status >= 400


def _get(obj: Any, name: str) -> Any:
    return obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)


class DirectMessages:
    """The bot's direct messages, where the account's service offers them."""

    def __init__(
        self, client: Client, *, clock: Callable[[], datetime], web: str = BSKY_WEB
    ) -> None:
        self._client = client
        self._clock = clock
        self._web = web
        self._closed_until: datetime | None = None  # not offered until then
        self._offered: bool | None = None  # what the last answer said, for the log

    # --- reading --------------------------------------------------------------------------

    def read(
        self, thread: ChatThread, cursors: Mapping[str, str]
    ) -> tuple[list[SeenPost], dict[str, str]]:
        """Messages to the bot since the ``dms`` cursor (the first time, since the chat's
        start), oldest first, and the cursor after them; none where DMs are not offered."""
        if self._closed_until is not None and self._clock() < self._closed_until:
            return [], {}
        before = remembered(cursors, CURSOR)  # {conversation id: rev}
        try:
            convos = self._convos(before, thread.since)
        except Expected as exc:
            self._close(exc.failure)
            return [], {}
        self._open()
        me = self._client.did()
        found: list[tuple[str, SeenPost]] = []
        revs = dict(before)
        for convo in convos:
            convo_id, rev = str(_get(convo, "id")), str(_get(convo, "rev") or "")
            members = {str(_get(m, "did")): m for m in _get(convo, "members") or []}
            # The conversation's rev moves with every event in it (a message, a reaction):
            # kept, so an unchanged conversation is not read again.
            revs[convo_id] = max(revs.get(convo_id, ""), rev)
            for message in self._messages(convo_id, before.get(convo_id, ""), thread.since):
                sender = str(_get(_get(message, "sender"), "did"))
                revs[convo_id] = max(revs[convo_id], str(_get(message, "rev")))
                if sender != me and (
                    post := _seen(convo_id, message, members.get(sender), self._web)
                ):
                    found.append((str(_get(message, "rev")), post))
        found.sort(key=lambda item: (item[1].created_at, item[0]))
        return [post for _rev, post in found], ({CURSOR: _dump(revs)} if revs else {})

    def _convos(self, before: Mapping[str, str], since: datetime) -> list[Any]:
        """The conversations with news, most recent first: down to the first one that has
        not moved since the cursor, or whose last message is older than the chat."""
        listing = self._client.sdk.chat.bsky.convo.list_convos
        convos: list[Any] = []
        cursor: str | None = None
        for _ in range(MAX_PAGES):
            answer = self._client(
                "reading direct messages",
                partial(listing, {"limit": PAGE, "cursor": cursor}, headers=CHAT_PROXY),
                posting=False,
                expect=not_offered,
            )
            page = list(answer.convos)
            news = [c for c in page if _moved(c, before) and not _older(c, since)]
            convos += news
            cursor = answer.cursor
            if not cursor or not page or len(news) < len(page):
                break
        return convos

    def _page_of(self, convo_id: str, cursor: str | None, *, posting: bool) -> Any:
        """One page of a conversation's messages, newest first."""
        getter = self._client.sdk.chat.bsky.convo.get_messages
        return self._client(
            "reading direct messages",
            partial(
                getter, {"convoId": convo_id, "limit": PAGE, "cursor": cursor}, headers=CHAT_PROXY
            ),
            posting=posting,
        )

    def _messages(self, convo_id: str, after_rev: str, since: datetime) -> list[Any]:
        """The messages of a conversation after ``after_rev`` and not before ``since``."""
        messages: list[Any] = []
        cursor: str | None = None
        for _ in range(MAX_PAGES):
            answer = self._page_of(convo_id, cursor, posting=False)
            page = list(answer.messages)
            newer = [m for m in page if _after(m, after_rev, since)]
            # A deleted message (deletedMessageView) or a system one has no text.
            messages += [m for m in newer if _get(m, "text") is not None]
            cursor = answer.cursor
            if not cursor or not page or len(newer) < len(page):
                break
        return messages

    def _close(self, failure: Failure) -> None:
        status = failure.status
        refused = status is not None and (400 <= status < 500 or status == 501)
        self._closed_until = self._clock() + (REFUSED_FOR if refused else FAILED_FOR)
        if self._offered is not False:
            log.info(
                "bluesky direct messages not offered; commands come by mention",
                reason=failure.detail,
                again=self._closed_until.isoformat(),
            )
        self._offered = False

    def _open(self) -> None:
        self._closed_until = None
        if self._offered is not True:
            log.info("bluesky direct messages read")
        self._offered = True

    # --- answering ------------------------------------------------------------------------

    def send(self, request: PostRequest) -> PostRef:
        """Answer the message ``request.parent`` in its conversation, once."""
        assert request.parent is not None
        found = self.find(request)
        if found is not None:
            return found
        convo_id, _message = split_ref(request.parent.id)
        sdk = self._client.sdk
        sent = self._client(
            "answering a direct message",
            partial(
                sdk.chat.bsky.convo.send_message,
                {"convoId": convo_id, "message": {"text": request.text}},
                headers=CHAT_PROXY,
            ),
        )
        return PostRef(NetworkName.BLUESKY, message_ref(convo_id, str(sent.id)))

    def find(self, request: PostRequest) -> PostRef | None:
        """The bot's answer to ``request.parent`` with the same text, if it was sent before."""
        if request.parent is None:
            return None
        convo_id, message_id = split_ref(request.parent.id)
        me = self._client.did()
        cursor: str | None = None
        for _ in range(MAX_PAGES):
            answer = self._page_of(convo_id, cursor, posting=True)  # before an answer is sent
            wanted = " ".join(request.text.split())
            for message in answer.messages:  # newest first, down to the one answered
                if str(_get(message, "id")) == message_id:
                    return None
                sender = str(_get(_get(message, "sender"), "did"))
                if sender == me and " ".join(str(_get(message, "text")).split()) == wanted:
                    found = message_ref(convo_id, str(_get(message, "id")))
                    return PostRef(NetworkName.BLUESKY, found)
            cursor = answer.cursor
            if not cursor or not answer.messages:
                return None
        return None


def _moved(convo: Any, before: Mapping[str, str]) -> bool:
    return str(_get(convo, "rev")) > before.get(str(_get(convo, "id")), "")


def _older(convo: Any, since: datetime) -> bool:
    """Whether a conversation's last message was sent before ``since`` (the chat's start)."""
    last = _get(convo, "last_message")
    sent = as_utc(_get(last, "sent_at") or _get(last, "sentAt")) if last is not None else None
    return sent is not None and sent < since


def _after(message: Any, after_rev: str, since: datetime) -> bool:
    sent = as_utc(_get(message, "sent_at") or _get(message, "sentAt"))
    return str(_get(message, "rev")) > after_rev and (sent is None or sent >= since)


def _seen(convo_id: str, message: Any, member: Any, web: str) -> SeenPost | None:
    """A message as the desk sees a post: text, author, time; direct, never public."""
    sent = as_utc(_get(message, "sent_at") or _get(message, "sentAt"))
    did = str(_get(_get(message, "sender"), "did"))
    if sent is None:
        return None
    handle = str(_get(member, "handle") or did)
    labels = post_labels(member) if member is not None else []
    ref = message_ref(convo_id, str(_get(message, "id")))
    return SeenPost(
        network=NetworkName.BLUESKY,
        uri=ref,
        id=ref,
        url="",  # a direct message has no public address
        author=Author(
            network=NetworkName.BLUESKY,
            id=did,
            handle=handle,
            display_name=str(_get(member, "display_name") or _get(member, "displayName") or ""),
            url=profile_url(handle, web),
            bot="bot" in labels,
            web_opt_out=f"{NO_UNAUTHENTICATED} label" if NO_UNAUTHENTICATED in labels else "",
        ),
        text=str(_get(message, "text") or ""),
        created_at=sent,
        direct=True,
    )


def _dump(revs: Mapping[str, str]) -> str:
    return json.dumps(dict(sorted(revs.items())), separators=(",", ":"))
