"""What the Mastodon and Bluesky readers share: the collection round, paging, remembered posts.

A reader is polled every round (15 s while a chat runs). Most rounds read only
what is new since the cursors; every few rounds a *sweep* reads the chat's
hashtag from its first post again, which is how edits and deletions of posts
that sit in no thread are noticed. The ids of the posts seen in threads and
under the hashtag are remembered in the cursors themselves (the store keeps
cursors per chat and network), so a restart knows what it saw before.

A network supplies only what differs (:class:`Sources`): its hashtag, its
notifications, the thread under one of the bot's posts, and whether posts that
left the chat are still there. :class:`CollectionRound` does the rest, the same
for every network:

1. keep: readable posts only, and none of the bot's own;
2. read the hashtag (from its cursor, or on a sweep from the chat's start), the
   notifications, and the threads under the bot's posts (every round: edits and
   deletions show there; one read usually covers the whole chat);
3. vanished: a post remembered in a thread (on a sweep, also one remembered
   under the hashtag) and not seen now is deleted only when the network says it
   is gone; otherwise it is only out of sight (its parent was deleted, its
   hashtag edited away) and returned as it is;
4. remember the posts seen, in the cursors, beside where each source resumes;
5. the posts addressed to the bot (mentions, direct messages: where co-moderators'
   commands come from), oldest first, each once: a source may read the same
   notification again in the next round (an overlap by time), so the ids handed
   over are remembered in the ``to_bot`` cursor;
6. side threads: on a sweep, the replies under a participant's own hashtag post (a
   conversation beside the bot's thread, often without the hashtag) are read for each
   such post whose reply count changed since it was last read; the ``side`` cursor
   keeps each one's count and replies, so a reply deleted there is noticed too.

Any error raises before a cursor is returned, so a failed round is read again
from the same cursors and loses nothing. :func:`follow` is the one paging loop.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Generic, Protocol, TypeVar

import structlog

from chatbot.networks.base import ChatThread, Collected
from chatbot.posts import PostRef, SeenPost

log = structlog.get_logger("chatbot.networks.reading")
T = TypeVar("T")  # a post as the SDK gives it (a status, a post view)
C = TypeVar("C")  # where a page starts (an id, an opaque cursor, the page before)

# A sweep every this many rounds (every 2 minutes at the runner's 15 s), and on
# the first round of every process, so a restart re-reads what changed meanwhile.
SWEEP_ROUNDS = 8
# The cursor that remembers the posts seen in the chat's threads.
THREADS = "threads"
# The cursor that remembers the posts addressed to the bot handed over last round.
TO_BOT = "to_bot"
# The cursor of side threads: {post id: {"n": its reply count, "replies": {id: uri}}}.
SIDE = "side"


# --- paging ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Page(Generic[T, C]):
    """One page of a listing and where the next one starts."""

    items: Sequence[T]
    next: C | None  # None: no page follows


def follow(
    fetch: Callable[[C | None], Page[T, C]],
    start: C | None,
    *,
    what: str,
    most: int,
    enough: Callable[[Sequence[T]], bool] | None = None,
    warn: bool = True,
) -> list[T]:
    """The items of the pages from ``start`` on, until a page is empty, has no next, or is
    ``enough``; at most ``most`` pages. A short page is not trusted to be the last."""
    items: list[T] = []
    cursor = start
    for _ in range(most):
        page = fetch(cursor)
        if not page.items:
            return items
        items.extend(page.items)
        if page.next is None or (enough is not None and enough(page.items)):
            return items
        cursor = page.next
    if warn:
        # The cursor only moves as far as was read: the rest comes next round.
        log.warning("more pages than one round reads", what=what, pages=most)
    return items


def back_to(
    floor: datetime,
    when: Callable[[T], datetime | None],
    fetch: Callable[[C | None], Page[T, C]],
    *,
    what: str,
    most: int,
) -> list[T]:
    """Pages newest first until one reaches back past ``floor`` (by ``when``), or the end."""

    def reached(page: Sequence[T]) -> bool:
        return any(t is not None and t < floor for t in map(when, page))

    return follow(fetch, None, what=what, most=most, enough=reached)


# --- remembered posts and times -------------------------------------------------------------


class Rounds:
    """Counts collection rounds per chat and says which ones sweep."""

    def __init__(self, every: int = SWEEP_ROUNDS) -> None:
        self.every = max(1, every)
        self._counts: dict[str, int] = {}
        self._lock = threading.Lock()

    def next_is_sweep(self, chat_id: str) -> bool:
        """Count a round for ``chat_id``; True for the first one and every ``every``-th."""
        with self._lock:
            count = self._counts.get(chat_id, 0)
            self._counts[chat_id] = count + 1
        return count % self.every == 0


def remembered(cursors: Mapping[str, str], source: str) -> dict[str, str]:
    """The posts remembered under ``source`` (id -> uri); {} when absent or unreadable."""
    raw = cursors.get(source, "")
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        return {}
    if isinstance(value, dict):
        return {str(k): str(v) for k, v in value.items()}
    if isinstance(value, list):  # a list of uris: the id is the uri (Bluesky)
        return {str(v): str(v) for v in value}
    return {}


def _sides(raw: str) -> dict[str, dict[str, Any]]:
    """The ``side`` cursor: {post id: {"n": reply count, "replies": {id: uri}}}."""
    try:
        value = json.loads(raw) if raw else {}
    except ValueError:
        return {}
    if not isinstance(value, dict):
        return {}
    return {
        str(k): {
            "n": int(v.get("n", 0)),
            "replies": {str(a): str(b) for a, b in dict(v.get("replies", {})).items()},
        }
        for k, v in value.items()
        if isinstance(v, dict)
    }


def remember(posts: Mapping[str, str]) -> str:
    """``posts`` (id -> uri) as a cursor value, stable for equal content."""
    if all(k == v for k, v in posts.items()):
        return json.dumps(sorted(posts), separators=(",", ":"))
    return json.dumps(dict(sorted(posts.items())), separators=(",", ":"))


def as_utc(value: Any) -> datetime | None:
    """A time from an API as aware UTC: datetimes (naive ones are UTC) or ISO 8601 strings."""
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        try:
            value = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            return None
    if not isinstance(value, datetime):
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


# The #nobot convention (and its variants) in a profile's bio, on any network.
OPT_OUT_TAG = re.compile(r"#(nobots?|noindex)\b", re.IGNORECASE)


def opt_out_in(profile: str) -> str:
    """Why a profile's text opts its person out of bots ("#nobot in the profile"), or ""."""
    found = OPT_OUT_TAG.search(profile)
    return f"#{found.group(1).lower()} in the profile" if found else ""


