"""The long run: a simulated month of a weekly chat on the local network, with restarts.

Four weekly chats in New York (the last one after the clocks fall back on 3 November
2030) and their reminders, run by the real runner on the local network (simulated
participants answering), driven by a fake clock from one wake-up to the next as the
scheduler would (the runner's own ``advance``/``collect``; no sleeps). The bot is
"restarted" at seeded random moments: the runner and its store are dropped without a
goodbye (as after a crash) and a new one is built on the same database.

Checked: every step posted once, at its local time in the chat's time zone; the
database grows in step with what was posted; the process's resident memory after
each chat is back near its level before it (the figures are printed).
"""

from __future__ import annotations

import contextlib
import gc
import itertools
import random
import resource
import sqlite3
import textwrap
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import tenacity

from chatbot.config import LatePolicy
from chatbot.networks.local import LocalNetwork
from chatbot.run.runner import Runner
from chatbot.script import NetworkName
from chatbot.store import BOT_AUTHOR, ChatState, Store
from chatbot.testing import FakeClock
from tests.integration.reliability import summary

NEW_YORK = ZoneInfo("America/New_York")
SEED = 13
SYNC_EVERY = timedelta(hours=1)  # the runner reloads its scripts (every minute in real time)
RESTARTS = 12  # drawn among the month's wake-ups
# The fake clock starts a week before the first reminder and runs past the last recap.
BEGIN = datetime(2030, 10, 9, 12, 0, tzinfo=UTC)
END = datetime(2030, 11, 9, 12, 0, tzinfo=UTC)
DATES = ("2030-10-17", "2030-10-24", "2030-10-31", "2030-11-07")  # the last after 3 November
SCRIPT = """\
    id: month
    title: A month of chats
    hashtag: "#MonthChat"
    series: month
    timezone: America/New_York
    recurrence:
      every: week
      weekday: thursday
      time: "20:00"
      starting: 2030-10-15
      until: 2030-11-08
    networks: [local]
    moderators: [{name: Host}]
    reminders:
      - {before: 1 day, text: "Tomorrow: {title} {hashtag}"}
      - {before: 1h, text: "In an hour: {title} {hashtag}"}
    welcome: {text: "Welcome to {hashtag}"}
    question_spacing: 10m
    questions:
      - {text: "What worked this week?", at: 5m}
      - {text: "What did not?"}
      - {text: "What will you try next?"}
    closing: {at: 55m, text: "Thanks for joining {hashtag}"}
    recap: {after: 30m}
"""
# Each step's local wall-clock time (day offset from the chat's date, "HH:MM").
LOCAL_TIMES = {
    "reminder-1": (-1, "20:00"),
    "reminder-2": (0, "19:00"),
    "welcome": (0, "20:00"),
    "q1": (0, "20:05"),
    "q2": (0, "20:15"),
    "q3": (0, "20:25"),
    "closing": (0, "20:55"),
}
# How far back to the level before a chat resident memory must come (bytes): allocator
# slack and caches, far below what a leak of one chat's posts would show over a month.
RSS_SLACK = 8 * 1024 * 1024


def _database_bytes(root: Path) -> int:
    """The pages the database uses (its write-ahead log read through), in bytes."""
    uri = f"file:{root / 'chatbot.db'}?mode=ro"
    with contextlib.closing(sqlite3.connect(uri, uri=True)) as db:
        pages, free, size = (
            db.execute(f"PRAGMA {name}").fetchone()[0]
            for name in ("page_count", "freelist_count", "page_size")
        )
    return int((pages - free) * size)


def _rss() -> int:
    """Resident memory of this process now (bytes), after a full collection."""
    gc.collect()
    pages = Path("/proc/self/statm").read_text(encoding="ascii").split()[1]
    return int(pages) * resource.getpagesize()


@dataclass
class Bot:
    """One life of the bot: a store on the month's database and a runner on the network."""

    root: Path
    clock: FakeClock
    store: Store = field(init=False)
    runner: Runner = field(init=False)

    def __post_init__(self) -> None:
        self.store = Store.open(f"sqlite:///{self.root / 'chatbot.db'}", now=self.clock())
        local = LocalNetwork(self.store, clock=self.clock, participants=True, seed=SEED)
        self.runner = Runner(
            store=self.store,
            networks={NetworkName.LOCAL: local},
            schedules=self.root / "schedules",
            late=LatePolicy(step_grace=timedelta(minutes=5)),
            clock=self.clock,
            watch=False,
            quick_retry_wait=tenacity.wait_none(),
            answer_tail=timedelta(minutes=30),
            archive_dir=self.root / "archives",
            data_dir=self.root,
        )
        self.runner.sync()

    def crash(self) -> None:
        """Gone without a word: nothing is handed over (the store's writes are committed)."""
        self.store.close()


