"""The Bluesky adapter's side of co-moderation, offline: mentions and direct messages
addressed to the bot, each handed over once; direct messages feature-detected (the
dev-env network has no chat service, so this file is where they are tested); answers to
them; likes made once; handles resolved; replies rooted in their thread; #nobot in a
profile.

The fake AppView of ``test_bluesky_reader`` sits at the network seam (an httpx transport
under the real atproto client), with a repo, handle resolution and a chat service added.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from test_bluesky_reader import ANA, BEN, BOT, START, TAG, Chat, FakeAppView, _chat, _iso

from chatbot import errors
from chatbot.networks.base import ChatThread, Interacting, PostRequest
from chatbot.networks.bluesky.interactions import like_key
from chatbot.networks.bluesky.messages import CHAT_PROXY, message_ref
from chatbot.posts import PostRef
from chatbot.script import NetworkName

COACH = {"did": "did:plc:coach", "handle": "coach.test", "displayName": "Coach"}
PROXY = CHAT_PROXY["atproto-proxy"]


def _mention_facet(text: str, handle: str, did: str) -> list[dict[str, Any]]:
    start = text.encode().index(f"@{handle}".encode())
    return [
        {
            "index": {"byteStart": start, "byteEnd": start + len(handle.encode()) + 1},
            "features": [{"$type": "app.bsky.richtext.facet#mention", "did": did}],
        }
    ]


@dataclass
class ChatAppView(FakeAppView):
    """The fake AppView with the bot's repo, resolveHandle and a chat service."""

    repo: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    handles: dict[str, str] = field(default_factory=dict)
    chat_answer: tuple[int, dict[str, Any]] | None = None  # the chat service's refusal, if any
    convos: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # id -> newest first
    members: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    rev: int = 0

    def handle(self, request: httpx.Request) -> httpx.Response:
        method = request.url.path.removeprefix("/xrpc/")
        if self.faults.get(method):
            return super().handle(request)
        if method.startswith("chat.bsky."):
            self.calls.append(request)
            assert request.headers.get("atproto-proxy") == PROXY
            if self.chat_answer is not None:
                status, body = self.chat_answer
                return httpx.Response(status, json=body)
            return self._chat(method, request)
        if method == "com.atproto.repo.putRecord":
            self.calls.append(request)
            body = json.loads(request.content)
            key = (body["collection"], body["rkey"])
            if key in self.repo:
                return httpx.Response(400, json={"error": "InvalidSwap", "message": "taken"})
            self.repo[key] = body["record"]
            uri = f"at://{BOT['did']}/{body['collection']}/{body['rkey']}"
            return httpx.Response(200, json={"uri": uri, "cid": f"bafy-{body['rkey']}"})
        if method == "com.atproto.repo.getRecord":
            self.calls.append(request)
            return self._get_record(request.url.params)
        if method == "com.atproto.identity.resolveHandle":
            self.calls.append(request)
            did = self.handles.get(request.url.params["handle"])
            if did is None:
                return httpx.Response(
                    400, json={"error": "HandleNotFound", "message": "Unable to resolve handle"}
                )
            return httpx.Response(200, json={"did": did})
        return super().handle(request)

    def _get_record(self, params: httpx.QueryParams) -> httpx.Response:
        repo, collection, rkey = params["repo"], params["collection"], params["rkey"]
        uri = f"at://{repo}/{collection}/{rkey}"
        if uri in self.posts:
            post = self.posts[uri]
            return httpx.Response(
                200, json={"uri": uri, "cid": post["cid"], "value": post["record"]}
            )
        if repo == BOT["did"] and (collection, rkey) in self.repo:
            value = self.repo[(collection, rkey)]
            return httpx.Response(200, json={"uri": uri, "cid": f"bafy-{rkey}", "value": value})
        return httpx.Response(400, json={"error": "RecordNotFound", "message": "no record"})

    # --- the chat service -----------------------------------------------------------------

    def message(self, convo: str, sender: dict[str, Any], text: str, at: datetime) -> str:
        """``sender`` writes ``text`` in the conversation ``convo`` (made on first use)."""
        self.rev += 1
        message_id = f"msg{self.rev}"
        self.members.setdefault(convo, [BOT, sender] if sender is not BOT else [BOT])
        self.convos.setdefault(convo, []).insert(
            0,
            {
                "$type": "chat.bsky.convo.defs#messageView",
                "id": message_id,
                "rev": f"22222222{self.rev:05d}",
                "sender": {"did": sender["did"]},
                "sentAt": _iso(at),
                "text": text,
            },
        )
        return message_id

    def _chat(self, method: str, request: httpx.Request) -> httpx.Response:
        if method == "chat.bsky.convo.listConvos":
            convos = sorted(self.convos, key=lambda c: self.convos[c][0]["rev"], reverse=True)
            return httpx.Response(200, json={"convos": [self._convo(c) for c in convos]})
        if method == "chat.bsky.convo.getMessages":
            return httpx.Response(
                200, json={"messages": self.convos[request.url.params["convoId"]]}
            )
        if method == "chat.bsky.convo.sendMessage":
            body = json.loads(request.content)
            message_id = self.message(body["convoId"], BOT, body["message"]["text"], START)
            return httpx.Response(200, json=self.convos[body["convoId"]][0] | {"id": message_id})
        return httpx.Response(501, json={"error": "MethodNotImplemented", "message": method})

    def _convo(self, convo: str) -> dict[str, Any]:
        return {
            "id": convo,
            "rev": self.convos[convo][0]["rev"],
            "members": [{"did": m["did"], "handle": m["handle"]} for m in self.members[convo]],
            "muted": False,
            "unreadCount": 1,
            "lastMessage": self.convos[convo][0],
        }


