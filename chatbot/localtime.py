"""The one place where a chat's time zone is applied.

Everything else in the bot works in aware UTC datetimes. Local wall-clock times
come in from scripts (``start: 2027-01-07 20:00`` in the chat's zone) and go out
in previews and posts; both directions pass through here, so daylight-saving
rules are handled once, with :mod:`zoneinfo`.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from functools import cache
from importlib import resources
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones


class LocalTimeIssue(StrEnum):
    """Why a local wall-clock time cannot be turned into one UTC instant."""

    NONEXISTENT = "nonexistent"  # skipped by a spring-forward change
    AMBIGUOUS = "ambiguous"  # happens twice on a fall-back change


@cache
def zone(name: str) -> ZoneInfo:
    """The IANA zone called ``name``; raises KeyError with close names when unknown."""
    if name not in _zone_names():
        raise KeyError(name)
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:  # pragma: no cover - guarded above
        raise KeyError(name) from exc


@cache
def _zone_names() -> frozenset[str]:
    return frozenset(available_timezones())


@cache
def _links() -> dict[str, str]:
    """Old zone names kept as aliases -> the zone they stand for.

    tzdata keeps names like ``America/Indianapolis`` as links to
    ``America/Indiana/Indianapolis``; a suggestion should name the current zone.
    """
    try:
        text = resources.files("tzdata").joinpath("zoneinfo", "tzdata.zi").read_text("utf-8")
    except (ModuleNotFoundError, OSError):  # pragma: no cover - tzdata is a dependency
        return {}
    links = {}
    for line in text.splitlines():
        if line.startswith("L "):
            _, target, alias = line.split()
            links[alias] = target
    return links


def close_zone_names(name: str, count: int = 3) -> list[str]:
    """Valid zone names that look like ``name`` (for "did you mean"), current names first."""
    names = sorted(_zone_names())
    by_lower = {n.lower(): n for n in names}
    if name.lower() in by_lower:
        return [by_lower[name.lower()]]
    guess = name.replace(" ", "_")
    links = _links()
    matches = difflib.get_close_matches(guess, names, n=count * 3, cutoff=0.6)
    if not matches:
        last = guess.rsplit("/", 1)[-1].lower()
        matches = [n for n in names if n.rsplit("/", 1)[-1].lower() == last]
    current = [links.get(match, match) for match in matches]
    return [n for n in dict.fromkeys(current) if n in _zone_names()][:count]


def check_local(local: datetime, tz: ZoneInfo) -> LocalTimeIssue | None:
    """Whether ``local`` (naive, wall clock in ``tz``) exists exactly once."""
    first = local.replace(tzinfo=tz, fold=0)
    second = local.replace(tzinfo=tz, fold=1)
    if first.utcoffset() != second.utcoffset():
        # PEP 495: fold only changes the offset in a gap or an overlap.
        round_trip = first.astimezone(UTC).astimezone(tz).replace(tzinfo=None)
        return LocalTimeIssue.NONEXISTENT if round_trip != local else LocalTimeIssue.AMBIGUOUS
    return None


def to_utc(local: datetime, tz: ZoneInfo) -> datetime:
    """The aware UTC instant of a naive local time (first occurrence if ambiguous)."""
    if local.tzinfo is not None:
        raise ValueError("to_utc expects a naive local wall-clock time")
    return local.replace(tzinfo=tz, fold=0).astimezone(UTC)


def to_local(instant: datetime, tz: ZoneInfo) -> datetime:
    """An aware UTC instant shown on the chat's wall clock (aware, in ``tz``)."""
    if instant.tzinfo is None:
        raise ValueError("to_local expects an aware datetime")
    return instant.astimezone(tz)


def format_local(instant: datetime, tz: ZoneInfo, pattern: str = "%a %d %b %Y %H:%M %Z") -> str:
    """Human text of an instant on the chat's wall clock, e.g. ``Thu 07 Jan 2027 20:00 EST``."""
    return to_local(instant, tz).strftime(pattern)


def utc_offset_text(instant: datetime, tz: ZoneInfo) -> str:
    """``UTC-05:00`` for an instant in ``tz``."""
    offset = to_local(instant, tz).utcoffset() or timedelta(0)
    sign = "-" if offset < timedelta(0) else "+"
    minutes = abs(int(offset.total_seconds())) // 60
    return f"UTC{sign}{minutes // 60:02d}:{minutes % 60:02d}"