@dataclass
class Month:
    """The scheduler's part, played by hand: each chat's next wake-up and collection."""

    root: Path
    clock: FakeClock = field(default_factory=lambda: FakeClock(BEGIN))
    due: dict[tuple[str, str], datetime] = field(default_factory=dict)
    restarts: int = 0

    def boot(self) -> Bot:
        bot = Bot(self.root, self.clock)
        self._book_planned(bot)
        self.due[("sync", "")] = self.clock() + SYNC_EVERY
        # start() resumes collection: chats inside their answer window are read again, and
        # a finished chat whose transcript was never written gets it now.
        collecting, unwritten = bot.runner.collector.to_resume(bot.runner.archive_dir)
        for chat_id in collecting:
            self.due.setdefault(("collect", chat_id), self.clock() + timedelta(minutes=1))
        for chat_id in unwritten:
            bot.runner._write_transcript(chat_id)
        return bot

    def _book_planned(self, bot: Bot) -> None:
        """What start() and each sync book: every planned chat not over, now."""
        for chat_id in bot.runner.planned_chats():
            chat = bot.store.chats.get(chat_id)
            if chat is None or chat.state in (ChatState.SCHEDULED, ChatState.RUNNING):
                self.due.setdefault(("chat", chat_id), self.clock())

    def step(self, bot: Bot) -> bool:
        """Run the earliest wake-up due before the end; False when there is none."""
        if not any(kind != "sync" for kind, _ in self.due):
            return False
        (kind, chat_id), when = min(self.due.items(), key=lambda item: item[1])
        if when > END:
            return False
        del self.due[(kind, chat_id)]
        self.clock.set(max(when, self.clock()))
        if kind == "sync":  # the scripts reloaded: the series' next chats planned
            bot.runner.sync()
            self._book_planned(bot)
            again: datetime | None = self.clock() + SYNC_EVERY
        elif kind == "chat":
            again = bot.runner.advance(chat_id)
            chat = bot.store.chats.get(chat_id)
            if chat is not None and chat.state is ChatState.RUNNING:
                self.due.setdefault(("collect", chat_id), self.clock() + timedelta(minutes=1))
        else:
            again = bot.runner.collect(chat_id)
            # A round that plans a reply (a first-timer's welcome) wakes the chat's job now.
            self.due[("chat", chat_id)] = min(self.due.get(("chat", chat_id), END), self.clock())
        if again is not None:
            self.due[(kind, chat_id)] = again
        return True


