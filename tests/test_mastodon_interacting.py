"""The Mastodon adapter's side of co-moderation, offline: the posts addressed to the bot
(direct ones never among the conversation's), each handed over once; likes; and who a
handle names, exactly.

The fake instance of ``test_mastodon_reader`` sits at the network seam (a requests
transport adapter under the real Mastodon.py client), with the account endpoints added.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest
from test_mastodon_reader import ANA, BEN, BOT, TAG, Chat, FakeInstance, Reply, _account, _chat

from chatbot import errors
from chatbot.networks.base import ChatThread, Interacting
from chatbot.posts import PostRef
from chatbot.script import NetworkName

COACH = _account("coach")
TWIN = _account("coach@elsewhere.example")  # the same user name on another server
NAMESAKE = _account("marcus", display_name="Coach")  # the same display name
CYRILLIC = _account("c\u043each")  # "coach" with a Cyrillic o


class AccountsInstance(FakeInstance):
    """The fake instance, with account look-ups, a fuzzy search and favourites."""

    favourited: list[str]

    def __post_init__(self) -> None:
        super().__post_init__()
        self.favourited = []

    def _route(self, path: str, query: dict[str, list[str]]) -> Reply:
        parts = path.split("/")
        if path == "/api/v1/accounts/lookup":
            wanted = query["acct"][0].lower()
            found = [a for a in self.accounts if a["acct"].lower() == wanted]
            return (200, found[0], {}) if found else (404, {"error": "Record not found"}, {})
        if path == "/api/v1/accounts/search":
            # Like Mastodon's search: the nearest accounts, not only the exact one.
            term = query["q"][0].split("@")[0].lower()
            near = [a for a in self.accounts if term[:3] in a["acct"].lower()]
            return 200, near, {}
        if len(parts) == 6 and parts[3] == "statuses" and parts[5] == "favourite":
            status = self.statuses.get(int(parts[4]))
            if status is None:
                return 404, {"error": "Record not found"}, {}
            if parts[4] not in self.favourited:
                self.favourited.append(parts[4])
            return 200, {**status, "favourited": True}, {}
        return super()._route(path, query)


def _interacting(accounts: list[dict[str, Any]] | None = None) -> Chat:
    return _chat(server=AccountsInstance(accounts=accounts if accounts is not None else []))


def _mention(chat: Chat, author: dict[str, Any], text: str, **kw: Any) -> str:
    sid = chat.server.add(author, text, **kw)
    chat.server.mention(sid)
    return sid


# --- the posts addressed to the bot --------------------------------------------------------


def test_a_direct_message_reaches_the_bot_and_never_the_conversation() -> None:
    """A direct status that mentions the bot is handed over as addressed to it, marked direct,
    and is not among the chat's posts; a public mention is both."""
    chat = _interacting()
    direct = _mention(chat, COACH, "@chatbot pause", visibility="direct")
    public = _mention(chat, ANA, "@chatbot A1: morning meetings", reply_to=chat.q1)
    collected = chat.collect()
    assert [p.id for p in collected.posts] == [public]
    assert [(p.id, p.direct) for p in collected.to_bot] == [(direct, True), (public, False)]


def test_a_private_mention_counts_as_direct() -> None:
    """Followers-only mentions are private too (snac gives a direct status as private)."""
    chat = _interacting()
    private = _mention(chat, COACH, "@chatbot status", visibility="private")
    collected = chat.collect()
    assert collected.posts == ()
    assert [(p.id, p.direct) for p in collected.to_bot] == [(private, True)]


def test_the_posts_addressed_to_the_bot_come_oldest_first() -> None:
    """Notifications are listed newest first; commands must be applied in the order sent."""
    chat = _interacting()
    sent = [_mention(chat, COACH, f"@chatbot {verb}") for verb in ("pause", "status", "resume")]
    assert [p.id for p in chat.collect().to_bot] == sent


def test_quotes_of_the_bot_are_conversation_not_addressed_to_it() -> None:
    """A quote notification brings the post into the chat, but only mentions are commands."""
    chat = _interacting()
    quote = chat.server.add(BEN, "@chatbot end", quote=chat.q1)
    chat.server.mention(quote, kind="quote")
    collected = chat.collect()
    assert [p.id for p in collected.posts] == [quote]
    assert collected.to_bot == ()


def test_a_mention_is_handed_over_once_across_rounds() -> None:
    """The next round, from the cursors, hands over only what is new."""
    chat = _interacting()
    first = _mention(chat, COACH, "@chatbot pause", visibility="direct")
    round1 = chat.collect()
    assert [p.id for p in round1.to_bot] == [first]
    second = _mention(chat, COACH, "@chatbot resume", visibility="direct")
    round2 = chat.collect(round1.cursors)
    assert [p.id for p in round2.to_bot] == [second]
    assert chat.collect(round2.cursors).to_bot == ()


def test_on_a_server_read_by_time_a_reread_mention_is_not_handed_over_again() -> None:
    """Elsewhere than Mastodon, each round reads the mentions again from two minutes before
    the last one it saw: the to_bot cursor keeps them from being handed over twice."""
    chat = _interacting()
    chat.server.software = "snac"
    first = _mention(chat, COACH, "@chatbot pause", visibility="private")
    round1 = chat.collect()
    assert [p.id for p in round1.to_bot] == [first]
    round2 = chat.collect(round1.cursors)
    assert round2.to_bot == ()
    second = _mention(chat, COACH, "@chatbot resume", visibility="private")
    round3 = chat.collect(round2.cursors)
    assert [p.id for p in round3.to_bot] == [second]