def id_order(value: str) -> tuple[int, str]:
    """A sort key for server ids: numbers by value (Mastodon), same-length ULIDs by text."""
    return len(value), value


# --- the round ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Found(Generic[T]):
    """Posts one source read, and where it resumes next round."""

    items: Sequence[T] = ()
    cursors: dict[str, str] = field(default_factory=dict)
    # Posts addressed to the bot, oldest first, whatever their visibility (a direct
    # message is among them and not among ``items``' readable posts).
    addressed: Sequence[T] = ()


@dataclass(frozen=True)
class Replies(Generic[T]):
    """The posts under one of the bot's posts, and the posts whose replies are all among them."""

    items: Sequence[T] = ()
    covered: frozenset[str] = frozenset()  # ids: their threads need no read of their own


class Sources(Protocol[T]):
    """What a network supplies to the collection round: where posts come from, how to read one."""

    # The cursor that remembers the posts seen under the hashtag.
    tagged_key: str

    def me(self) -> str:
        """The id of the bot's account, as posts name their author."""
        ...

    def key(self, item: T) -> tuple[str, str]:
        """(id, uri) of a post."""
        ...

    def author(self, item: T) -> str:
        """The id of a post's author."""
        ...

    def readable(self, item: T) -> bool:
        """Whether a post may reach the transcript at all (public, not a boost)."""
        ...

    def hashtag(self, thread: ChatThread, cursors: Mapping[str, str], *, sweep: bool) -> Found[T]:
        """Posts under the chat's hashtag after the cursors (on a sweep: since the chat began)."""
        ...

    def notified(self, thread: ChatThread, cursors: Mapping[str, str]) -> Found[T]:
        """The chat's posts the bot was notified of (mentions, quotes, replies) since then."""
        ...

    def replies(self, ref: PostRef) -> Replies[T] | None:
        """The thread under a post (the bot's, or a participant's with replies), at any
        depth; None if that post is gone."""
        ...

    def reply_count(self, item: T) -> int:
        """How many replies the server says a post has (0 when it does not say)."""
        ...

    def still_there(self, ids: Sequence[str]) -> Iterable[T]:
        """Those of the posts ``ids`` that still exist; a deleted one is simply absent."""
        ...

    def seen(self, item: T) -> SeenPost | None:
        """A post as the conversation sees it; None (and a log line) if it cannot be read."""
        ...


