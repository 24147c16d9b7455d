"""Participation across the chats of a series: who came, who came back, who keeps coming.

A participant is a person with at least one stored, non-deleted answer,
introduction or conversation post in a chat: hosts' posts, blocked posts and
automated accounts (the bot among them) do not count. One person's linked
accounts (the config's ``identities``) count once. People who opted out of bots
are counted in every figure and never named: they are left out of the lists,
the participation report and the chart.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from chatbot import localtime
from chatbot.collect.attribution import normalise_handle
from chatbot.config import Identity
from chatbot.errors import ChatbotError
from chatbot.kinds import PARTICIPANT_KINDS, is_participant
from chatbot.posts import Author
from chatbot.public import clean_name, csv_cell
from chatbot.store import ChatRow, ChatState, Store

# Chats that took place; a missed or cancelled chat breaks nobody's streak.
HELD = (ChatState.RUNNING, ChatState.DONE)


class UnknownSeries(ChatbotError):
    """No chat of that series has taken place."""


@dataclass(frozen=True)
class Person:
    """A participant as the reports name them: linked accounts are one person."""

    key: str
    name: str
    accounts: tuple[str, ...]


@dataclass(frozen=True)
class ChatFigures:
    """One chat of a series."""

    chat_id: str
    label: str  # its date on the chat's clock (with the time if two share a date)
    participants: int
    new: int  # first time in this series
    returning: int  # seen in an earlier chat of the series
    answers: int
    growth: int | None  # participants against the previous chat; None for the first
    growth_percent: float | None  # None for the first, or when the previous had nobody


@dataclass(frozen=True)
class PersonFigures:
    """One (public) person across the series."""

    person: Person
    answers: tuple[int | None, ...]  # per chat of the series; None where they were absent
    current_streak: int  # consecutive chats up to and including the latest
    longest_streak: int

    @property
    def chats(self) -> int:
        return sum(1 for a in self.answers if a is not None)

    @property
    def total_answers(self) -> int:
        return sum(a for a in self.answers if a is not None)


@dataclass(frozen=True)
class SeriesStats:
    """Participation in a series, chat by chat and person by person."""

    series: str
    chats: tuple[ChatFigures, ...]
    people: tuple[PersonFigures, ...]  # public people only, most faithful first
    opted_out_people: int  # counted in the chats' figures, never listed

    @property
    def total_people(self) -> int:
        return len(self.people) + self.opted_out_people


class Identities:
    """Which person an account belongs to, from the config's ``identities``."""

    def __init__(self, identities: Sequence[Identity]) -> None:
        self._people = list(identities)
        self._by_account = {
            normalise_handle(account): i
            for i, identity in enumerate(identities)
            for account in identity.accounts
        }

    def person_of(self, author: Author) -> Person:
        """The person behind an account: a linked identity, or the account itself."""
        for key in (normalise_handle(author.handle), author.id.lower()):
            index = self._by_account.get(key)
            if index is not None:
                identity = self._people[index]
                return Person(
                    f"identity:{index}", clean_name(identity.name), tuple(identity.accounts)
                )
        handle = "@" + clean_name(author.handle).removeprefix("@")
        return Person(
            f"{author.network.value}:{author.id}",
            clean_name(author.display_name) or handle,
            (handle,),
        )


def series_ids(store: Store) -> list[str]:
    """The series that have held at least one chat, in order of their first chat."""
    return list(dict.fromkeys(c.script_id for c in store.chats.list(list(HELD))))