def test_the_bots_own_mentions_are_not_addressed_to_it() -> None:
    """The bot's acknowledgement mentions the co-moderator, not itself; nothing of its own
    comes back as a command."""
    chat = _interacting()
    _mention(chat, BOT, "@chatbot note to self", visibility="direct")
    assert chat.collect().to_bot == ()


# --- likes ---------------------------------------------------------------------------------


def test_the_network_likes_and_resolves() -> None:
    """The adapter is Interacting: likes and look-ups come through it."""
    assert isinstance(_interacting().network, Interacting)


def test_like_favourites_once_however_often_asked() -> None:
    """Favouriting is idempotent on Mastodon: a retry asks again, and the post stays liked
    once; the post liked is returned."""
    chat = _interacting()
    answer = chat.server.add(ANA, f"A1: stations #{TAG}")
    ref = PostRef(NetworkName.MASTODON, answer)
    assert chat.network.like(ref) == chat.network.like(ref)
    assert chat.server.favourited == [answer]


def test_a_liked_answer_stays_in_the_conversation() -> None:
    """The runner keeps the like among the bot's posts: it is named apart from the status
    (the answer is still a participant's, collected), with the status's address, and no
    context is read under it."""
    chat = _interacting()
    answer = chat.server.add(ANA, f"A1: stations #{TAG}")
    like = chat.network.like(PostRef(NetworkName.MASTODON, answer))
    assert (like.id != answer, like.url) == (True, chat.server.statuses[int(answer)]["url"])
    thread = chat.thread()
    thread = ChatThread(thread.chat_id, TAG, thread.since, (*thread.bot_posts, like))
    collected = chat.network.collect(thread, {})
    assert [p.id for p in collected.posts] == [answer]
    assert not [q for q in chat.server.requests if like.id in (q.url or "")]


def test_a_post_the_server_will_not_like_is_refused() -> None:
    """snac favourites only what is in the bot's timeline, and answers 404 otherwise."""
    chat = _interacting()
    with pytest.raises(errors.Rejected):
        chat.network.like(PostRef(NetworkName.MASTODON, "999999"))


# --- who a handle names --------------------------------------------------------------------


def test_a_local_handle_resolves_by_its_bare_name() -> None:
    """@coach@school.example on school.example is the local account "coach"."""
    chat = _interacting([COACH, TWIN])
    assert chat.network.resolve("@coach@school.example") == COACH["id"]
    lookups = chat.server.paged("/api/v1/accounts/lookup")
    assert lookups[-1]["acct"] == ["coach"]


def test_a_remote_handle_resolves_to_that_servers_account() -> None:
    """@coach@elsewhere.example is the other server's coach, never ours."""
    chat = _interacting([COACH, TWIN])
    assert chat.network.resolve("@coach@elsewhere.example") == TWIN["id"]


def test_an_account_the_instance_has_not_seen_is_found_by_a_resolving_search() -> None:
    """lookup does no WebFinger: a 404 there asks the search with resolve=true, and takes
    only the exact account among its answers."""
    remote = _account("ada@far.example")
    chat = _interacting([remote])
    chat.server.accounts = [remote]
    real_route = chat.server._route

    def without_lookup(path: str, query: dict[str, list[str]]) -> Reply:
        if path == "/api/v1/accounts/lookup":
            return 404, {"error": "Record not found"}, {}
        return real_route(path, query)

    chat.server._route = without_lookup  # type: ignore[method-assign]
    assert chat.network.resolve("@ada@far.example") == remote["id"]
    searched = chat.server.paged("/api/v1/accounts/search")[-1]
    # Mastodon.py sends a true boolean as "1", which Rails reads as true.
    assert (searched["q"], searched["resolve"]) == (["ada@far.example"], ["1"])


@pytest.mark.parametrize(
    "accounts",
    [
        [TWIN],  # only the same user name elsewhere
        [NAMESAKE],  # only someone with the same display name
        [CYRILLIC],  # only a confusable name
        [_account("coach2"), _account("coachx@school.example")],  # near names
    ],
)
def test_only_the_exact_account_resolves(accounts: list[dict[str, Any]]) -> None:
    """A search answers near matches; none of them is the co-moderator."""
    chat = _interacting(accounts)
    assert chat.network.resolve("@coach@school.example") is None


def test_an_unknown_handle_resolves_to_nothing() -> None:
    """No account anywhere: None, not an error."""
    assert _interacting([]).network.resolve("@nobody@school.example") is None


def test_a_failed_look_up_raises_for_the_caller_to_retry() -> None:
    """A 5xx is not "no such account": the caller tries again later."""
    chat = _interacting([COACH])
    real_route = chat.server._route
    chat.server._route = lambda path, query: (  # type: ignore[method-assign]
        (503, {"error": "Unavailable"}, {}) if "accounts" in path else real_route(path, query)
    )
    with pytest.raises(errors.Transient):
        chat.network.resolve("@coach@school.example")


def test_the_instances_domain_decides_what_is_local() -> None:
    """Handles are compared with the domain the instance names, case aside."""
    chat = _interacting([COACH])
    assert urlsplit(chat.server.base).netloc == "school.example"
    assert chat.network.resolve("@Coach@School.Example") == COACH["id"]
