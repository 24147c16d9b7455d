"""The collection round: a chat's new posts read from each network, attributed, stored.

One round per chat at a time (a lock per chat), only from the chat's
collection job or when the recap asks for a final reading: two rounds never
race on the cursors. Each round's outcome is recorded per network, so
``chatbot status`` and the recap know whether the answers could be read.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path

import structlog

from chatbot.archive import transcript_missing
from chatbot.collect.attribution import (
    ChatView,
    host_handles,
    judge,
    merge_moderation,
    view_for,
)
from chatbot.collect.cadence import STREAMED_FACTOR, Cadence, poll_interval
from chatbot.collect.care import Care, Fresh
from chatbot.errors import AuthFailed, NetworkError, RateLimited
from chatbot.kinds import REPLY_KINDS, StepKind
from chatbot.metrics import NoMetrics, Observer
from chatbot.networks.base import ChatThread, Collected, Listening, Network, Reader
from chatbot.plan import ChatPlan
from chatbot.posts import Author, PostRef, SeenPost
from chatbot.run import policy
from chatbot.script import ChatScript, Moderation, NetworkName
from chatbot.store import OVER_STATES, ChatRow, ChatState, Store, StoredPost, UnitRow, UnitState

log = structlog.get_logger("chatbot.collect")
Clock = Callable[[], datetime]

# Posting has priority over reading: a collection round that would run this
# close to a post on the same network waits for the next round.
POSTING_GUARD = timedelta(seconds=2)
# A stream's wake-up runs a round this soon (events in a burst share it), and never
# sooner than this after the chat's previous round (nor than the network's own gap, which
# keeps woken rounds within their share of its request limit): a round costs requests.
WAKE_DELAY = timedelta(milliseconds=300)
WOKEN_GAP = timedelta(seconds=2)
# A post a stream carried waits this long (seconds) for a round reading the chat; after
# that it is held, and stored as soon as that round is done.
TAKE_WAIT = 1.0
# Collection ends once every network has been read after the answer window closed (a bot
# down, or busy, when it closed reads once more when it can), or this long after it closed.
CATCH_UP = timedelta(hours=1)


@dataclass
class IngestStats:
    """What one collection round changed, and the posts it saw for the first time."""

    new: int = 0
    changed: int = 0
    deleted: int = 0
    answers: int = 0
    fresh: list[Fresh] = field(default_factory=list)

    def __iadd__(self, other: IngestStats) -> IngestStats:
        self.new += other.new
        self.changed += other.changed
        self.deleted += other.deleted
        self.answers += other.answers
        self.fresh += other.fresh
        return self


@dataclass(frozen=True)
class ChatSetup:
    """What a round needs from the chat's script: its question count, hosts and filters."""

    question_count: int
    hosts: Mapping[NetworkName, frozenset[str]]
    moderation: Moderation

    @classmethod
    def of(cls, plan: ChatPlan, script: ChatScript, moderation: Moderation) -> ChatSetup:
        """From the chat's plan and script; ``moderation`` is the config's, merged in."""
        return cls(
            question_count=sum(1 for s in plan.steps if s.kind is StepKind.QUESTION),
            hosts={n: host_handles(script, n) for n in NetworkName},
            moderation=merge_moderation(moderation, script.moderation),
        )


