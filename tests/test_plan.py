"""Planning: a script and a start become timed steps with the exact text for each network."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from chatbot.kinds import StepKind
from chatbot.plan import ChatPlan, chat_id, occurrences, plan_chat
from chatbot.script import ChatScript, NetworkName

INDY = ZoneInfo("America/Indiana/Indianapolis")
PARIS = ZoneInfo("Europe/Paris")
JAN_1_2027 = datetime(2027, 1, 1, tzinfo=UTC)


def make_script(**changes: Any) -> ChatScript:
    """A small valid series (first Thursday, 20:00 Indianapolis); ``changes`` replace keys."""
    data: dict[str, Any] = {
        "id": "blchat",
        "title": "Blended learning",
        "hashtag": "#BLchat",
        "timezone": "America/Indiana/Indianapolis",
        "recurrence": {
            "every": "month",
            "ordinal": "first",
            "weekday": "thursday",
            "time": "20:00",
            "starting": "2027-01-01",
        },
        "networks": ["mastodon", "bluesky"],
        "moderators": [{"name": "BL Team", "mastodon": "@blchat@mastodon.education"}],
        "welcome": {"text": "Welcome to {hashtag}!"},
        "questions": [{"text": "First?"}, {"text": "Second?"}, {"text": "Third?"}],
        "closing": {"text": "Thanks for joining {hashtag}!"},
    }
    data.update(changes)
    return ChatScript.model_validate({k: v for k, v in data.items() if v is not None})


def plan(script: ChatScript, start: datetime | None = None, **kwargs: Any) -> ChatPlan:
    """The plan of the script's first chat in 2027 (or of ``start``)."""
    start = start or occurrences(script, JAN_1_2027, 1)[0]
    return plan_chat(script, "blchat", start, **kwargs)


def offsets(chat: ChatPlan) -> dict[str, timedelta]:
    return {step.key: step.offset for step in chat.steps}


# --- steps and their times ------------------------------------------------------------


def test_default_offsets_follow_a_one_hour_chat() -> None:
    """Welcome at 0, introductions 2m, format note 5m, Q1 6m, then every 9m, closing, recap."""
    script = make_script(
        introductions={"text": "Say hi!"},
        format_note={"text": "Answer with A1, A2 ..."},
    )
    minutes = {key: value / timedelta(minutes=1) for key, value in offsets(plan(script)).items()}
    assert minutes == {
        "welcome": 0,
        "introductions": 2,
        "format-note": 5,
        "q1": 6,
        "q2": 15,
        "q3": 24,
        "closing": 33,
        "recap": 48,
    }


def test_steps_are_the_start_plus_their_offsets_in_utc() -> None:
    """Every step's instant is the chat's UTC start plus its offset."""
    chat = plan(make_script())
    assert chat.start == datetime(2027, 1, 8, 1, 0, tzinfo=UTC)
    for step in chat.steps:
        assert step.at == chat.start + step.offset
        assert step.at.tzinfo is UTC


def test_question_at_overrides_and_spacing_continues_from_it() -> None:
    """A question's own at: moves it; the questions after it follow at question_spacing."""
    script = make_script(
        question_spacing="8m",
        questions=[
            {"text": "One?"},
            {"text": "Two?", "at": "20m"},
            {"text": "Three?"},
            {"text": "Four?", "at": "0:45"},
            {"text": "Five?"},
        ],
    )
    minutes = {key: value / timedelta(minutes=1) for key, value in offsets(plan(script)).items()}
    assert [minutes[f"q{n}"] for n in range(1, 6)] == [6, 20, 28, 45, 53]
    assert minutes["closing"] == 61


def test_closing_at_overrides_the_computed_closing() -> None:
    """A closing with its own at: is posted then, whatever the questions' spacing."""
    script = make_script(closing={"text": "Bye {hashtag}", "at": "58m"})
    assert offsets(plan(script))["closing"] == timedelta(minutes=58)


def test_reminders_are_posted_before_the_start() -> None:
    """A reminder with before: 1 day is due one day before the start, first in the plan."""
    script = make_script(
        reminders=[
            {"before": "1 day", "text": "Tomorrow: {title}"},
            {"before": "30m", "text": "Soon: {title}"},
        ]
    )
    chat = plan(script)
    reminders = [step for step in chat.steps if step.kind is StepKind.REMINDER]
    assert [step.key for step in chat.steps[:2]] == ["reminder-1", "reminder-2"]
    assert [step.at for step in reminders] == [
        chat.start - timedelta(days=1),
        chat.start - timedelta(minutes=30),
    ]
    assert all(step.offset < timedelta(0) for step in reminders)


def test_recap_comes_after_the_closing() -> None:
    """The recap step is due recap.after past the closing post and has no text of its own."""
    chat = plan(make_script(recap={"after": "30m"}))
    closing, recap = chat.step("closing"), chat.step("recap")
    assert recap.at == closing.at + timedelta(minutes=30)
    assert recap.kind is StepKind.RECAP
    assert recap.posts == {}
    assert chat.end == closing.at