@pytest.fixture
def chat(tmp_path: Path) -> Chat:
    return _chat(tmp_path, view=ChatAppView())


def _view(chat: Chat) -> ChatAppView:
    assert isinstance(chat.view, ChatAppView)
    return chat.view


def _at(minutes: float) -> datetime:
    return START + timedelta(minutes=minutes)


# --- mentions ------------------------------------------------------------------------------


def test_mentions_and_replies_naming_the_bot_are_addressed_to_it(chat: Chat) -> None:
    """A mention, and a reply whose text names the bot (with or without a facet), oldest
    first; a reply that does not name it, and a quote, are only conversation."""
    view = _view(chat)
    text = "@chatbot.test pause"
    mention = view.post(COACH, text, at=_at(1))
    view.posts[mention]["record"]["facets"] = _mention_facet(text, "chatbot.test", BOT["did"])
    view.notify(mention, "mention")
    named = view.post(COACH, "status @chatbot.test?", parent=chat.q1, root=chat.welcome, at=_at(2))
    view.notify(named, "reply")
    plain = view.post(ANA, f"A1: stations #{TAG}", parent=chat.q1, root=chat.welcome, at=_at(3))
    view.notify(plain, "reply")
    quote = view.post(BEN, "@chatbot.test end", quote=chat.q2, at=_at(4))
    view.notify(quote, "quote")
    collected = chat.collect()
    assert [p.id for p in collected.to_bot] == [mention, named]
    assert {mention, named, plain, quote} <= {p.id for p in collected.posts}
    assert not any(p.direct for p in collected.to_bot)


def test_a_mention_is_handed_over_once_though_its_notification_is_read_again(
    chat: Chat,
) -> None:
    """The notifications cursor is inclusive (the newest note is read again next round):
    the to_bot cursor keeps the command from being handed over twice."""
    view = _view(chat)
    first = view.post(COACH, "@chatbot.test pause", at=_at(1))
    view.notify(first, "mention")
    round1 = chat.collect()
    assert [p.id for p in round1.to_bot] == [first]
    round2 = chat.collect(round1.cursors)
    assert round2.to_bot == ()
    second = view.post(COACH, "@chatbot.test resume", at=_at(2))
    view.notify(second, "mention")
    assert [p.id for p in chat.collect(round2.cursors).to_bot] == [second]