class Collector:
    """Runs collection rounds, one chat at a time per chat."""

    def __init__(
        self,
        *,
        store: Store,
        networks: Mapping[NetworkName, Network],
        clock: Clock,
        setup: Callable[[str], ChatSetup | None],
        every: timedelta,
        answer_tail: timedelta,
        on_over: Callable[[str], None] = lambda _chat_id: None,
        metrics: Observer | None = None,
        care: Care | None = None,
        commands: Callable[[str, NetworkName, Sequence[SeenPost]], None] | None = None,
        wake: Callable[[str, datetime], None] | None = None,
        cadences: Mapping[NetworkName, Cadence] | None = None,
        streamed_every: timedelta | None = None,
    ) -> None:
        """``wake(chat_id, when)`` books the chat's collection job earlier (a stream heard
        something); ``cadences``: how often each polled network is read (default: ``every``);
        ``streamed_every``: how often a network whose streams are live is read anyway
        (default: ``every`` times STREAMED_FACTOR)."""
        self._store = store
        self._networks = networks
        self._clock = clock
        self._setup = setup
        self.every = every
        self._answer_tail = answer_tail
        self._on_over = on_over
        self._metrics = metrics or NoMetrics()
        self._care = care
        self._commands = commands
        self._locks: dict[str, threading.Lock] = {}
        self._locks_lock = threading.Lock()
        self._wake = wake
        self._cadences = dict(cadences or {})
        self.streamed_every = max(streamed_every or every * STREAMED_FACTOR, every)
        # When each (chat, network) is read next, which ones a stream woke, and when each
        # chat's last round began (for the gap between woken rounds).
        self._due: dict[tuple[str, NetworkName], datetime] = {}
        self._woken: set[tuple[str, NetworkName]] = set()
        self._last_round: dict[str, datetime] = {}
        # Posts streams carried while a round held the chat: stored once it is done.
        self._held: dict[str, list[tuple[NetworkName, tuple[SeenPost, ...]]]] = {}
        self._state_lock = threading.Lock()

    def lock_of(self, chat_id: str) -> threading.Lock:
        """The lock a chat's collection rounds take, one at a time."""
        with self._locks_lock:
            return self._locks.setdefault(chat_id, threading.Lock())

    def round(self, chat_id: str, *, scheduled: bool = False) -> datetime | None:
        """One round for the chat; returns when to read again (None: collection is over).

        ``scheduled`` (the chat's collection job): only the networks that are due, or that
        a stream woke, are read; otherwise (the recap's final reading) every network is."""
        with self.lock_of(chat_id):
            again = self._round(chat_id, scheduled=scheduled)
            self._take_held(chat_id)  # what streams carried while it read
            return again

    def begin(self, chat_id: str) -> None:
        """Collection of the chat starts here (this replica posted its first step): the
        networks that stream start listening now, so the first answers are stored, and
        wake a round, before the first polling round is due."""
        chat = self._store.chats.get(chat_id)
        if chat is None:
            return
        with self._state_lock:
            self._last_round.setdefault(chat_id, self._clock())
        for name, network in self._networks.items():
            if isinstance(network, Listening):
                network.listen(chat_id, chat.hashtag, partial(self.arrived, network=name))

    def arrived(
        self, chat_id: str, posts: Sequence[SeenPost] = (), *, network: NetworkName
    ) -> None:
        """A stream heard something for the chat: the ``posts`` it carried are stored now, and
        the next round reads ``network`` soon (edits, replies elsewhere, what streams miss)."""
        if posts:
            try:
                self._take(chat_id, network, posts)
            except Exception:  # the stream lives on; the next round reads them
                log.exception("storing streamed posts failed", chat=chat_id)
        now = self._clock()
        with self._state_lock:
            self._woken.add((chat_id, network))
            last = self._last_round.get(chat_id)
        when = now + WAKE_DELAY
        reader = self._networks.get(network)
        gap = max(WOKEN_GAP, reader.woken_gap()) if isinstance(reader, Listening) else WOKEN_GAP
        if last is not None:
            when = max(when, last + gap)
        if self._wake is not None:
            self._wake(chat_id, when)

    def _take(self, chat_id: str, name: NetworkName, posts: Sequence[SeenPost]) -> None:
        """Store the chat's posts among those a stream carried (under its hashtag, or
        replies to its posts), as a round would, if this replica reads the chat (a round
        ran lately) and no round is reading it now (that round reads them anyway)."""
        lock = self.lock_of(chat_id)
        if not lock.acquire(timeout=TAKE_WAIT):
            with self._state_lock:  # a round is reading: stored as soon as it is done
                self._held.setdefault(chat_id, []).append((name, tuple(posts)))
            return
        try:
            self._take_held(chat_id)
            self._take_locked(chat_id, name, posts)
        finally:
            lock.release()

    def _take_locked(self, chat_id: str, name: NetworkName, posts: Sequence[SeenPost]) -> None:
        now = self._clock()
        with self._state_lock:
            last = self._last_round.get(chat_id)
        chat = self._store.chats.get(chat_id)
        if chat is None or last is None or now - last > 2 * self.streamed_every:
            return
        view = self._view(chat_id, self._store.units.of_chat(chat_id), name)
        tag = chat.hashtag.removeprefix("#").lower()
        # The chat's: under its hashtag, or a reply to one of its own posts.
        ours = tuple(p for p in posts if tag in p.tags or p.reply_to in view.bot_posts)
        stats = ingest(self._store, view, Collected(posts=ours), now=now)
        if self._care is not None and stats.fresh:
            self._care.after_round(chat_id, name, stats.fresh)
        if stats.new or stats.changed:
            log.info("streamed", chat=chat_id, network=name.value, new=stats.new)

    def _take_held(self, chat_id: str) -> None:
        """Store the posts streams carried while a round held the chat (its lock is held)."""
        with self._state_lock:
            held = self._held.pop(chat_id, [])
        for name, posts in held:
            self._take_locked(chat_id, name, posts)

    def final_round(self, chat_id: str) -> datetime | None:
        """The round just before the recap is composed: it reads even with a post due soon
        (the recap is that post), so the recap counts every answer."""
        with self.lock_of(chat_id):
            return self._round(chat_id, final=True)

    def caught_up(self, chat: ChatRow, units: Sequence[UnitRow]) -> bool:
        """Whether every network the chat is read on was read after its answer window
        closed, or the window closed more than CATCH_UP ago: nothing is left to read."""
        end = self.window_end(chat)
        if self._clock() > end + CATCH_UP:
            return True
        read = {r.network: r.last_ok_at for r in self._store.conversation.rounds(chat.chat_id)}
        names = read_on(units, self._networks)
        return all((last := read.get(name)) is not None and last > end for name in names)

    def window_end(self, chat: ChatRow) -> datetime:
        """Until when a chat's answers are read: its end, moved by its shift, and the tail."""
        return chat.end_at + chat.shift + self._answer_tail

    def to_resume(self, archive_dir: Path | None) -> tuple[list[str], list[str]]:
        """After a restart: the chats to read again (inside their answer window), and the
        finished chats whose transcript was never written."""
        now = self._clock()
        collecting, unwritten = [], []
        for chat in self._store.chats.list([ChatState.RUNNING, ChatState.DONE]):
            units = self._store.units.of_chat(chat.chat_id)
            if not any(u.state is UnitState.POSTED for u in units):
                continue
            if (
                chat.state is ChatState.RUNNING
                or now <= self.window_end(chat)
                or not self.caught_up(chat, units)
            ):
                collecting.append(chat.chat_id)
            elif archive_dir and transcript_missing(archive_dir, chat.chat_id):
                unwritten.append(chat.chat_id)
        return collecting, unwritten

    def _round(
        self, chat_id: str, *, scheduled: bool = False, final: bool = False
    ) -> datetime | None:
        chat = self._store.chats.get(chat_id)
        if chat is None:
            self._forget(chat_id)
            return None
        now = self._clock()
        with self._state_lock:
            self._last_round[chat_id] = now
        units = self._store.units.of_chat(chat_id)
        over = chat.state in OVER_STATES and now > self.window_end(chat)
        dues: list[datetime] = []
        busy = set() if final else posting_soon(self._store, now)
        for name, network in self._networks.items():
            posted = [
                u for u in units if u.network is name and u.state is UnitState.POSTED and u.remote
            ]
            if not posted or not isinstance(network, Reader):
                continue
            key = (chat_id, name)
            with self._state_lock:
                due = self._due.get(key, now)
                woken = key in self._woken
            if name in busy:
                dues.append(now + POSTING_GUARD)
                continue
            if scheduled and not woken and due > now:
                dues.append(due)
                continue
            with self._state_lock:
                self._woken.discard(key)
            retry_at = self._read(chat, network, self._view(chat_id, units, name), posted)
            if isinstance(network, Listening) and not over:
                network.listen(chat_id, chat.hashtag, partial(self.arrived, network=name))
            live = isinstance(network, Listening) and network.live(chat_id)
            cadence = self._cadences.get(name) or Cadence(every=self.every, fast=self.every)
            due = now + (self.streamed_every if live else polled_every(chat, cadence, posted, now))
            if retry_at is not None:
                due = max(due, retry_at)
            with self._state_lock:
                self._due[key] = due
            dues.append(due)
        if over and self.caught_up(chat, units):
            log.info("collection over", chat=chat_id)
            self._forget(chat_id)
            self._on_over(chat_id)
            return None
        return min(dues, default=now + self.every)

    def _view(self, chat_id: str, units: Sequence[UnitRow], name: NetworkName) -> ChatView:
        """The chat as attribution sees it on one network."""
        setup = self._setup(chat_id) or ChatSetup(
            question_count=max((u.number or 0 for u in units), default=0),
            hosts={},
            moderation=Moderation(),
        )
        return view_for(
            units,
            name,
            chat_id=chat_id,
            question_count=setup.question_count,
            hosts=setup.hosts.get(name, frozenset()),
            moderation=setup.moderation,
            others=other_chats_posts(self._store, chat_id, name),
        )

    def _forget(self, chat_id: str) -> None:
        """Collection is over: the chat's streams close, its state goes."""
        for network in self._networks.values():
            if isinstance(network, Listening):
                network.unlisten(chat_id)
        with self._state_lock:
            for key in [k for k in self._due if k[0] == chat_id]:
                del self._due[key]
            self._woken -= {k for k in self._woken if k[0] == chat_id}
            self._last_round.pop(chat_id, None)
            self._held.pop(chat_id, None)

    def _read(
        self, chat: ChatRow, network: Reader, view: ChatView, posted: list[UnitRow]
    ) -> datetime | None:
        """Read and store one network's new posts; returns a retry time a rate limit set."""
        name = network.name
        thread = ChatThread(
            chat_id=chat.chat_id,
            hashtag=chat.hashtag,
            since=min(u.posted_at or u.planned_at for u in posted),
            bot_posts=thread_posts(posted),
        )
        began = time.monotonic()
        try:
            collected = network.collect(
                thread, self._store.conversation.cursors(chat.chat_id, name)
            )
        except NetworkError as exc:
            self._metrics.collected(name.value, 0, time.monotonic() - began, ok=False)
            record_failure(self._store, chat.chat_id, name, exc, now=self._clock())
            return exc.retry_at if isinstance(exc, RateLimited) else None
        now = self._clock()
        stats = ingest(self._store, view, collected, now=now)
        self._store.conversation.save_cursors(chat.chat_id, name, collected.cursors, now=now)
        self._store.conversation.record_round(chat.chat_id, name, now=now)
        if self._commands is not None and collected.to_bot:
            self._commands(chat.chat_id, name, collected.to_bot)
        if self._care is not None and stats.fresh:
            self._care.after_round(chat.chat_id, name, stats.fresh)
        self._store.leases.account_ok(name.value, now=now)
        self._metrics.collected(name.value, stats.answers, time.monotonic() - began, ok=True)
        if stats.new or stats.changed or stats.deleted:
            log.info(
                "collected",
                chat=chat.chat_id,
                network=name.value,
                new=stats.new,
                changed=stats.changed,
                deleted=stats.deleted,
                answers=stats.answers,
            )
        return None


