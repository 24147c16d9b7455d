"""What the store holds, as plain data: states of chats and units, and the rows read back.

The runner's policy, ``chatbot status`` and the transcript import these; none
of them needs SQL.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from chatbot.kinds import Visibility
from chatbot.posts import PostRef
from chatbot.script import NetworkName
from chatbot.text import Facet


class UnitState(StrEnum):
    """Where one step stands on one network."""

    PENDING = "pending"
    INTENT = "intent"  # recorded before the network call; the result is not known yet
    POSTED = "posted"
    SKIPPED = "skipped"  # on purpose: late policy, a co-moderator's skip, the chat ended early
    FAILED = "failed"  # the network refused it for good (auth, rejected)
    CANCELLED = "cancelled"  # the script was removed or the chat replanned without it


DONE_STATES = frozenset(
    {UnitState.POSTED, UnitState.SKIPPED, UnitState.FAILED, UnitState.CANCELLED}
)


class ChatState(StrEnum):
    """Where a chat stands."""

    SCHEDULED = "scheduled"
    RUNNING = "running"
    DONE = "done"
    MISSED = "missed"
    CANCELLED = "cancelled"


OVER_STATES = frozenset({ChatState.DONE, ChatState.MISSED, ChatState.CANCELLED})


@dataclass(frozen=True)
class ChatRow:
    chat_id: str
    script_id: str
    title: str
    hashtag: str
    timezone: str
    start_at: datetime
    end_at: datetime
    state: ChatState
    shift: timedelta
    paused_at: datetime | None
    note: str


@dataclass(frozen=True)
class Image:
    """An image a post carries: the file (an absolute path) and its alt text."""

    path: str
    alt: str


@dataclass(frozen=True)
class PlannedUnit:
    """One step on one network as planned: everything its post will need but the thread."""

    step_key: str
    network: NetworkName
    seq: int
    kind: str
    number: int | None
    planned_at: datetime
    idempotency_key: str
    text: str
    facets: tuple[Facet, ...] = ()
    image: Image | None = None
    visibility: Visibility = Visibility.PUBLIC
    reply_to: PostRef | None = None  # someone's post this replies to (or likes)
    reply_root: PostRef | None = None  # the root of that post's thread
    person: str | None = None  # whom a reply is for (a participant's account id)


@dataclass(frozen=True, kw_only=True)
class UnitRow(PlannedUnit):
    """One step on one network as stored: the plan, and how far posting it has come."""

    chat_id: str
    state: UnitState
    remote: PostRef | None
    attempts: int
    retry_at: datetime | None
    reason: str
    posted_at: datetime | None
    intent_at: datetime | None = None  # the first attempt's start


@dataclass(frozen=True)
class EventRow:
    at: datetime
    level: str
    chat_id: str | None
    step_key: str | None
    network: str | None
    message: str


@dataclass(frozen=True)
class StoredAnswer:
    """An answer with its author, as the transcript and ``chatbot answers`` show it."""

    chat_id: str
    network: NetworkName
    uri: str
    url: str
    question: int
    part: str
    text: str
    created_at: datetime
    author_id: str
    handle: str
    display_name: str
    opt_out: str
    likes: int
    reposts: int
    web_opt_out: str = ""


@dataclass(frozen=True)
class StoredPost:
    """A post of the conversation as stored, with what it was judged to be."""

    chat_id: str
    network: NetworkName
    uri: str
    post_id: str
    url: str
    author_id: str
    text: str
    created_at: datetime
    edited_at: datetime | None
    reply_to: str | None
    quote_of: str | None
    likes: int
    reposts: int
    kind: str
    reason: str
    resolved: bool
    deleted: bool


class CommandState(StrEnum):
    RECEIVED = "received"
    APPLIED = "applied"
    REFUSED = "refused"  # not from a moderator of the chat: logged, never acted on
    IGNORED = "ignored"  # from a moderator, but not a command (help was sent) or too late


@dataclass(frozen=True)
class CommandRow:
    """A command to a chat: where it came from, who sent it, and what came of it."""

    id: int
    chat_id: str
    source: str  # a network's name, or "host"
    post: PostRef | None  # the post that carried it (None from `chatbot control`)
    post_uri: str | None
    target: PostRef | None  # the post the command replies to
    author_id: str
    author: str
    text: str
    received_at: datetime
    state: CommandState
    detail: str
    done_at: datetime | None


@dataclass(frozen=True)
class RoundRow:
    """The last collection round of a chat on a network: can its answers be read?"""

    chat_id: str
    network: NetworkName
    last_round_at: datetime
    last_ok_at: datetime | None
    failing_since: datetime | None
    error: str
    rounds: int

    @property
    def failing(self) -> bool:
        return self.failing_since is not None


@dataclass(frozen=True)
class LocalPost:
    """A post on the embedded local network."""

    id: int
    author: str
    author_name: str
    text: str
    reply_to: int | None
    root: int | None
    created_at: datetime
    image_alt: str | None = None
    idempotency_key: str | None = None  # the bot's posts only
    network: str = "local"  # the network a rehearsal plays here

    @property
    def url(self) -> str:
        return f"local:/posts/{self.id}"