def test_a_reply_knows_its_content_hash_and_its_threads_root(chat: Chat) -> None:
    """A reply to the post or a like needs its strong ref: cid and the thread's root."""
    view = _view(chat)
    answer = view.post(ANA, f"A1: stations #{TAG}", parent=chat.q1, root=chat.welcome)
    [seen] = chat.collect().posts
    assert (seen.id, seen.cid, seen.root) == (answer, view.posts[answer]["cid"], chat.welcome)
    assert seen.ref().cid == view.posts[answer]["cid"]


# --- direct messages -----------------------------------------------------------------------


def test_direct_messages_reach_the_bot_and_never_the_conversation(chat: Chat) -> None:
    """Messages to the bot since the chat began, through the chat service's proxy: addressed
    to the bot, direct, oldest first, with their sender; the bot's own and older ones not."""
    view = _view(chat)
    view.message("c1", COACH, "pause", _at(-60))  # before the chat
    pause = view.message("c1", COACH, "pause", _at(1))
    view.message("c1", BOT, "Paused.", _at(1.5))
    status = view.message("c1", COACH, "status", _at(2))
    collected = chat.collect()
    assert collected.posts == ()
    assert [(p.id, p.text, p.direct) for p in collected.to_bot] == [
        (message_ref("c1", pause), "pause", True),
        (message_ref("c1", status), "status", True),
    ]
    author = collected.to_bot[0].author
    assert (author.id, author.handle) == (COACH["did"], COACH["handle"])


def test_direct_messages_are_read_once_from_the_cursor(chat: Chat) -> None:
    """The next round reads only conversations that moved, from their newest message seen."""
    view = _view(chat)
    view.message("c1", COACH, "pause", _at(1))
    round1 = chat.collect()
    round2 = chat.collect(round1.cursors)
    assert round2.to_bot == ()
    assert len(view.called("getMessages")) == 1  # the conversation did not move
    later = view.message("c1", COACH, "resume", _at(3))
    round3 = chat.collect(round2.cursors)
    assert [p.id for p in round3.to_bot] == [message_ref("c1", later)]


def test_conversations_quiet_since_before_the_chat_are_not_read(chat: Chat) -> None:
    """An account's old conversations: listed, never opened."""
    view = _view(chat)
    view.message("old", BEN, "hello from last year", _at(-60 * 24 * 300))
    view.message("c1", COACH, "pause", _at(1))
    assert [p.text for p in chat.collect().to_bot] == ["pause"]
    assert [c.url.params["convoId"] for c in view.called("getMessages")] == ["c1"]


@pytest.mark.parametrize(
    ("status", "error", "message"),
    [
        (501, "MethodNotImplemented", "Method Not Implemented"),  # no chat service
        (400, "InvalidToken", "Bad token scope"),  # an app password without DM access
        (500, "InternalServerError", "Internal Server Error"),  # dev-env: no did:web resolver
    ],
)
def test_without_direct_messages_mentions_still_come(
    chat: Chat, status: int, error: str, message: str
) -> None:
    """A service that does not offer direct messages: the round goes on with mentions, and
    never signs in again for it."""
    view = _view(chat)
    view.chat_answer = (status, {"error": error, "message": message})
    mention = view.post(COACH, "@chatbot.test pause", at=_at(1))
    view.notify(mention, "mention")
    collected = chat.collect()
    assert [p.id for p in collected.to_bot] == [mention]
    assert "dms" not in collected.cursors
    assert not view.called("createSession")[1:]


def test_a_refusal_is_asked_again_after_an_hour_a_failure_after_a_minute(chat: Chat) -> None:
    """Not offered: the service is not asked every round; a 5xx is asked again sooner."""
    view = _view(chat)
    view.chat_answer = (501, {"error": "MethodNotImplemented", "message": "no"})
    chat.collect()
    chat.clock.set(chat.clock() + timedelta(minutes=59))
    chat.collect()
    assert len(view.called("listConvos")) == 1
    chat.clock.set(chat.clock() + timedelta(minutes=2))
    view.chat_answer = (502, {"error": "UpstreamFailure", "message": "down"})
    chat.collect()
    chat.clock.set(chat.clock() + timedelta(seconds=61))
    view.chat_answer = None
    view.message("c1", COACH, "pause", _at(1))
    assert [p.text for p in chat.collect().to_bot] == ["pause"]
    assert len(view.called("listConvos")) == 3