def test_a_month_of_weekly_chats_posts_each_step_once_at_its_local_time(tmp_path: Path) -> None:
    """Four weekly chats, reminders and recaps across the fall-back change, twelve restarts:
    each step posted once at its local time, the store linear, memory back after each chat."""
    (tmp_path / "schedules").mkdir()
    (tmp_path / "schedules" / "month.yaml").write_text(textwrap.dedent(SCRIPT), encoding="utf-8")
    month = Month(tmp_path)
    rng = random.Random(SEED)
    bot = month.boot()
    steps = mid_chat = 0
    restart_at = sorted(rng.sample(range(40, 1000), RESTARTS))
    rss: list[tuple[str, int, int]] = []  # (chat, before its first post, after it is done)
    # (posts of the bot and participants so far, database bytes): from before the first chat
    sizes: list[tuple[int, int]] = [(0, _database_bytes(tmp_path))]
    watched: str | None = None
    before = 0
    while month.step(bot):
        steps += 1
        if restart_at and steps >= restart_at[0]:
            restart_at.pop(0)
            mid_chat += any(c.state is ChatState.RUNNING for c in bot.store.chats.list())
            bot.crash()
            month.due.clear()  # the scheduler's bookings die with the process
            month.restarts += 1
            bot = month.boot()
        running = [c for c in bot.store.chats.list() if c.state is ChatState.RUNNING]
        if watched is None and running:
            watched, before = running[0].chat_id, _rss()
        chat = bot.store.chats.get(watched) if watched else None
        over = chat is not None and chat.state is ChatState.DONE
        if watched and over and not any(key[1] == watched for key in month.due):
            # answers in, transcript out
            rss.append((watched, before, _rss()))
            posts = len(bot.store.conversation.posts(watched))
            total = sizes[-1][0]
            units = len(bot.store.units.of_chat(watched))
            sizes.append((total + posts + units, _database_bytes(tmp_path)))
            watched = None
    assert month.restarts == RESTARTS and mid_chat >= 3, (steps, mid_chat)  # some mid-chat

    units = [u for c in bot.store.chats.list() for u in bot.store.units.of_chat(c.chat_id)]
    local = LocalNetwork(bot.store, clock=month.clock, participants=False)
    bot_posts = [p for p in local.posts(include_future=True) if p.author == BOT_AUTHOR]
    chats = sorted({u.chat_id for u in units})
    summary.tally("month_wake_ups", steps)
    for chat_id, was, now in rss:  # per chat in .reports/reliability.json
        summary.worst(f"month_rss_mib_before {chat_id}", round(was / 2**20, 1))
        summary.worst(f"month_rss_mib_after {chat_id}", round(now / 2**20, 1))
        summary.worst("month_rss_growth_kib", (now - was) / 1024)
    # What each chat added to the database, per post it added.
    per_post = [(b - a) / (n - m) for (m, a), (n, b) in itertools.pairwise(sizes)]
    for (count, size), bytes_per_post in zip(sizes[1:], per_post, strict=True):
        summary.worst(f"month_database_kib after {count} posts and steps", size // 1024)
        summary.worst("month_database_bytes_per_post", round(bytes_per_post))

    assert [c.removeprefix("month-") for c in chats] == list(DATES)
    posted = [u for u in units if u.state.value == "posted"]
    claimed = Counter(u.remote.id for u in posted if u.remote is not None)
    # A duplicate: a post of the bot that no step claims, or one claimed by two steps.
    duplicates = len({str(p.id) for p in bot_posts} - set(claimed))
    duplicates += sum(n - 1 for n in claimed.values())
    losses = len(units) - len(posted)
    # Every participant's post collected once, in its chat (none lost across the restarts).
    theirs = sorted(str(p.id) for p in local.posts(include_future=True) if p.author != BOT_AUTHOR)
    stored = sorted(p.post_id for chat_id in chats for p in bot.store.conversation.posts(chat_id))
    losses += len(set(theirs) - set(stored))
    duplicates += len(stored) - len(set(stored))
    summary.tally("duplicates", duplicates)
    summary.tally("losses", losses)
    assert duplicates == 0 and len(bot_posts) == len(units), (len(bot_posts), len(units))
    assert theirs == stored
    assert losses == 0, [
        (u.chat_id, u.step_key, u.state, u.reason) for u in units if u not in posted
    ]

    on_time = 0
    held = {str(p.id): p.created_at for p in bot_posts}  # when the network got each post
    for unit in posted:
        assert unit.posted_at is not None and unit.remote is not None
        date = datetime.fromisoformat(unit.chat_id.removeprefix("month-")).date()
        local_at = held[unit.remote.id].astimezone(NEW_YORK)
        if unit.step_key in LOCAL_TIMES:
            days, hhmm = LOCAL_TIMES[unit.step_key]
            expected = f"{date + timedelta(days=days)} {hhmm}"
            assert local_at.strftime("%Y-%m-%d %H:%M") == expected, (unit.chat_id, unit.step_key)
        elif unit.kind == "recap":  # after the answers' half hour past the closing
            assert local_at.strftime("%Y-%m-%d %H:%M") >= f"{date} 21:25", unit.chat_id
        else:  # a reply to a participant (a welcome): when the collection round planned it
            assert unit.posted_at - unit.planned_at < timedelta(minutes=2), unit.step_key
        on_time += 1
    summary.tally("month_steps", on_time)
    # The fall-back change moved the chat an hour later in UTC, and nothing else.
    utc_welcome = {u.chat_id: u.posted_at for u in posted if u.step_key == "welcome"}
    assert [w.astimezone(UTC).hour for w in utc_welcome.values() if w] == [0, 0, 0, 1]

    assert len(rss) == len(DATES)
    for chat_id, was, now in rss[1:]:  # the first chat pays for imports and caches
        assert now - was < RSS_SLACK, f"{chat_id}: {(now - was) / 2**20:.1f} MiB kept"
    assert min(per_post) > 0 and max(per_post) < 3 * min(per_post), sizes
    bot.crash()
