"""The runner: keeps every chat in ``schedules/`` on time, exactly once, in order.

APScheduler times the work; the store is the truth. The runner owns the
process's lifecycle and its jobs, and nothing else:

- a sync job (every minute, and when the schedules folder changes) that
  plans the scripts (:mod:`chatbot.run.sync`);
- one job per chat, booked at its next due time, that does what is due
  (:mod:`chatbot.run.steps`, posting through :mod:`chatbot.run.posting`);
- one collection job per chat while its answers come in
  (:mod:`chatbot.collect.collector`).

Every job and thread runs inside :meth:`Runner.guarded`: an exception is
logged, recorded as an event that ``chatbot status`` shows, and the bot goes on.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import TypeVar

import structlog
import tenacity
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.date import DateTrigger

from chatbot.archive import write_archives
from chatbot.collect.cadence import FRESH_FOR, Cadence
from chatbot.collect.care import Care
from chatbot.collect.collector import Collector
from chatbot.config import LatePolicy
from chatbot.kinds import Visibility
from chatbot.loader import LoadedScript
from chatbot.metrics import Observer
from chatbot.networks.base import Network
from chatbot.run.authority import Identities
from chatbot.run.commands import CommandDesk
from chatbot.run.controls import Controls
from chatbot.run.posting import RETRY_BACKOFF, Poster
from chatbot.run.recaps import Recaps
from chatbot.run.replica import LEASE_TTL, Replica
from chatbot.run.steps import Steps
from chatbot.run.sync import Sync, VisibilityPolicy
from chatbot.run.watcher import WATCH_RESTART, Watcher
from chatbot.script import Moderation, NetworkName
from chatbot.store import OVER_STATES, ChatState, Fence, LeaseLost, LeaseRow, Store
from chatbot.text import Limits

log = structlog.get_logger("chatbot.runner")
Clock = Callable[[], datetime]
T = TypeVar("T")

SYNC_INTERVAL = timedelta(seconds=60)
# Answers are read this often while a chat runs (divided by --speed in rehearsals).
COLLECT_EVERY = timedelta(seconds=15)
MIN_COLLECT_EVERY = timedelta(seconds=0.5)
# After a failed job, or a watcher that stopped, the work is tried again this much later.
AFTER_FAILURE = RETRY_BACKOFF[-1]
# Commands waiting in the store are applied this often (from the network or the host).
COMMANDS_EVERY = timedelta(seconds=2)


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _scheduler() -> BackgroundScheduler:
    """APScheduler, set so that the late policy decides about late jobs, not it."""
    return BackgroundScheduler(
        timezone=UTC,
        executors={"default": ThreadPoolExecutor(max_workers=4)},
        job_defaults={
            # APScheduler's default grace of 1 s silently drops a job that
            # starts later than that; the late policy decides instead.
            "misfire_grace_time": None,
            "coalesce": True,
            # A chat job may re-book itself while still finishing; the
            # per-chat lock keeps runs of one chat strictly one at a time.
            "max_instances": 3,
        },
    )


class Failed:
    """What :meth:`Runner.guarded` returns when the work raised (it was logged and recorded)."""

    def __init__(self, error: Exception) -> None:
        self.error = error


class Runner:
    """Schedules and posts every chat; one instance per bot process."""

    def __init__(
        self,
        *,
        store: Store,
        networks: Mapping[NetworkName, Network],
        schedules: Path | None,
        late: LatePolicy,
        visibility: VisibilityPolicy | None = None,
        speed: float = 1.0,
        clock: Clock = _utcnow,
        scripts: list[LoadedScript] | None = None,
        watch: bool = True,
        quick_retry_wait: tenacity.wait.wait_base | None = None,
        answer_tail: timedelta = timedelta(minutes=30),
        moderation: Moderation | None = None,
        collect_every: timedelta = COLLECT_EVERY,
        transcript_url: str = "",
        archive_dir: Path | None = None,
        watch_restart: timedelta = WATCH_RESTART,
        data_dir: Path | None = None,
        lease_ttl: timedelta = LEASE_TTL,
        metrics: Observer | None = None,
        reply_visibility: Visibility = Visibility.DIRECT,
    ) -> None:
        self.store = store
        self.networks = dict(networks)
        self.schedules = schedules
        self.speed = speed
        self.clock = clock
        self.archive_dir = archive_dir
        self._watch = watch and schedules is not None
        self._watch_restart = watch_restart
        self._moderation = moderation or Moderation()
        self._stopping = threading.Event()
        self._watcher: threading.Thread | None = None
        self._chat_locks: dict[str, threading.Lock] = {}
        self._locks_lock = threading.Lock()
        self._collecting: set[str] = set()  # booked or running (a fired job has left)
        self._sync_lock = threading.Lock()
        self.replica = Replica(store, clock, ttl=lease_ttl, folder=data_dir)
        self._sync = Sync(
            store=store,
            networks=list(self.networks),
            schedules=schedules,
            clock=clock,
            limits=self._limits,
            visibility=visibility or VisibilityPolicy(),
            speed=speed,
            scripts=scripts,
        )
        identities = Identities(self.networks, clock)
        self.controls = Controls(
            store=store, clock=clock, lock_of=self._lock, wake=self.wake, speed=speed
        )
        self.desk = CommandDesk(
            store=store,
            controls=self.controls,
            clock=clock,
            authority=lambda chat_id: (
                identities.authority(s) if (s := self._sync.script_of(chat_id)) else None
            ),
            script_of=self._sync.script_of,
            reply_visibility=reply_visibility,
            wake=self.wake,
        )
        self.collector = Collector(
            store=store,
            networks=self.networks,
            clock=clock,
            setup=lambda chat_id: self._sync.setup_of(chat_id, self._moderation),
            every=max(collect_every / speed, MIN_COLLECT_EVERY),
            cadences=_cadences(collect_every, speed, answer_tail),
            wake=lambda chat_id, when: self._book("collect", self.collect_job, chat_id, when),
            answer_tail=answer_tail / speed,
            on_over=self._write_transcript,
            metrics=metrics,
            care=Care(
                store=store,
                clock=clock,
                script_of=self._sync.script_of,
                badges=data_dir / "badges" if data_dir else None,
                wake=self.wake,
            ),
            commands=self.desk.receive,
        )
        self.poster = Poster(
            store=store,
            networks=self.networks,
            clock=clock,
            stopping=self._stopping,
            quick_retry_wait=quick_retry_wait,
            on_posted=self._ensure_collecting,
            metrics=metrics,
        )
        recaps = Recaps(
            store=store,
            networks=self.networks,
            snapshot=lambda: self._sync.snapshot,
            final_round=self.collector.final_round,
            clock=clock,
            hold_for=self.collector.every * 4,
            transcript_url=transcript_url,
        )
        self._steps = Steps(
            store=store,
            clock=clock,
            late=late,
            poster=self.poster,
            recaps=recaps,
            stopping=self._stopping,
        )
        self.scheduler = _scheduler()

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        """Load the scripts, book every chat's next wake-up, start the clock and the watcher."""
        self.scheduler.start()
        self.replica.started()
        self.sync()
        self.guarded("resuming collection", None, self._resume_collection)
        every = {
            "sync": (self.sync, SYNC_INTERVAL),
            "commands": (self.apply_commands, COMMANDS_EVERY),
            "heartbeat": (
                lambda: self.replica.beat(collecting=set(self._collecting)),
                self.replica.ttl / 3,
            ),
        }
        for name, (work, interval) in every.items():
            self.scheduler.add_job(
                partial(self.guarded, name, None, work),
                "interval",
                seconds=interval.total_seconds(),
                id=name,
                replace_existing=True,
                misfire_grace_time=None,
            )
        if self._watch:
            assert self.schedules is not None
            watcher = Watcher(
                self.schedules,
                on_change=self.sync,
                guarded=lambda work: self.guarded("watching the schedules folder", None, work),
                stopping=self._stopping,
                restart=self._watch_restart,
            )
            self._watcher = threading.Thread(target=watcher.run, name="watch", daemon=True)
            self._watcher.start()
        log.info(
            "started", schedules=str(self.schedules) if self.schedules else None, speed=self.speed
        )

    def stop(self) -> None:
        """Finish the call in flight, record it, and stop. New work is not started."""
        self._stopping.set()
        self.scheduler.shutdown(wait=True)
        self.guarded("handing over the leases", None, self.replica.stopped)
        if self._watcher is not None:
            self._watcher.join(timeout=2)
        for network in self.networks.values():
            network.close()
        log.info("stopped")

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def planned_chats(self) -> list[str]:
        """Ids of the chats the runner has planned, soonest first."""
        return self._sync.planned()

    def all_over(self, *, answers_in: bool = False) -> bool:
        """Whether every planned chat is done, missed or cancelled; with ``answers_in``,
        also whether their collection has ended (their transcripts are written)."""
        chats = [self.store.chats.get(chat_id) for chat_id in self.planned_chats()]
        over = all(c and c.state in OVER_STATES for c in chats)
        if over and answers_in:  # nothing planned at all is over too: nothing to wait for
            return not self._collecting  # every collect booking is in it until a round ends it
        return over and bool(chats)

    def guarded(self, what: str, chat_id: str | None, work: Callable[[], T]) -> T | Failed:
        """Run ``work`` at a job's boundary (:func:`guard`)."""
        return guard(self.store, self.clock, what, chat_id, work)

    # --- scripts ----------------------------------------------------------------------------

    def sync(self) -> None:
        """Reload the scripts, bring the store in line, and wake the chats that changed."""
        with self._sync_lock:
            changed = self.guarded("reloading the scripts", None, self._sync.run)
        if isinstance(changed, Failed):
            return
        for chat_id in changed:
            chat = self.store.chats.get(chat_id)
            if chat is not None and chat.state is ChatState.CANCELLED:
                with contextlib.suppress(JobLookupError):
                    self.scheduler.remove_job(f"chat:{chat_id}")
            else:
                self.wake(chat_id, self.clock())

    def _limits(self) -> Limits:
        mastodon = self.networks.get(NetworkName.MASTODON)
        return mastodon.limits() if mastodon is not None else Limits()

    # --- jobs -------------------------------------------------------------------------------

    def wake(self, chat_id: str, when: datetime) -> None:
        """Book the chat's job to run at ``when`` (aware UTC)."""
        self._book("chat", self.chat_job, chat_id, when)

    def advance(self, chat_id: str) -> datetime | None:
        """Do what is due for the chat now, under its lock and its lease; returns when to
        look again (for another replica's lease: when it expires, to take over then)."""
        with self._lock(chat_id):
            lease = self.replica.lease(chat_id)
            if isinstance(lease, LeaseRow):
                return self.replica.look_again(lease)
            try:
                return self._steps.advance(chat_id, lease)
            except LeaseLost as exc:
                # Another replica took the chat while this one was away: it carries on.
                log.warning("lease lost", chat=chat_id, replica=self.replica.name, why=str(exc))
                return self.clock() + self.replica.ttl

    def collect(self, chat_id: str, *, scheduled: bool = False) -> datetime | None:
        """One collection round for the chat now, if this replica holds the chat; returns
        when to read again (None: collection is over). ``scheduled`` (the collection job):
        only the networks due or woken by a stream are read."""
        lease = self.replica.lease(chat_id)
        if isinstance(lease, LeaseRow):
            return self.replica.look_again(lease)
        return self.collector.round(chat_id, scheduled=scheduled)

    def chat_job(self, chat_id: str) -> None:
        """The chat's scheduled job: do what is due, then book the next wake-up."""
        wake_at = self.guarded("the chat job", chat_id, partial(self.advance, chat_id))
        if isinstance(wake_at, Failed):
            wake_at = self.clock() + AFTER_FAILURE
        if wake_at is not None:
            self.wake(chat_id, wake_at)

    def collect_job(self, chat_id: str) -> None:
        """The chat's scheduled collection job: one round, then book the next one (the chat
        stays in ``_collecting`` meanwhile: APScheduler drops a date job as it starts it)."""
        self._collecting.add(chat_id)  # one set operation: atomic in CPython
        again = self.guarded(
            "collecting answers", chat_id, partial(self.collect, chat_id, scheduled=True)
        )
        if isinstance(again, Failed):
            again = self.clock() + AFTER_FAILURE
        if again is not None:
            self._book("collect", self.collect_job, chat_id, again)
        else:
            self._collecting.discard(chat_id)

    def _ensure_collecting(self, chat_id: str) -> None:
        if self.scheduler.running and self.scheduler.get_job(f"collect:{chat_id}") is None:
            self._collecting.add(chat_id)
            self._book("collect", self.collect_job, chat_id, self.clock() + self.collector.every)
            self.guarded("listening for answers", chat_id, partial(self.collector.begin, chat_id))

    def _book(self, kind: str, job: Callable[[str], None], chat_id: str, when: datetime) -> None:
        if not self.stopping and self.scheduler.running:
            book(self.scheduler, f"{kind}:{chat_id}", job, chat_id, when)

    def _lock(self, chat_id: str) -> threading.Lock:
        with self._locks_lock:
            return self._chat_locks.setdefault(chat_id, threading.Lock())

    # --- collection: what it needs from the scripts, and what happens when it ends ----------

    def apply_commands(self) -> None:
        """Apply the commands waiting for the chats this replica holds, oldest first."""
        self.desk.apply_waiting(lambda chat_id: isinstance(self.replica.lease(chat_id), Fence))

    def _resume_collection(self) -> None:
        """After a restart: chats still inside their answer window are read again, and a
        finished chat whose transcript was never written gets it now."""
        collecting, unwritten = self.collector.to_resume(self.archive_dir)
        for chat_id in collecting:
            self._ensure_collecting(chat_id)
        for chat_id in unwritten:
            self._write_transcript(chat_id)

    def _write_transcript(self, chat_id: str) -> None:
        if self.archive_dir is not None:
            write_archives(self.store, chat_id, self.archive_dir)


