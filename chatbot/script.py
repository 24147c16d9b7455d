"""The chat script: what co-moderators write in ``schedules/*.yaml``.

The pydantic models here are the format's single definition: the loader checks
files against them, the JSON Schema that editors use is generated from them, and
the planner reads them. Field descriptions double as editor tooltips.
"""

from __future__ import annotations

import re
from datetime import timedelta
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from chatbot.scriptvalues import (
    CalendarDate,
    ClockTime,
    Duration,
    Fixable,
    LocalDateTime,
)

SCHEMA_URL = "../chatbot/schema/chat-script.schema.json"

_HASHTAG = re.compile(r"^[^\s#]+$")
# A domain, or a host with a port (a server on a test machine: snac's handles carry
# its host name, "127.0.0.1:8001"; mastodon-mock's, "localhost:3000").
_MASTODON_ACCOUNT = re.compile(
    r"^@?(?P<user>[A-Za-z0-9_]+)@(?P<domain>[A-Za-z0-9.-]+\.[A-Za-z]{2,}"
    r"|(?:localhost|\d{1,3}(?:\.\d{1,3}){3}):\d{1,5})$"
)
_BLUESKY_HANDLE = re.compile(
    r"^@?(?:did:(?:plc|web):[A-Za-z0-9.:%-]+|(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.)+[A-Za-z]{2,})$"
)


# Bounds no real chat comes near; they keep the checking of one file fast.
MAX_QUESTIONS = 50
MAX_REMINDERS = 10
MAX_SKIP_DATES = 200


class FieldError(Fixable):
    """A check across fields that names the key at fault, so the loader points at its line."""

    def __init__(self, message: str, key: str, hint: str = "") -> None:
        super().__init__(message, hint)
        self.key = key


class NetworkName(StrEnum):
    """A network a chat can run on."""

    MASTODON = "mastodon"
    BLUESKY = "bluesky"
    LOCAL = "local"


