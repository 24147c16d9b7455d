"""When the chats are: the time zone, a one-off's start, and a series over its real horizon.

A series is checked on every chat of the next two years, in calendar time,
whatever its frequency: a weekly chat at 01:30 meets a fall-back day within a
year, a monthly one may not for years. The chats found here are also the dates
the texts are measured against.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from chatbot import localtime
from chatbot.errors import Problem, Severity
from chatbot.plan import local_occurrences
from chatbot.script import ChatScript, Recurrence
from chatbot.source import SourceDoc

HORIZON_YEARS = 2
_SHOWN_DATES = 6


@dataclass(frozen=True)
class Chat:
    """One chat of the script: its start (aware UTC) and the next chat's, if any."""

    start: datetime
    next_start: datetime | None


def schedule_known(doc: SourceDoc) -> bool:
    """Whether start:/recurrence: are the script's own (not stand-ins for broken ones)."""
    return not (doc.is_invalid(("start",)) or any(p[:1] == ("recurrence",) for p in doc.invalid))


def check_zone(script: ChatScript, doc: SourceDoc) -> tuple[ZoneInfo | None, list[Problem]]:
    """The chat's zone, or None with the problem; a warning for a fixed offset or old name."""
    if doc.is_invalid(("timezone",)):
        return None, []
    name = script.timezone
    try:
        tz = localtime.zone(name)
    except KeyError:
        close = localtime.close_zone_names(name)
        hint = (
            f"did you mean {' or '.join(close)}?"
            if close
            else "use an IANA name such as America/New_York or Europe/Paris"
        )
        return None, [doc.problem(("timezone",), f'unknown time zone "{name}"', hint)]
    advice = localtime.zone_advice(name)
    if advice is None:
        return tz, []
    region = advice.intended or "your region's zone, such as America/New_York or Europe/Paris"
    if advice.kind is localtime.ZoneKind.FIXED:
        message = (
            f'"{name}" is a fixed offset, {advice.offset} all year, with no daylight-saving time'
        )
        if name.startswith("Etc/GMT") and name[7:8] in "+-":
            message += f" (in Etc/GMT names the sign is reversed: {name} is {advice.offset})"
        if advice.intended and advice.intended != "UTC":
            message += f"; in summer the chat would be an hour off {advice.intended} time"
        hint = f"use {region} to follow its local time in winter and in summer"
    else:
        message = f'"{name}" is an old time-zone name, kept only for compatibility'
        hint = f"use {region}" + (", the current name" if advice.intended else "")
    return tz, [doc.problem(("timezone",), message, hint, severity=Severity.WARNING)]


def check_when(
    script: ChatScript, doc: SourceDoc, tz: ZoneInfo, now: datetime | None, today: datetime
) -> tuple[list[Chat], list[Problem]]:
    """The chats within the horizon from ``today``, and what is wrong with their times.

    ``now`` (None in the running bot) turns on the notes about chats in the past.
    """
    if script.start is not None:
        start = localtime.to_utc(script.start, tz)
        problems = _dst_problems([script.start], tz, doc, ("start",), "the start")
        if now is not None and start < now:
            problems.append(
                doc.problem(
                    ("start",),
                    f"this chat started on {script.start:%Y-%m-%d at %H:%M} ({script.timezone}), "
                    "which is in the past, so the bot will not post it",
                    "nothing to do; move the file out of the schedules folder when you like",
                    severity=Severity.NOTE,
                )
            )
        return [Chat(start, None)], problems
    assert script.recurrence is not None
    chats, locals_ = _series(script.recurrence, tz, today)
    problems = _dst_problems(locals_, tz, doc, ("recurrence", "time"), "the series' chat")
    problems += _skip_problems(script.recurrence, doc)
    if now is not None and not chats:
        problems.append(
            doc.problem(
                ("recurrence", "until") if script.recurrence.until else ("recurrence",),
                "the series is over: it has no chat left after today, so the bot will not post it",
                "nothing to do; extend until: to go on, or move the file out of the schedules "
                "folder when you like",
                severity=Severity.NOTE,
            )
        )
    return chats, problems


