"""From posts seen on a network to answers in the store: context, edits, deletions,
opt-outs, blocklists, idempotence. Real SQLite, posts built at the network seam."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from chatbot.collect.attribution import ChatView, view_for
from chatbot.collect.collector import IngestStats
from chatbot.collect.collector import ingest as store_round
from chatbot.kinds import PostKind
from chatbot.networks.base import Collected
from chatbot.posts import Author, PostRef, SeenPost
from chatbot.script import Moderation, NetworkName
from chatbot.store import PlannedUnit, Store

NET = NetworkName.MASTODON
START = datetime(2030, 1, 3, 20, 0, tzinfo=UTC)
CHAT = "chat"
STEPS = [
    ("welcome", "welcome", None),
    ("q1", "question", 1),
    ("q2", "question", 2),
    ("q3", "question", 3),
]


@pytest.fixture
def store(tmp_path: Path) -> Store:
    store = Store.open(f"sqlite:///{tmp_path / 'state.db'}", now=datetime.now(UTC))
    store.chats.upsert(
        chat_id=CHAT,
        script_id="s",
        title="T",
        hashtag="edchat",
        timezone="UTC",
        start_at=START,
        end_at=START + timedelta(hours=1),
        now=datetime.now(UTC),
    )
    store.units.plan(
        CHAT,
        [
            PlannedUnit(
                key, NET, seq, kind, number, START + timedelta(minutes=10 * seq), f"k{seq}", key
            )
            for seq, (key, kind, number) in enumerate(STEPS)
        ],
        now=datetime.now(UTC),
    )
    for seq, (key, _kind, _n) in enumerate(STEPS):
        store.units.mark_intent(CHAT, key, NET, now=datetime.now(UTC))
        store.units.mark_posted(
            CHAT,
            key,
            PostRef(NET, f"bot{seq}", f"https://x.example/bot{seq}"),
            now=START + timedelta(minutes=10 * seq),
        )
    return store


def ingest(store: Store, view: ChatView, collected: Collected) -> IngestStats:
    """One collection round stored, an hour after the chat's start."""
    return store_round(store, view, collected, now=START + timedelta(hours=1))


def view(store: Store, **kwargs: object) -> ChatView:
    return view_for(store.units.of_chat(CHAT), NET, chat_id=CHAT, question_count=3, **kwargs)  # type: ignore[arg-type]


ALICE = Author(NET, "1", "alice@school.example", "Alice")


def post(
    pid: str,
    text: str,
    *,
    reply_to: str | None = None,
    author: Author = ALICE,
    minutes: float = 15,
    edited: datetime | None = None,
    quote_of: str | None = None,
) -> SeenPost:
    return SeenPost(
        network=NET,
        uri=f"https://school.example/statuses/{pid}",
        id=pid,
        url=f"https://school.example/@alice/{pid}",
        author=author,
        text=text,
        created_at=START + timedelta(minutes=minutes),
        reply_to=reply_to,
        quote_of=quote_of,
        edited_at=edited,
    )


def answers(store: Store) -> list[tuple[int, str, str]]:
    return [(a.question, a.handle, a.text) for a in store.reports.answers(CHAT)]


def test_a_labelled_hashtag_post_is_an_answer(store: Store) -> None:
    """ "A2: ... #edchat" is stored as an answer to Q2 with its author."""
    ingest(store, view(store), Collected(posts=(post("p1", "A2: We use stations #edchat"),)))
    assert answers(store) == [(2, "alice@school.example", "We use stations #edchat")]


def test_a_reply_deep_under_a_question_answers_that_question(store: Store) -> None:
    """A reply to a reply under Q1, with no number, still answers Q1."""
    first = post("p1", "Small groups daily", reply_to="bot1")
    second = post("p2", "Same here, with timers", reply_to="p1")
    ingest(store, view(store), Collected(posts=(first, second)))
    assert [q for q, _h, _t in answers(store)] == [1, 1]


def test_a_reply_seen_before_its_parent_is_attributed_once_the_parent_arrives(store: Store) -> None:
    """Replies can arrive before their parent; they are judged again when the chain is known."""
    ingest(
        store, view(store), Collected(posts=(post("p2", "Same here, with timers", reply_to="p1"),))
    )
    assert answers(store) == []
    ingest(
        store, view(store), Collected(posts=(post("p1", "Small groups daily", reply_to="bot2"),))
    )
    assert [q for q, _h, _t in answers(store)] == [2, 2]


def test_a_reply_to_the_welcome_is_an_introduction(store: Store) -> None:
    """An unlabelled reply to the welcome is an introduction, not an answer."""
    ingest(
        store,
        view(store),
        Collected(posts=(post("p1", "Hi! Alice, 3rd grade, Lincoln", reply_to="bot0"),)),
    )
    assert [p.kind for p in store.conversation.posts(CHAT)] == ["introduction"]


