"""Reading a chat back from Bluesky: post views as the conversation sees them, and where they
come from for the shared collection round (:mod:`chatbot.networks.reading`).

A round reads the hashtag (``searchPosts``, newest first, back to what the last
round saw), the reply, mention and quote notifications, and the threads under
the bot's posts (``getPostThread``, replies that forgot the hashtag). A post's
id is its at:// uri; ``getPosts`` says which of the posts that left the chat
still exist.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import structlog

from chatbot.networks.base import ChatThread
from chatbot.networks.bluesky.calls import not_found
from chatbot.networks.bluesky.session import Client
from chatbot.networks.calls import Expected
from chatbot.networks.reading import Found, Page, Replies, as_utc, back_to
from chatbot.posts import Author, PostRef, SeenPost
from chatbot.script import NetworkName

log = structlog.get_logger("chatbot.networks.bluesky")

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
# The notifications of posts addressed to the bot: a mention, and a reply that names
# the bot in its text (a client may file it as a reply).
ADDRESSED_REASONS = frozenset({"mention", "reply"})
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


# Where post and profile links point unless the config names another web app.
BSKY_WEB = "https://bsky.app"


def profile_url(handle: str, web: str = BSKY_WEB) -> str:
    """The account's page in the web app, by handle (the DID stays in the data)."""
    return f"{web.rstrip('/')}/profile/{handle}"


def post_url(handle: str, uri: str, web: str = BSKY_WEB) -> str:
    """The post's page in the web app, by its author's handle."""
    return f"{profile_url(handle, web)}/post/{uri.rsplit('/', 1)[-1]}"


def seen_post(view: Any, web: str = BSKY_WEB) -> SeenPost:
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
    reply = _get(record, "reply")
    parent, root = _get(reply, "parent"), _get(reply, "root")
    return SeenPost(
        network=NetworkName.BLUESKY,
        uri=uri,
        id=uri,  # what PostRef.id holds for the bot's own posts
        url=post_url(handle, uri, web),
        author=Author(
            network=NetworkName.BLUESKY,
            id=str(_get(author, "did")),
            handle=handle,
            display_name=str(_get(author, "display_name", "displayName") or ""),
            url=profile_url(handle, web),
            bot="bot" in labels,  # the self-label a bot account carries on its profile
            web_opt_out=f"{NO_UNAUTHENTICATED} label" if NO_UNAUTHENTICATED in labels else "",
        ),
        text=str(_get(record, "text") or ""),
        created_at=created,
        reply_to=str(_get(parent, "uri")) if _get(parent, "uri") else None,
        quote_of=quoted_uri(record),
        tags=post_tags(record),
        likes=int(_get(view, "like_count", "likeCount") or 0),
        reposts=int(_get(view, "repost_count", "repostCount") or 0),
        # A reply to this post needs strong refs to it and to its thread's root.
        cid=str(_get(view, "cid") or ""),
        root=str(_get(root, "uri")) if _get(root, "uri") else None,
    )