def record_failure(
    store: Store, chat_id: str, network: NetworkName, exc: NetworkError, *, now: datetime
) -> None:
    """A round that failed: recorded for ``status``, and an event unless it only waits."""
    reason = f"reading the answers on {network.value} failed: {exc}"
    if isinstance(exc, RateLimited):
        log.warning(
            "collection waits",
            chat=chat_id,
            network=network.value,
            until=exc.retry_at.isoformat(),
        )
    else:
        log.warning("collection will retry", chat=chat_id, network=network.value, error=str(exc))
    store.conversation.record_round(chat_id, network, error=str(exc), now=now)
    if isinstance(exc, AuthFailed):
        store.leases.account_refused(network.value, str(exc), now=now)
    if isinstance(exc, RateLimited) and exc.status is None:
        return  # our own pacing, not the server's refusal: routine in a busy chat
    store.events.add("warning", reason, chat_id=chat_id, network=network, now=now)


def polled_every(
    chat: ChatRow, cadence: Cadence, posted: Sequence[UnitRow], now: datetime
) -> timedelta:
    """The wait before a polled network is read again for the chat (from its last question)."""
    questions = [u.posted_at for u in posted if u.kind == StepKind.QUESTION.value and u.posted_at]
    return poll_interval(
        now,
        last_question_at=max(questions, default=None),
        ended=now > chat.end_at + chat.shift,
        cadence=cadence,
    )