def test_recap_disabled_leaves_no_recap_step() -> None:
    """With recap.enabled false the chat ends with its closing post."""
    chat = plan(make_script(recap={"enabled": False}))
    assert chat.steps[-1].kind is StepKind.CLOSING


# --- texts per network ----------------------------------------------------------------


def test_guest_is_credited_by_each_networks_account_form() -> None:
    """{guest} is @user@instance on Mastodon and @handle on Bluesky."""
    script = make_script(
        guest={
            "name": "Dr. Lena Park",
            "mastodon": "@lpark@scholar.social",
            "bluesky": "lenapark.bsky.social",
        },
        welcome={"text": "Welcome! Our guest: {guest}."},
    )
    posts = plan(script).step("welcome").posts
    assert "Dr. Lena Park (@lpark@scholar.social)" in posts[NetworkName.MASTODON].text
    assert "Dr. Lena Park (@lenapark.bsky.social)" in posts[NetworkName.BLUESKY].text
    assert "scholar.social" not in posts[NetworkName.BLUESKY].text


def test_guest_without_an_account_on_a_network_is_named_only() -> None:
    """A guest with no Bluesky handle is credited by name on Bluesky, never with a dead @."""
    script = make_script(
        guest={"name": "Dr. Lena Park", "mastodon": "@lpark@scholar.social"},
        welcome={"text": "Our guest: {guest}."},
    )
    text = plan(script).step("welcome").posts[NetworkName.BLUESKY].text
    assert text == "Our guest: Dr. Lena Park. #BLchat"


def test_date_time_and_next_chat_are_local() -> None:
    """{date}, {time} and {next_chat} are written in the chat's own time zone."""
    script = make_script(
        closing={"text": "Today is {date} at {time}. Next: {next_chat}."},
    )
    starts = occurrences(script, JAN_1_2027, 2)
    chat = plan(script, starts[0], next_start=starts[1])
    text = chat.step("closing").posts[NetworkName.MASTODON].text
    assert text == (
        "Today is Thursday, January 7 at 8:00 PM EST. "
        "Next: Thursday, February 4 at 8:00 PM EST. #BLchat"
    )


def test_network_specific_text_replaces_the_common_text() -> None:
    """A bluesky: text is what Bluesky gets; Mastodon keeps text:."""
    script = make_script(questions=[{"text": "A long question?", "bluesky": "Short?"}])
    posts = plan(script).step("q1").posts
    assert posts[NetworkName.MASTODON].text == "Q1: A long question? #BLchat"
    assert posts[NetworkName.BLUESKY].text == "Q1: Short? #BLchat"


def test_extra_tags_are_only_on_the_welcome() -> None:
    """extra_tags are added to the welcome post and to no other step."""
    script = make_script(extra_tags=["edchat", "#blendedlearning"])
    chat = plan(script)
    for step in chat.steps:
        for post in step.posts.values():
            has_extra = "#edchat" in post.text and "#blendedlearning" in post.text
            assert has_extra == (step.kind is StepKind.WELCOME), (step.key, post.text)


def test_bluesky_posts_carry_a_facet_for_the_hashtag() -> None:
    """Every Bluesky post has a tag facet for the chat's hashtag; Mastodon posts have none."""
    chat = plan(make_script())
    for step in chat.steps:
        if not step.posts:
            continue
        bluesky = step.posts[NetworkName.BLUESKY]
        assert any(f.kind == "tag" and f.value == "BLchat" for f in bluesky.facets)
        assert step.posts[NetworkName.MASTODON].facets == ()


# --- series ---------------------------------------------------------------------------


def test_series_chat_id_is_script_id_and_local_date() -> None:
    """A series' chat id carries the local date (Jan 7), not the UTC date (Jan 8)."""
    script = make_script()
    starts = occurrences(script, JAN_1_2027, 2)
    assert [chat_id("blchat", script, start) for start in starts] == [
        "blchat-2027-01-07",
        "blchat-2027-02-04",
    ]


def test_one_off_chat_id_is_the_script_id() -> None:
    """A one-off chat is known by its script id alone."""
    script = make_script(recurrence=None, start="2027-03-11 19:30")
    assert plan(script).chat_id == "blchat"


# First Thursdays of 2027 and whether Indianapolis is on daylight time that day.
# DST 2027 runs from Sunday 14 March to Sunday 7 November, so 4 March is EST and
# 4 November is still EDT.
FIRST_THURSDAYS_2027 = [
    (date(2027, 1, 7), "EST"),
    (date(2027, 2, 4), "EST"),
    (date(2027, 3, 4), "EST"),
    (date(2027, 4, 1), "EDT"),
    (date(2027, 5, 6), "EDT"),
    (date(2027, 6, 3), "EDT"),
    (date(2027, 7, 1), "EDT"),
    (date(2027, 8, 5), "EDT"),
    (date(2027, 9, 2), "EDT"),
    (date(2027, 10, 7), "EDT"),
    (date(2027, 11, 4), "EDT"),
    (date(2027, 12, 2), "EST"),
]


