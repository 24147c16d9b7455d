"""The recap thread's text: limits, splitting, credits, and what is never shown."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from chatbot.collect.attribution import view_for
from chatbot.collect.collector import ingest
from chatbot.networks.base import Collected
from chatbot.plan import plan_chat
from chatbot.posts import Author, PostRef, SeenPost
from chatbot.recap import (
    Highlight,
    QuestionFacts,
    RecapFacts,
    compose,
    facts_for,
    shorten,
    split_to_fit,
)
from chatbot.script import ChatScript, NetworkName
from chatbot.store import PlannedUnit, Store
from chatbot.text import Limits, measure

AT = "\uff20"  # FULLWIDTH COMMERCIAL AT: reads as "@", is no mention
LONG = "We rotate stations every twenty minutes and the kids love it. " * 6


def facts(questions: int = 6) -> RecapFacts:
    return RecapFacts(
        title="Blended learning: station rotation that works",
        hashtag="BLchat",
        participants=42,
        answers=187,
        first_timers=9,
        credits="our guest Dr. Lena Park (@lenapark.bsky.social)",
        questions=tuple(
            QuestionFacts(
                n,
                f"Question {n}: how do you make station rotation work in a class of thirty?",
                20,
                (
                    Highlight("Ana Rivera", LONG, f"https://bsky.app/profile/ana/post/{n}a", 12),
                    Highlight("Marcus Davis", LONG, f"https://bsky.app/profile/md/post/{n}b", 3),
                ),
            )
            for n in range(1, questions + 1)
        ),
        next_chat="Thursday, February 4 at 8:00 PM EST",
        transcript_url="https://district.example/chats/blchat-2027-01-07.html",
    )


def test_every_recap_post_fits_bluesky() -> None:
    """Each post of a long recap stays within Bluesky's 300 graphemes."""
    posts = compose(facts(), NetworkName.BLUESKY, Limits())
    assert len(posts) > 8
    assert all(measure(NetworkName.BLUESKY, p, Limits()).fits for p in posts)


def test_every_recap_post_fits_a_small_mastodon_instance() -> None:
    """With a 300-character Mastodon instance the recap is split to fit too."""
    limits = Limits(mastodon_max_characters=300)
    posts = compose(facts(), NetworkName.MASTODON, limits)
    assert all(measure(NetworkName.MASTODON, p, limits).fits for p in posts)


def test_the_headline_carries_the_numbers_and_the_thanks() -> None:
    """The first post gives participants, answers, first-timers and thanks the guest."""
    head = compose(facts(), NetworkName.MASTODON, Limits())[0]
    assert "42 participants shared 187 answers" in head
    assert "9 first-timers" in head
    assert "Dr. Lena Park" in head


def test_the_last_post_gives_the_next_chat_and_the_transcript() -> None:
    """The recap ends with the next chat's date and the transcript link."""
    last = compose(facts(), NetworkName.MASTODON, Limits())[-1]
    assert "Thursday, February 4" in last
    assert "https://district.example/chats/blchat-2027-01-07.html" in last


def test_long_text_is_split_at_sentence_boundaries() -> None:
    """A paragraph too long for one post is cut between sentences, not inside a word."""
    parts = split_to_fit(LONG * 2, NetworkName.BLUESKY, Limits())
    assert len(parts) > 1
    assert all(p.endswith(".") for p in parts)


def test_quotes_are_shortened_at_a_word() -> None:
    """A highlight quotes the start of an answer and ends with an ellipsis at a word boundary."""
    quoted = shorten("Timers on the board keep every group moving and on task all lesson", 30)
    assert quoted == "Timers on the board keep every…"


