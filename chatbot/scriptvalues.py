"""Times and dates as co-moderators write them in chat scripts: durations ("9m",
"1h 30m", "1 day"), clock times ("20:00"), calendar dates and local date-times.

Each is a pydantic type with a parser that says in plain words what is wrong and
how to write it instead.
"""

from __future__ import annotations

import calendar
import math
import re
from datetime import date, datetime, time, timedelta
from typing import Annotated

from pydantic import BeforeValidator, PlainSerializer, WithJsonSchema


class Fixable(ValueError):
    """A value the script cannot use, and how to fix it (the loader shows both)."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.hint = hint


_DURATION_PART = re.compile(
    r"(?P<value>\d+(?:\.\d+)?)\s*"
    r"(?P<unit>days?|d|hours?|hrs?|h|minutes?|mins?|m|seconds?|secs?|s)(?![a-z])",
    re.IGNORECASE,
)
_DURATION = re.compile(rf"^(?:{_DURATION_PART.pattern}(?:\s*,?\s*(?:and\s+)?)?)+$", re.IGNORECASE)
_CLOCK = re.compile(r"^(?P<h>\d{1,2}):(?P<m>\d{2})(?::(?P<s>\d{2}))?$")
_UNIT_SECONDS = {"d": 86400, "h": 3600, "m": 60, "s": 1}


# The longest duration any field means: a reminder a few weeks ahead at most.
# Anything longer is a typo, and timedelta itself overflows near 10**9 days.
MAX_DURATION = timedelta(days=366)
_DURATION_WORDS = "write it like 9m, 1h 30m, 90s or 1 day"
# The years a chat can be in: far enough back for a series that began long ago,
# far enough ahead for any plan; the calendar and time zones hold everywhere in it.
FIRST_YEAR = 1970
LAST_YEAR = 2199


def parse_duration(value: object) -> timedelta:
    """``"9m"``, ``"1h 30m"``, ``"1 day"``, ``"0:05"`` (h:mm) or a number of minutes."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"this is not a duration: {_DURATION_WORDS}")
    if isinstance(value, int | float):
        return _bounded_seconds(value * 60.0, f"{value} minutes")
    text = value.strip()
    clock = _CLOCK.match(text)
    if clock:
        return timedelta(
            hours=int(clock["h"]), minutes=int(clock["m"]), seconds=int(clock["s"] or 0)
        )
    if _DURATION.match(text):
        seconds = sum(
            float(part["value"]) * _UNIT_SECONDS[part["unit"][0].lower()]
            for part in _DURATION_PART.finditer(text)
        )
        return _bounded_seconds(seconds, f'"{value}"')
    raise ValueError(f'"{value}" is not a duration: {_DURATION_WORDS}')


def _bounded_seconds(seconds: float, written: str) -> timedelta:
    if math.isnan(seconds):
        raise ValueError(f"this is not a duration: {_DURATION_WORDS}")
    if math.isinf(seconds):
        raise ValueError(f"this duration never ends (.inf): {_DURATION_WORDS}")
    if not abs(seconds) <= MAX_DURATION.total_seconds():
        raise ValueError(
            f"{written} is longer than a year, more than any step of a chat needs: "
            f"{_DURATION_WORDS}"
        )
    return timedelta(seconds=seconds)


def format_duration(value: timedelta) -> str:
    """``timedelta(minutes=90)`` -> ``1h30m``."""
    seconds = int(value.total_seconds())
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return sign + ("".join(parts) or "0m")


Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str),
    WithJsonSchema(
        {
            "anyOf": [
                {
                    "type": "string",
                    "pattern": r"^\s*(\d+(\.\d+)?\s*[a-zA-Z]+[\s,]*)+$|^\d{1,2}:\d{2}$",
                },
                {"type": "number"},
            ],
            "description": "A duration: 9m, 1h 30m, 90s, 1 day, 0:05 (h:mm), or minutes.",
        }
    ),
]


def _parse_clock(value: object) -> object:
    if isinstance(value, str):
        match = _CLOCK.match(value.strip())
        if not match:
            raise ValueError(f'"{value}" is not a time of day: write it as HH:MM, e.g. 20:00')
        hour, minute = int(match["h"]), int(match["m"])
        if hour > 23 or minute > 59:
            raise Fixable(
                f'"{value}" is not a time of day: hours go from 0 to 23, minutes from 0 to 59',
                "write it as HH:MM, e.g. 20:00",
            )
        return time(hour, minute)
    if isinstance(value, time):
        return value
    raise ValueError(f'{value} is not a time of day: write it in quotes, e.g. "20:00"')


ClockTime = Annotated[
    time,
    BeforeValidator(_parse_clock),
    WithJsonSchema({"type": "string", "pattern": r"^\d{1,2}:\d{2}$", "description": "HH:MM"}),
]


def calendar_mistake(text: str) -> str | None:
    """Why ``text`` (``2027-02-30``, ``2027-13-01 20:00``) is not a day of the calendar."""
    match = re.match(r"^\s*(\d{4})-(\d{1,2})-(\d{1,2})", text)
    if not match:
        return None
    year, month, day = (int(part) for part in match.groups())
    if not 1 <= month <= 12:
        return f"there is no month {month}"
    if year == 0:
        return "there is no year 0"
    last = calendar.monthrange(year, month)[1]
    if not 1 <= day <= last:
        return f"{calendar.month_name[month]} {year} has {last} days"
    return None


def _in_range(value: date) -> date:
    if not FIRST_YEAR <= value.year <= LAST_YEAR:
        raise Fixable(
            f"{value.isoformat()} is outside the years a chat can be in "
            f"({FIRST_YEAR} to {LAST_YEAR})",
            "check the year",
        )
    return value


def _parse_date(value: object) -> date:
    if isinstance(value, datetime):
        raise ValueError(f"write a date without a time here: {value.date().isoformat()}")
    if isinstance(value, date):
        return _in_range(value)
    if isinstance(value, str):
        mistake = calendar_mistake(value)
        if mistake:
            raise Fixable(f'"{value}" is not a day in the calendar: {mistake}', "check the date")
        try:
            return _in_range(date.fromisoformat(value.strip()))
        except ValueError:
            pass
    raise ValueError(f'"{value}" is not a date: write it as 2027-01-07')


CalendarDate = Annotated[
    date,
    BeforeValidator(_parse_date),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": r"^\d{4}-\d{2}-\d{2}$",
            "description": "A date: 2027-01-07",
        }
    ),
]


def _parse_local_datetime(value: object) -> object:
    if isinstance(value, str):
        mistake = calendar_mistake(value)
        if mistake:
            raise Fixable(f'"{value}" is not a day in the calendar: {mistake}', "check the date")
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValueError(
                f'"{value}" is not a date and time: write it as 2027-01-07 20:00'
            ) from None
        _in_range(parsed.date())
        return parsed
    if isinstance(value, datetime):
        _in_range(value.date())
        return value
    if isinstance(value, date):
        raise ValueError("a start needs a time of day too: write it as 2027-01-07 20:00")
    raise ValueError(f"{value} is not a date and time: write it as 2027-01-07 20:00")


LocalDateTime = Annotated[
    datetime,
    BeforeValidator(_parse_local_datetime),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": r"^\d{4}-\d{2}-\d{2}[ T]\d{1,2}:\d{2}(:\d{2})?$",
            "description": "Local date and time in the chat's time zone: 2027-01-07 20:00",
        }
    ),
]