def series_stats(store: Store, series: str, identities: Sequence[Identity] = ()) -> SeriesStats:
    """Participation figures of every chat held in ``series`` (its chat script's id)."""
    chats = [c for c in store.chats.list(list(HELD)) if c.script_id == series]
    if not chats:
        known = ", ".join(series_ids(store)) or "none yet"
        raise UnknownSeries(f'no chat of the series "{series}" has taken place (series: {known})')
    position = {chat.chat_id: i for i, chat in enumerate(chats)}
    who = Identities(identities)
    people: dict[str, Person] = {}
    answers: dict[str, dict[int, int]] = {}  # person -> chat position -> answers
    opted_out: set[str] = set()
    for chat_id, author, count in store.reports.participation(list(position), PARTICIPANT_KINDS):
        if not is_participant(author):
            continue
        person = who.person_of(author)
        people.setdefault(person.key, person)
        per_chat = answers.setdefault(person.key, {})
        per_chat[position[chat_id]] = per_chat.get(position[chat_id], 0) + count
        if author.opt_out:
            opted_out.add(person.key)  # one opted-out account hides the whole person

    first_seen = {key: min(per_chat) for key, per_chat in answers.items()}
    figures: list[ChatFigures] = []
    labels = _labels(chats)
    for i, chat in enumerate(chats):
        present = [key for key, per_chat in answers.items() if i in per_chat]
        new = sum(1 for key in present if first_seen[key] == i)
        previous = figures[-1].participants if figures else None
        growth = len(present) - previous if previous is not None else None
        figures.append(
            ChatFigures(
                chat_id=chat.chat_id,
                label=labels[i],
                participants=len(present),
                new=new,
                returning=len(present) - new,
                answers=sum(answers[key][i] for key in present),
                growth=growth,
                growth_percent=(
                    100.0 * growth / previous if growth is not None and previous else None
                ),
            )
        )

    public = [
        _person_figures(people[key], per_chat, len(chats))
        for key, per_chat in answers.items()
        if key not in opted_out
    ]
    public.sort(
        key=lambda p: (-p.chats, -p.longest_streak, -p.total_answers, p.person.name.casefold())
    )
    return SeriesStats(
        series=series,
        chats=tuple(figures),
        people=tuple(public),
        opted_out_people=len(opted_out),
    )


def _person_figures(person: Person, per_chat: dict[int, int], chats: int) -> PersonFigures:
    longest = run = 0
    for i in range(chats):
        run = run + 1 if i in per_chat else 0
        longest = max(longest, run)
    return PersonFigures(
        person=person,
        answers=tuple(per_chat.get(i) for i in range(chats)),
        current_streak=run,  # the run still going at the latest chat
        longest_streak=longest,
    )


def _labels(chats: Sequence[ChatRow]) -> list[str]:
    """Each chat's date on its own clock, with the time where dates repeat (rehearsals)."""
    starts = [localtime.to_local(c.start_at + c.shift, localtime.zone(c.timezone)) for c in chats]
    for pattern in ("%Y-%m-%d", "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S"):
        labels = [s.strftime(pattern) for s in starts]
        if len(set(labels)) == len(labels):
            return labels
    return [c.chat_id for c in chats]


# --- output -------------------------------------------------------------------------------


def _plural(n: int, one: str, many: str = "") -> str:
    return f"{n:,} {one if n == 1 else many or one + 's'}"


def opted_out_note(n: int) -> str:
    """ "1 of them opted out of bots: counted, not named" """
    return f"{n:,} of them opted out of bots: counted, not named"


def _growth(chat: ChatFigures) -> str:
    if chat.growth is None:
        return ""
    text = f"{chat.growth:+d}" if chat.growth else "0"
    if chat.growth_percent is not None:
        text += f" ({chat.growth_percent:+.0f}%)" if chat.growth else " (0%)"
    return text


