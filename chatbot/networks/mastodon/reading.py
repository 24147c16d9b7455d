"""Reading a chat back from Mastodon: statuses as the conversation sees them, and where they
come from for the shared collection round (:mod:`chatbot.networks.reading`).

One instance only knows the posts that reach it, so a round reads three
sources: the hashtag timeline (forward from a cursor, without gaps), the
context of the chat's own posts (replies that forgot the hashtag), and mention
notifications; other instances' public timelines widen that
(:mod:`chatbot.networks.mastodon.others`).

Status ids are opaque strings that sort by time (numbers on Mastodon, ULIDs on
GoToSocial): :func:`~chatbot.networks.reading.id_order` compares them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from functools import partial
from typing import Any

import structlog

from chatbot.markup import html_to_text
from chatbot.networks.base import ChatThread
from chatbot.networks.calls import Expected
from chatbot.networks.mastodon.calls import Client, gone
from chatbot.networks.reading import Found, Page, Replies, as_utc, back_to, follow, id_order
from chatbot.posts import Author, PostRef, SeenPost
from chatbot.script import NetworkName

log = structlog.get_logger("chatbot.networks.mastodon")

# Timelines and notifications: at most 40 a page.
PAGE_SIZE = 40
# A safety stop for one source in one round (10,000 posts); the cursor only
# moves as far as was read, so the rest comes next round.
MAX_PAGES = 250
# A context answers at most 4,096 descendants to a user token; a bot post found
# in a smaller answer had all its replies in it and need not be read again.
CONTEXT_DESCENDANTS = 4096
# Only these reach the transcript: followers-only and direct replies are private.
READABLE = frozenset({"public", "unlisted"})
# The mention notifications of a chat (Mastodon 4.5 adds "quote" for quotes of
# the bot's posts; older servers ignore the type).
NOTIFICATION_TYPES = ("mention", "quote")
# The #nobot convention (and its variants) in a profile's bio or fields.
_OPT_OUT_TAG = re.compile(r"#(nobots?|noindex)\b", re.IGNORECASE)


# --- statuses -> SeenPost -----------------------------------------------------------------


def opt_out_reason(account: Any, *, indexable_opts_out: bool = False) -> str:
    """Why an account is never to be shown in public ("" if it may be), from its own signals.

    - ``note`` (the bio, HTML) and the profile ``fields``: the #nobot / #nobots /
      #noindex convention, case-insensitive;
    - ``indexable`` (Account entity, Mastodon 4.2+), only if ``indexable_opts_out``:
      false means the person's posts are not in full-text search. It is opt-in, so
      false is what most accounts have, and it is about search, not about being
      quoted: by default it is no signal. Absent or null is never a signal.
    """
    reasons = []
    profile = [html_to_text(str(account.get("note") or ""))]
    for item in account.get("fields") or []:
        profile += [str(item.get("name") or ""), html_to_text(str(item.get("value") or ""))]
    found = _OPT_OUT_TAG.search("\n".join(profile))
    if found:
        reasons.append(f"#{found.group(1).lower()} in the profile")
    if indexable_opts_out and account.get("indexable") is False:
        reasons.append("indexable: false")
    return "; ".join(reasons)


def web_opt_out_reason(account: Any) -> str:
    """Why an account is not to be shown on the open web ("" if it may be).

    ``noindex`` (Account entity, Mastodon 4.0+, local users of the account's
    server): the person asked search engines not to index them, so the published
    transcript leaves them out; the recap, seen on the network, may quote them.
    """
    return "noindex" if account.get("noindex") is True else ""


def full_handle(acct: str, domain: str) -> str:
    """``user@domain`` for an ``acct`` as a server gives it (local accounts have no domain)."""
    acct = acct.removeprefix("@")
    return acct if "@" in acct else f"{acct}@{domain}"


def quoted_id(status: Any) -> str | None:
    """The id of the status quoted, from ``quote`` (Mastodon 4.4+): a Quote with
    ``quoted_status`` or a ShallowQuote with ``quoted_status_id``."""
    quote = status.get("quote")
    if not quote:
        return None
    inner = quote.get("quoted_status")
    if inner:
        return str(inner["id"])
    shallow = quote.get("quoted_status_id")
    return str(shallow) if shallow is not None else None


def seen_status(status: Any, *, domain: str, indexable_opts_out: bool = False) -> SeenPost:
    """A status as the conversation sees it (``domain``: the server's, for local handles)."""
    account = status["account"]
    text = html_to_text(str(status.get("content") or ""))
    spoiler = str(status.get("spoiler_text") or "").strip()
    if spoiler:  # the content warning is part of what was written ("A2" may be in it)
        text = f"{spoiler}\n\n{text}" if text else spoiler
    created = as_utc(status.get("created_at"))
    if created is None:
        raise ValueError(f"status {status.get('id')} has no creation time")
    in_reply_to = status.get("in_reply_to_id")
    return SeenPost(
        network=NetworkName.MASTODON,
        uri=str(status.get("uri") or status.get("url") or ""),
        id=str(status["id"]),
        url=str(status.get("url") or status.get("uri") or ""),
        author=Author(
            network=NetworkName.MASTODON,
            id=str(account["id"]),
            handle=full_handle(str(account.get("acct") or account.get("username") or ""), domain),
            display_name=str(account.get("display_name") or ""),
            url=str(account.get("url") or ""),
            bot=bool(account.get("bot")),
            opt_out=opt_out_reason(account, indexable_opts_out=indexable_opts_out),
            web_opt_out=web_opt_out_reason(account),
        ),
        text=text,
        created_at=created,
        edited_at=as_utc(status.get("edited_at")),
        reply_to=str(in_reply_to) if in_reply_to is not None else None,
        quote_of=quoted_id(status),
        tags=tuple(
            dict.fromkeys(
                str(t.get("name") or "").lower() for t in status.get("tags") or [] if t.get("name")
            )
        ),
        likes=int(status.get("favourites_count") or 0),
        reposts=int(status.get("reblogs_count") or 0),
    )


def readable(status: Any) -> bool:
    """Public or unlisted, and not a boost (a boost is not a post of the conversation)."""
    return status.get("visibility") in READABLE and not status.get("reblog")


# --- paging -------------------------------------------------------------------------------


def forward(
    client: Client, what: str, fetch: Callable[[str], Any], start: str
) -> tuple[list[Any], str]:
    """Every item with an id above ``start``, oldest pages first; (items, newest id).

    With ``min_id`` Mastodon answers the page just above it, so advancing
    ``min_id`` to the newest id of each page leaves no gap and reads nothing
    twice. A short page is not trusted to be the last: only an empty one is.
    """

    def page(min_id: str | None) -> Page[Any, str]:
        items = client(what, partial(fetch, min_id or start), posting=False, paging=True)
        return Page(items, max((str(i["id"]) for i in items), key=id_order, default=None))

    items = follow(page, start, what=what, most=MAX_PAGES)
    return items, max([start, *(str(i["id"]) for i in items)], key=id_order)


def timeline(
    client: Client, what: str, fetch: Callable[..., Any], cursor: str | None, since: datetime
) -> tuple[list[Any], str | None]:
    """Items after ``cursor``; the first time, newest first back to ``since`` (older ones are
    another chat's): (items, the newest id read)."""
    if cursor:
        return forward(client, what, lambda min_id: fetch(min_id=min_id), cursor)

    def page(max_id: str | None) -> Page[Any, str]:
        items = client(
            what,
            partial(fetch, max_id=max_id) if max_id else fetch,
            posting=False,
            paging=max_id is not None,
        )
        return Page(items, min((str(i["id"]) for i in items), key=id_order, default=None))

    items = back_to(
        since, lambda item: as_utc(item.get("created_at")), page, what=what, most=MAX_PAGES
    )
    return items, max((str(i["id"]) for i in items), key=id_order, default=None)


# --- the sources of a round ---------------------------------------------------------------


class MastodonSources:
    """Where a chat's statuses come from on the bot's instance, for the shared round."""

    tagged_key = "tagged"

    def __init__(
        self,
        client: Client,
        *,
        account: Callable[[], Any],
        domain: Callable[[], str],
        indexable_opts_out: bool = False,
    ) -> None:
        """``account``: the bot's (verify_credentials); ``domain``: the one in local handles."""
        self._client = client
        self._account = account
        self._domain = domain
        self._indexable_opts_out = indexable_opts_out

    def me(self) -> str:
        return str(self._account()["id"])

    def key(self, item: Any) -> tuple[str, str]:
        return str(item["id"]), str(item["uri"])

    def author(self, item: Any) -> str:
        return str(item["account"]["id"])

    def readable(self, item: Any) -> bool:
        return readable(item)

    def hashtag(self, thread: ChatThread, cursors: Mapping[str, str], *, sweep: bool) -> Found[Any]:
        """The hashtag timeline forward from the ``tag`` cursor; a sweep starts again from the
        chat's first post (ids above it), which shows edits, deletions and remote posts that
        arrived with ids older than the cursor."""
        tag = thread.hashtag.removeprefix("#")
        floor = min((ref.id for ref in thread.bot_posts), key=id_order)
        cursor = cursors.get("tag") or floor
        api = self._client.api
        tagged, newest = forward(
            self._client,
            f"reading #{tag}",
            lambda min_id: api.timeline_hashtag(tag, min_id=min_id, limit=PAGE_SIZE),
            floor if sweep else cursor,
        )
        return Found(tagged, {"tag": max(newest, cursor, key=id_order)})

    def notified(self, thread: ChatThread, cursors: Mapping[str, str]) -> Found[Any]:
        """Mentions (and, on Mastodon 4.5+, quotes) of the bot during the chat."""
        api = self._client.api

        def fetch(**page: Any) -> Any:
            return api.notifications(types=list(NOTIFICATION_TYPES), limit=PAGE_SIZE, **page)

        notes, newest = timeline(
            self._client, "reading mentions", fetch, cursors.get("mentions"), thread.since
        )
        statuses = []
        for note in notes:
            status = note.get("status")
            created = as_utc(status.get("created_at")) if status else None
            if status and created is not None and created >= thread.since:
                statuses.append(status)
        return Found(statuses, {"mentions": newest} if newest is not None else {})

    def replies(self, ref: PostRef) -> Replies[Any] | None:
        """The context of a bot post: its descendants at any depth, with or without the hashtag."""
        try:
            context = self._client(
                "reading the replies to the chat",
                partial(self._client.api.status_context, ref.id),
                posting=False,
                expect=gone,
            )
        except Expected:
            return None  # the bot's post itself is gone
        descendants = list(context.get("descendants") or [])
        complete = len(descendants) < CONTEXT_DESCENDANTS
        covered = frozenset(str(d["id"]) for d in descendants) if complete else frozenset()
        return Replies(descendants, covered)

    def still_there(self, ids: Sequence[str]) -> list[Any]:
        """The statuses among ``ids`` that a 404 does not say are deleted."""
        found = []
        for sid in ids:
            try:
                found.append(
                    self._client(
                        "checking a post that left the chat",
                        partial(self._client.api.status, sid),
                        posting=False,
                        expect=gone,
                    )
                )
            except Expected:
                continue
        return found

    def seen(self, item: Any) -> SeenPost | None:
        try:
            return seen_status(
                item, domain=self._domain(), indexable_opts_out=self._indexable_opts_out
            )
        except (KeyError, TypeError, ValueError) as exc:
            log.warning("mastodon status unreadable", id=item.get("id"), error=str(exc))
            return None
