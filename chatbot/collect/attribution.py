"""Where an answer is attributed: one post of a chat -> its kind and the questions it answers.

Attribution needs to know where a post sits: the chain of replies it belongs to
(a reply under Q3, at any depth, answers Q3), what it quotes, which question was
the latest when it was written, and who wrote it (a host's post is never an
answer; a blocked one is set aside). That is worked out here, in :func:`judge`,
from the bot's own posts and the posts already stored; :mod:`chatbot.collect.labels`
then reads the text ("A3:", "a3)", a reply with no label ...).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from chatbot.collect.labels import PostContext, attribute
from chatbot.kinds import INTRODUCTION_STEPS, PostKind, StepKind
from chatbot.posts import Author, SeenPost
from chatbot.script import ChatScript, Moderation, NetworkName, Person
from chatbot.store import StoredPost, UnitRow, UnitState

MAX_CHAIN = 200  # replies deeper than this are not followed (a loop guard as much as a limit)


@dataclass(frozen=True)
class ChatView:
    """What attribution needs to know about one chat on one network."""

    chat_id: str
    network: NetworkName
    bot_posts: Mapping[str, str]  # post id -> step key
    questions: Mapping[str, int]  # post id -> question number
    question_times: tuple[tuple[datetime, int], ...]  # (posted at, number), in order
    question_count: int
    hosts: frozenset[str] = frozenset()  # normalised handles of the chat's hosts
    moderation: Moderation = field(default_factory=Moderation)
    # The bot's posts of its other chats on this network: a reply to one of them belongs
    # to that chat, even when it reaches this one (a notification, a mention).
    others: frozenset[str] = frozenset()

    def current_question(self, at: datetime) -> int | None:
        current = None
        for posted, number in self.question_times:
            if posted <= at:
                current = number
        return current


def normalise_handle(handle: str) -> str:
    """``@User@Server.example``, ``name.bsky.social`` -> lowercase, without the leading '@'."""
    return handle.strip().removeprefix("@").lower()


def _person_handles(person: Person, network: NetworkName) -> list[str]:
    if network is NetworkName.MASTODON and person.mastodon:
        return [normalise_handle(person.mastodon)]
    if network is NetworkName.BLUESKY and person.bluesky:
        return [normalise_handle(person.bluesky)]
    if network is NetworkName.LOCAL:
        return [normalise_handle(person.local or person.name)]
    return []


def host_handles(script: ChatScript, network: NetworkName) -> frozenset[str]:
    people = [*script.moderators, *script.co_moderators, *([script.guest] if script.guest else [])]
    return frozenset(h for p in people for h in _person_handles(p, network))


def merge_moderation(*settings: Moderation) -> Moderation:
    return Moderation(
        block_accounts=[a for s in settings for a in s.block_accounts],
        block_domains=[d for s in settings for d in s.block_domains],
        block_keywords=[k for s in settings for k in s.block_keywords],
    )


def view_for(
    units: Sequence[UnitRow],
    network: NetworkName,
    *,
    chat_id: str,
    question_count: int,
    hosts: frozenset[str] = frozenset(),
    moderation: Moderation | None = None,
    others: frozenset[str] = frozenset(),
) -> ChatView:
    """The chat as seen on ``network``, from its units: the bot's posts there, its questions
    and when they were posted."""
    bot_posts: dict[str, str] = {}
    questions: dict[str, int] = {}
    times: list[tuple[datetime, int]] = []
    for unit in units:
        if unit.network is not network or unit.state is not UnitState.POSTED or unit.remote is None:
            continue
        bot_posts[unit.remote.id] = unit.step_key
        if unit.kind == StepKind.QUESTION and unit.number is not None:
            questions[unit.remote.id] = unit.number
            times.append((unit.posted_at or unit.planned_at, unit.number))
    return ChatView(
        chat_id=chat_id,
        network=network,
        bot_posts=bot_posts,
        questions=questions,
        question_times=tuple(sorted(times)),
        question_count=question_count,
        hosts=hosts,
        moderation=moderation or Moderation(),
        others=others,
    )


def blocked_reason(author: Author, text: str, moderation: Moderation) -> str:
    """Why a post is blocked by the blocklist or a keyword filter ("" if it is not)."""
    handle = normalise_handle(author.handle)
    accounts = {normalise_handle(a) for a in moderation.block_accounts}
    if handle in accounts or author.id.lower() in accounts:
        return "blocked account"
    domain = handle.rsplit("@", 1)[-1] if "@" in handle else handle.split(".", 1)[-1]
    for blocked in moderation.block_domains:
        blocked = blocked.lower().lstrip("@.")
        if domain == blocked or domain.endswith("." + blocked) or handle.endswith("." + blocked):
            return "blocked server"
    lowered = text.casefold()
    for keyword in moderation.block_keywords:
        if keyword.casefold() in lowered:
            return "blocked word"
    return ""


@dataclass(frozen=True)
class _Chain:
    step: str | None  # the bot post the reply chain leads to
    resolved: bool  # False: a parent is not known yet; try again next round


def _chain(reply_to: str | None, view: ChatView, parents: Mapping[str, str | None]) -> _Chain:
    current = reply_to
    for _ in range(MAX_CHAIN):
        if current is None:
            return _Chain(None, True)
        if current in view.bot_posts:
            return _Chain(current, True)
        if current not in parents:
            return _Chain(None, False)
        current = parents[current]
    return _Chain(None, True)


def judge(
    post: SeenPost | StoredPost,
    author: Author | None,
    view: ChatView,
    parents: Mapping[str, str | None],
) -> tuple[str, str, bool, list[tuple[int, str, str]]]:
    """(kind, reason, resolved, answers as (question, part, text)) for one post."""
    author_handle = normalise_handle(author.handle) if author else ""
    if author is not None:
        reason = blocked_reason(author, post.text, view.moderation)
        if reason:
            return PostKind.BLOCKED, reason, True, []
    chain = _chain(post.reply_to, view, parents)
    if author_handle and author_handle in view.hosts:
        return PostKind.HOST, "", chain.resolved, []
    under = chain.step
    context = PostContext(
        question_count=view.question_count,
        reply_to_question=view.questions.get(under) if under else None,
        quote_of_question=view.questions.get(post.quote_of) if post.quote_of else None,
        reply_to_welcome=under is not None and view.bot_posts.get(under) in INTRODUCTION_STEPS,
        current_question=view.current_question(post.created_at),
    )
    verdict = attribute(post.text, context)
    answers = [(a.question, a.part or "", a.text) for a in verdict.answers]
    kind = verdict.kind if verdict.kind is not PostKind.ANSWER or answers else PostKind.CONVERSATION
    return kind, "", chain.resolved, answers
