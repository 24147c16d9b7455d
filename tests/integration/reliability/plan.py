"""Short real-time chats for the crash and fault suites, and the comparison of what the
servers hold with the plan: each step once, in its thread's order (or skipped as late),
each answer once, and the store's counts equal to the servers'."""

from __future__ import annotations

import itertools
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from chatbot.kinds import REPLY_KINDS, ReplyKind
from tests.integration.botrun import BotFolder, chat_script
from tests.integration.collecting import Row, snapshot
from tests.integration.venues import Person, Venue

QUESTIONS = 3


@dataclass
class Chat:
    """One chat of a bot run, and the answers people gave in it."""

    chat_id: str
    tag: str
    expected: list[Row] = field(default_factory=list)
    answered: set[int] = field(default_factory=set)


def chats_for(
    venue: Venue, folder: BotFolder, names: list[str], *, first_in: float, gap: float,
    spacing: float, answer_tail: float,
) -> list[Chat]:  # fmt: skip
    """Write one script per chat, starting ``first_in`` s from now and ``gap`` s apart:
    a welcome, three questions ``spacing`` s apart, a closing and a recap."""
    folder.config.write_text(
        folder.config_text().rstrip("\n") + f"\ncollect_every: 1s\nanswer_tail: {answer_tail:g}s\n",
        encoding="utf-8",
    )
    chats = []
    now = datetime.now(UTC)
    for index, name in enumerate(names):
        tag = venue.tag()
        start = now + timedelta(seconds=first_in + index * gap)
        questions = tuple(f"{name} question {n}?" for n in range(1, QUESTIONS + 1))
        script = chat_script(
            chat_id=name, hashtag=tag, networks=[venue.network], start=start, reminder=False,
            questions=questions, image_question=None, first_question_at=f"{spacing:g}s",
            spacing=f"{spacing:g}s", closing_at=f"{spacing * (QUESTIONS + 1):g}s", recap=True,
            recap_after=f"{max(answer_tail, 2):g}s",
        )  # fmt: skip
        folder.write_script(f"{name}.yaml", script)
        chats.append(Chat(name, tag))
    return chats


def answer_posted_questions(
    venue: Venue, folder: BotFolder, chats: list[Chat], ana: Person, ben: Person
) -> int:
    """Two answers to each question posted so far and not yet answered (one a reply, one a
    top-level post with the hashtag); returns how many answers were posted."""
    units = [u for u in folder.units(venue.network) if u["state"] == "posted"]
    made = 0
    for chat in chats:
        mine = {u["step_key"]: u for u in units if u["chat_id"] == chat.chat_id}
        if "welcome" not in mine:
            continue
        for n in range(1, QUESTIONS + 1):
            unit = mine.get(f"q{n}")
            if unit is None or n in chat.answered or "closing" in mine:
                continue
            ref = venue.ref(unit, mine["welcome"])
            ana.post(f"A{n}: ana in {chat.chat_id} on {n}", reply_to=ref)
            ben.post(f"A{n}: ben in {chat.chat_id} on {n}", tag=chat.tag)
            chat.expected += [
                (n, ana.name, f"ana in {chat.chat_id} on {n}"),
                (n, ben.name, f"ben in {chat.chat_id} on {n} #{chat.tag}"),
            ]
            chat.answered.add(n)
            made += 2
    if made:
        venue.settle()
    return made


@dataclass
class Findings:
    """What the comparison of the servers with the plan found."""

    duplicates: int = 0
    losses: int = 0
    problems: list[str] = field(default_factory=list)

    def add(self, kind: str, n: int, what: str) -> None:
        if n:
            setattr(self, kind, getattr(self, kind) + n)
            self.problems.append(f"{kind}: {what}")


def compare(venue: Venue, folder: BotFolder, chats: list[Chat], people: list[Person]) -> Findings:
    """The servers against the plan and the store (see the module's doc)."""
    found = Findings()
    units = [u for u in folder.units(venue.network) if u["chat_id"] in {c.chat_id for c in chats}]
    held = venue.bot_posts()
    by_id = {p.id: p for p in held}
    posted = [u for u in units if u["state"] == "posted"]
    unclosed = [
        (u["chat_id"], u["step_key"], u["state"], u["reason"])
        for u in units
        if u["state"] != "posted" and not (u["state"] == "skipped" and "late" in u["reason"])
    ]
    found.add("losses", len(unclosed), f"steps neither posted nor skipped as late: {unclosed}")
    missing = [
        (u["chat_id"], u["step_key"])
        for u in posted
        if u["remote_id"] not in by_id and u["kind"] != ReplyKind.LIKE.value
    ]
    found.add("losses", len(missing), f"posted in the store, not on the server: {missing}")
    recorded = {u["remote_id"] for u in posted}
    extra = [p.text[:60] for p in held if p.id not in recorded]
    found.add("duplicates", len(extra), f"posts on the server the store does not know: {extra}")
    for chat in chats:
        mine = [u for u in posted if u["chat_id"] == chat.chat_id]
        for thread in (
            [u for u in mine if u["kind"] not in ("recap", *REPLY_KINDS)],
            [u for u in mine if u["kind"] == "recap"],
        ):
            order = [
                (u["step_key"], by_id[u["remote_id"]].parent, previous["remote_id"])
                for previous, u in itertools.pairwise(thread)
                if u["remote_id"] in by_id and by_id[u["remote_id"]].parent != previous["remote_id"]
            ]
            found.problems += [f"thread order broken: {order}"] if order else []
        table = snapshot(folder, chat.chat_id).table()
        want = sorted(chat.expected)
        lost = [r for r in want if r not in table]
        found.add("losses", len(lost), f"answers not collected in {chat.chat_id}: {lost}")
        again = sum(n - 1 for n in Counter(table).values() if n > 1)
        found.add("duplicates", again, f"answers collected twice in {chat.chat_id}")
        strange = [r for r in table if r not in want]
        found.problems += [f"answers nobody gave in {chat.chat_id}: {strange}"] if strange else []
    stored = {
        p.uri for chat in chats for p in snapshot(folder, chat.chat_id).posts if not p.deleted
    }
    on_server = set().union(*(person.held() for person in people))
    if stored != on_server:
        found.problems.append(
            f"store and server differ: {len(stored)} participants' posts stored, "
            f"{len(on_server)} on the server (missing {sorted(on_server - stored)[:3]})"
        )
    return found


def finished(folder: BotFolder, chats: list[Chat]) -> bool:
    """Whether every chat is over, its answers in and its transcript written.

    (``run --exit-when-done`` started when every chat is already over never exits: the
    chats that are over are not planned, and it waits for a planned chat to end.)"""
    archives = folder.root / "data" / "archives"
    return all((archives / f"{chat.chat_id}.md").exists() for chat in chats)


def states(folder: BotFolder, network: str) -> list[tuple[Any, ...]]:
    return [(u["chat_id"], u["step_key"], u["state"], u["reason"]) for u in folder.units(network)]