def test_an_answer_to_a_direct_message_is_a_message_sent_once(chat: Chat) -> None:
    """The desk's reply to a message goes into its conversation; a retry finds it there."""
    view = _view(chat)
    pause = view.message("c1", COACH, "pause", _at(1))
    request = PostRequest(
        idempotency_key="ack-1",
        text="Paused. Q3 waits until you say resume.",
        parent=PostRef(NetworkName.BLUESKY, message_ref("c1", pause)),
        created_at=_at(1),
    )
    sent = chat.network.post(request)
    again = chat.network.post(request)
    assert sent == again
    assert sent.id.startswith(message_ref("c1", ""))
    assert [m["text"] for m in view.convos["c1"]] == [request.text, "pause"]
    assert chat.network.find(request) == sent
    assert len(view.called("sendMessage")) == 1


# --- likes ---------------------------------------------------------------------------------


def test_the_network_likes_and_resolves(chat: Chat) -> None:
    """The adapter is Interacting."""
    assert isinstance(chat.network, Interacting)


def test_a_like_is_one_record_at_a_key_of_its_post(chat: Chat) -> None:
    """app.bsky.feed.like with the post's strong ref, created only (swapRecord null); asked
    again, the like already there is kept."""
    view = _view(chat)
    answer = view.post(ANA, f"A1: stations #{TAG}")
    ref = PostRef(NetworkName.BLUESKY, answer)  # no cid: read from the repo
    like = chat.network.like(ref)
    assert chat.network.like(ref) == like
    assert like.id == f"at://{BOT['did']}/app.bsky.feed.like/{like_key(answer)}"
    [(key, record)] = list(view.repo.items())
    assert key == ("app.bsky.feed.like", like_key(answer))
    assert record["subject"] == {"uri": answer, "cid": view.posts[answer]["cid"]}
    bodies = [json.loads(c.content) for c in view.called("putRecord")]
    assert all(b["swapRecord"] is None for b in bodies) and len(bodies) == 2


def test_a_liked_answer_stays_in_the_conversation(chat: Chat) -> None:
    """The runner keeps the like among the bot's posts: the answer is still collected, and
    no thread is read under a like or a direct message."""
    view = _view(chat)
    answer = view.post(ANA, f"A1: stations #{TAG}")
    like = chat.network.like(PostRef(NetworkName.BLUESKY, answer, cid=view.posts[answer]["cid"]))
    message = PostRef(NetworkName.BLUESKY, message_ref("c1", "m1"))
    thread = chat.thread()
    thread = ChatThread(thread.chat_id, TAG, thread.since, (*thread.bot_posts, like, message))
    collected = chat.network.collect(thread, {})
    assert [p.id for p in collected.posts] == [answer]
    asked = [c.url.params["uri"] for c in view.called("getPostThread")]
    assert like.id not in asked and message.id not in asked


def test_a_like_key_held_by_another_posts_like_moves_on(chat: Chat) -> None:
    """Two posts whose keys clash: the second like takes the next candidate."""
    view = _view(chat)
    answer = view.post(ANA, "A1: stations")
    other = view.post(BEN, "A2: groups")
    view.repo[("app.bsky.feed.like", like_key(answer))] = {"subject": {"uri": other, "cid": "x"}}
    chat.network.like(PostRef(NetworkName.BLUESKY, answer, cid="bafy-a"))
    assert ("app.bsky.feed.like", like_key(answer, 1)) in view.repo


