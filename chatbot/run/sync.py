"""Scripts -> planned chats -> units in the store: what the runner should be doing.

A sync reads the schedules folder (or the scripts it was given), plans the
running and next chats of each script, and records their units: everything
each post will need (text, facets, image, visibility). It then publishes an
immutable :class:`Snapshot` that jobs read without locks, and says which chats
changed so the runner can wake them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import MappingProxyType

import structlog

from chatbot.collect.collector import ChatSetup
from chatbot.config import MastodonAccount
from chatbot.kinds import StepKind, Visibility
from chatbot.loader import LoadedScript, check_paths
from chatbot.networks.base import idempotency_key
from chatbot.plan import ChatPlan, RenderedPost, Step, occurrences, plan_chat, plan_upcoming
from chatbot.script import ChatScript, Moderation, NetworkName
from chatbot.store import OVER_STATES, ChatState, Image, PlannedUnit, Store
from chatbot.text import Limits

log = structlog.get_logger("chatbot.run.sync")
Clock = Callable[[], datetime]


@dataclass(frozen=True)
class VisibilityPolicy:
    """Mastodon visibility per kind of step. Questions are always public."""

    reminders: Visibility = Visibility.PUBLIC
    chat: Visibility = Visibility.PUBLIC
    recap: Visibility = Visibility.UNLISTED
    everything: Visibility | None = None  # a rehearsal on real accounts: every step alike

    @classmethod
    def from_account(cls, account: MastodonAccount | None) -> VisibilityPolicy:
        if account is None:
            return cls()
        return cls(account.reminders_visibility, account.chat_visibility, account.recap_visibility)

    @classmethod
    def only_the_bot(cls) -> VisibilityPolicy:
        """Mastodon's most private: a direct post that mentions no one is seen by the bot's
        account alone (for a deliberate rehearsal on a real account)."""
        return cls(everything=Visibility.DIRECT)

    def for_kind(self, kind: str) -> Visibility:
        if self.everything is not None:
            return self.everything
        # Unlisted posts never reach hashtag timelines, so questions are public always.
        if kind == StepKind.QUESTION:
            return Visibility.PUBLIC
        if kind == StepKind.REMINDER:
            return self.reminders
        if kind == StepKind.RECAP:
            return self.recap
        return self.chat


@dataclass(frozen=True)
class Snapshot:
    """What the last sync planned: read by jobs, replaced (never changed) by the next sync."""

    plans: Mapping[str, ChatPlan] = field(default_factory=lambda: MappingProxyType({}))
    scripts: Mapping[str, LoadedScript] = field(default_factory=lambda: MappingProxyType({}))

    def script_of(self, chat_id: str) -> LoadedScript | None:
        plan = self.plans.get(chat_id)
        return self.scripts.get(plan.script_id) if plan is not None else None


def units_for(plan: ChatPlan, base_dir: Path, visibility: VisibilityPolicy) -> list[PlannedUnit]:
    """The units of a planned chat: one per step and network, each with its whole post.

    The recap's units have no text yet: it is composed when the recap is due,
    from what was collected, on every network the chat posts to.
    """
    units = []
    networks = list(dict.fromkeys(n for step in plan.steps for n in step.posts))
    for seq, step in enumerate(plan.steps):
        targets: dict[NetworkName, RenderedPost | None] = (
            dict.fromkeys(networks) if step.kind is StepKind.RECAP else dict(step.posts)
        )
        for network, post in targets.items():
            image = None
            if post is not None and post.image_path and post.image_alt:
                image = Image(str((base_dir / post.image_path).resolve()), post.image_alt)
            units.append(
                PlannedUnit(
                    step_key=step.key,
                    network=network,
                    seq=seq,
                    kind=step.kind.value,
                    number=step.number if post is not None else None,
                    planned_at=step.at,
                    idempotency_key=idempotency_key(plan.chat_id, step.key, network),
                    text=post.text if post is not None else "",
                    facets=tuple(post.facets) if post is not None else (),
                    image=image,
                    visibility=visibility.for_kind(step.kind),
                )
            )
    return units


# A rehearsal starts this soon; its reminders go out one REMINDER_GAP apart before it
# (a day's lead, even at 60 times, would be 24 minutes of waiting).
REHEARSAL_LEAD = timedelta(seconds=4)
REMINDER_GAP = timedelta(seconds=1)


def accelerate(plan: ChatPlan, start: datetime, speed: float, chat_id: str) -> ChatPlan:
    """``plan`` played from ``start``, ``speed`` times faster, as chat ``chat_id``: the same
    posts and order; the steps before the start (reminders) one second apart just before it."""
    before = sorted((s for s in plan.steps if s.offset < timedelta(0)), key=lambda s: s.offset)

    def at(step: Step) -> datetime:
        if step.offset < timedelta(0):
            return start - REMINDER_GAP * (len(before) - before.index(step))
        return start + step.offset / speed

    steps = tuple(replace(step, at=at(step)) for step in plan.steps)
    closing = max(s.at for s in steps if s.kind is StepKind.CLOSING)
    return replace(plan, chat_id=chat_id, start=start, end=closing, steps=steps)


def folder_state(folder: Path) -> tuple[tuple[str, int, int, int], ...]:
    """Every file under ``folder`` (scripts, their images) with its size, change time and
    inode: a file edited, added, removed or replaced changes it."""
    found = []
    for path in sorted(folder.rglob("*")):
        try:
            stat = path.stat()
        except OSError:
            continue  # gone meanwhile: the next sync sees the folder without it
        if path.is_file():
            found.append((str(path), stat.st_size, stat.st_mtime_ns, stat.st_ino))
    return tuple(found)


class Sync:
    """Brings the store in line with the scripts; one instance per runner."""

    def __init__(
        self,
        *,
        store: Store,
        networks: Sequence[NetworkName],
        schedules: Path | None,
        clock: Clock,
        limits: Callable[[], Limits],
        visibility: VisibilityPolicy,
        speed: float = 1.0,
        scripts: list[LoadedScript] | None = None,
    ) -> None:
        self._store = store
        self._networks = frozenset(networks)
        self._schedules = schedules
        self._clock = clock
        self._limits = limits
        self._visibility = visibility
        self._speed = speed
        self._fixed_scripts = scripts
        self._snapshot = Snapshot()
        # Kept apart (a one-off's chat id equals its script id): plan digests by chat id.
        self._plan_digests: dict[str, str] = {}
        self._reported: dict[str, str] = {}
        self._accelerated_start: datetime | None = None
        # The last check of the folder: (what it was checked against, the scripts it gave).
        self._checked: tuple[tuple[object, ...], list[LoadedScript]] | None = None

    @property
    def snapshot(self) -> Snapshot:
        return self._snapshot

    def planned(self) -> list[str]:
        """Ids of the chats planned, soonest first."""
        plans = self._snapshot.plans.values()
        return [p.chat_id for p in sorted(plans, key=lambda p: p.start)]

    def script_of(self, chat_id: str) -> ChatScript | None:
        """The script of a planned chat, as last loaded."""
        loaded = self._snapshot.script_of(chat_id)
        return loaded.script if loaded else None

    def setup_of(self, chat_id: str, moderation: Moderation) -> ChatSetup | None:
        """What collection needs to know of a planned chat (the config's ``moderation``
        merged with the script's)."""
        plan, script = self._snapshot.plans.get(chat_id), self.script_of(chat_id)
        if plan is None or script is None:
            return None
        return ChatSetup.of(plan, script, moderation)

    def run(self) -> list[str]:
        """Reload the scripts and record their plans; returns the chats whose plan changed."""
        now = self._clock()
        plans = {
            chat_id: plan
            for chat_id, plan in self._snapshot.plans.items()
            if not self._over(chat_id)
        }
        scripts: dict[str, LoadedScript] = {}
        changed: list[str] = []
        for loaded in self._load():
            missing = [n for n in loaded.script.networks if n not in self._networks]
            if missing:
                self._report(
                    str(loaded.path),
                    f"{loaded.path}: posts to {', '.join(m.value for m in missing)} but the "
                    "config has no account for it: add it under accounts: in the config",
                )
                continue
            scripts[loaded.script_id] = loaded
            self._save_source(loaded, now)
            for plan in self._plan(loaded, now):
                if self._over(plan.chat_id):
                    continue
                plans[plan.chat_id] = plan
                if self._record(plan, loaded, now):
                    changed.append(plan.chat_id)
        if self._fixed_scripts is None:
            for script_id in set(self._store.scripts.active_ids()) - scripts.keys():
                for chat_id in self._remove_script(script_id, now):
                    plans.pop(chat_id, None)
                    changed.append(chat_id)
        self._snapshot = Snapshot(MappingProxyType(plans), MappingProxyType(scripts))
        return changed

    # --- scripts ----------------------------------------------------------------------------

    def _load(self) -> list[LoadedScript]:
        """The scripts to run: valid files, or the last good version of a broken one. The
        folder is checked again only when a file in it changed, the limits did, or the day
        (series are checked from today); else the last check stands (it takes a second for
        fifty scripts, and a sync runs every minute)."""
        if self._fixed_scripts is not None:
            return self._fixed_scripts
        assert self._schedules is not None
        limits = self._limits()
        key = (folder_state(self._schedules), limits, self._clock().date())
        if self._checked is not None and self._checked[0] == key:
            return self._checked[1]
        report = check_paths([self._schedules], None, limits, last_good=self._last_good)
        for problem in report.problems:
            self._report(problem.file, problem.render(), line=problem.line)
        broken = {p.file for p in report.problems}
        for name in list(self._reported):
            if name not in broken:
                del self._reported[name]
        self._checked = (key, report.scripts)
        return report.scripts

    def _report(self, file: str, message: str, *, line: int | None = None) -> None:
        """Log and record a script problem once, not at every sync."""
        if self._reported.get(file) == message:
            return
        self._reported[file] = message
        log.error("script problem", file=file, line=line, problem=message)
        self._store.events.add("error", message, now=self._clock())

    def _last_good(self, path: Path) -> str | None:
        found = self._store.scripts.source_at(str(path))
        return found[1] if found else None

    def _save_source(self, loaded: LoadedScript, now: datetime) -> None:
        if loaded.stale:
            return
        digest = hashlib.sha256(loaded.source.encode()).hexdigest()
        if self._store.scripts.digest(loaded.script_id) != digest:
            self._store.scripts.save(
                loaded.script_id, str(loaded.path), digest, loaded.source, now=now
            )

    # --- plans ------------------------------------------------------------------------------

    def _plan(self, loaded: LoadedScript, now: datetime) -> list[ChatPlan]:
        limits = self._limits()
        if self._speed == 1.0:
            return plan_upcoming(loaded.script, loaded.script_id, now, count=2, limits=limits)
        # Accelerated (a rehearsal): the next real chat, with its real text, played now.
        real = plan_upcoming(loaded.script, loaded.script_id, now, count=1, limits=limits)
        if not real:  # a one-off already over: its own date
            starts = occurrences(loaded.script, datetime.min.replace(tzinfo=UTC), 1)
            real = [
                plan_chat(
                    loaded.script, loaded.script_id, starts[0] if starts else now, limits=limits
                )
            ]
        if self._accelerated_start is None:
            self._accelerated_start = now + REHEARSAL_LEAD
        start = self._accelerated_start
        chat_id = f"{loaded.script_id}-x{self._speed:g}-{start:%Y%m%dT%H%M%S}"
        return [accelerate(real[0], start, self._speed, chat_id)]

    def _over(self, chat_id: str) -> bool:
        chat = self._store.chats.get(chat_id)
        return chat is not None and chat.state in OVER_STATES

    def _record(self, plan: ChatPlan, loaded: LoadedScript, now: datetime) -> bool:
        """Store the plan's chat and units; True if anything changed since the last sync."""
        digest = hashlib.sha256(repr(plan).encode()).hexdigest()
        known = self._plan_digests.get(plan.chat_id)
        if known == digest and self._store.chats.get(plan.chat_id) is not None:
            return False
        self._plan_digests[plan.chat_id] = digest
        self._store.chats.upsert(
            chat_id=plan.chat_id,
            script_id=plan.script_id,
            title=plan.title,
            hashtag=plan.hashtag,
            timezone=plan.timezone,
            start_at=plan.start,
            end_at=plan.end,
            now=now,
        )
        units = units_for(plan, loaded.base_dir, self._visibility)
        self._store.units.plan(plan.chat_id, units, now=now)
        log.info(
            "scheduled" if known is None else "rescheduled",
            chat=plan.chat_id,
            start=plan.start.isoformat(),
            steps=len(plan.steps),
            stale=loaded.stale or None,
        )
        return True

    def _remove_script(self, script_id: str, now: datetime) -> list[str]:
        """The script's file is gone: its future steps are cancelled; returns its chats."""
        self._store.scripts.mark_removed(script_id, now=now)
        cancelled_chats = []
        for chat in self._store.chats.list([ChatState.SCHEDULED, ChatState.RUNNING]):
            if chat.script_id != script_id:
                continue
            cancelled = self._store.units.cancel_pending(
                chat.chat_id, "the script was removed", now=now
            )
            self._store.chats.update(
                chat.chat_id, state=ChatState.CANCELLED, note="script removed", now=now
            )
            log.info("cancelled", chat=chat.chat_id, reason="script removed", units=cancelled)
            self._store.events.add(
                "info", "script removed: future steps cancelled", chat_id=chat.chat_id, now=now
            )
            cancelled_chats.append(chat.chat_id)
        return cancelled_chats