class Model(BaseModel):
    """Base of every script model: unknown keys are mistakes, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class Person(Model):
    """Someone credited in the chat: a moderator, co-moderator or guest."""

    name: str = Field(min_length=1, description="How the person is named in posts.")
    mastodon: str | None = Field(
        default=None, description="Mastodon account, full form: @user@instance.example"
    )
    bluesky: str | None = Field(
        default=None, description="Bluesky handle (name.bsky.social) or DID (did:plc:...)"
    )
    local: str | None = Field(
        default=None,
        pattern=r"^[a-z0-9_]+$",
        description="A name on the built-in local network (the demo and rehearsals).",
    )

    @field_validator("mastodon")
    @classmethod
    def _mastodon_account(cls, value: str | None) -> str | None:
        if value is None:
            return None
        match = _MASTODON_ACCOUNT.match(value)
        if not match:
            raise ValueError(
                f'"{value}" is not a full Mastodon account: write it as @user@instance.example'
            )
        return f"@{match['user']}@{match['domain'].lower()}"

    @field_validator("bluesky")
    @classmethod
    def _bluesky_handle(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not _BLUESKY_HANDLE.match(value):
            raise ValueError(
                f'"{value}" is not a Bluesky handle or DID: write it as name.bsky.social'
            )
        return value.removeprefix("@").lower() if not value.startswith("did:") else value


class Image(Model):
    """A picture attached to a post; alt text is required so everyone can follow."""

    path: str = Field(min_length=1, description="Image file, relative to this script's folder.")
    alt: str = Field(
        min_length=1,
        description="Alt text describing the image for people using screen readers (required).",
    )


class Post(Model):
    """A post of the chat: its text, an optional image and shorter per-network forms."""

    text: str = Field(min_length=1, description="What is posted. Placeholders: {hashtag} ...")
    at: Duration | None = Field(
        default=None, description="When, counted from the chat's start (e.g. 5m)."
    )
    image: Image | None = None
    mastodon: str | None = Field(
        default=None, description="A different text for Mastodon (e.g. a longer form)."
    )
    bluesky: str | None = Field(
        default=None, description="A different text for Bluesky (e.g. a shorter form)."
    )


class Question(Post):
    """A numbered question; it is posted as "Q<n>: text #hashtag"."""

    number: int | None = Field(
        default=None,
        ge=1,
        description="Optional: the question's number; if given, numbers must run 1, 2, 3 ...",
    )
    followup: str | None = Field(
        default=None,
        min_length=1,
        description="A follow-up prompt, posted under this question when a co-moderator "
        "sends the bot `followup <n>`.",
    )


CARE_PLACEHOLDERS: dict[str, str] = {
    "name": "the participant's name",
    "hashtag": "the chat's hashtag with #",
    "title": "the chat's title",
    "count": "how many chats of the series the person has joined (milestones only)",
    "series": "the series' name (milestones only)",
}


class CareReply(Model):
    """One kind of reply the bot may send a participant (at most one reply per person)."""

    enabled: bool = True
    text: str = Field(min_length=1, description="Placeholders: {name}, {hashtag}, {title}.")


class Milestones(Model):
    """Celebrating people who keep coming: after the chat, in the recap, and optionally
    with a reply carrying a badge picture."""

    at: list[int] = Field(
        default_factory=lambda: [3, 5, 10],
        description="Numbers of chats of the series that are celebrated.",
    )
    reply: bool = Field(
        default=False, description="Also reply to the person during the chat, with a badge."
    )
    text: str = Field(
        default="{name}, that makes {count} {hashtag} chats for you. Thank you for coming back!",
        min_length=1,
    )

    @field_validator("at")
    @classmethod
    def _positive(cls, value: list[int]) -> list[int]:
        if any(n < 2 for n in value):
            raise Fixable("a milestone is a number of chats, 2 or more", "e.g. at: [3, 5, 10]")
        return sorted(set(value))


class Care(Model):
    """How the bot looks after participants. Hard limits hold whatever is set here: at most
    one reply per person per chat, never to people who opted out of bots, never to the
    moderators, and questions always go out first."""

    welcome: CareReply = Field(
        default_factory=lambda: CareReply(
            text="Welcome to {hashtag}, {name}! Answer each question with A1, A2 ... "
            "and add {hashtag} so everyone sees your answers."
        ),
        description="A reply to a person's first post in their first chat of the series.",
    )
    nudge: CareReply = Field(
        default_factory=lambda: CareReply(
            text="Thanks, {name}! Start an answer with its number (A1, A2 ...) and add "
            "{hashtag} so the whole chat sees it."
        ),
        description="One gentle reply to an answer without the hashtag or the answer number.",
    )
    appreciation: Literal["off", "all", "marked"] = Field(
        default="off",
        description="Like (favourite) answers: every answer, only those a moderator marks "
        "with the command `like`, or none.",
    )
    milestones: Milestones = Field(default_factory=Milestones)


class Reminder(Model):
    """A post before the chat starts, e.g. a day and an hour before."""

    before: Duration = Field(description="How long before the start, e.g. 1 day or 1h.")
    text: str = Field(min_length=1)
    image: Image | None = None
    mastodon: str | None = None
    bluesky: str | None = None


class Moderation(Model):
    """Posts kept out of every count and every public output (they are stored as blocked)."""

    block_accounts: list[str] = Field(
        default_factory=list,
        description="Accounts: @user@instance (Mastodon), handle or did:plc:... (Bluesky).",
    )
    block_domains: list[str] = Field(
        default_factory=list,
        description="Whole servers, e.g. spam.example (Mastodon instance or handle domain).",
    )
    block_keywords: list[str] = Field(
        default_factory=list,
        description="Words or phrases; a post containing one is blocked (case-insensitive).",
    )


class Recap(Model):
    """When the recap thread is posted once the chat has closed."""

    after: Duration = Field(
        default=timedelta(minutes=15), description="How long after the closing post."
    )
    enabled: bool = True


class Weekday(StrEnum):
    """A day of the week."""

    MONDAY = "monday"
    TUESDAY = "tuesday"
    WEDNESDAY = "wednesday"
    THURSDAY = "thursday"
    FRIDAY = "friday"
    SATURDAY = "saturday"
    SUNDAY = "sunday"


class Ordinal(StrEnum):
    """Which weekday of the month."""

    FIRST = "first"
    SECOND = "second"
    THIRD = "third"
    FOURTH = "fourth"
    LAST = "last"


class Recurrence(Model):
    """A series: e.g. the first Thursday of every month at 20:00."""

    every: Literal["week", "month"] = Field(default="month", description="week or month")
    interval: int = Field(
        default=1, ge=1, le=52, description="Every 2 weeks: every: week, interval: 2."
    )
    weekday: Weekday
    ordinal: Ordinal | None = Field(
        default=None, description="For monthly chats: first, second, third, fourth or last."
    )
    time: ClockTime = Field(description="Local time of day in the chat's time zone: 20:00")
    starting: CalendarDate = Field(description="First possible date of the series: 2027-01-01")
    until: CalendarDate | None = Field(default=None, description="Last possible date (optional).")
    skip: list[CalendarDate] = Field(
        default_factory=list,
        max_length=MAX_SKIP_DATES,
        description="Dates with no chat (holidays), e.g. [2027-07-01].",
    )

    @model_validator(mode="after")
    def _monthly_needs_ordinal(self) -> Recurrence:
        if self.every == "month" and self.ordinal is None:
            raise FieldError(
                "a monthly series needs ordinal (first, second, third, fourth or last)",
                "every",
                "add ordinal: first (or second, third, fourth, last), or use every: week",
            )
        if self.every == "week" and self.ordinal is not None:
            raise FieldError(
                "ordinal is only for monthly series",
                "ordinal",
                "remove ordinal:, or use every: month",
            )
        if self.until is not None and self.until < self.starting:
            raise FieldError(
                "until is before starting: the series would have no chat",
                "until",
                "check both dates",
            )
        return self


def _strip_hash(value: object) -> object:
    return value.strip().removeprefix("#") if isinstance(value, str) else value


Tag = Annotated[str, BeforeValidator(_strip_hash)]


class ChatScript(Model):
    """One chat (or a series of chats) as a co-moderator writes it."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        str_strip_whitespace=True,
        json_schema_extra={"title": "chatbot chat script"},
    )

    id: str | None = Field(
        default=None,
        pattern=r"^[a-z0-9][a-z0-9-]*$",
        description="Unique id (lowercase, digits, dashes). Default: the file name.",
    )
    title: str = Field(min_length=1, description="The chat's title, used as {title}.")
    hashtag: Tag = Field(description="The chat's hashtag, with or without #: #BLchat")
    extra_tags: list[Tag] = Field(
        default_factory=list, max_length=8, description="More hashtags for the welcome post."
    )
    series: str | None = Field(
        default=None,
        pattern=r"^[a-z0-9][a-z0-9-]*$",
        description="Groups chats of one community across months (for stats).",
    )
    timezone: str = Field(description="IANA time zone, e.g. America/Indiana/Indianapolis")
    start: LocalDateTime | None = Field(
        default=None, description="For a one-off chat: local start, 2027-03-04 19:00"
    )
    recurrence: Recurrence | None = Field(
        default=None, description="For a series: when the chats happen."
    )
    networks: list[NetworkName] = Field(
        min_length=1, description="Where to post: mastodon, bluesky (or local for a dry run)."
    )
    moderators: list[Person] = Field(
        min_length=1, description="The host accounts running the chat."
    )
    co_moderators: list[Person] = Field(default_factory=list)
    guest: Person | None = Field(
        default=None, description="A guest moderator, credited as {guest}."
    )
    reminders: list[Reminder] = Field(default_factory=list, max_length=MAX_REMINDERS)
    welcome: Post
    introductions: Post | None = None
    format_note: Post | None = None
    question_spacing: Duration = Field(
        default=timedelta(minutes=9), description="Time between questions (default 9m)."
    )
    questions: list[Question] = Field(min_length=1, max_length=MAX_QUESTIONS)
    closing: Post
    recap: Recap = Field(default_factory=Recap)
    moderation: Moderation = Field(
        default_factory=Moderation,
        description="Blocked accounts, servers and words, for this chat.",
    )
    care: Care = Field(default_factory=Care, description="Welcomes, nudges, likes and milestones.")

    @field_validator("hashtag", "extra_tags")
    @classmethod
    def _hashtag_chars(cls, value: str | list[str]) -> str | list[str]:
        for tag in [value] if isinstance(value, str) else value:
            if not _HASHTAG.match(tag):
                raise Fixable(
                    f'"#{tag}" is not a hashtag: a hashtag is one word after a single #',
                    "remove the spaces (and any second #), e.g. #BLchat",
                )
        return value

    @field_validator("networks")
    @classmethod
    def _unique_networks(cls, value: list[NetworkName]) -> list[NetworkName]:
        if len(set(value)) != len(value):
            raise Fixable("a network is listed twice", "list each network once")
        return value

    @model_validator(mode="after")
    def _one_kind_of_when(self) -> ChatScript:
        if self.start is not None and self.recurrence is not None:
            raise FieldError(
                "a chat has either start (a one-off chat) or recurrence (a series), not both",
                "recurrence",
                "remove recurrence: for a one-off chat, or start: for a series",
            )
        if self.start is None and self.recurrence is None:
            raise FieldError(
                "no start (a one-off chat) and no recurrence (a series)",
                "start",
                "add start: 2027-01-07 20:00 for a one-off chat, or a recurrence: section",
            )
        if self.start is not None and self.start.tzinfo is not None:
            raise FieldError(
                "start must be local time without a UTC offset",
                "start",
                "remove the offset (e.g. +01:00 or Z): timezone: sets the zone",
            )
        return self

    @property
    def is_series(self) -> bool:
        return self.recurrence is not None