def test_like_keys_are_valid_tids_from_the_posts_time() -> None:
    """The key follows the liked post's TID; any other key still gives a valid TID."""
    post = "at://did:plc:ana/app.bsky.feed.post/3kabcdefghijk"
    assert like_key(post) == like_key(post)
    assert like_key(post)[:10] == "3kabcdefgh"
    odd = like_key("at://did:plc:ana/app.bsky.feed.post/self")
    assert len(odd) == 13 and odd[0] in "234567abcdefghij"


# --- who a handle names --------------------------------------------------------------------


def test_a_handle_resolves_to_its_did_and_a_did_to_itself(chat: Chat) -> None:
    """resolveHandle for a handle (any case, with or without @); a DID needs no call."""
    view = _view(chat)
    view.handles["coach.test"] = COACH["did"]
    assert chat.network.resolve("@Coach.test") == COACH["did"]
    assert chat.network.resolve("did:plc:someone") == "did:plc:someone"
    assert len(view.called("resolveHandle")) == 1


def test_an_unknown_handle_resolves_to_nothing(chat: Chat) -> None:
    """HandleNotFound is None: a lookalike handle names no co-moderator."""
    assert chat.network.resolve("c0ach.test") is None


def test_a_failed_resolve_raises_for_the_caller_to_retry(chat: Chat) -> None:
    """A 5xx is not "no such handle"."""
    view = _view(chat)
    view.faults["com.atproto.identity.resolveHandle"] = [(502, {"error": "Upstream"}, {})] * 3
    with pytest.raises(errors.Transient):
        chat.network.resolve("coach.test")


# --- replies in their thread ---------------------------------------------------------------


def test_a_reply_to_someones_reply_is_rooted_in_its_thread(chat: Chat) -> None:
    """The desk answers a command that was a reply under Q1 without knowing the thread: the
    root is the command's own root, the welcome, not the command."""
    view = _view(chat)
    command = view.post(COACH, "@chatbot.test extend 5", parent=chat.q1, root=chat.welcome)
    request = PostRequest(
        idempotency_key="ack-2",
        text="Extended by 5 minutes.",
        parent=PostRef(NetworkName.BLUESKY, command),
        root=PostRef(NetworkName.BLUESKY, command),
        created_at=_at(5),
    )
    chat.network.post(request)
    [record] = [r for (c, _k), r in view.repo.items() if c == "app.bsky.feed.post"]
    parent, root = record["reply"]["parent"], record["reply"]["root"]
    assert (parent["uri"], parent["cid"]) == (command, view.posts[command]["cid"])
    assert root["uri"] == chat.welcome


def test_a_reply_to_a_top_level_post_is_rooted_in_that_post(chat: Chat) -> None:
    """A post that replies to nothing starts its own thread."""
    view = _view(chat)
    top = view.post(ANA, f"A1: stations #{TAG}")
    chat.network.post(
        PostRequest(
            idempotency_key="hello-1",
            text="Welcome!",
            parent=PostRef(NetworkName.BLUESKY, top),
            created_at=_at(5),
        )
    )
    [record] = [r for (c, _k), r in view.repo.items() if c == "app.bsky.feed.post"]
    assert record["reply"]["root"] == record["reply"]["parent"]
    assert record["reply"]["root"]["uri"] == top


# --- opt-outs ------------------------------------------------------------------------------


def test_nobot_in_a_profile_opts_its_person_out(chat: Chat) -> None:
    """#nobot in the description marks the author; it is read once in ten minutes."""
    view = _view(chat)
    view.bios[ANA["did"]] = {"description": "Librarian. Please, #NoBot"}
    view.post(ANA, f"A1: picture books #{TAG}")
    view.post(BEN, f"A1: timers #{TAG}")
    first = chat.collect()
    assert {p.author.handle: p.author.opt_out for p in first.posts} == {
        "ana.test": "#nobot in the profile",
        "ben.test": "",
    }
    chat.collect(first.cursors)
    assert len(view.called("getProfiles")) == 1
    chat.clock.set(chat.clock() + timedelta(minutes=11))
    view.post(ANA, f"A2: more #{TAG}")
    chat.collect(first.cursors)
    assert len(view.called("getProfiles")) == 2