_BOOKING = threading.Lock()


def _cadences(
    collect_every: timedelta, speed: float, answer_tail: timedelta
) -> dict[NetworkName, Cadence]:
    """How often each polled network is read. Bluesky (3,000 requests per 5 minutes) is
    read twice as often while a question is fresh; Mastodon (300) keeps its interval. The
    tail is read at least eight times over."""
    every = max(collect_every / speed, MIN_COLLECT_EVERY)
    fresh_for = FRESH_FOR / speed
    longest = max(every, answer_tail / speed / 8)
    fast = {NetworkName.BLUESKY: max(every / 2, MIN_COLLECT_EVERY)}
    return {
        name: Cadence(every=every, fast=fast.get(name, every), fresh_for=fresh_for, longest=longest)
        for name in NetworkName
    }


def book(
    scheduler: BackgroundScheduler,
    job_id: str,
    job: Callable[[str], None],
    chat_id: str,
    when: datetime,
) -> None:
    """One job per kind and chat, at an aware UTC instant; the earlier booking wins (a
    wake-up made while the job runs is kept when the job then books its next step)."""
    with _BOOKING:
        booked = scheduler.get_job(job_id)
        if booked is not None and booked.next_run_time is not None and booked.next_run_time <= when:
            return  # it runs first, and books again from what it finds
        scheduler.add_job(
            job,
            trigger=DateTrigger(run_date=when, timezone=UTC),
            args=[chat_id],
            id=job_id,
            replace_existing=True,
            misfire_grace_time=None,  # the late policy decides, not APScheduler's 1 s default
        )


def guard(
    store: Store, clock: Clock, what: str, chat_id: str | None, work: Callable[[], T]
) -> T | Failed:
    """Run ``work``; an exception is logged and recorded as an event, never raised.

    Every job and thread of the bot runs inside this: one failure must not
    stop the scheduler, the watcher, or the other chats.
    """
    try:
        return work()
    except Exception as exc:  # the job boundary: log, record, carry on
        log.exception(f"{what} failed", chat=chat_id)
        try:
            store.events.add("error", f"{what} failed: {exc!r}", chat_id=chat_id, now=clock())
        except Exception:  # the store itself may be what failed
            log.exception("recording the failure failed", chat=chat_id)
        return Failed(exc)
