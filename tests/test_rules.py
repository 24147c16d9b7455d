"""The rules the checks apply: the networks' hashtags and alt text, zones, plans, placeholders."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chatbot.localtime import ZoneKind, zone_advice
from chatbot.plan import PlaceholderError, occurrences, render, slots
from chatbot.script import ChatScript, NetworkName
from chatbot.text import Limits, alt_text_length, links_hashtag, measure_bounded


def make_script(**changes: Any) -> ChatScript:
    """A small valid one-off chat; ``changes`` replace keys."""
    data: dict[str, Any] = {
        "title": "Fixture chat",
        "hashtag": "FixChat",
        "timezone": "America/New_York",
        "start": "2027-01-07 20:00",
        "networks": ["mastodon", "bluesky"],
        "moderators": [{"name": "Host"}],
        "welcome": {"text": "Welcome to {hashtag}!"},
        "questions": [{"text": "First?"}],
        "closing": {"text": "Thanks!"},
    }
    data.update(changes)
    return ChatScript.model_validate({k: v for k, v in data.items() if v is not None})


@pytest.mark.parametrize(
    ("tag", "mastodon", "bluesky"),
    [
        ("BLchat", True, True),
        ("école", True, True),
        ("k12", True, True),
        ("2027", False, False),
        ("Blended-Learning", False, True),
        ("a" * 65, True, False),
        ("chat_", True, False),
    ],
)
def test_hashtags_are_linked_as_each_network_links_them(
    tag: str, mastodon: bool, bluesky: bool
) -> None:
    """Mastodon's tag.rb rule and atproto's facets decide, not one rule for both."""
    assert links_hashtag(NetworkName.MASTODON, tag) is mastodon
    assert links_hashtag(NetworkName.BLUESKY, tag) is bluesky


def test_a_long_text_is_counted_only_until_it_is_past_the_limit() -> None:
    """A 500,000-character post is reported as at least the limit, without counting it all."""
    size = measure_bounded(NetworkName.MASTODON, "word " * 100_000, Limits())
    assert not size.fits
    assert size.at_least
    assert size.describe().startswith("at least ")


def test_a_text_of_links_is_counted_whole() -> None:
    """Links count 23 each on Mastodon: a long text of links can fit, and is measured in full."""
    text = " ".join(["https://example.org/" + "a" * 300] * 10)
    size = measure_bounded(NetworkName.MASTODON, text, Limits())
    assert size.fits and not size.at_least


def test_alt_text_is_counted_per_network() -> None:
    """Mastodon counts characters; Bluesky counts graphemes (a family emoji is one)."""
    family = "👨‍👩‍👧"
    assert alt_text_length(NetworkName.MASTODON, family) == 5
    assert alt_text_length(NetworkName.BLUESKY, family) == 1


@pytest.mark.parametrize(
    ("name", "kind", "intended"),
    [
        ("EST", ZoneKind.FIXED, "America/New_York"),
        ("Etc/GMT+5", ZoneKind.FIXED, "America/New_York"),
        ("Etc/GMT-9", ZoneKind.FIXED, "Asia/Tokyo"),
        ("US/Eastern", ZoneKind.OLD, "America/New_York"),
        ("America/Indianapolis", ZoneKind.OLD, "America/Indiana/Indianapolis"),
    ],
)
def test_fixed_offset_and_old_zones_suggest_the_zone_meant(
    name: str, kind: ZoneKind, intended: str
) -> None:
    """A zone that runs but is likely a mistake names the region zone meant."""
    advice = zone_advice(name)
    assert advice is not None
    assert (advice.kind, advice.intended) == (kind, intended)


@pytest.mark.parametrize("name", ["America/New_York", "Europe/Amsterdam", "UTC", "Asia/Tokyo"])
def test_current_zones_get_no_advice(name: str) -> None:
    """Today's region zones and UTC are fine as they are."""
    assert zone_advice(name) is None


def test_introductions_at_zero_stay_at_zero() -> None:
    """at: 0 is a time like any other, not "not given" (it used to become 2m)."""
    script = make_script(introductions={"text": "Hi", "at": 0})
    offsets = {slot.key: slot.offset for slot in slots(script)}
    assert offsets["introductions"] == timedelta(0)


def test_a_weekly_series_from_2000_still_has_chats_after_1000_weeks() -> None:
    """The rule has no occurrence limit: a weekly chat begun in 2000 goes on in 2027."""
    script = make_script(
        start=None,
        recurrence={
            "every": "week",
            "weekday": "thursday",
            "time": "19:00",
            "starting": "2000-01-06",
        },
    )
    after = datetime(2027, 1, 1, tzinfo=UTC)
    assert occurrences(script, after, 1)[0] == after  # Thursday 31 December, 19:00 EST


@pytest.mark.parametrize("template", ["{title!r}", "{title:>300}", "{title.upper}", "{0}"])
def test_render_fills_only_plain_placeholders(template: str) -> None:
    """A conversion, a format spec, an attribute or a position is refused, never formatted."""
    with pytest.raises(PlaceholderError):
        render(template, {"title": "T"})
