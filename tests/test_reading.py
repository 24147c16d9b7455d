"""What the readers share: the paging loop and the posts remembered in cursors.

The collection round itself is held end to end by the Mastodon and Bluesky
reader tests, at each network's HTTP seam.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import structlog

from chatbot.networks.reading import Page, back_to, follow, remember, remembered

START = datetime(2027, 3, 4, 19, 0, tzinfo=UTC)


def _pages(*pages: list[int]) -> tuple[Callable[[int | None], Page[int, int]], list[int | None]]:
    """A listing of ``pages``; page n leads to page n + 1; the cursors asked for are kept."""
    asked: list[int | None] = []

    def fetch(cursor: int | None) -> Page[int, int]:
        asked.append(cursor)
        index = cursor or 0
        items = pages[index] if index < len(pages) else []
        return Page(items, index + 1)

    return fetch, asked


def test_follow_reads_on_past_short_pages_until_an_empty_one() -> None:
    """A short page is not the end; only an empty page (or no next page) is."""
    fetch, asked = _pages([1, 2, 3], [4], [5, 6])
    assert follow(fetch, None, what="reading", most=10) == [1, 2, 3, 4, 5, 6]
    assert asked == [None, 1, 2, 3]


def test_follow_stops_at_a_page_without_a_next() -> None:
    """A listing that says no page follows is not asked again."""
    calls: list[str | None] = []

    def fetch(cursor: str | None) -> Page[str, str]:
        calls.append(cursor)
        return Page(["only"], None)

    assert follow(fetch, "start", what="reading", most=10) == ["only"]
    assert calls == ["start"]


def test_follow_stops_at_most_pages_and_says_so() -> None:
    """A safety stop: at most ``most`` pages a round, with a warning naming the source."""
    fetch, asked = _pages(*([n] for n in range(10)))
    with structlog.testing.capture_logs() as logs:
        assert follow(fetch, None, what="reading #tag", most=3) == [0, 1, 2]
    assert len(asked) == 3
    assert [(e["event"], e["what"]) for e in logs] == [
        ("more pages than one round reads", "reading #tag")
    ]


def test_back_to_stops_at_the_first_page_reaching_past_the_floor() -> None:
    """Newest first: the page holding an item older than the floor is the last one read."""
    minutes = [[50, 40], [30, 20], [10, 0]]
    fetch, asked = _pages(*minutes)

    def when(item: int) -> datetime:
        return START + timedelta(minutes=item)

    found = back_to(START + timedelta(minutes=25), when, fetch, what="reading", most=10)
    assert found == [50, 40, 30, 20]
    assert asked == [None, 1]


@pytest.mark.parametrize(
    ("stored", "read"),
    [
        ('{"101":"https://a.example/s/101"}', {"101": "https://a.example/s/101"}),  # Mastodon
        ('["at://did:plc:a/p/1"]', {"at://did:plc:a/p/1": "at://did:plc:a/p/1"}),  # Bluesky
        ("", {}),
        ("not json", {}),
        ("42", {}),
    ],
)
def test_remembered_posts_in_every_stored_format_are_read(stored: str, read: Any) -> None:
    """Cursors written by earlier versions stay readable; a damaged one is an empty memory."""
    assert remembered({"threads": stored}, "threads") == read


def test_remember_writes_what_remembered_reads() -> None:
    """Ids that are their uris are kept as a list (Bluesky), others as a map; sorted, stable."""
    uris = {"at://b": "at://b", "at://a": "at://a"}
    assert remember(uris) == '["at://a","at://b"]'
    statuses = {"9": "https://a.example/s/9", "10": "https://a.example/s/10"}
    assert remembered({"tagged": remember(statuses)}, "tagged") == statuses