@pytest.mark.parametrize(
    ("signal", "quoted"),
    [
        ({"opt_out": "#nobot in the profile"}, False),
        ({"web_opt_out": "noindex"}, True),
        ({"web_opt_out": "!no-unauthenticated label"}, True),
    ],
)
def test_the_recap_quotes_only_people_who_have_not_opted_out_of_bots(
    tmp_path: Path, signal: dict[str, str], quoted: bool
) -> None:
    """The most liked answer, from someone with #nobot in their bio, is not in the recap; from
    someone who only keeps off the open web (noindex, !no-unauthenticated), it is."""
    script = ChatScript.model_validate(
        yaml.safe_load(
            """
            title: T
            hashtag: edchat
            timezone: UTC
            start: 2030-01-03 20:00
            networks: [mastodon]
            moderators: [{name: Host}]
            welcome: {text: Hi}
            questions: [{text: "First?"}]
            closing: {text: Bye}
            """
        )
    )
    start = datetime(2030, 1, 3, 20, tzinfo=UTC)
    plan = plan_chat(script, "t", start)
    store = Store.open(f"sqlite:///{tmp_path / 'state.db'}", now=datetime.now(UTC))
    store.chats.upsert(
        chat_id=plan.chat_id,
        script_id="t",
        title="T",
        hashtag="edchat",
        timezone="UTC",
        start_at=start,
        end_at=plan.end,
        now=datetime.now(UTC),
    )
    net = NetworkName.MASTODON
    store.units.plan(
        plan.chat_id,
        [PlannedUnit("q1", net, 1, "question", 1, start, "k", "Q1: First?")],
        now=datetime.now(UTC),
    )
    store.units.mark_intent(plan.chat_id, "q1", net, now=datetime.now(UTC))
    store.units.mark_posted(plan.chat_id, "q1", PostRef(net, "bot1"), now=start)

    def answer(pid: str, author: Author, likes: int) -> SeenPost:
        return SeenPost(
            net,
            f"uri-{pid}",
            pid,
            f"https://x.example/{pid}",
            author,
            f"A1: answer {pid} #edchat",
            start + timedelta(minutes=8),
            likes=likes,
        )

    shy = Author(net, "1", "shy@x.example", "Shy Person", **signal)
    open_ = Author(net, "2", "open@x.example", "Open Person")
    view = view_for(store.units.of_chat(plan.chat_id), net, chat_id=plan.chat_id, question_count=1)
    posts = (answer("p1", shy, 50), answer("p2", open_, 1))
    ingest(store, view, Collected(posts=posts), now=start + timedelta(minutes=30))
    result = facts_for(store, plan, script, net)
    (question,) = result.questions
    assert question.answers == 2
    names = [h.name for h in question.highlights]
    text = "\n".join(compose(result, net, Limits()))
    if quoted:
        assert names == ["Shy Person", "Open Person"]
        assert "Shy Person" in text
    else:
        assert names == ["Open Person"]
        assert "Shy" not in text and "p1" not in text


@pytest.mark.parametrize("network", [NetworkName.MASTODON, NetworkName.BLUESKY])
def test_a_quoted_answer_or_name_never_mentions_anyone(network: NetworkName) -> None:
    """A participant's "@someone" in a highlighted answer or in a display name is shown with
    a full-width at sign (U+FF20), so the recap pings no one; links and e-mail addresses
    stay as they are."""
    text = "Ask @lena@school.example or @marcus.bsky.social, or write ana@school.example"
    quoted = RecapFacts(
        title="Stations",
        hashtag="BLchat",
        participants=1,
        answers=1,
        first_timers=0,
        credits="",
        questions=(
            QuestionFacts(
                1, "What worked?", 1, (Highlight("@boss", text, "https://s.example/@a/1", 0),)
            ),
        ),
    )
    post = compose(quoted, network, Limits())[1]
    assert f"{AT}lena@school.example" in post and f"{AT}marcus.bsky.social" in post
    assert (
        f"({AT}boss)" in post and "ana@school.example" in post and "https://s.example/@a/1" in post
    )
    assert "@lena" not in post and "@marcus" not in post


def test_a_quoted_answer_or_name_cannot_reverse_or_control_the_recap() -> None:
    """A right-to-left override in an answer is closed where the quote ends, one in a name
    is dropped, and control characters are left out: the link after them reads as it is."""
    quoted = RecapFacts(
        title="Stations",
        hashtag="BLchat",
        participants=1,
        answers=1,
        first_timers=0,
        credits="",
        questions=(
            QuestionFacts(
                1,
                "What worked?",
                1,
                (
                    Highlight(
                        "Ana \u202eRivera\x9b", "\u202eflipped \x1b[2J", "https://s.example/1", 0
                    ),
                ),
            ),
        ),
    )
    post = compose(quoted, NetworkName.MASTODON, Limits())[1]
    assert "\u202eflipped [2J\u202c”" in post
    assert "(Ana Rivera) https://s.example/1" in post
    assert "\x1b" not in post and "\x9b" not in post