class CollectionRound(Generic[T]):
    """The collection round every network shares, over the :class:`Sources` it supplies."""

    def __init__(self, sources: Sources[T], *, sweep_every: int = SWEEP_ROUNDS) -> None:
        self.sources = sources
        self._rounds = Rounds(sweep_every)

    def __call__(self, thread: ChatThread, cursors: Mapping[str, str]) -> Collected:
        """The chat's posts new or changed since ``cursors``; errors raise, moving no cursor."""
        sources = self.sources
        bot_ids = {ref.id for ref in thread.bot_posts}
        if not bot_ids:
            return Collected()
        me = sources.me()
        sweep = self._rounds.next_is_sweep(thread.chat_id)
        kept: dict[str, T] = {}  # id -> post, everything worth returning this round

        def keep(items: Iterable[T]) -> dict[str, str]:
            """The readable posts of others among ``items`` (id -> uri), kept for the round."""
            now: dict[str, str] = {}
            for item in items:
                post_id, uri = sources.key(item)
                if sources.readable(item) and post_id not in bot_ids and sources.author(item) != me:
                    kept[post_id] = item
                    now[post_id] = uri
            return now

        tagged = sources.hashtag(thread, cursors, sweep=sweep)
        tag_now = keep(tagged.items)
        notified = sources.notified(thread, cursors)
        keep(notified.items)
        thread_now: dict[str, str] = {}
        covered: set[str] = set()
        for ref in thread.bot_posts:
            if ref.id in covered:
                continue
            replies = sources.replies(ref)
            if replies is not None:
                covered |= replies.covered
                thread_now.update(keep(replies.items))

        if sweep:
            under_bot = set(thread_now) | covered
            side, side_gone = self._side_threads(thread, cursors, kept, under_bot, keep)
        else:
            side, side_gone = _sides(cursors.get(SIDE, "")), {}
        known_tagged = remembered(cursors, sources.tagged_key)
        vanished = {i: u for i, u in remembered(cursors, THREADS).items() if i not in thread_now}
        vanished.update(side_gone)
        if sweep:
            vanished.update({i: u for i, u in known_tagged.items() if i not in tag_now})
        vanished = {i: u for i, u in vanished.items() if i not in kept}
        alive = list(sources.still_there(list(vanished)))
        keep(alive)
        there = {sources.key(item)[0] for item in alive}
        deleted = {i: u for i, u in vanished.items() if i not in there}
        tagged_after = tag_now if sweep else {**known_tagged, **tag_now}

        posts = [post for item in kept.values() if (post := sources.seen(item)) is not None]
        to_bot, to_bot_cursor = self._addressed(notified.addressed, cursors, bot_ids, me)
        return Collected(
            posts=tuple(posts),
            deleted=tuple(deleted.values()),
            cursors={
                **tagged.cursors,
                **notified.cursors,
                THREADS: remember(thread_now),
                sources.tagged_key: remember(
                    {i: u for i, u in tagged_after.items() if i not in deleted}
                ),
                **to_bot_cursor,
                **({SIDE: json.dumps(side, sort_keys=True, separators=(",", ":"))} if side else {}),
            },
            to_bot=tuple(to_bot),
        )

    def _side_threads(
        self,
        thread: ChatThread,
        cursors: Mapping[str, str],
        kept: Mapping[str, T],
        under_bot: set[str],
        keep: Callable[[Iterable[T]], dict[str, str]],
    ) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
        """The replies under participants' posts outside the bot's thread whose reply count
        changed (kept for the round), the ``side`` cursor after it, and the replies no
        longer there (id -> uri) for the round's check of what vanished."""
        sources = self.sources
        before = _sides(cursors.get(SIDE, ""))
        after: dict[str, dict[str, Any]] = {}
        gone: dict[str, str] = {}
        network = thread.bot_posts[0].network
        for post_id, item in list(kept.items()):
            if post_id in under_bot:
                continue
            count = sources.reply_count(item)
            known = before.get(post_id, {"n": 0, "replies": {}})
            if count == known["n"]:
                if known["replies"]:
                    after[post_id] = known
                continue
            replies = sources.replies(PostRef(network, post_id))
            found = keep(replies.items) if replies is not None else {}
            found.pop(post_id, None)  # a thread read may include the post itself
            after[post_id] = {"n": count, "replies": found}
            gone.update({i: u for i, u in known["replies"].items() if i not in found})
        for post_id, known in before.items():
            if post_id not in kept and post_id not in after:
                after[post_id] = known  # not seen this round: kept as it was
        return {k: v for k, v in after.items() if v["replies"] or v["n"]}, gone

    def _addressed(
        self, items: Iterable[T], cursors: Mapping[str, str], bot_ids: set[str], me: str
    ) -> tuple[list[SeenPost], dict[str, str]]:
        """The posts addressed to the bot not handed over before, oldest first, and the cursor
        that remembers this round's (a later round reads back no further than this one)."""
        sources = self.sources
        before = remembered(cursors, TO_BOT)
        now: dict[str, str] = {}
        fresh: list[SeenPost] = []
        for item in items:
            post_id, uri = sources.key(item)
            if post_id in bot_ids or post_id in now or sources.author(item) == me:
                continue
            now[post_id] = uri
            if post_id not in before and (post := sources.seen(item)) is not None:
                fresh.append(post)
        return fresh, ({TO_BOT: remember(now)} if now or before else {})