def read_on(units: Sequence[UnitRow], networks: Mapping[NetworkName, Network]) -> set[NetworkName]:
    """The networks whose answers a chat has: it posted there and they can be read."""
    return {
        u.network
        for u in units
        if u.state is UnitState.POSTED and u.remote and isinstance(networks.get(u.network), Reader)
    }


def posting_soon(store: Store, now: datetime) -> set[NetworkName]:
    """Networks with a post of any chat due within the guard: reading waits for them."""
    chats = {c.chat_id: c for c in store.chats.list([ChatState.RUNNING, ChatState.SCHEDULED])}
    return {
        unit.network
        for unit in store.units.waiting(list(chats))
        if now <= policy.due_at(chats[unit.chat_id], unit) <= now + POSTING_GUARD
    }


# --- storing a round --------------------------------------------------------------------


def ingest(store: Store, view: ChatView, collected: Collected, *, now: datetime) -> IngestStats:
    """Store a collection round: new and edited posts attributed, deletions applied."""
    stats = IngestStats()
    conversation = store.conversation
    index = conversation.post_index(view.chat_id, view.network)
    parents: dict[str, str | None] = {pid: p.reply_to for pid, p in index.items()}
    fresh = [
        p
        for p in collected.posts
        if p.id not in view.bot_posts and p.id not in view.others and p.reply_to not in view.others
    ]
    parents.update({p.id: p.reply_to for p in fresh})
    for author in _unique_authors(fresh):
        conversation.save_participant(author, now=now)
    for post in fresh:
        kind, reason, resolved, answers = judge(post, post.author, view, parents)
        changed = conversation.save_post(
            _stored(post, view, kind, reason, resolved), answers, now=now
        )
        if changed:
            if post.id in index:
                stats.changed += 1
            else:
                stats.new += 1
                current = view.current_question(post.created_at)
                stats.fresh.append(Fresh(post, kind, len(answers), current))
            stats.answers += len(answers)
    for uri in collected.deleted:
        if conversation.delete_post(view.chat_id, view.network, uri, now=now):
            stats.deleted += 1
    stats += _retry_unresolved(store, view, now)
    return stats


