"""Paging through a Mastodon-API listing (timelines, notifications, an account's statuses).

Every listing comes newest first. Two ways to read what is new:

- :func:`forward`, by ``min_id``, only where ids are numbers that sort in
  posting order (Mastodon's Snowflake ids): the page just above the cursor, then
  the next, until an empty page. It reads nothing twice.
- :func:`read_back`, on any server: newest first, each next page by ``max_id`` =
  the last item of the page before (the server's own order, never a comparison
  of ids), until an item reaches back past a time. A time cursor, not an id, says
  where the last round stopped: snac's ids (the second, then an md5) do not sort
  within a second, GoToSocial's are ULIDs, and a ``min_id`` that is not in the
  listing gives an empty page on snac however many posts are newer.

Neither trusts a ``Link`` header (snac sends none) or a short page (only an
empty one ends a listing), and :func:`read_back` stops at a page that brings
nothing new, so a server that ignores ``max_id`` cannot keep it reading.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from chatbot.networks.mastodon.calls import Client
from chatbot.networks.reading import Page, as_utc, follow, id_order

# Timelines and notifications: at most 40 a page.
PAGE_SIZE = 40
# A safety stop for one source in one round (10,000 posts); the cursor only
# moves as far as was read, so the rest comes next round.
MAX_PAGES = 250
# Reading by time, each round reads again this far behind the newest item it
# read before: posts that share its second (snac's times have whole seconds),
# and posts that reached the listing a little after newer ones. Later arrivals
# are found by the sweep, which reads again from the chat's start.
OVERLAP = timedelta(minutes=2)


def created(item: Any) -> datetime | None:
    """When a status or notification was made, as aware UTC."""
    return as_utc(item.get("created_at"))


# --- by id, where ids sort (Mastodon) ------------------------------------------------------


def forward(
    client: Client, what: str, fetch: Callable[[str], Any], start: str
) -> tuple[list[Any], str]:
    """Every item with an id above ``start``, oldest pages first; (items, newest id).

    Only where ids are numbers (:attr:`~chatbot.networks.mastodon.server.Traits.numeric_ids`):
    with ``min_id`` Mastodon answers the page just above it, so advancing
    ``min_id`` to the newest id of each page leaves no gap and reads nothing twice.
    """

    def page(min_id: str | None) -> Page[Any, str]:
        items = client(what, partial(fetch, min_id or start), posting=False, paging=True)
        return Page(items, max((str(i["id"]) for i in items), key=id_order, default=None))

    items = follow(page, start, what=what, most=MAX_PAGES)
    return items, max([start, *(str(i["id"]) for i in items)], key=id_order)


def timeline(
    client: Client, what: str, fetch: Callable[..., Any], cursor: str | None, since: datetime
) -> tuple[list[Any], str | None]:
    """Items after the id ``cursor``; the first time, newest first back to ``since`` (older
    ones are another chat's): (items, the newest id read). Only where ids are numbers."""
    if cursor:
        return forward(client, what, lambda min_id: fetch(min_id=min_id), cursor)
    items = read_back(client, what, fetch, since)
    return items, max((str(i["id"]) for i in items), key=id_order, default=None)


# --- by time, on any server ----------------------------------------------------------------


def read_back(client: Client, what: str, fetch: Callable[..., Any], floor: datetime) -> list[Any]:
    """Items newest first, page by page (``max_id`` = the last item of the page before), until
    a page reaches back past ``floor``, is empty, or brings nothing new; items before
    ``floor`` included (the caller filters)."""
    seen: set[str] = set()

    def page(max_id: str | None) -> Page[Any, str]:
        items = client(
            what,
            partial(fetch, max_id=max_id) if max_id else fetch,
            posting=False,
            paging=max_id is not None,
        )
        new = [item for item in items if str(item["id"]) not in seen]
        seen.update(str(item["id"]) for item in new)
        # A server that ignores max_id answers the same page again: nothing new, stop.
        return Page(new, str(new[-1]["id"]) if new else None)

    def reached(items: Sequence[Any]) -> bool:
        return any(t is not None and t < floor for t in map(created, items))

    return follow(page, None, what=what, most=MAX_PAGES, enough=reached)


def resume_from(cursor: str | None, start: datetime) -> datetime:
    """Where a time cursor says to read back to: ``OVERLAP`` before it, never before ``start``."""
    moment = as_utc(cursor) if cursor else None
    return start if moment is None else max(start, moment - OVERLAP)


def newest(items: Iterable[Any], cursor: str | None) -> str | None:
    """The time cursor after reading ``items``: the newest creation time among them and
    the cursor before (ISO 8601), or None when there is neither."""
    times = [t for t in map(created, items) if t is not None]
    before = as_utc(cursor) if cursor else None
    if before is not None:
        times.append(before)
    return max(times).isoformat() if times else None
