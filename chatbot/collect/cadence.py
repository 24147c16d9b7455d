"""How often a chat's answers are read on a network: where the answers are, when.

Answers come in bursts right after a question is posted and thin out after it;
after the chat's end only late replies trickle in. A polled network is read
faster while the last question is *fresh*, at the base interval while the chat
runs, and slower in the tail. A network whose streams are live is only read as
a safety net (and when a stream wakes the chat): see
:mod:`chatbot.networks.mastodon.stream`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

# The tail (after the chat's end): read this many times less often than the base.
TAIL_FACTOR = 4
# A question is fresh this long after it was posted (real time; the runner divides by speed).
FRESH_FOR = timedelta(minutes=4)
# While streams are live, rounds run this many times less often than the base interval
# anyway (a minute at the default 15 s): a safety net, and what reads the replies that
# reach no stream (a reply in a thread that neither tags nor mentions the bot).
STREAMED_FACTOR = 4


@dataclass(frozen=True)
class Cadence:
    """One network's intervals: ``fast`` while a question is fresh, ``every`` while the chat
    runs, ``every * TAIL_FACTOR`` after its end (never past ``longest``)."""

    every: timedelta
    fast: timedelta
    fresh_for: timedelta = FRESH_FOR
    longest: timedelta | None = None


def poll_interval(
    now: datetime,
    *,
    last_question_at: datetime | None,
    ended: bool,
    cadence: Cadence,
) -> timedelta:
    """The wait before the next read of a polled network.

    ``last_question_at``: when the newest question was posted there (None: none
    yet); ``ended``: the chat is past its end (its answer tail).
    """
    if ended:
        tail = cadence.every * TAIL_FACTOR
        return min(tail, cadence.longest) if cadence.longest is not None else tail
    if last_question_at is not None and now - last_question_at <= cadence.fresh_for:
        return min(cadence.fast, cadence.every)
    return cadence.every