def _series(
    recurrence: Recurrence, tz: ZoneInfo, today: datetime
) -> tuple[list[Chat], list[datetime]]:
    """The series' chats from ``today`` until two years after the first of them."""
    floor = today.replace(tzinfo=None) - timedelta(days=2)
    starts: list[datetime] = []
    locals_: list[datetime] = []
    end: date | None = None
    following: datetime | None = None
    for local in local_occurrences(recurrence):
        if local < floor:
            continue
        start = localtime.to_utc(local, tz)
        if start < today:
            continue
        if end is None:
            end = localtime.years_later(local.date(), HORIZON_YEARS)
        if local.date() >= end:
            following = start
            break
        starts.append(start)
        locals_.append(local)
    nexts = [*starts[1:], following] if starts else []
    return [Chat(s, n) for s, n in zip(starts, nexts, strict=True)], locals_


def _dst_problems(
    locals_: list[datetime], tz: ZoneInfo, doc: SourceDoc, path: tuple[str, ...], what: str
) -> list[Problem]:
    gaps = [
        d for d in locals_ if localtime.check_local(d, tz) is localtime.LocalTimeIssue.NONEXISTENT
    ]
    twice = [
        d for d in locals_ if localtime.check_local(d, tz) is localtime.LocalTimeIssue.AMBIGUOUS
    ]
    problems = []
    if gaps:
        problems.append(
            doc.problem(
                path,
                f"{_on(what, gaps)} {_verb(gaps, 'does', 'do')} not exist in {tz.key}: "
                "the clocks spring forward "
                f"over that hour on {_that_day(gaps)}",
                "pick a time outside the skipped hour (e.g. an hour later)"
                + (", or add the date to skip:" if what != "the start" else ""),
            )
        )
    if twice:
        problems.append(
            doc.problem(
                path,
                f"{_on(what, twice)} {_verb(twice, 'happens', 'happen')} twice in {tz.key}: "
                "the clocks fall back over "
                f"that hour on {_that_day(twice)}",
                "pick a time outside the repeated hour so everyone knows which one"
                + (", or add the dates to skip:" if what != "the start" else ""),
            )
        )
    return problems


def _on(what: str, days: list[datetime]) -> str:
    shown = [f"{day:%Y-%m-%d}" for day in days[:_SHOWN_DATES]]
    more = f" and {len(days) - _SHOWN_DATES} more" if len(days) > _SHOWN_DATES else ""
    listed = ", ".join(shown[:-1]) + (" and " if len(shown) > 1 else "") + shown[-1] + more
    if what == "the start":
        return f"the start {days[0]:%Y-%m-%d %H:%M}"
    plural = "s" if len(days) > 1 else ""
    return f"{what}{plural} on {listed} at {days[0]:%H:%M}"


def _verb(days: list[datetime], one: str, many: str) -> str:
    return many if len(days) > 1 else one


def _that_day(days: list[datetime]) -> str:
    return "those days" if len(days) > 1 else "that day"


def _skip_problems(recurrence: Recurrence, doc: SourceDoc) -> list[Problem]:
    """A skip: date that is not a chat day of the series skips nothing: likely a typo."""
    if not recurrence.skip:
        return []
    plain = recurrence.model_copy(update={"skip": []})
    last = max(recurrence.skip) + timedelta(days=62)
    days: list[date] = []
    for local in local_occurrences(plain):
        if local.date() > last:
            break
        days.append(local.date())
    chat_days = set(days)
    problems = []
    for index, day in enumerate(recurrence.skip):
        if day in chat_days:
            continue
        nearest = min(days, key=lambda d: abs(d - day), default=None)
        hint = (
            f"the nearest chat day is {nearest:%A, %Y-%m-%d}: check the date"
            if nearest
            else "check the date, or remove it"
        )
        problems.append(
            doc.problem(
                ("recurrence", "skip", index),
                f"{day.isoformat()} is not a day of this series, so skipping it changes nothing",
                hint,
                severity=Severity.WARNING,
            )
        )
    return problems


def sample_chats() -> list[Chat]:
    """Stand-in dates when the script's own are broken: every day of a year, so a
    text's length is still checked against every weekday and month name."""
    first = datetime(2027, 1, 1, 20, 0, tzinfo=UTC)
    days = [first + timedelta(days=n) for n in range(366)]
    return [Chat(day, day + timedelta(days=7)) for day in days]
