"""The bot's shared vocabulary: kinds of steps and posts, visibility, and who counts.

One definition each, used by the planner, the runner, collection, the recap,
the transcript, the statistics and the demo alike, so their counts agree.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from chatbot.posts import Author


class StepKind(StrEnum):
    """What a step of a chat is."""

    REMINDER = "reminder"
    WELCOME = "welcome"
    INTRODUCTIONS = "introductions"
    FORMAT_NOTE = "format_note"
    QUESTION = "question"
    CLOSING = "closing"
    RECAP = "recap"


# Steps whose replies are introductions ("name, role, school").
INTRODUCTION_STEPS = frozenset({StepKind.WELCOME, StepKind.INTRODUCTIONS})


class ReplyKind(StrEnum):
    """What the bot posts in answer to someone, outside the chat's own thread."""

    ACK = "ack"  # what a co-moderator's command changed
    HELP = "help"  # the commands, to a co-moderator who sent something else
    HELLO = "hello"  # welcoming a first-timer
    NUDGE = "nudge"  # an answer without the hashtag or the number
    MILESTONE = "milestone"  # a person's 3rd, 5th, 10th chat of the series
    FOLLOWUP = "followup"  # a co-moderator's follow-up prompt, under its question
    LIKE = "like"  # a favourite / like of an answer


REPLY_KINDS = frozenset(kind.value for kind in ReplyKind)
# Replies to participants: at most one per person per chat, across these kinds.
CARE_KINDS = frozenset({ReplyKind.HELLO.value, ReplyKind.NUDGE.value, ReplyKind.MILESTONE.value})


class PostKind(StrEnum):
    """What a post someone else wrote is within a chat."""

    ANSWER = "answer"
    INTRODUCTION = "introduction"
    CONVERSATION = "conversation"
    HOST = "host"  # a moderator's, co-moderator's or guest's post: never counted as an answer
    BLOCKED = "blocked"  # by the blocklist or a keyword filter


# Kinds of stored posts that make their author a participant (not "host" or "blocked").
PARTICIPANT_KINDS: tuple[str, ...] = (
    PostKind.ANSWER.value,
    PostKind.INTRODUCTION.value,
    PostKind.CONVERSATION.value,
)


class Visibility(StrEnum):
    """Who sees a post (Mastodon's terms; every Bluesky post is public).

    ``unlisted`` posts never appear in hashtag timelines, so questions are
    always public; ``private`` (followers only) and ``direct`` are for
    rehearsals on real accounts and for replies to co-moderators.
    """

    PUBLIC = "public"
    UNLISTED = "unlisted"
    PRIVATE = "private"
    DIRECT = "direct"


def is_participant(author: Author) -> bool:
    """Whether an author counts as a participant: automated accounts (the bot) do not."""
    return not author.bot
