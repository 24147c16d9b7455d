"""Script + start time -> timed steps with their exact text per network.

Pure: nothing here reads the clock or the network. The runner passes ``now`` in,
which is what lets tests cover DST days, restarts and late starts without sleeping.
"""

from __future__ import annotations

import string
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from dateutil import rrule

from chatbot import localtime
from chatbot.kinds import StepKind
from chatbot.script import ChatScript, NetworkName, Ordinal, Person, Post, Recurrence, Reminder
from chatbot.text import Facet, Limits, Measure, bluesky_facets, compose, measure

# Defaults of a typical one-hour chat (see shared chat conventions): welcome at
# 0:00, introductions, a format note at 0:05, Q1 at 0:06, then every 8-10 minutes.
DEFAULT_AT = {
    "welcome": timedelta(0),
    "introductions": timedelta(minutes=2),
    "format_note": timedelta(minutes=5),
    "first_question": timedelta(minutes=6),
}
_ORDINALS = {
    Ordinal.FIRST: 1,
    Ordinal.SECOND: 2,
    Ordinal.THIRD: 3,
    Ordinal.FOURTH: 4,
    Ordinal.LAST: -1,
}
_WEEKDAYS = [rrule.MO, rrule.TU, rrule.WE, rrule.TH, rrule.FR, rrule.SA, rrule.SU]


PLACEHOLDERS: dict[str, str] = {
    "hashtag": "the chat's hashtag with #",
    "title": "the chat's title",
    "n": "the question's number (questions only)",
    "guest": "the guest moderator's name and account",
    "moderators": "the moderators' names and accounts",
    "co_moderators": "the co-moderators' names and accounts",
    "date": "the chat's local date, e.g. Thursday, January 7",
    "time": "the chat's local start time, e.g. 8:00 PM EST",
    "timezone": "the chat's time zone name",
    "next_chat": "the next chat's local date and time (series only)",
}


@dataclass(frozen=True)
class RenderedPost:
    """The exact post one network receives for one step."""

    network: NetworkName
    text: str
    measure: Measure
    facets: tuple[Facet, ...] = ()
    image_path: str | None = None
    image_alt: str | None = None


@dataclass(frozen=True)
class Step:
    """One post of a chat, due at ``at`` (aware UTC), in every network of the chat."""

    key: str
    kind: StepKind
    at: datetime
    offset: timedelta  # from the chat's start; negative for reminders
    number: int | None
    posts: dict[NetworkName, RenderedPost] = field(default_factory=dict)


@dataclass(frozen=True)
class ChatPlan:
    """One occurrence of a chat script, fully planned."""

    chat_id: str
    script_id: str
    title: str
    hashtag: str
    timezone: str
    start: datetime
    end: datetime  # the closing post
    steps: tuple[Step, ...]
    next_start: datetime | None = None

    def find_step(self, key: str) -> Step | None:
        return next((step for step in self.steps if step.key == key), None)

    def step(self, key: str) -> Step:
        found = self.find_step(key)
        if found is None:
            raise KeyError(key)
        return found