def test_a_post_seen_twice_is_stored_once(store: Store) -> None:
    """Collecting the same post again changes nothing."""
    seen = Collected(posts=(post("p1", "A1: stations #edchat"),))
    first = ingest(store, view(store), seen)
    again = ingest(store, view(store), seen)
    assert (first.new, again.new, again.changed) == (1, 0, 0)
    assert len(store.reports.answers(CHAT)) == 1


def test_an_edit_replaces_the_answer(store: Store) -> None:
    """An edited post updates its answer: the question and the text follow the new version."""
    ingest(store, view(store), Collected(posts=(post("p1", "A1: stations #edchat"),)))
    edited = post(
        "p1", "A3: stations, oops wrong number #edchat", edited=START + timedelta(minutes=20)
    )
    stats = ingest(store, view(store), Collected(posts=(edited,)))
    assert stats.changed == 1
    assert answers(store) == [(3, "alice@school.example", "stations, oops wrong number #edchat")]


def test_a_deletion_removes_the_answer(store: Store) -> None:
    """A post deleted by its author takes its answers with it."""
    ingest(store, view(store), Collected(posts=(post("p1", "A1: stations #edchat"),)))
    stats = ingest(store, view(store), Collected(deleted=("https://school.example/statuses/p1",)))
    assert stats.deleted == 1
    assert store.reports.answers(CHAT) == []


def test_an_opted_out_person_is_counted_and_marked(store: Store) -> None:
    """A #nobot participant's answer counts, and is marked so public outputs leave it out."""
    shy = Author(NET, "2", "shy@school.example", "Shy", opt_out="#nobot in the profile")
    ingest(store, view(store), Collected(posts=(post("p1", "A1: stations #edchat", author=shy),)))
    (answer,) = store.reports.answers(CHAT)
    assert answer.opt_out == "#nobot in the profile"


@pytest.mark.parametrize(
    ("moderation", "author"),
    [
        (Moderation(block_accounts=["@spam@bad.example"]), Author(NET, "3", "spam@bad.example")),
        (Moderation(block_domains=["bad.example"]), Author(NET, "4", "other@bad.example")),
        (Moderation(block_keywords=["Crypto Giveaway"]), ALICE),
    ],
    ids=["account", "domain", "keyword"],
)
def test_blocked_posts_are_kept_as_blocked_and_never_counted(
    store: Store, moderation: Moderation, author: Author
) -> None:
    """A post from a blocked account or server, or with a blocked word, is stored as blocked."""
    text = "A1: free crypto giveaway here #edchat"
    ingest(
        store,
        view(store, moderation=moderation),
        Collected(posts=(post("p1", text, author=author),)),
    )
    (stored,) = store.conversation.posts(CHAT)
    assert stored.kind == PostKind.BLOCKED
    assert store.reports.answers(CHAT) == []


def test_a_hosts_post_is_not_an_answer(store: Store) -> None:
    """A co-moderator's "A1 is a great one!" is the host talking, not an answer."""
    host = Author(NET, "5", "comod@district.example")
    hosts = frozenset({"comod@district.example"})
    ingest(
        store,
        view(store, hosts=hosts),
        Collected(posts=(post("p1", "A1: love these #edchat", author=host),)),
    )
    assert [p.kind for p in store.conversation.posts(CHAT)] == [PostKind.HOST]
    assert store.reports.answers(CHAT) == []


def test_the_bots_own_posts_are_not_stored_as_conversation(store: Store) -> None:
    """The bot's questions seen in the hashtag feed are not the conversation."""
    ingest(store, view(store), Collected(posts=(post("bot1", "Q1: What? #edchat"),)))
    assert store.conversation.posts(CHAT) == []


def test_a_quote_of_a_question_answers_it(store: Store) -> None:
    """Quoting Q3 without a number answers Q3."""
    ingest(
        store,
        view(store),
        Collected(posts=(post("p1", "Relationships first, always", quote_of="bot3"),)),
    )
    assert [q for q, _h, _t in answers(store)] == [3]


def test_two_answers_in_one_post_are_two_answers(store: Store) -> None:
    """ "A1: ... A2: ..." in one post gives one answer to each question."""
    ingest(store, view(store), Collected(posts=(post("p1", "A1: stations A2: timers #edchat"),)))
    assert [q for q, _h, _t in answers(store)] == [1, 2]


def test_a_reply_to_the_bots_post_in_another_chat_is_left_to_that_chat(store: Store) -> None:
    """Two chats at once on one account: a labelled reply to the other chat's question
    reaches this chat too (a notification) and is not taken as this chat's answer."""
    elsewhere = view(store, others=frozenset({"other-q3"}))
    ingest(
        store, elsewhere, Collected(posts=(post("p1", "A3: exit tickets", reply_to="other-q3"),))
    )
    assert answers(store) == []
    assert store.conversation.posts(CHAT) == []
