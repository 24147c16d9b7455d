"""What the Mastodon and Bluesky readers share: pacing, sweeps, remembered posts, times.

A reader is polled every round (15 s while a chat runs). Most rounds read only
what is new since the cursors; every few rounds a *sweep* reads the chat's
hashtag from its first post again, which is how edits and deletions of posts
that sit in no thread are noticed. The ids of the posts seen in threads and
under the hashtag are remembered in the cursors themselves (the store keeps
cursors per chat and network), so a restart knows what it saw before.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from chatbot import errors
from chatbot.networks.pacing import Pacer

# A sweep every this many rounds (every 2 minutes at the runner's 15 s), and on
# the first round of every process, so a restart re-reads what changed meanwhile.
SWEEP_ROUNDS = 8
# Seconds a request may wait for the pacer before the round gives up with
# RateLimited (the runner tries again then). Longer than one token of the
# slowest bucket (Mastodon's paging: 300 per 15 minutes = one per 3 s), so a
# round in a pacer-limited stretch still makes progress.
MAX_PACING_WAIT = 3.5


def pace(
    pacers: Iterable[Pacer],
    *,
    posting: bool,
    what: str,
    now: datetime,
    max_wait: float = MAX_PACING_WAIT,
) -> None:
    """Take a token from each pacer, waiting at most ``max_wait`` s for each; else RateLimited."""
    for pacer in pacers:
        if not pacer.acquire(posting=posting, deadline=max_wait):
            wait = max(pacer.wait_time(posting=posting), 1.0)
            retry_at = now + timedelta(seconds=wait)
            raise errors.RateLimited(
                f"{what}: pacing requests within the network's limits until "
                f"{retry_at:%H:%M:%S} UTC",
                retry_at=retry_at,
                status=None,
            )


class Rounds:
    """Counts collection rounds per chat and says which ones sweep."""

    def __init__(self, every: int = SWEEP_ROUNDS) -> None:
        self.every = max(1, every)
        self._counts: dict[str, int] = {}
        self._lock = threading.Lock()

    def next_is_sweep(self, chat_id: str) -> bool:
        """Count a round for ``chat_id``; True for the first one and every ``every``-th."""
        with self._lock:
            count = self._counts.get(chat_id, 0)
            self._counts[chat_id] = count + 1
        return count % self.every == 0


def remembered(cursors: Mapping[str, str], source: str) -> dict[str, str]:
    """The posts remembered under ``source`` (id -> uri); {} when absent or unreadable."""
    raw = cursors.get(source, "")
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        return {}
    if isinstance(value, dict):
        return {str(k): str(v) for k, v in value.items()}
    if isinstance(value, list):  # a list of uris: the id is the uri (Bluesky)
        return {str(v): str(v) for v in value}
    return {}


def remember(posts: Mapping[str, str]) -> str:
    """``posts`` (id -> uri) as a cursor value, stable for equal content."""
    if all(k == v for k, v in posts.items()):
        return json.dumps(sorted(posts), separators=(",", ":"))
    return json.dumps(dict(sorted(posts.items())), separators=(",", ":"))


def as_utc(value: Any) -> datetime | None:
    """A time from an API as aware UTC: datetimes (naive ones are UTC) or ISO 8601 strings."""
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        try:
            value = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            return None
    if not isinstance(value, datetime):
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def id_order(value: str) -> tuple[int, str]:
    """A sort key for server ids: numbers by value (Mastodon), same-length ULIDs by text."""
    return len(value), value