class PlaceholderError(ValueError):
    """A text uses a placeholder that does not exist or does not apply."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(reason)
        self.name = name


# The placeholders whose value changes from one chat of a series to the next.
DATED_PLACEHOLDERS = frozenset({"date", "time", "next_chat"})


@dataclass(frozen=True)
class Placeholder:
    """One ``{...}`` in a text: its name and any format spec or conversion written after it."""

    name: str
    spec: str
    conversion: str | None

    @property
    def written(self) -> str:
        conversion = f"!{self.conversion}" if self.conversion else ""
        spec = f":{self.spec}" if self.spec else ""
        return f"{{{self.name}{conversion}{spec}}}"


def placeholders(text: str) -> list[Placeholder]:
    """Every placeholder in ``text``; raises ValueError when the braces do not match."""
    return [
        Placeholder(name, spec or "", conversion)
        for _literal, name, spec, conversion in string.Formatter().parse(text)
        if name is not None
    ]


def placeholders_in(text: str) -> list[str]:
    """The placeholder names used in ``text`` (``{hashtag}`` -> ``hashtag``)."""
    return [found.name for found in placeholders(text)]


def occurrences(script: ChatScript, after: datetime, count: int = 12) -> list[datetime]:
    """Start instants (aware UTC) of the script's chats at or after ``after``."""
    tz = localtime.zone(script.timezone)
    if script.start is not None:
        start = localtime.to_utc(script.start, tz)
        return [start] if start >= after else []
    assert script.recurrence is not None
    result: list[datetime] = []
    # No zone is more than a day from UTC: earlier wall-clock times cannot be due.
    floor = after.replace(tzinfo=None) - timedelta(days=2)
    for local in local_occurrences(script.recurrence):
        if local < floor:
            continue
        instant = localtime.to_utc(local, tz)
        if instant >= after:
            result.append(instant)
            if len(result) >= count:
                break
    return result


def local_occurrences(recurrence: Recurrence, limit: int | None = None) -> Iterator[datetime]:
    """Local wall-clock start times of a series (naive), in order; all of them unless ``limit``.

    The rule is lazy: a series without until: goes on until the caller stops
    asking (or the calendar ends).
    """
    # The rule runs on naive local wall-clock times; localisation comes after,
    # so a chat at 20:00 stays at 20:00 across DST (a UTC cron would drift).
    weekday = _WEEKDAYS[list(type(recurrence.weekday)).index(recurrence.weekday)]
    first = datetime.combine(recurrence.starting, recurrence.time)
    until = datetime.combine(recurrence.until, recurrence.time) if recurrence.until else None
    if recurrence.every == "month":
        assert recurrence.ordinal is not None
        rule = rrule.rrule(
            rrule.MONTHLY,
            interval=recurrence.interval,
            byweekday=weekday(_ORDINALS[recurrence.ordinal]),
            dtstart=first,
            until=until,
            count=limit,
        )
    else:
        # rrule counts the interval from the week holding dtstart: every 2 weeks on
        # Tuesday from a Friday would skip the first Tuesday, so start on that Tuesday.
        first += timedelta(days=(weekday.weekday - first.weekday()) % 7)
        rule = rrule.rrule(
            rrule.WEEKLY,
            interval=recurrence.interval,
            byweekday=weekday,
            dtstart=first,
            until=until,
            count=limit,
        )
    skip = set(recurrence.skip)
    found = iter(rule)
    while True:
        try:
            local = next(found)
        except (StopIteration, ValueError, OverflowError):  # the end of the rule or the calendar
            return
        if local.date() not in skip:
            yield local


def chat_id(script_id: str, script: ChatScript, start: datetime) -> str:
    """A series' chats are ``<id>-<local date>``; a one-off chat is its script id."""
    if not script.is_series:
        return script_id
    local_date: date = localtime.to_local(start, localtime.zone(script.timezone)).date()
    return f"{script_id}-{local_date.isoformat()}"


def credit(person: Person, network: NetworkName) -> str:
    """A person as named in a post on ``network``: name and account (a mention)."""
    if network is NetworkName.MASTODON and person.mastodon:
        return f"{person.name} ({person.mastodon})"
    if network is NetworkName.BLUESKY and person.bluesky and not person.bluesky.startswith("did:"):
        return f"{person.name} (@{person.bluesky})"
    return person.name