def test_monthly_series_stays_at_20_local_through_dst_in_indianapolis() -> None:
    """First Thursdays 20:00 Indianapolis: 20:00 local all 2027; 01:00 UTC in EST, 00:00 in EDT."""
    starts = occurrences(make_script(), JAN_1_2027, 12)
    assert len(starts) == 12
    for start, (day, zone_name) in zip(starts, FIRST_THURSDAYS_2027, strict=True):
        local = start.astimezone(INDY)
        assert (local.date(), local.hour, local.minute) == (day, 20, 0)
        assert local.tzname() == zone_name
        # 20:00 local is always the next UTC day; the UTC hour shows the offset switching
        assert start.date() == day + timedelta(days=1)
        assert (start.hour, start.minute) == ((1, 0) if zone_name == "EST" else (0, 0))
    assert {start.hour for start in starts} == {0, 1}


def test_weekly_series_in_paris_follows_europes_own_dst_dates() -> None:
    """Tuesdays 18:30 Paris: 17:30 UTC before Europe's 28 March switch, 16:30 UTC after it."""
    script = make_script(
        timezone="Europe/Paris",
        recurrence={
            "every": "week",
            "weekday": "tuesday",
            "time": "18:30",
            "starting": "2027-03-16",
            "until": "2027-04-06",
        },
    )
    starts = occurrences(script, JAN_1_2027, 10)
    assert [(s.astimezone(PARIS).strftime("%m-%d %H:%M %Z")) for s in starts] == [
        "03-16 18:30 CET",
        "03-23 18:30 CET",  # the USA is already on summer time; Europe is not
        "03-30 18:30 CEST",
        "04-06 18:30 CEST",
    ]
    assert [s.strftime("%H:%M") for s in starts] == ["17:30", "17:30", "16:30", "16:30"]


def test_monthly_series_in_paris_keeps_local_time_across_october() -> None:
    """Third Tuesdays 18:30 Paris: October is CEST (16:30 UTC), November CET (17:30 UTC)."""
    script = make_script(
        timezone="Europe/Paris",
        recurrence={
            "ordinal": "third",
            "weekday": "tuesday",
            "time": "18:30",
            "starting": "2027-10-01",
            "until": "2027-11-30",
        },
    )
    starts = occurrences(script, JAN_1_2027, 10)
    assert [s.strftime("%Y-%m-%d %H:%M") for s in starts] == [
        "2027-10-19 16:30",
        "2027-11-16 17:30",
    ]


def test_skip_dates_leave_no_chat_that_day() -> None:
    """A date in skip: is left out; the series goes on the next month."""
    script = make_script(
        recurrence={
            "ordinal": "first",
            "weekday": "thursday",
            "time": "20:00",
            "starting": "2027-06-01",
            "skip": ["2027-07-01"],
        }
    )
    days = [s.astimezone(INDY).date() for s in occurrences(script, JAN_1_2027, 3)]
    assert days == [date(2027, 6, 3), date(2027, 8, 5), date(2027, 9, 2)]


def test_weekly_series_every_two_weeks() -> None:
    """every: week with interval: 2 gives every other Tuesday from the first one."""
    script = make_script(
        recurrence={
            "every": "week",
            "interval": 2,
            "weekday": "tuesday",
            "time": "16:00",
            "starting": "2027-01-01",
        }
    )
    days = [s.astimezone(INDY).date() for s in occurrences(script, JAN_1_2027, 4)]
    assert days == [date(2027, 1, 5), date(2027, 1, 19), date(2027, 2, 2), date(2027, 2, 16)]


def test_last_ordinal_is_the_last_weekday_of_each_month() -> None:
    """ordinal: last picks the month's last Friday, whether it is the 4th or the 5th."""
    script = make_script(
        recurrence={
            "ordinal": "last",
            "weekday": "friday",
            "time": "12:00",
            "starting": "2027-01-01",
        }
    )
    days = [s.astimezone(INDY).date() for s in occurrences(script, JAN_1_2027, 4)]
    assert days == [date(2027, 1, 29), date(2027, 2, 26), date(2027, 3, 26), date(2027, 4, 30)]


def test_series_ends_on_until() -> None:
    """No chat is planned after until:."""
    script = make_script(
        recurrence={
            "ordinal": "first",
            "weekday": "thursday",
            "time": "20:00",
            "starting": "2027-01-01",
            "until": "2027-03-31",
        }
    )
    assert len(occurrences(script, JAN_1_2027, 12)) == 3


def test_occurrences_start_at_after() -> None:
    """Chats before ``after`` are not returned; a chat starting exactly then is."""
    script = make_script()
    feb = occurrences(script, JAN_1_2027, 2)[1]
    assert occurrences(script, feb, 1) == [feb]
    assert occurrences(script, feb + timedelta(seconds=1), 1)[0] > feb


def test_plan_needs_an_aware_start() -> None:
    """A naive start is refused: the chat's zone is applied in one place only."""
    with pytest.raises(ValueError, match="aware"):
        plan_chat(make_script(), "blchat", datetime(2027, 1, 7, 20, 0))  # noqa: DTZ001