def mentions(record: Any, did: str, handle: str) -> bool:
    """Whether a post record names the account ``did``: a mention facet, or ``@handle`` in
    its text (a client that wrote no facet)."""
    for facet in _get(record, "facets") or []:
        for feature in _get(facet, "features") or []:
            kind = str(_get(feature, "py_type", "$type") or "")
            if kind.endswith("#mention") and _get(feature, "did") == did:
                return True
    text = str(_get(record, "text") or "").casefold()
    return (
        bool(handle)
        and re.search(rf"@{re.escape(handle.casefold())}(?![\w-]|\.\w)", text) is not None
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


# --- the sources of a round ---------------------------------------------------------------


class BlueskySources:
    """Where a chat's posts come from on Bluesky, for the shared round."""

    tagged_key = "searched"

    def __init__(self, client: Client, *, web: str = BSKY_WEB) -> None:
        self._client = client
        self._web = web

    def me(self) -> str:
        return self._client.did()

    def key(self, item: Any) -> tuple[str, str]:
        uri = str(_get(item, "uri"))
        return uri, uri

    def author(self, item: Any) -> str:
        return str(_get(_get(item, "author"), "did"))

    def readable(self, item: Any) -> bool:
        return True  # every post view is public

    def reply_count(self, item: Any) -> int:
        return int(_get(item, "reply_count") or _get(item, "replyCount") or 0)

    def hashtag(self, thread: ChatThread, cursors: Mapping[str, str], *, sweep: bool) -> Found[Any]:
        """Posts with the hashtag, newest first, back to what the ``search`` cursor saw (less an
        overlap); a sweep goes back to the chat's start: deletions show as absences."""
        tag = thread.hashtag.removeprefix("#")
        high = None if sweep else as_utc(cursors.get("search"))
        floor = thread.since if high is None else max(thread.since, high - SEARCH_OVERLAP)
        params: dict[str, Any] = {
            "q": f"#{tag}",  # the test AppView (no search service) matches text only
            "tag": [tag],  # production search: posts with this tag facet
            "sort": "latest",
            "since": _iso(floor),
            "limit": SEARCH_PAGE,
        }
        search = self._client.sdk.app.bsky.feed.search_posts

        def page(cursor: str | None) -> Page[Any, str]:
            answer = self._client(
                f"searching #{tag}", partial(search, {**params, "cursor": cursor}), posting=False
            )
            return Page(answer.posts, answer.cursor)

        views = back_to(floor, sort_time, page, what=f"searching #{tag}", most=MAX_PAGES)
        found = [
            view for view in views if not _before(sort_time(view), floor) and has_hashtag(view, tag)
        ]
        newest = _newest([as_utc(view.indexed_at) for view in views], high)
        return Found(found, {"search": newest.isoformat()} if newest is not None else {})

    def notified(self, thread: ChatThread, cursors: Mapping[str, str]) -> Found[Any]:
        """The posts of reply, mention and quote notifications after the ``notifications``
        cursor (the first time, since the chat's start), from the chat only; the mentions,
        and the replies that name the bot, oldest first, as the posts addressed to it."""
        high = as_utc(cursors.get("notifications"))
        floor = high or thread.since
        listing = self._client.sdk.app.bsky.notification.list_notifications

        def page(cursor: str | None) -> Page[Any, str]:
            answer = self._client(
                "reading notifications",
                partial(
                    listing,
                    {
                        "limit": NOTIFICATION_PAGE,
                        "cursor": cursor,
                        "reasons": list(NOTIFICATION_REASONS),
                    },
                ),
                posting=False,
            )
            return Page(answer.notifications, answer.cursor)

        def indexed(note: Any) -> datetime | None:
            return as_utc(note.indexed_at)

        notes = back_to(floor, indexed, page, what="reading notifications", most=MAX_PAGES)
        uris = [
            note.uri
            for note in notes
            if indexed(note) is not None
            and not _before(indexed(note), floor)
            and note.reason in NOTIFICATION_REASONS
            and "/app.bsky.feed.post/" in note.uri
        ]
        views = [
            view
            for view in self._posts(list(dict.fromkeys(uris)))
            if not _before(
                as_utc(_get(_get(view, "record"), "created_at", "createdAt")), thread.since
            )
        ]
        newest = _newest([indexed(note) for note in notes], high)
        cursor = {"notifications": newest.isoformat()} if newest is not None else {}
        return Found(views, cursor, self._addressed(notes, views))

    def _addressed(self, notes: Sequence[Any], views: Sequence[Any]) -> list[Any]:
        """The views of the mentions and of the replies that name the bot, oldest first."""
        did, handle = self._client.did(), self._client.signed_in_handle()
        by_uri = {str(_get(view, "uri")): view for view in views}
        addressed: dict[str, Any] = {}
        for note in reversed(notes):  # listNotifications is newest first
            view = by_uri.get(note.uri)
            if view is None or note.reason not in ADDRESSED_REASONS:
                continue
            if note.reason == "mention" or mentions(_get(view, "record"), did, handle):
                addressed[note.uri] = view
        return list(addressed.values())

    def replies(self, ref: PostRef) -> Replies[Any] | None:
        """The thread under a bot post, at any depth; the posts near its top are covered."""
        if "/app.bsky.feed.post/" not in ref.id:
            return Replies()  # a like (or a direct message): no thread under it
        get_thread = self._client.sdk.app.bsky.feed.get_post_thread
        try:
            answer = self._client(
                "reading the replies to the chat",
                partial(get_thread, {"uri": ref.id, "depth": THREAD_DEPTH, "parent_height": 0}),
                posting=False,
                expect=not_found,
            )
        except Expected:
            return None  # the bot's post itself is gone
        flat = list(_flatten(answer.thread))
        covered = frozenset(
            str(_get(view, "uri")) for depth, view in flat if depth <= THREAD_COVERED
        )
        return Replies([view for _depth, view in flat], covered)

    def still_there(self, ids: Sequence[str]) -> list[Any]:
        """The posts among ``ids`` that getPosts still has."""
        return self._posts(sorted(ids))

    def seen(self, item: Any) -> SeenPost | None:
        try:
            return seen_post(item, self._web)
        except (AttributeError, TypeError, ValueError) as exc:
            log.warning("bluesky post unreadable", uri=_get(item, "uri"), error=str(exc))
            return None

    def _posts(self, uris: Sequence[str]) -> list[Any]:
        """Post views for ``uris`` (getPosts, 25 at a time); deleted posts are simply absent."""
        get_posts = self._client.sdk.app.bsky.feed.get_posts
        views: list[Any] = []
        for start in range(0, len(uris), GET_POSTS_BATCH):
            batch = list(uris[start : start + GET_POSTS_BATCH])
            answer = self._client(
                "reading posts", partial(get_posts, {"uris": batch}), posting=False
            )
            views += answer.posts
        return views


def _before(moment: datetime | None, floor: datetime) -> bool:
    return moment is not None and moment < floor


def _newest(times: Sequence[datetime | None], high: datetime | None) -> datetime | None:
    known = [t for t in [*times, high] if t is not None]
    return max(known) if known else None