def join_names(names: list[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]


def placeholder_values(
    script: ChatScript,
    network: NetworkName,
    start: datetime,
    next_start: datetime | None,
    number: int | None,
) -> dict[str, str]:
    """What each placeholder stands for in one chat (``start``, aware UTC) on ``network``."""
    tz = localtime.zone(script.timezone)
    local = localtime.to_local(start, tz)
    values = {
        "hashtag": f"#{script.hashtag}",
        "title": script.title,
        "moderators": join_names([credit(p, network) for p in script.moderators]),
        "co_moderators": join_names([credit(p, network) for p in script.co_moderators]),
        "date": f"{local:%A}, {local:%B} {local.day}",
        "time": _clock(local),
        "timezone": script.timezone,
    }
    if script.guest is not None:
        values["guest"] = credit(script.guest, network)
    if next_start is not None:
        values["next_chat"] = describe_start(next_start, script.timezone)
    elif script.is_series:
        values["next_chat"] = "a date to be announced"
    if number is not None:
        values["n"] = str(number)
    return values


def describe_start(start: datetime, timezone: str) -> str:
    """``Thursday, February 4 at 8:00 PM EST`` in the chat's time zone."""
    local = localtime.to_local(start, localtime.zone(timezone))
    return f"{local:%A}, {local:%B} {local.day} at {_clock(local)}"


def _clock(local: datetime) -> str:
    hour = local.hour % 12 or 12
    return f"{hour}:{local:%M} {'AM' if local.hour < 12 else 'PM'} {local:%Z}"


def render(template: str, values: dict[str, str]) -> str:
    """Fill placeholders; raises PlaceholderError naming the first that does not apply.

    Only plain ``{name}`` is filled: a format spec or a conversion (``{title!r}``,
    ``{title:>99}``) is refused, so a text never reaches Python's formatting rules.
    """
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise PlaceholderError("", f"the {{braces}} do not match: {exc}") from exc
    out = []
    for literal, name, spec, conversion in parts:
        out.append(literal)
        if name is None:
            continue
        if spec or conversion:
            written = Placeholder(name, spec or "", conversion).written
            raise PlaceholderError(name, f"{written} has a format after the name")
        if name not in values:
            if name in PLACEHOLDERS:
                raise PlaceholderError(name, _why_missing(name))
            raise PlaceholderError(name, f"unknown placeholder {{{name}}}")
        out.append(values[name])
    return "".join(out)


def _why_missing(name: str) -> str:
    return {
        "n": "{n} is only for questions",
        "guest": "{guest} is used but the script has no guest",
        "next_chat": "{next_chat} needs a series (recurrence): a one-off chat has no next date",
    }.get(name, f"{{{name}}} is not available here")


def text_for(post: Post | Reminder, network: NetworkName) -> str:
    """The text written for ``network``: its own form if the script gives one, else text:."""
    if network is NetworkName.MASTODON and post.mastodon:
        return post.mastodon
    if network is NetworkName.BLUESKY and post.bluesky:
        return post.bluesky
    return post.text


def render_post(
    script: ChatScript,
    post: Post | Reminder,
    network: NetworkName,
    *,
    start: datetime,
    next_start: datetime | None,
    number: int | None,
    limits: Limits,
    with_extra_tags: bool = False,
) -> RenderedPost:
    """The exact post for one network: placeholders filled, numbered, hashtag once."""
    values = placeholder_values(script, network, start, next_start, number)
    text = post_text(script, post, network, values, number, with_extra_tags=with_extra_tags)
    facets = tuple(bluesky_facets(text)) if network is NetworkName.BLUESKY else ()
    return RenderedPost(
        network=network,
        text=text,
        measure=measure(network, text, limits),
        facets=facets,
        image_path=post.image.path if post.image else None,
        image_alt=post.image.alt if post.image else None,
    )


def post_text(
    script: ChatScript,
    post: Post | Reminder,
    network: NetworkName,
    values: dict[str, str],
    number: int | None,
    *,
    with_extra_tags: bool = False,
) -> str:
    """The text posted on ``network`` with these placeholder values (see :func:`render_post`)."""
    text = compose(render(text_for(post, network), values), hashtag=script.hashtag, number=number)
    if with_extra_tags:
        for tag in script.extra_tags:
            text = compose(text, hashtag=tag)
    return text


@dataclass(frozen=True)
class Slot:
    """A step of the script before it has a date: its key, kind and offset from the start."""

    key: str
    kind: StepKind
    offset: timedelta
    post: Post | Reminder | None
    number: int | None = None


def slots(script: ChatScript) -> list[Slot]:
    """The chat's steps with their offsets from the start, in script order."""
    result: list[Slot] = []
    for index, reminder in enumerate(script.reminders, start=1):
        result.append(Slot(f"reminder-{index}", StepKind.REMINDER, -reminder.before, reminder))
    # "at: 0" is a time like any other, never "not given" (a zero timedelta is falsy).
    result.append(Slot("welcome", StepKind.WELCOME, _at(script.welcome, "welcome"), script.welcome))
    if script.introductions:
        at = _at(script.introductions, "introductions")
        result.append(Slot("introductions", StepKind.INTRODUCTIONS, at, script.introductions))
    if script.format_note:
        at = _at(script.format_note, "format_note")
        result.append(Slot("format-note", StepKind.FORMAT_NOTE, at, script.format_note))
    offset = DEFAULT_AT["first_question"]
    for number, question in enumerate(script.questions, start=1):
        if question.at is not None:
            offset = question.at
        elif number > 1:
            offset += script.question_spacing
        result.append(Slot(f"q{number}", StepKind.QUESTION, offset, question, number))
    closing_at = (
        script.closing.at if script.closing.at is not None else offset + script.question_spacing
    )
    result.append(Slot("closing", StepKind.CLOSING, closing_at, script.closing))
    if script.recap.enabled:
        result.append(Slot("recap", StepKind.RECAP, closing_at + script.recap.after, None))
    return result


def _at(post: Post, key: str) -> timedelta:
    return post.at if post.at is not None else DEFAULT_AT[key]


def plan_chat(
    script: ChatScript,
    script_id: str,
    start: datetime,
    *,
    next_start: datetime | None = None,
    limits: Limits | None = None,
    speed: float = 1.0,
    chat_id_override: str | None = None,
) -> ChatPlan:
    """Plan one occurrence starting at ``start`` (aware UTC).

    ``speed`` divides every offset (an accelerated demo or rehearsal runs the
    same steps, N times faster).
    """
    if start.tzinfo is None:
        raise ValueError("plan_chat needs an aware UTC start")
    start = start.astimezone(UTC)
    limits = limits or Limits()
    steps = []
    for slot in slots(script):
        posts: dict[NetworkName, RenderedPost] = {}
        if slot.post is not None:
            for network in script.networks:
                posts[network] = render_post(
                    script,
                    slot.post,
                    network,
                    start=start,
                    next_start=next_start,
                    number=slot.number,
                    limits=limits,
                    with_extra_tags=slot.kind is StepKind.WELCOME,
                )
        steps.append(
            Step(slot.key, slot.kind, start + slot.offset / speed, slot.offset, slot.number, posts)
        )
    end = next(s.at for s in steps if s.kind is StepKind.CLOSING)
    return ChatPlan(
        chat_id=chat_id_override or chat_id(script_id, script, start),
        script_id=script_id,
        title=script.title,
        hashtag=script.hashtag,
        timezone=script.timezone,
        start=start,
        end=end,
        steps=tuple(steps),
        next_start=next_start,
    )


def plan_upcoming(
    script: ChatScript,
    script_id: str,
    now: datetime,
    *,
    count: int = 2,
    limits: Limits | None = None,
    lookback: timedelta = timedelta(hours=6),
) -> list[ChatPlan]:
    """Plans of the chats not yet over at ``now``: the one running (if any) and the next ones."""
    starts = occurrences(script, now - lookback, count + 2)
    plans = []
    for index, start in enumerate(starts):
        next_start = starts[index + 1] if index + 1 < len(starts) else _after(script, start)
        plan = plan_chat(script, script_id, start, next_start=next_start, limits=limits)
        if plan.steps[-1].at >= now - lookback:
            plans.append(plan)
        if len(plans) >= count:
            break
    return plans


def _after(script: ChatScript, start: datetime) -> datetime | None:
    if not script.is_series:
        return None
    later = occurrences(script, start + timedelta(seconds=1), 1)
    return later[0] if later else None