def render_stats(stats: SeriesStats, top: int = 20) -> str:
    """The series chat by chat, then its most frequent participants (for badges)."""
    out = [
        f'Series "{stats.series}": {_plural(len(stats.chats), "chat")}, '
        f"{_plural(stats.total_people, 'person', 'people')} took part"
        + (f" ({opted_out_note(stats.opted_out_people)})" if stats.opted_out_people else "")
        + ".",
        "",
    ]
    label_width = max(len("date"), *(len(c.label) for c in stats.chats))
    out.append(
        f"{'date':<{label_width}}  {'people':>6}  {'new':>5}  {'returning':>9}  "
        f"{'answers':>7}  change"
    )
    out += [
        f"{c.label:<{label_width}}  {c.participants:>6}  {c.new:>5}  {c.returning:>9}  "
        f"{c.answers:>7}  {_growth(c)}".rstrip()
        for c in stats.chats
    ]
    out += ["", "Frequent participants (most chats first):"]
    if not stats.people:
        out.append("  none to list")
    shown = stats.people[:top]
    name_width = min(30, max([len("name"), *(len(p.person.name) for p in shown)]))
    if shown:
        out.append(
            f"  {'name':<{name_width}}  {'chats':>5}  {'streak':>6}  {'longest':>7}  "
            f"{'answers':>7}  accounts"
        )
    out += [
        f"  {p.person.name[:name_width]:<{name_width}}  {p.chats:>5}  {p.current_streak:>6}  "
        f"{p.longest_streak:>7}  {p.total_answers:>7}  {', '.join(p.person.accounts)}"
        for p in shown
    ]
    if len(stats.people) > len(shown):
        out.append(f"  ... and {len(stats.people) - len(shown)} more (all in the --csv report)")
    return "\n".join(out)


def write_report(stats: SeriesStats, out: TextIO) -> None:
    """The participation report (CSV): one row per person, with the chats they attended
    and their answers in each, for professional-learning credit. Opted-out people are
    not listed."""
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(
        [
            "person",
            "accounts",
            "chats_attended",
            "dates_attended",
            "answers_total",
            "current_streak",
            "longest_streak",
            *(f"answers {c.label}" for c in stats.chats),
        ]
    )
    for p in stats.people:
        writer.writerow(
            [
                csv_cell(p.person.name),
                csv_cell(" ".join(a.removeprefix("@") for a in p.person.accounts)),
                p.chats,
                "; ".join(
                    c.label for c, a in zip(stats.chats, p.answers, strict=True) if a is not None
                ),
                p.total_answers,
                p.current_streak,
                p.longest_streak,
                *("" if a is None else a for a in p.answers),
            ]
        )


def report_csv(stats: SeriesStats) -> str:
    """The participation report as a string."""
    buffer = io.StringIO(newline="")
    write_report(stats, buffer)
    return buffer.getvalue()


def draw_chart(stats: SeriesStats, path: Path) -> Path:
    """A PNG of participants per chat, new and returning stacked. Names no one."""
    # Imported here: matplotlib takes a while to load, and only this command needs it.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    chats = stats.chats
    x = list(range(len(chats)))
    new = [c.new for c in chats]
    returning = [c.returning for c in chats]
    figure = Figure(figsize=(max(6.0, 0.55 * len(chats) + 2.5), 4.0), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)  # the Agg canvas: no display needed
    axes = figure.add_subplot()
    axes.bar(x, returning, color="#2f6db5", label="returning")
    axes.bar(x, new, bottom=returning, color="#f0a23b", label="new")
    for i, chat in enumerate(chats):
        axes.annotate(
            str(chat.participants),
            (i, chat.participants),
            xytext=(0, 3),
            textcoords="offset points",
            ha="center",
            fontsize=9,
        )
    axes.set_xticks(
        x,
        [c.label for c in chats],
        rotation=40 if len(chats) > 4 else 0,
        ha="right" if len(chats) > 4 else "center",
        fontsize=9,
    )
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_ylim(0, max([c.participants for c in chats] + [1]) * 1.15)
    axes.set_ylabel("participants")
    axes.set_title(f"{stats.series}: participants per chat, new and returning")
    axes.spines[["top", "right"]].set_visible(False)
    handles, names = axes.get_legend_handles_labels()
    # Outside the axes, clear of the bars; listed top to bottom as the bars stack.
    axes.legend(handles[::-1], names[::-1], loc="upper left", bbox_to_anchor=(1, 1), frameon=False)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buffer.getvalue())
    return path