def _stored(post: SeenPost, view: ChatView, kind: str, reason: str, resolved: bool) -> StoredPost:
    return StoredPost(
        chat_id=view.chat_id,
        network=view.network,
        uri=post.uri,
        post_id=post.id,
        url=post.url,
        author_id=post.author.id,
        text=post.text,
        created_at=post.created_at,
        edited_at=post.edited_at,
        reply_to=post.reply_to,
        quote_of=post.quote_of,
        likes=post.likes,
        reposts=post.reposts,
        kind=kind,
        reason=reason,
        resolved=resolved,
        deleted=False,
    )


def _retry_unresolved(store: Store, view: ChatView, now: datetime) -> IngestStats:
    """Posts whose parent arrived after them are judged again now that the chain is known."""
    stats = IngestStats()
    conversation = store.conversation
    index = conversation.post_index(view.chat_id, view.network)
    parents = {pid: p.reply_to for pid, p in index.items()}
    for post in index.values():
        if post.resolved or post.deleted:
            continue
        author = conversation.participant(view.network, post.author_id)
        kind, reason, resolved, answers = judge(post, author, view, parents)
        if not resolved and kind == post.kind:
            continue
        conversation.save_post(
            StoredPost(**{**post.__dict__, "kind": kind, "reason": reason, "resolved": resolved}),
            answers,
            now=now,
        )
        stats.changed += 1
        stats.answers += len(answers)
    return stats


def _unique_authors(posts: Iterable[SeenPost]) -> list[Author]:
    seen: dict[str, Author] = {}
    for post in posts:
        seen[post.author.id] = post.author
    return list(seen.values())


def other_chats_posts(store: Store, chat_id: str, network: NetworkName) -> frozenset[str]:
    """The ids of the bot's posts on ``network`` in its other chats still read (a reply to
    one of them belongs to that chat, even when this chat's round reads it)."""
    return frozenset(
        u.remote.id
        for chat in store.chats.list([ChatState.RUNNING, ChatState.DONE])
        if chat.chat_id != chat_id
        for u in store.units.of_chat(chat.chat_id)
        if u.network is network and u.state is UnitState.POSTED and u.remote is not None
    )


def thread_posts(posted: Sequence[UnitRow]) -> tuple[PostRef, ...]:
    """The bot's posts whose threads a round reads: the chat's own thread and its recap. Its
    replies to people are left out: a thread read each, every round, would cost a request
    each, and a reply to one of them notifies the bot (and a side thread's read finds it)."""
    return tuple(u.remote for u in posted if u.remote is not None and u.kind not in REPLY_KINDS)