# --- zones that run, but probably not as meant ---------------------------------------------

# Names people write for a region's clock that are really something else: a
# fixed offset (EST, Etc/GMT+5: no summer time) or an old alias (US/Eastern).
# The zone they most likely meant, by name.
_INTENDED = {
    "EST": "America/New_York",
    "EDT": "America/New_York",
    "EST5EDT": "America/New_York",
    "CST6CDT": "America/Chicago",
    "MST": "America/Denver",
    "MST7MDT": "America/Denver",
    "PST8PDT": "America/Los_Angeles",
    "HST": "Pacific/Honolulu",
    "GMT": "Europe/London",
    "CET": "Europe/Paris",
    "MET": "Europe/Paris",
    "EET": "Europe/Athens",
    "WET": "Europe/Lisbon",
    "UCT": "UTC",
    "Universal": "UTC",
    "Zulu": "UTC",
    "Etc/UCT": "UTC",
    "Etc/Universal": "UTC",
    "Etc/Zulu": "UTC",
}
# For a fixed offset: the best-known zone whose standard time has that offset (hours).
_BY_OFFSET = {
    -10: "Pacific/Honolulu",
    -9: "America/Anchorage",
    -8: "America/Los_Angeles",
    -7: "America/Denver",
    -6: "America/Chicago",
    -5: "America/New_York",
    -4: "America/Halifax",
    -3: "America/Sao_Paulo",
    0: "Europe/London",
    1: "Europe/Paris",
    2: "Europe/Athens",
    3: "Europe/Moscow",
    4: "Asia/Dubai",
    8: "Asia/Singapore",
    9: "Asia/Tokyo",
    10: "Australia/Sydney",
    12: "Pacific/Auckland",
}
_FIXED = {"EST", "MST", "HST", "GMT", "GMT0", "GMT+0", "GMT-0", "Greenwich"}
_UTC = {"UTC", "Etc/UTC"}


class ZoneKind(StrEnum):
    """Why a valid zone name is probably not what the chat means."""

    FIXED = "fixed"  # a fixed offset from UTC: no daylight-saving time
    OLD = "old"  # an old name kept for compatibility


@dataclass(frozen=True)
class ZoneAdvice:
    """A zone that works but is likely a mistake, and the zone probably meant."""

    kind: ZoneKind
    offset: str  # e.g. UTC-05:00, for a fixed offset
    intended: str  # a current region zone, or "" when none can be guessed


@cache
def _current_names() -> frozenset[str]:
    """The zones of today's regions (tzdata's zone.tab and zone1970.tab), and UTC."""
    names = set(_UTC)
    for table in ("zone.tab", "zone1970.tab"):
        try:
            text = resources.files("tzdata").joinpath("zoneinfo", table).read_text("utf-8")
        except (ModuleNotFoundError, OSError):  # pragma: no cover - tzdata is a dependency
            continue
        for line in text.splitlines():
            if line and not line.startswith("#"):
                names.add(line.split("\t")[2])
    return frozenset(names)


def zone_advice(name: str) -> ZoneAdvice | None:
    """Whether the zone ``name`` (valid) is a fixed offset or an old alias, and what was meant."""
    if name in _current_names():
        return None
    tz = zone(name)
    fixed = name in _FIXED or (name.startswith("Etc/") and name not in _INTENDED)
    if fixed:
        probe = datetime(2027, 1, 1, tzinfo=UTC)
        offset = to_local(probe, tz).utcoffset() or timedelta(0)
        hours = int(offset.total_seconds() // 3600)
        intended = _INTENDED.get(name) or _BY_OFFSET.get(hours, "")
        return ZoneAdvice(ZoneKind.FIXED, utc_offset_text(probe, tz), intended)
    intended = _INTENDED.get(name) or _links().get(name, "")
    if intended and intended not in _current_names():
        intended = ""
    return ZoneAdvice(ZoneKind.OLD, "", intended)


# --- the calendar horizon checked for a series ---------------------------------------------


def years_later(day: date, years: int) -> date:
    """The same day ``years`` later (29 February becomes 28 February)."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return day.replace(year=day.year + years, day=28)
