"""The runner: keeps every chat in ``schedules/`` on time, exactly once, in order.

APScheduler times the work; the store is the truth. Each chat has one job that
wakes when its next step is due, asks :func:`chatbot.policy.decide` what to do,
does it, and books its next wake-up. Scripts are reloaded when a file in the
schedules folder changes (and every minute, as a safety net).
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import structlog
import tenacity
import watchfiles
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.date import DateTrigger

from chatbot import policy
from chatbot.archive import FORMATS, file_stem, write_archives
from chatbot.collect import host_handles, ingest, merge_moderation, view_for
from chatbot.config import LatePolicy, MastodonAccount
from chatbot.errors import AuthFailed, ChatbotError, NetworkError, RateLimited, Rejected, Transient
from chatbot.kinds import StepKind, Visibility
from chatbot.loader import LoadedScript, check_paths
from chatbot.networks.base import (
    Attachment,
    ChatThread,
    Network,
    PostRequest,
    Reader,
    idempotency_key,
)
from chatbot.plan import ChatPlan, plan_chat, plan_upcoming
from chatbot.posts import PostRef
from chatbot.recap import compose as compose_recap
from chatbot.recap import facts_for
from chatbot.script import Moderation, NetworkName
from chatbot.store import ChatState, PlannedUnit, Store, UnitRow, UnitState
from chatbot.text import Facet, Limits, bluesky_facets

log = structlog.get_logger("chatbot.runner")
Clock = Callable[[], datetime]

SYNC_INTERVAL = timedelta(seconds=60)
# Answers are read this often while a chat runs (divided by --speed in rehearsals).
COLLECT_EVERY = timedelta(seconds=15)
MIN_COLLECT_EVERY = timedelta(seconds=0.5)
# Posting has priority over reading: a collection round that would run this
# close to a post on the same network waits for the next round.
POSTING_GUARD = timedelta(seconds=2)
# Transient errors (timeouts, 5xx) are retried at once a few times, then the
# unit is rescheduled with a growing delay: the chat goes on, nothing is lost.
QUICK_RETRIES = 3
RETRY_BACKOFF = (
    timedelta(seconds=5),
    timedelta(seconds=15),
    timedelta(seconds=30),
    timedelta(seconds=60),
)


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class VisibilityPolicy:
    """Mastodon visibility per kind of step. Questions are always public."""

    reminders: Visibility = Visibility.PUBLIC
    chat: Visibility = Visibility.PUBLIC
    recap: Visibility = Visibility.UNLISTED

    @classmethod
    def from_account(cls, account: MastodonAccount | None) -> VisibilityPolicy:
        if account is None:
            return cls()
        return cls(
            account.reminders_visibility,
            account.chat_visibility,
            account.recap_visibility,
        )

    def for_kind(self, kind: str) -> Visibility:
        # Unlisted posts never reach hashtag timelines, so questions are public always.
        if kind == StepKind.QUESTION:
            return Visibility.PUBLIC
        if kind == StepKind.REMINDER:
            return self.reminders
        if kind == StepKind.RECAP:
            return self.recap
        return self.chat


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
    ) -> None:
        self.store = store
        self.networks = dict(networks)
        self.schedules = schedules
        self.late = late
        self.visibility = visibility or VisibilityPolicy()
        self.speed = speed
        self.clock = clock
        self._fixed_scripts = scripts
        self._quick_retry_wait = quick_retry_wait or tenacity.wait_exponential_jitter(
            multiplier=0.5, max=2
        )
        self._watch = watch and schedules is not None
        self._plans: dict[str, ChatPlan] = {}
        self._scripts: dict[str, LoadedScript] = {}
        self.answer_tail = answer_tail
        self.transcript_url = transcript_url
        self.archive_dir = archive_dir
        self.moderation = moderation or Moderation()
        self.collect_every = max(collect_every / speed, MIN_COLLECT_EVERY)
        self._digests: dict[str, str] = {}
        self._reported: dict[str, str] = {}
        self._chat_locks: dict[str, threading.Lock] = {}
        self._locks_lock = threading.Lock()
        self._sync_lock = threading.Lock()
        self._stopping = threading.Event()
        self._watcher: threading.Thread | None = None
        self._accelerated_start: datetime | None = None
        self.scheduler = BackgroundScheduler(
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

    # --- lifecycle ----------------------------------------------------------------------

    def start(self) -> None:
        """Load the scripts, book every chat's next wake-up, start the clock and the watcher."""
        self.scheduler.start()
        self.sync()
        self._resume_collection()
        self.scheduler.add_job(
            self.sync,
            "interval",
            seconds=SYNC_INTERVAL.total_seconds(),
            id="sync",
            replace_existing=True,
            misfire_grace_time=None,
        )
        if self._watch:
            self._watcher = threading.Thread(target=self._watch_loop, name="watch", daemon=True)
            self._watcher.start()
        log.info(
            "started", schedules=str(self.schedules) if self.schedules else None, speed=self.speed
        )

    def stop(self) -> None:
        """Finish the call in flight, record it, and stop. New work is not started."""
        self._stopping.set()
        self.scheduler.shutdown(wait=True)
        if self._watcher is not None:
            self._watcher.join(timeout=2)
        for network in self.networks.values():
            network.close()
        log.info("stopped")

    def all_over(self) -> bool:
        """Whether every planned chat is done, missed or cancelled (for rehearsals)."""
        over = (ChatState.DONE, ChatState.MISSED, ChatState.CANCELLED)
        chats = [self.store.chat(chat_id) for chat_id in self._plans]
        return bool(chats) and all(c is not None and c.state in over for c in chats)

    def planned_chats(self) -> list[str]:
        """Ids of the chats the runner has planned, soonest first."""
        return [p.chat_id for p in sorted(self._plans.values(), key=lambda p: p.start)]

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def _watch_loop(self) -> None:
        assert self.schedules is not None
        for changes in watchfiles.watch(
            self.schedules, stop_event=self._stopping, debounce=300, rust_timeout=1000
        ):
            if self._stopping.is_set():
                return
            log.info("schedules changed", files=sorted({Path(p).name for _c, p in changes}))
            self.sync()

    # --- scripts -> plans -> store -> jobs ----------------------------------------------

    def load_scripts(self) -> list[LoadedScript]:
        """The scripts to run: valid files, or the last good version of a broken one."""
        if self._fixed_scripts is not None:
            return self._fixed_scripts
        assert self.schedules is not None
        report = check_paths([self.schedules], None, self._limits(), last_good=self._last_good)
        for problem in report.problems:
            key = problem.render()
            if self._reported.get(problem.file) != key:
                self._reported[problem.file] = key
                log.error("script problem", file=problem.file, line=problem.line, problem=key)
                self.store.event("error", key)
        broken = {p.file for p in report.problems}
        for name in list(self._reported):
            if name not in broken:
                del self._reported[name]
        return report.scripts

    def _last_good(self, path: Path) -> str | None:
        found = self.store.script_source(str(path))
        return found[1] if found else None

    def _limits(self) -> Limits:
        mastodon = self.networks.get(NetworkName.MASTODON)
        return mastodon.limits() if mastodon is not None else Limits()

    def sync(self) -> None:
        """Reload the scripts and bring the store and the jobs in line with them."""
        with self._sync_lock:
            try:
                self._sync()
            except ChatbotError as exc:
                log.error("sync failed", error=str(exc))
                self.store.event("error", f"reloading the scripts failed: {exc}")

    def _sync(self) -> None:
        now = self.clock()
        scripts = self.load_scripts()
        live_ids = set()
        for loaded in scripts:
            missing = [n for n in loaded.script.networks if n not in self.networks]
            if missing:
                message = (
                    f"{loaded.path}: posts to {', '.join(m.value for m in missing)} but the config "
                    "has no account for it: add it under accounts: in the config"
                )
                if self._reported.get(str(loaded.path)) != message:
                    self._reported[str(loaded.path)] = message
                    log.error("script problem", file=str(loaded.path), problem=message)
                    self.store.event("error", message)
                continue
            live_ids.add(loaded.script_id)
            self._scripts[loaded.script_id] = loaded
            if not loaded.stale:
                digest = hashlib.sha256(loaded.source.encode()).hexdigest()
                if self._digests.get(loaded.script_id) != digest:
                    self.store.save_script(
                        loaded.script_id, str(loaded.path), digest, loaded.source
                    )
            for plan in self._plan(loaded, now):
                self._record(plan, loaded)
        if self._fixed_scripts is None:
            for script_id in set(self.store.active_script_ids()) - live_ids:
                self._remove_script(script_id)

    def _plan(self, loaded: LoadedScript, now: datetime) -> list[ChatPlan]:
        limits = self._limits()
        if self.speed == 1.0:
            return plan_upcoming(loaded.script, loaded.script_id, now, count=2, limits=limits)
        if self._accelerated_start is None:
            lead = max((r.before for r in loaded.script.reminders), default=timedelta(0))
            self._accelerated_start = now + lead / self.speed + timedelta(seconds=2)
        start = self._accelerated_start
        chat_id = f"{loaded.script_id}-x{self.speed:g}-{start:%Y%m%dT%H%M%S}"
        return [
            plan_chat(
                loaded.script,
                loaded.script_id,
                start,
                limits=limits,
                speed=self.speed,
                chat_id_override=chat_id,
            )
        ]

    def _record(self, plan: ChatPlan, loaded: LoadedScript) -> None:
        digest = hashlib.sha256(repr(plan).encode()).hexdigest()
        known = self._digests.get(plan.chat_id)
        chat = self.store.chat(plan.chat_id)
        if chat is not None and chat.state in (
            ChatState.DONE,
            ChatState.MISSED,
            ChatState.CANCELLED,
        ):
            return
        self._plans[plan.chat_id] = plan
        if known == digest and chat is not None:
            return
        self._digests[plan.chat_id] = digest
        self._digests[loaded.script_id] = hashlib.sha256(loaded.source.encode()).hexdigest()
        self.store.upsert_chat(
            chat_id=plan.chat_id,
            script_id=plan.script_id,
            title=plan.title,
            hashtag=plan.hashtag,
            timezone=plan.timezone,
            start_at=plan.start,
            end_at=plan.end,
        )
        units = [
            PlannedUnit(
                step_key=step.key,
                network=network,
                seq=seq,
                kind=step.kind.value,
                number=step.number,
                planned_at=step.at,
                idempotency_key=idempotency_key(plan.chat_id, step.key, network),
                text=post.text,
            )
            for seq, step in enumerate(plan.steps)
            for network, post in step.posts.items()
        ]
        networks = list(dict.fromkeys(n for step in plan.steps for n in step.posts))
        units += [
            # The recap's text is composed when it is due, from what was collected.
            PlannedUnit(
                step_key=step.key,
                network=network,
                seq=seq,
                kind=step.kind.value,
                number=None,
                planned_at=step.at,
                idempotency_key=idempotency_key(plan.chat_id, step.key, network),
                text="",
            )
            for seq, step in enumerate(plan.steps)
            if step.kind is StepKind.RECAP
            for network in networks
        ]
        self.store.plan_units(plan.chat_id, units)
        log.info(
            "scheduled" if known is None else "rescheduled",
            chat=plan.chat_id,
            start=plan.start.isoformat(),
            steps=len(plan.steps),
            stale=loaded.stale or None,
        )
        self.wake(plan.chat_id, self.clock())

    def _remove_script(self, script_id: str) -> None:
        self.store.mark_script_removed(script_id)
        for chat in self.store.chats([ChatState.SCHEDULED, ChatState.RUNNING]):
            if chat.script_id != script_id:
                continue
            cancelled = self.store.cancel_pending(chat.chat_id, "the script was removed")
            self.store.update_chat(chat.chat_id, state=ChatState.CANCELLED, note="script removed")
            self._plans.pop(chat.chat_id, None)
            self._remove_job(chat.chat_id)
            log.info("cancelled", chat=chat.chat_id, reason="script removed", units=cancelled)
            self.store.event("info", "script removed: future steps cancelled", chat_id=chat.chat_id)

    # --- the chat job -------------------------------------------------------------------

    def wake(self, chat_id: str, when: datetime) -> None:
        """Book the chat's job to run at ``when`` (aware UTC)."""
        self._book("chat", self._job, chat_id, when)

    def _book(self, kind: str, job: Callable[[str], None], chat_id: str, when: datetime) -> None:
        """One job per kind and chat, at an aware UTC instant; a new booking replaces the old."""
        if self.stopping or not self.scheduler.running:
            return
        self.scheduler.add_job(
            job,
            trigger=DateTrigger(run_date=when, timezone=UTC),
            args=[chat_id],
            id=f"{kind}:{chat_id}",
            replace_existing=True,
            misfire_grace_time=None,  # the late policy decides, not APScheduler's 1 s default
        )

    def _remove_job(self, chat_id: str) -> None:
        job = self.scheduler.get_job(f"chat:{chat_id}")
        if job is not None:
            job.remove()

    def _lock(self, chat_id: str) -> threading.Lock:
        with self._locks_lock:
            return self._chat_locks.setdefault(chat_id, threading.Lock())

    def _job(self, chat_id: str) -> None:
        """A scheduled run: never lets an exception reach the scheduler."""
        try:
            wake_at = self.advance(chat_id)
        except Exception as exc:  # the job boundary: log, record, retry later
            log.exception("chat job failed", chat=chat_id)
            self.store.event("error", f"unexpected error: {exc!r}", chat_id=chat_id)
            wake_at = self.clock() + RETRY_BACKOFF[-1]
        if wake_at is not None:
            self.wake(chat_id, wake_at)

    def advance(self, chat_id: str) -> datetime | None:
        """Do everything due for the chat now; return when to look again (None: nothing left)."""
        with self._lock(chat_id):
            while not self.stopping:
                chat = self.store.chat(chat_id)
                if chat is None:
                    return None
                decision = policy.decide(chat, self.store.units(chat_id), self.clock(), self.late)
                for note in decision.notes:
                    log.warning("late policy", chat=chat_id, note=note)
                    self.store.event("warning", note, chat_id=chat_id)
                changes: dict[str, Any] = {}
                if decision.state is not None:
                    changes["state"] = decision.state
                if decision.shift is not None:
                    changes["shift"] = decision.shift
                if decision.notes:
                    changes["note"] = "; ".join(decision.notes)
                if changes:
                    self.store.update_chat(chat_id, **changes)
                    if decision.state in (ChatState.DONE, ChatState.MISSED):
                        log.info("chat over", chat=chat_id, state=decision.state.value)
                if not decision.actions:
                    if decision.shift is not None:
                        continue
                    return decision.wake_at
                for action in decision.actions:
                    if self.stopping:
                        break
                    self._execute(chat_id, action)
            return None

    def _execute(self, chat_id: str, action: policy.Action) -> None:
        unit = action.unit
        if isinstance(action, policy.Skip):
            self._close(chat_id, unit, UnitState.SKIPPED, action.reason)
        elif isinstance(action, policy.Reconcile):
            self._reconcile(chat_id, unit, action.reason)
        else:
            self._post(chat_id, unit)

    def _close(self, chat_id: str, unit: UnitRow, state: UnitState, reason: str) -> None:
        """A unit ends without a post (skipped or failed): stored, logged, shown in status."""
        self.store.mark_done(chat_id, unit.step_key, unit.network, state, reason)
        failed = state is UnitState.FAILED
        (log.error if failed else log.warning)(
            "post failed" if failed else "skipped",
            chat=chat_id,
            step=unit.step_key,
            network=unit.network.value,
            reason=reason,
        )
        self.store.event(
            "error" if failed else "warning",
            f"{'failed' if failed else 'skipped'}: {reason}",
            chat_id=chat_id,
            step_key=unit.step_key,
            network=unit.network,
        )

    def build_request(self, chat_id: str, unit: UnitRow) -> PostRequest:
        units = [u for u in self.store.units(chat_id) if u.network is unit.network]
        # The chat is one thread; the recap starts a thread of its own.
        units = [u for u in units if (u.kind == StepKind.RECAP) == (unit.kind == StepKind.RECAP)]
        posted = [u for u in units if u.state is UnitState.POSTED and u.remote is not None]
        earlier = [u for u in posted if u.seq < unit.seq]
        root = posted[0].remote if posted and posted[0].seq < unit.seq else None
        parent = earlier[-1].remote if earlier else None
        text = unit.text
        facets: tuple[Facet, ...] = ()
        attachments: tuple[Attachment, ...] = ()
        plan = self._plans.get(chat_id)
        step = plan.find_step(unit.step_key) if plan is not None else None
        if plan is not None and step is not None:
            rendered = step.posts.get(unit.network)
            if rendered is not None:
                text, facets = rendered.text, rendered.facets
                if rendered.image_path and rendered.image_alt:
                    script = self._scripts.get(plan.script_id)
                    base = script.base_dir if script else Path()
                    attachments = (Attachment(base / rendered.image_path, rendered.image_alt),)
        if not facets and unit.network is NetworkName.BLUESKY:
            facets = tuple(bluesky_facets(text))
        return PostRequest(
            idempotency_key=unit.idempotency_key,
            text=text,
            facets=facets,
            attachments=attachments,
            root=root,
            parent=parent,
            visibility=self.visibility.for_kind(unit.kind),
            kind=unit.kind,
            number=unit.number,
            created_at=unit.planned_at,
            first_attempt_at=unit.intent_at,
        )

    def _compose_recap(self, chat_id: str, unit: UnitRow) -> UnitRow | None:
        """Write the recap thread for ``unit``'s network into the store: its first post
        becomes this unit's text, the others follow as units of their own."""
        plan = self._plans.get(chat_id)
        chat = self.store.chat(chat_id)
        loaded = self._scripts.get(chat.script_id) if chat else None
        if plan is None or loaded is None:
            self._close(chat_id, unit, UnitState.SKIPPED, "no script to build the recap from")
            return None
        self.collect(chat_id)  # a last reading, so the recap counts every answer
        facts = facts_for(
            self.store, plan, loaded.script, unit.network, transcript_url=self.transcript_url
        )
        parts = compose_recap(facts, unit.network, self.networks[unit.network].limits())
        self.store.set_unit_text(chat_id, unit.step_key, unit.network, parts[0])
        self.store.add_units(
            chat_id,
            [
                PlannedUnit(
                    step_key=f"{unit.step_key}-{index}",
                    network=unit.network,
                    seq=unit.seq + index - 1,
                    kind=unit.kind,
                    number=None,
                    # Distinct, ordered times: Bluesky record keys are derived from them.
                    planned_at=unit.planned_at + timedelta(milliseconds=index),
                    idempotency_key=idempotency_key(
                        chat_id, f"{unit.step_key}-{index}", unit.network
                    ),
                    text=text,
                )
                for index, text in enumerate(parts[1:], start=2)
            ],
        )
        log.info("recap composed", chat=chat_id, network=unit.network.value, posts=len(parts))
        return next(
            u
            for u in self.store.units(chat_id)
            if u.step_key == unit.step_key and u.network is unit.network
        )

    def _post(self, chat_id: str, unit: UnitRow) -> None:
        if unit.kind == StepKind.RECAP and not unit.text:
            composed = self._compose_recap(chat_id, unit)
            if composed is None:
                return
            unit = composed
        network = self.networks[unit.network]
        request = self.build_request(chat_id, unit)
        due = policy.due_at(self.store.chat(chat_id) or _missing(chat_id), unit)
        # Write-ahead: the intent is committed before the call, so a crash right
        # after the call is re-sent with the same idempotency key, never twice.
        self.store.mark_intent(chat_id, unit.step_key, unit.network, request.text)
        try:
            ref = self._call(network, request)
        except RateLimited as exc:
            self._retry(
                chat_id, unit, exc.retry_at, f"rate limited until {exc.retry_at:%H:%M:%S} UTC"
            )
        except Transient as exc:
            delay = RETRY_BACKOFF[min(unit.attempts, len(RETRY_BACKOFF) - 1)]
            self._retry(chat_id, unit, self.clock() + delay, f"network trouble: {exc}")
        except (AuthFailed, Rejected, NetworkError) as exc:
            self._close(chat_id, unit, UnitState.FAILED, f"{type(exc).__name__}: {exc}")
        else:
            self.store.mark_posted(chat_id, unit.step_key, ref)
            self._ensure_collecting(chat_id)
            late = (self.clock() - due).total_seconds()
            log.info(
                "posted",
                chat=chat_id,
                step=unit.step_key,
                network=unit.network.value,
                url=ref.url,
                late_ms=round(late * 1000),
            )

    def _call(self, network: Network, request: PostRequest) -> PostRef:
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(Transient),
            stop=(
                tenacity.stop_after_attempt(QUICK_RETRIES)
                | tenacity.stop_when_event_set(self._stopping)
            ),
            wait=self._quick_retry_wait,
            reraise=True,
        )
        return retrying(network.post, request)

    def _retry(self, chat_id: str, unit: UnitRow, at: datetime, reason: str) -> None:
        self.store.mark_retry(chat_id, unit.step_key, unit.network, at, reason)
        log.warning(
            "will retry",
            chat=chat_id,
            step=unit.step_key,
            network=unit.network.value,
            at=at.isoformat(),
            reason=reason,
        )
        self.store.event(
            "warning",
            f"will retry at {at:%H:%M:%S} UTC: {reason}",
            chat_id=chat_id,
            step_key=unit.step_key,
            network=unit.network,
        )

    def _reconcile(self, chat_id: str, unit: UnitRow, reason: str) -> None:
        network = self.networks[unit.network]
        ref = network.find(self.build_request(chat_id, unit))
        if ref is not None:
            self.store.mark_posted(chat_id, unit.step_key, ref)
            log.info(
                "reconciled",
                chat=chat_id,
                step=unit.step_key,
                network=unit.network.value,
                url=ref.url,
            )
        else:
            self._close(chat_id, unit, UnitState.SKIPPED, reason)

    # --- following the conversation -----------------------------------------------------

    def _ensure_collecting(self, chat_id: str) -> None:
        if self.stopping or not self.scheduler.running:
            return
        if self.scheduler.get_job(f"collect:{chat_id}") is None:
            self._book_collection(chat_id, self.clock() + self.collect_every)

    def _book_collection(self, chat_id: str, when: datetime) -> None:
        self._book("collect", self._collect_job, chat_id, when)

    def _collect_job(self, chat_id: str) -> None:
        """A scheduled collection round: never lets an exception reach the scheduler."""
        try:
            again = self.collect(chat_id)
        except Exception as exc:  # the job boundary: log, record, try again later
            log.exception("collection failed", chat=chat_id)
            self.store.event("error", f"collecting answers failed: {exc!r}", chat_id=chat_id)
            again = self.clock() + RETRY_BACKOFF[-1]
        if again is not None:
            self._book_collection(chat_id, again)

    def collect(self, chat_id: str) -> datetime | None:
        """Read the chat's new posts on every network; return when to read again (None: done)."""
        chat = self.store.chat(chat_id)
        if chat is None:
            return None
        now = self.clock()
        units = self.store.units(chat_id)
        plan = self._plans.get(chat_id)
        loaded = self._scripts.get(chat.script_id)
        question_count = (
            sum(1 for s in plan.steps if s.kind is StepKind.QUESTION)
            if plan
            else max((u.number or 0 for u in units), default=0)
        )
        next_round = now + self.collect_every
        busy = self._posting_soon(now)
        for network_name, network in self.networks.items():
            if not isinstance(network, Reader):
                continue
            posted = [
                u
                for u in units
                if u.network is network_name and u.state is UnitState.POSTED and u.remote
            ]
            if not posted:
                continue
            if network_name in busy:
                continue
            view = view_for(
                self.store,
                chat_id,
                network_name,
                question_count=question_count,
                hosts=host_handles(loaded.script, network_name) if loaded else frozenset(),
                moderation=merge_moderation(
                    self.moderation, loaded.script.moderation if loaded else Moderation()
                ),
            )
            thread = ChatThread(
                chat_id=chat_id,
                hashtag=chat.hashtag,
                since=min(u.posted_at or u.planned_at for u in posted),
                bot_posts=tuple(u.remote for u in posted if u.remote is not None),
            )
            try:
                collected = network.collect(thread, self.store.cursors(chat_id, network_name))
            except RateLimited as exc:
                log.warning(
                    "collection waits",
                    chat=chat_id,
                    network=network_name.value,
                    until=exc.retry_at.isoformat(),
                )
                next_round = max(next_round, exc.retry_at)
                continue
            except (Transient, NetworkError) as exc:
                log.warning(
                    "collection will retry",
                    chat=chat_id,
                    network=network_name.value,
                    error=str(exc),
                )
                continue
            stats = ingest(self.store, view, collected)
            self.store.save_cursors(chat_id, network_name, collected.cursors)
            if stats.new or stats.changed or stats.deleted:
                log.info(
                    "collected",
                    chat=chat_id,
                    network=network_name.value,
                    new=stats.new,
                    changed=stats.changed,
                    deleted=stats.deleted,
                    answers=stats.answers,
                )
        over = chat.state in (ChatState.DONE, ChatState.MISSED, ChatState.CANCELLED)
        if over and now > chat.end_at + chat.shift + self.answer_tail / self.speed:
            log.info("collection over", chat=chat_id)
            self._archive(chat_id)
            return None
        return next_round

    def _resume_collection(self) -> None:
        """After a restart: chats still inside their answer window are read again, and a
        finished chat whose transcript was never written gets it now."""
        now = self.clock()
        for chat in self.store.chats([ChatState.RUNNING, ChatState.DONE]):
            units = self.store.units(chat.chat_id)
            if not any(u.state is UnitState.POSTED for u in units):
                continue
            window_end = chat.end_at + chat.shift + self.answer_tail / self.speed
            if chat.state is ChatState.RUNNING or now <= window_end:
                self._ensure_collecting(chat.chat_id)
            elif self.archive_dir is not None and not any(
                (self.archive_dir / f"{file_stem(chat.chat_id)}.{fmt}").exists() for fmt in FORMATS
            ):
                self._archive(chat.chat_id)

    def _archive(self, chat_id: str) -> None:
        """The transcript of a finished chat, in every format, kept in the data folder."""
        if self.archive_dir is None:
            return
        self.archive_dir.mkdir(parents=True, exist_ok=True)
        paths = write_archives(self.store, chat_id, self.archive_dir)
        log.info("transcript written", chat=chat_id, files=[str(p) for p in paths])

    def _posting_soon(self, now: datetime) -> set[NetworkName]:
        """Networks with a post of any chat due within the guard: reading waits for them."""
        busy: set[NetworkName] = set()
        for chat in self.store.chats([ChatState.RUNNING, ChatState.SCHEDULED]):
            for unit in self.store.units(chat.chat_id):
                waiting = unit.state in (UnitState.PENDING, UnitState.INTENT)
                if waiting and now <= policy.due_at(chat, unit) <= now + POSTING_GUARD:
                    busy.add(unit.network)
        return busy

    # --- live controls (co-moderators command these in a later release) -----------------

    def pause(self, chat_id: str) -> None:
        with self._lock(chat_id):
            self.store.update_chat(chat_id, paused_at=self.clock())
        self._control_event(chat_id, "paused")

    def resume(self, chat_id: str) -> None:
        with self._lock(chat_id):
            chat = self.store.chat(chat_id) or _missing(chat_id)
            self.store.update_chat(
                chat_id, shift=policy.shift_for_resume(chat, self.clock()), paused_at=None
            )
        self._control_event(chat_id, "resumed")

    def skip(self, chat_id: str, step_key: str | None = None) -> str | None:
        """Skip a step (default: the next one) on every network."""
        with self._lock(chat_id):
            units = self.store.units(chat_id)
            key = step_key or policy.next_step_key(units)
            for unit in units:
                if unit.step_key == key and unit.state is UnitState.PENDING:
                    self.store.mark_done(
                        chat_id,
                        unit.step_key,
                        unit.network,
                        UnitState.SKIPPED,
                        "skipped by a moderator",
                    )
        self._control_event(chat_id, f"skipped {key}")
        return key

    def next_now(self, chat_id: str) -> None:
        """Post the next step now; the ones after keep their spacing."""
        with self._lock(chat_id):
            chat = self.store.chat(chat_id) or _missing(chat_id)
            shift = policy.shift_for_next(chat, self.store.units(chat_id), self.clock())
            self.store.update_chat(chat_id, shift=shift)
        self._control_event(chat_id, "next step now")

    def extend(self, chat_id: str, by: timedelta) -> None:
        """Give the current question more time: every remaining step moves by ``by``."""
        with self._lock(chat_id):
            chat = self.store.chat(chat_id) or _missing(chat_id)
            self.store.update_chat(chat_id, shift=chat.shift + by)
        self._control_event(chat_id, f"extended by {by}")

    def end(self, chat_id: str) -> None:
        """End early: skip the remaining questions and post the closing now."""
        with self._lock(chat_id):
            units = self.store.units(chat_id)
            skipped, _closing = policy.units_to_end(units)
            for unit in skipped:
                self.store.mark_done(
                    chat_id,
                    unit.step_key,
                    unit.network,
                    UnitState.SKIPPED,
                    "the chat was ended early",
                )
            chat = self.store.chat(chat_id) or _missing(chat_id)
            self.store.update_chat(
                chat_id, shift=policy.shift_for_next(chat, self.store.units(chat_id), self.clock())
            )
        self._control_event(chat_id, "ended early")

    def _control_event(self, chat_id: str, what: str) -> None:
        log.info("control", chat=chat_id, action=what)
        self.store.event("info", what, chat_id=chat_id)
        self.wake(chat_id, self.clock())


def _missing(chat_id: str) -> Any:
    raise ChatbotError(f"no chat {chat_id!r} in the store")
