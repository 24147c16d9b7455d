"""Participants cared for: a welcome to first-timers, a nudge, likes, milestones with a badge.

After each collection round, every post seen for the first time is weighed: should
its author be welcomed (their first post in their first chat of the series),
nudged (an answer the chat cannot see: no hashtag, or no number), celebrated (a
milestone of the series, with a badge picture), or their answer liked? Hard limits,
whatever a script asks: at most one reply per person per chat (welcome, nudge and
milestone together), never to someone who opted out of bots, never to the bot or
the chat's hosts; replies wait behind the questions and are recorded before they
are sent, so a restart never sends one twice.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import structlog

from chatbot.kinds import CARE_KINDS, PostKind, ReplyKind, Visibility
from chatbot.networks.base import idempotency_key
from chatbot.plan import PlaceholderError, render
from chatbot.posts import PostRef, SeenPost
from chatbot.script import ChatScript, NetworkName
from chatbot.store import OVER_STATES, Image, PlannedUnit, Store
from chatbot.text import bluesky_facets

log = structlog.get_logger("chatbot.collect.care")
Clock = Callable[[], datetime]

# Replies to people per chat and network, at most: a chat of hundreds stays within
# Mastodon's 300 statuses per 3 hours, with room for the questions.
MAX_REPLIES = 100
# A top-level post this long, with the hashtag, during a question, reads as an answer
# that forgot its number.
NUDGE_WORDS = 8
REPLY_SEQ = 100_000  # after every step of the chat, in the replies' own lane


@dataclass(frozen=True)
class Fresh:
    """A post seen for the first time this round, with what attribution made of it."""

    post: SeenPost
    kind: str
    answers: int
    current_question: int | None


class Care:
    """Decides the replies and likes a round's new posts earn, and records them as units."""

    def __init__(
        self,
        *,
        store: Store,
        clock: Clock,
        script_of: Callable[[str], ChatScript | None],
        badges: Path | None = None,
        wake: Callable[[str, datetime], None] = lambda _c, _w: None,
    ) -> None:
        self._store = store
        self._clock = clock
        self._script_of = script_of
        self._badges = badges
        self._wake = wake

    def after_round(self, chat_id: str, network: NetworkName, fresh: Sequence[Fresh]) -> int:
        """Record the replies and likes ``fresh`` posts earn; returns how many."""
        script = self._script_of(chat_id)
        chat = self._store.chats.get(chat_id)
        if script is None or chat is None or not fresh or chat.state in OVER_STATES:
            return 0  # once the chat is over, nobody is welcomed or nudged any more
        units = self._store.units.of_chat(chat_id)
        replied = {u.person for u in units if u.kind in CARE_KINDS}
        budget = MAX_REPLIES - sum(
            1 for u in units if u.kind in CARE_KINDS and u.network is network
        )
        series = script.series or chat.script_id
        earlier = self._store.reports.authors_before(chat.script_id, chat_id, chat.start_at)
        planned: list[PlannedUnit] = []
        for item in fresh:
            author = item.post.author
            if author.bot or author.opt_out or item.kind in (PostKind.HOST, PostKind.BLOCKED):
                continue
            if script.care.appreciation == "all" and item.answers:
                planned.append(self._like(chat_id, item.post))
            if author.id in replied or budget <= 0:
                continue
            reply = self._reply_for(script, chat_id, series, item, (network, author.id) in earlier)
            if reply is None:
                continue
            kind, text, image = reply
            planned.append(self._unit(chat_id, kind, item.post, text, image))
            replied.add(author.id)
            budget -= 1
        if planned:
            self._store.units.add(chat_id, planned, now=self._clock())
            self._wake(chat_id, self._clock())
            log.info("care", chat=chat_id, network=network.value, units=len(planned))
        return len(planned)

    def _reply_for(
        self, script: ChatScript, chat_id: str, series: str, item: Fresh, returning: bool
    ) -> tuple[ReplyKind, str, Image | None] | None:
        care, post = script.care, item.post
        values = {
            "name": post.author.display_name or post.author.handle,
            "hashtag": f"#{script.hashtag}",
            "title": script.title,
            "series": series,
        }
        if care.milestones.reply:
            count = self._chats_joined(chat_id, post)
            if count in care.milestones.at:
                text = _render(care.milestones.text, {**values, "count": str(count)})
                # The badge names the series by its hashtag, as participants know it.
                return (
                    ReplyKind.MILESTONE,
                    text,
                    self._badge(chat_id, post, values["hashtag"], count),
                )
        if care.welcome.enabled and not returning:
            return ReplyKind.HELLO, _render(care.welcome.text, values), None
        if care.nudge.enabled and _needs_nudge(item, script.hashtag):
            return ReplyKind.NUDGE, _render(care.nudge.text, values), None
        return None

    def _chats_joined(self, chat_id: str, post: SeenPost) -> int:
        """How many chats of the series this person has posted in, this one included."""
        chat = self._store.chats.get(chat_id)
        assert chat is not None
        seen = self._store.reports.chats_of(chat.script_id, post.network, post.author.id)
        return len({*seen, chat_id})

    def _badge(self, chat_id: str, post: SeenPost, series: str, count: int) -> Image | None:
        if self._badges is None:
            return None
        from chatbot.badge import draw_badge

        name = post.author.display_name or post.author.handle
        path = self._badges / f"{_digest(chat_id, post.author.id)}.png"
        alt = draw_badge(path, name=name, series=series, count=count)
        return Image(str(path), alt)

    def _like(self, chat_id: str, post: SeenPost) -> PlannedUnit:
        key = f"like-{_digest(post.uri)}"
        return self._planned(chat_id, key, ReplyKind.LIKE, post, "", None, None)

    def _unit(
        self, chat_id: str, kind: ReplyKind, post: SeenPost, text: str, image: Image | None
    ) -> PlannedUnit:
        key = f"care-{_digest(post.author.id)}"  # one per person per chat, by its key
        if post.network is NetworkName.MASTODON:
            text = f"@{post.author.handle} {text}"  # Mastodon notifies only who is mentioned
        return self._planned(chat_id, key, kind, post, text, image, post.author.id)

    def _planned(
        self,
        chat_id: str,
        key: str,
        kind: ReplyKind,
        post: SeenPost,
        text: str,
        image: Image | None,
        person: str | None,
    ) -> PlannedUnit:
        network = post.network
        return PlannedUnit(
            step_key=key,
            network=network,
            seq=REPLY_SEQ,
            kind=kind.value,
            number=None,
            planned_at=self._clock(),
            idempotency_key=idempotency_key(chat_id, key, network),
            text=text,
            facets=tuple(bluesky_facets(text)) if network is NetworkName.BLUESKY else (),
            image=image,
            # Unlisted: a reply to one person need not fill the chat's hashtag timeline.
            visibility=Visibility.UNLISTED
            if network is NetworkName.MASTODON
            else Visibility.PUBLIC,
            reply_to=post.ref(),
            reply_root=PostRef(network, post.root) if post.root else post.ref(),
            person=person,
        )


def _needs_nudge(item: Fresh, hashtag: str) -> bool:
    """An answer the chat cannot see (no hashtag), or an answer without its number."""
    post = item.post
    has_tag = hashtag.casefold() in (t.casefold() for t in post.tags)
    if item.kind == PostKind.ANSWER and not has_tag:
        return True
    return (
        item.kind == PostKind.CONVERSATION
        and has_tag
        and post.reply_to is None
        and item.current_question is not None
        and len(post.text.split()) >= NUDGE_WORDS
    )


def _render(template: str, values: dict[str, str]) -> str:
    try:
        return render(template, values)
    except PlaceholderError:
        return template  # the loader reports a bad placeholder; a reply still goes out


def _digest(*parts: str) -> str:
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:16]
