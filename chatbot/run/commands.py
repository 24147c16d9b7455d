"""Co-moderators at the controls: commands to a running chat, from a network or the host.

A co-moderator mentions the bot in the chat's thread (or sends it a direct
message): "@chatbot pause", "!extend 5", "/next #BLchat". The collector records
each post addressed to the bot that reads as a command (:func:`addressed`); the
runner's command job then hands every waiting command to :class:`CommandDesk`,
which checks who sent it, by account identity and never by name, applies it
through :class:`~chatbot.run.controls.Controls`, and answers with a reply that
says what changed. Everything is recorded: who asked what, when, and what came
of it (``chatbot status`` and the transcript's moderator notes show it).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog

from chatbot import localtime
from chatbot.kinds import REPLY_KINDS, ReplyKind, StepKind, Visibility
from chatbot.networks.base import idempotency_key
from chatbot.posts import PostRef, SeenPost
from chatbot.run import policy
from chatbot.run.controls import Controls
from chatbot.script import ChatScript, NetworkName
from chatbot.store import (
    OVER_STATES,
    ChatRow,
    ChatState,
    CommandRow,
    CommandState,
    PlannedUnit,
    Store,
    UnitRow,
    UnitState,
)
from chatbot.text import bluesky_facets

log = structlog.get_logger("chatbot.run.commands")
Clock = Callable[[], datetime]

VERBS = (
    "pause",
    "resume",
    "skip",
    "next",
    "extend",
    "end",
    "status",
    "followup",
    "like",
    "help",
)
# The desk's own posts: answers to commands, likes and follow-ups on request.
DESK_KINDS = frozenset(
    {ReplyKind.ACK.value, ReplyKind.HELP.value, ReplyKind.LIKE.value, ReplyKind.FOLLOWUP.value}
)
# A command acts on a chat that is running, or about to start (a guest runs late).
BEFORE_START = timedelta(hours=2)
HELP = (
    "I understand: pause, resume, skip (the next question), next (post it now), "
    "extend N (minutes), end, status, followup N."
)
_SYNONYMS = {
    "stop": "pause",
    "hold": "pause",
    "continue": "resume",
    "go": "resume",
    "unpause": "resume",
    "now": "next",
    "more": "extend",
    "finish": "end",
    "follow-up": "followup",
    "follow": "followup",
    "?": "help",
    "favourite": "like",
    "favorite": "like",
}
_FILLER = frozenset({"please", "pls", "plz", "hey", "ok", "okay", "bot", "kindly"})
# A mention: @user, @user@domain, or @user@host:port (snac on a test machine writes its
# host name with the port into every handle).
_MENTION = re.compile(r"(?<![\w@])@[\w.\-]+(?:@[\w.\-]+(?::\d+)?)?")
_TAG = re.compile(r"(?<![\w#])#\w+")
_WORD = re.compile(r"[a-z]+(?:-[a-z]+)*|\?|\d+")


@dataclass(frozen=True)
class Command:
    """What a co-moderator asked for: a verb, and its number (extend 5, followup 3)."""

    verb: str
    number: int | None = None


def parse(text: str) -> Command | None:
    """The command in a post addressed to the bot, or None if it holds none.

    Case does not matter; a leading ``!`` or ``/``, mentions (the bot's handle,
    anywhere), the chat's hashtag and words like "please" are passed over.
    """
    folded = unicodedata.normalize("NFKC", text).casefold()
    folded = _TAG.sub(" ", _MENTION.sub(" ", folded))
    words = _WORD.findall(folded.replace("!", " ").replace("/", " "))
    while words and words[0] in _FILLER:
        words.pop(0)
    if not words:
        return None
    if words[:2] == ["follow", "up"]:
        words = ["followup", *words[2:]]
    verb = _SYNONYMS.get(words[0], words[0])
    if verb not in VERBS:
        return None
    number = next((int(w) for w in words[1:3] if w.isdigit()), None)
    if verb == "followup" and number is None:
        q = re.search(r"\bq(\d+)\b", folded)
        number = int(q.group(1)) if q else None
    return Command(verb, number)


def looks_like_command(text: str) -> bool:
    """Whether a post addressed to the bot is meant as a command: it reads as one, or it
    opens with a mention or ``!``/``/`` and is a few words at most ("@chatbot paws").
    "Thanks @chatbot, great chat!" is not; an answer ("@chatbot A1: ...") is not."""
    if parse(text) is not None:
        return True
    stripped = text.strip()
    if not stripped.startswith(("@", "!", "/")):
        return False
    rest = _TAG.sub(" ", _MENTION.sub(" ", stripped)).strip(" !/")
    words = rest.split()
    return 0 < len(words) <= 4 and not re.match(r"(?i)^a\s?\d", rest)


@dataclass(frozen=True)
class Authority:
    """Who may command a chat, by account identity on each network (ids, never names)."""

    ids: Mapping[NetworkName, frozenset[str]]

    def allows(self, network: NetworkName, account_id: str) -> bool:
        return account_id in self.ids.get(network, frozenset())


class CommandDesk:
    """Applies waiting commands to the chats this replica holds, and answers them."""

    def __init__(
        self,
        *,
        store: Store,
        controls: Controls,
        clock: Clock,
        authority: Callable[[str], Authority | None],
        script_of: Callable[[str], ChatScript | None],
        reply_visibility: Visibility = Visibility.DIRECT,
        wake: Callable[[str, datetime], None] = lambda _c, _w: None,
    ) -> None:
        self._store = store
        self._controls = controls
        self._clock = clock
        self._authority = authority
        self._script_of = script_of
        self._visibility = reply_visibility
        self._wake = wake

    def receive(self, chat_id: str, network: NetworkName, posts: Sequence[SeenPost]) -> None:
        """Record the posts addressed to the bot that read as commands (a collection round
        calls this); whoever sent them: who may command is checked when they are applied."""
        now = self._clock()
        for post in posts:
            if looks_like_command(post.text):
                self._store.commands.receive(
                    chat_id,
                    source=network.value,
                    author_id=post.author.id,
                    author=post.author.handle,
                    text=post.text,
                    now=now,
                    post=post.ref(),
                    post_uri=post.uri,
                    target_id=post.reply_to,
                )

    def apply_waiting(self, holds: Callable[[str], bool]) -> None:
        """Apply every waiting command of the chats ``holds`` says this replica acts for."""
        for command in self._store.commands.waiting():
            if holds(command.chat_id):
                self.handle(command)

    def handle(self, command: CommandRow) -> CommandState:
        """Apply one command (or refuse or ignore it) and record what came of it."""
        chat = self._store.chats.get(command.chat_id)
        state, detail, answer = self._decide(command, chat)
        now = self._clock()
        if not self._store.commands.done(command.id, state, detail, now=now):
            return state  # another replica got to it first
        log.info(
            "command",
            chat=command.chat_id,
            source=command.source,
            author=command.author,
            text=command.text,
            state=state.value,
            detail=detail,
        )
        self._store.events.add(
            "warning" if state is CommandState.REFUSED else "info",
            f"{command.author} ({command.source}): {command.text!r}: {state.value}: {detail}",
            chat_id=command.chat_id,
            now=now,
        )
        if answer and command.post is not None and _chat_goes_on(chat):
            kind = ReplyKind.HELP if state is CommandState.IGNORED else ReplyKind.ACK
            self._reply(command, answer, kind)
        return state

    def _decide(self, command: CommandRow, chat: ChatRow | None) -> tuple[CommandState, str, str]:
        """(what came of it, the record's detail, the reply: "" for none)."""
        if chat is None:
            return CommandState.IGNORED, "no such chat", ""
        if command.source != "host":
            authority = self._authority(chat.chat_id)
            network = NetworkName(command.source)
            if authority is None or not authority.allows(network, command.author_id):
                # Not a moderator of this chat (a lookalike name, another server's user,
                # a removed moderator, someone quoting one): logged, never answered.
                return CommandState.REFUSED, "not a moderator of this chat", ""
        parsed = parse(command.text)
        if parsed is None or parsed.verb == "help":
            return CommandState.IGNORED, "not a command: help sent", HELP
        if not self._open(chat):
            return (
                CommandState.IGNORED,
                f"the chat is {chat.state.value}",
                (f"#{chat.hashtag} is {chat.state.value}: commands act on a running chat."),
            )
        try:
            detail = self._apply(chat, parsed, command.target)
        except ValueError as exc:
            return CommandState.IGNORED, str(exc), f"{exc}. {HELP}"
        return CommandState.APPLIED, detail, detail

    def _open(self, chat: ChatRow) -> bool:
        if chat.state is ChatState.RUNNING:
            return True
        starts = chat.start_at + chat.shift
        return chat.state is ChatState.SCHEDULED and starts - self._clock() <= BEFORE_START

    def _apply(self, chat: ChatRow, command: Command, target: PostRef | None = None) -> str:
        """Do it; returns what changed, in words for the co-moderator."""
        chat_id, verb = chat.chat_id, command.verb
        if verb == "status":
            return self._status(chat)
        if verb == "pause":
            self._controls.pause(chat_id)
            return f"Paused. {self._next_label(chat_id)} waits until you say resume."
        if verb == "resume":
            self._controls.resume(chat_id)
            return f"Resumed. {self._next_words(chat_id)}"
        if verb == "skip":
            key = self._controls.skip(chat_id)
            if key is None:
                raise ValueError("Nothing is left to skip")
            return f"Skipped {_label(key)}. {self._next_words(chat_id)}"
        if verb == "next":
            label = self._next_label(chat_id)
            self._controls.next_now(chat_id)
            return f"Posting {label} now; the steps after it keep their spacing."
        if verb == "extend":
            minutes = command.number
            if minutes is None or not 1 <= minutes <= 60:
                raise ValueError("Extend needs a number of minutes from 1 to 60, as in: extend 5")
            self._controls.extend(chat_id, timedelta(minutes=minutes))
            return f"Extended by {minutes} minutes. {self._next_words(chat_id)}"
        if verb == "end":
            self._controls.end(chat_id)
            return "Ending the chat: the closing goes out now, and the recap after it."
        if verb == "like":
            return self._like(chat, target)
        return self._followup(chat, command.number)

    def _like(self, chat: ChatRow, target: PostRef | None) -> str:
        script = self._script_of(chat.chat_id)
        if script is None or script.care.appreciation != "marked":
            raise ValueError("Likes on request are off for this chat (care: appreciation)")
        if target is None:
            raise ValueError("Send like as a reply to the answer to like")
        key = f"like-{idempotency_key(chat.chat_id, target.id, target.network)[:16]}"
        unit = self._unit(
            chat.chat_id,
            key,
            target.network,
            ReplyKind.LIKE,
            "",
            target,
            None,
            None,
            Visibility.PUBLIC,
        )
        self._store.units.add(chat.chat_id, [unit], now=self._clock())
        self._wake(chat.chat_id, self._clock())
        return "Liked."

    def _followup(self, chat: ChatRow, number: int | None) -> str:
        script = self._script_of(chat.chat_id)
        if number is None:
            raise ValueError("Followup needs a question number, as in: followup 3")
        question = (
            script.questions[number - 1]
            if script is not None and 1 <= number <= len(script.questions)
            else None
        )
        if question is None or not question.followup:
            raise ValueError(f"Q{number} has no follow-up in the script")
        posted = [
            u
            for u in self._store.units.of_chat(chat.chat_id)
            if u.number == number and u.state is UnitState.POSTED and u.remote is not None
        ]
        if not posted:
            raise ValueError(f"Q{number} has not been posted yet")
        text = f"{question.followup} #{chat.hashtag}"
        self._store.units.add(
            chat.chat_id,
            [
                self._unit(
                    chat.chat_id,
                    f"followup-{number}",
                    unit.network,
                    ReplyKind.FOLLOWUP,
                    text,
                    unit.remote,
                    self._root(chat.chat_id, unit.network),
                    None,
                    Visibility.PUBLIC,
                )
                for unit in posted
            ],
            now=self._clock(),
        )
        self._wake(chat.chat_id, self._clock())
        return f"Posted the follow-up under Q{number}."

    def _reply(self, command: CommandRow, text: str, kind: ReplyKind) -> None:
        assert command.post is not None
        network = command.post.network
        visibility = self._visibility if network is NetworkName.MASTODON else Visibility.PUBLIC
        if network is NetworkName.MASTODON:
            # A direct post is seen only by the accounts it mentions.
            text = f"@{command.author.removeprefix('@')} {text}"
        unit = self._unit(
            command.chat_id,
            f"{kind.value}-{command.id}",
            network,
            kind,
            text,
            command.post,
            None,
            command.author_id,
            visibility,
        )
        self._store.units.add(command.chat_id, [unit], now=self._clock())
        self._wake(command.chat_id, self._clock())

    def _unit(
        self,
        chat_id: str,
        key: str,
        network: NetworkName,
        kind: ReplyKind,
        text: str,
        reply_to: PostRef | None,
        root: PostRef | None,
        person: str | None,
        visibility: Visibility,
    ) -> PlannedUnit:
        return PlannedUnit(
            step_key=key,
            network=network,
            seq=100_000,
            kind=kind.value,
            number=None,
            planned_at=self._clock(),
            idempotency_key=idempotency_key(chat_id, key, network),
            text=text,
            facets=tuple(bluesky_facets(text)) if network is NetworkName.BLUESKY else (),
            visibility=visibility,
            reply_to=reply_to,
            reply_root=root,
            person=person,
        )

    def _root(self, chat_id: str, network: NetworkName) -> PostRef | None:
        thread = [
            u
            for u in self._store.units.of_chat(chat_id)
            if u.network is network
            and u.state is UnitState.POSTED
            and u.remote is not None
            and u.kind not in REPLY_KINDS
            and u.kind != StepKind.RECAP
        ]
        return min(thread, key=lambda u: u.seq).remote if thread else None

    # --- words for the co-moderator ---------------------------------------------------------

    def _pending(self, chat_id: str) -> tuple[ChatRow | None, UnitRow | None]:
        chat = self._store.chats.get(chat_id)
        units = [
            u
            for u in self._store.units.of_chat(chat_id)
            if u.state is UnitState.PENDING
            and u.kind not in REPLY_KINDS
            and u.kind != StepKind.RECAP
        ]
        return chat, (min(units, key=lambda u: u.seq) if units else None)

    def _next_label(self, chat_id: str) -> str:
        _chat, unit = self._pending(chat_id)
        return _label(unit.step_key) if unit else "Nothing"

    def _next_words(self, chat_id: str) -> str:
        chat, unit = self._pending(chat_id)
        if chat is None or unit is None:
            return "Nothing is left to post."
        at = self._local(chat, policy.due_at(chat, unit))
        return f"{_label(unit.step_key)} goes out at {at}."

    def _status(self, chat: ChatRow) -> str:
        units = self._store.units.of_chat(chat.chat_id)
        posted = [u for u in units if u.state is UnitState.POSTED and u.kind == StepKind.QUESTION]
        last = max(posted, key=lambda u: u.seq) if posted else None
        answers = len(self._store.reports.answers(chat.chat_id))
        where = f"{_label(last.step_key)} is out" if last else "no question is out yet"
        paused = " It is paused." if chat.paused_at else ""
        upcoming = self._next_words(chat.chat_id)
        return f"#{chat.hashtag}: {where}; {upcoming} {answers} answers so far.{paused}"

    def _local(self, chat: ChatRow, at: datetime) -> str:
        return localtime.format_local(at, localtime.zone(chat.timezone), "%H:%M")


def _label(step_key: str) -> str:
    """q4 -> Q4; the closing, the welcome ... in words."""
    if re.fullmatch(r"q\d+", step_key):
        return step_key.upper()
    return "the " + step_key.replace("_", " ").replace("-", " ")


def _chat_goes_on(chat: ChatRow | None) -> bool:
    """Whether the chat is still on, so that an answer to a command in it is still news."""
    return chat is not None and chat.state not in OVER_STATES
