"""The Bluesky reader offline: post views -> SeenPost, opt-out labels, search paging past
short pages, threads, notifications, deletions, cursors on errors.

The fake AppView sits at the network seam (an httpx transport under the real
atproto client) and answers with the lexicons' JSON; nothing of ours is mocked.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from chatbot import errors
from chatbot.networks.base import ChatThread, Collected, Reader
from chatbot.networks.bluesky import BlueskyNetwork
from chatbot.networks.bluesky.reading import has_hashtag, seen_post
from chatbot.posts import PostRef
from chatbot.script import NetworkName
from chatbot.testing import FakeClock

START = datetime(2027, 3, 4, 19, 0, tzinfo=UTC)
TAG = "BLchat"
PASSWORD = "app-pass-word-1234"
BOT = {"did": "did:plc:bot", "handle": "chatbot.test"}
ANA = {"did": "did:plc:ana", "handle": "ana.test", "displayName": "Ana"}
BEN = {"did": "did:plc:ben", "handle": "ben.test"}
ELI = {
    "did": "did:plc:eli",
    "handle": "eli.test",
    "labels": [
        {
            "src": "did:plc:eli",
            "uri": "at://did:plc:eli/app.bsky.actor.profile/self",
            "val": "!no-unauthenticated",
            "cts": "1970-01-01T00:00:00.000Z",
        }
    ],
}


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _jwt(scope: str, exp: datetime) -> str:
    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    payload = {"scope": scope, "sub": BOT["did"], "exp": int(exp.timestamp()), "iat": 0}
    return f"{part({'alg': 'ES256K', 'typ': 'JWT'})}.{part(payload)}.c2lnbmF0dXJl"


@dataclass
class FakeAppView:
    """A PDS and AppView over an in-memory set of posts, answering the reads the bot makes."""

    posts: dict[str, dict[str, Any]] = field(default_factory=dict)
    notes: list[dict[str, Any]] = field(default_factory=list)
    calls: list[httpx.Request] = field(default_factory=list)
    faults: dict[str, list[tuple[int, dict[str, Any], dict[str, str]]]] = field(
        default_factory=dict
    )
    page_size: int | None = None  # searchPosts: pages shorter than the limit asked for
    honour_since: bool = True  # searchPosts: False answers older posts too
    count: int = 0
    bios: dict[str, dict[str, str]] = field(default_factory=dict)  # did -> {description: ...}

    # --- what people do -------------------------------------------------------------------

    def post(
        self,
        author: dict[str, Any],
        text: str,
        *,
        parent: str | None = None,
        root: str | None = None,
        quote: str | None = None,
        tags: tuple[str, ...] = (),
        at: datetime | None = None,
        indexed: datetime | None = None,
    ) -> str:
        self.count += 1
        created = at or START + timedelta(seconds=self.count)
        uri = f"at://{author['did']}/app.bsky.feed.post/3k{self.count:011d}"
        record: dict[str, Any] = {
            "$type": "app.bsky.feed.post",
            "text": text,
            "createdAt": _iso(created),
        }
        facets = []
        for word in text.split():
            if word.startswith("#"):
                start = text.encode().index(word.encode())
                facets.append(
                    {
                        "index": {"byteStart": start, "byteEnd": start + len(word.encode())},
                        "features": [{"$type": "app.bsky.richtext.facet#tag", "tag": word[1:]}],
                    }
                )
        if facets:
            record["facets"] = facets
        if tags:
            record["tags"] = list(tags)
        if parent is not None:
            record["reply"] = {
                "root": {"uri": root or parent, "cid": "bafyroot"},
                "parent": {"uri": parent, "cid": "bafyparent"},
            }
        if quote is not None:
            record["embed"] = {
                "$type": "app.bsky.embed.record",
                "record": {"uri": quote, "cid": "bafyquoted"},
            }
        self.posts[uri] = {
            "uri": uri,
            "cid": f"bafy{self.count}",
            "author": {"labels": [], **author},
            "record": record,
            "indexedAt": _iso(indexed or created),
            "likeCount": 3,
            "repostCount": 2,
            "quoteCount": 1,
        }
        return uri

    def notify(self, uri: str, reason: str, indexed: datetime | None = None) -> None:
        post = self.posts[uri]
        self.notes.append(
            {
                "uri": uri,
                "cid": post["cid"],
                "author": post["author"],
                "reason": reason,
                "record": post["record"],
                "isRead": False,
                "indexedAt": _iso(indexed) if indexed else post["indexedAt"],
            }
        )

    def delete(self, uri: str) -> None:
        del self.posts[uri]

    # --- the API --------------------------------------------------------------------------

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def handle(self, request: httpx.Request) -> httpx.Response:
        method = request.url.path.removeprefix("/xrpc/")
        self.calls.append(request)
        if self.faults.get(method):
            status, body, headers = self.faults[method].pop(0)
            return httpx.Response(status, json=body, headers=headers)
        params = request.url.params
        if method == "com.atproto.server.createSession":
            access = _jwt("com.atproto.access", datetime.now(UTC) + timedelta(hours=2))
            refresh = _jwt("com.atproto.refresh", datetime.now(UTC) + timedelta(days=60))
            return httpx.Response(200, json={"accessJwt": access, "refreshJwt": refresh, **BOT})
        if method == "app.bsky.feed.searchPosts":
            return httpx.Response(200, json=self._search(params))
        if method == "app.bsky.feed.getPostThread":
            uri = params["uri"]
            if uri not in self.posts:
                return httpx.Response(400, json={"error": "NotFound", "message": "Post not found"})
            return httpx.Response(200, json={"thread": self._thread(uri)})
        if method == "app.bsky.notification.listNotifications":
            return httpx.Response(200, json=self._notifications(params))
        if method == "app.bsky.feed.getPosts":
            uris = params.get_list("uris")
            return httpx.Response(
                200, json={"posts": [self.posts[u] for u in uris if u in self.posts]}
            )
        if method == "app.bsky.actor.getProfiles":
            return httpx.Response(200, json={"profiles": self._profiles(params.get_list("actors"))})
        return httpx.Response(501, json={"error": "MethodNotImplemented", "message": method})

    def _profiles(self, dids: list[str]) -> list[dict[str, Any]]:
        authors = {p["author"]["did"]: p["author"] for p in self.posts.values()}
        return [
            {"did": did, "handle": authors[did]["handle"], **self.bios.get(did, {})}
            for did in dids
            if did in authors
        ]

    def _search(self, params: httpx.QueryParams) -> dict[str, Any]:
        wanted = params["q"].lower()
        since = datetime.fromisoformat(params["since"]) if "since" in params else None
        hits = [
            p
            for p in self.posts.values()
            if wanted in p["record"]["text"].lower()
            and (since is None or not self.honour_since or _sort_at(p) >= since)
        ]
        hits.sort(key=_sort_at, reverse=True)
        offset = int(params.get("cursor") or 0)
        size = self.page_size or int(params.get("limit", "25"))
        page = [
            {**p, "replyCount": self._reply_count(p["uri"])} for p in hits[offset : offset + size]
        ]
        more = offset + size < len(hits)
        return {"posts": page, **({"cursor": str(offset + size)} if more else {})}

    def _reply_count(self, uri: str) -> int:
        return sum(
            p["record"].get("reply", {}).get("parent", {}).get("uri") == uri
            for p in self.posts.values()
        )

    def _thread(self, uri: str) -> dict[str, Any]:
        replies = [
            p["uri"]
            for p in self.posts.values()
            if p["record"].get("reply", {}).get("parent", {}).get("uri") == uri
        ]
        return {
            "$type": "app.bsky.feed.defs#threadViewPost",
            "post": self.posts[uri],
            "replies": [self._thread(r) for r in replies],
        }

    def _notifications(self, params: httpx.QueryParams) -> dict[str, Any]:
        reasons = params.get_list("reasons")
        notes = [n for n in self.notes if not reasons or n["reason"] in reasons]
        notes.sort(key=lambda n: n["indexedAt"], reverse=True)
        offset = int(params.get("cursor") or 0)
        size = int(params.get("limit", "50"))
        page = notes[offset : offset + size]
        more = offset + size < len(notes)
        return {"notifications": page, **({"cursor": str(offset + size)} if more else {})}

    def called(self, method: str) -> list[httpx.Request]:
        return [c for c in self.calls if c.url.path.endswith(method)]


def _sort_at(post: dict[str, Any]) -> datetime:
    created = datetime.fromisoformat(post["record"]["createdAt"])
    indexed = datetime.fromisoformat(post["indexedAt"])
    return min(created, indexed)


@dataclass
class Chat:
    """A fake AppView with the bot's welcome and two questions, and a network reading it."""

    view: FakeAppView
    network: BlueskyNetwork
    clock: FakeClock
    welcome: str
    q1: str
    q2: str

    def thread(self) -> ChatThread:
        refs = tuple(PostRef(NetworkName.BLUESKY, u) for u in (self.welcome, self.q1, self.q2))
        return ChatThread("chat", TAG, START, refs)

    def collect(self, cursors: dict[str, str] | None = None) -> Collected:
        return self.network.collect(self.thread(), dict(cursors or {}))


@pytest.fixture
def chat(tmp_path: Path) -> Chat:
    return _chat(tmp_path)


def _chat(tmp_path: Path, sweep_every: int = 8, view: FakeAppView | None = None) -> Chat:
    """The chat on ``view`` (a new fake AppView if None), read by a real network."""
    view = view if view is not None else FakeAppView()
    clock = FakeClock(START + timedelta(hours=1))
    network = BlueskyNetwork(
        service="https://pds.example",
        handle=BOT["handle"],
        app_password=SecretStr(PASSWORD),
        session_dir=tmp_path / "sessions",
        transport=view.transport(),
        clock=clock,
        sweep_every=sweep_every,
    )
    welcome = view.post(BOT, f"Welcome to #{TAG}!")
    q1 = view.post(BOT, f"Q1: what works? #{TAG}", parent=welcome, root=welcome)
    q2 = view.post(BOT, f"Q2: what next? #{TAG}", parent=q1, root=welcome)
    return Chat(view, network, clock, welcome, q1, q2)


# --- mapping and opt-outs ------------------------------------------------------------------


def test_a_post_view_becomes_a_seen_post_with_every_field(chat: Chat) -> None:
    """The at:// uri is the id, the bsky.app link is built from handle and record key,
    tags come from facets and the record's tags, counts and the reply parent too."""
    reply = chat.view.post(
        ANA, f"A1: stations #{TAG} #EdTech", parent=chat.q1, root=chat.welcome, tags=("Extra",)
    )
    [seen] = chat.collect().posts
    assert (seen.uri, seen.id, seen.reply_to, seen.quote_of) == (reply, reply, chat.q1, None)
    assert seen.url == f"https://bsky.app/profile/ana.test/post/{reply.rsplit('/', 1)[-1]}"
    assert seen.text == f"A1: stations #{TAG} #EdTech"
    assert seen.tags == ("blchat", "edtech", "extra")
    assert seen.created_at == START + timedelta(seconds=4)
    assert seen.created_at.tzinfo is UTC
    assert (seen.likes, seen.reposts) == (3, 2)
    author = seen.author
    assert (author.id, author.handle, author.display_name) == ("did:plc:ana", "ana.test", "Ana")
    assert author.url == "https://bsky.app/profile/ana.test"
    assert (author.bot, author.opt_out) == (False, "")


def test_labels_on_the_author_mark_opt_outs_and_bots() -> None:
    """!no-unauthenticated (a profile self-label) keeps a person off the web; the "bot"
    self-label marks a bot; a negated label does not count."""
    base = {
        "uri": "at://did:plc:eli/app.bsky.feed.post/3kabc",
        "cid": "bafy",
        "indexedAt": "2027-03-04T19:00:05.000Z",
        "record": {"text": "A1: hi", "createdAt": "2027-03-04T19:00:04"},  # no zone: UTC
    }
    eli = seen_post({**base, "author": ELI})
    assert (eli.author.opt_out, eli.author.web_opt_out) == ("", "!no-unauthenticated label")
    assert eli.created_at == datetime(2027, 3, 4, 19, 0, 4, tzinfo=UTC)
    labelled = {**BEN, "labels": [{"val": "bot"}, {"val": "!no-unauthenticated", "neg": True}]}
    ben = seen_post({**base, "author": labelled})
    assert (ben.author.bot, ben.author.web_opt_out) == (True, "")


def test_quotes_are_read_from_record_and_record_with_media_embeds() -> None:
    """app.bsky.embed.record points at the quoted post; recordWithMedia one level deeper."""
    quoted = "at://did:plc:bot/app.bsky.feed.post/3kq3"
    record = {"uri": quoted, "cid": "bafyq"}
    for embed in (
        {"$type": "app.bsky.embed.record", "record": record},
        {
            "$type": "app.bsky.embed.recordWithMedia",
            "record": {"record": record},
            "media": {"$type": "app.bsky.embed.images", "images": []},
        },
    ):
        view = {
            "uri": "at://did:plc:ana/app.bsky.feed.post/3kabc",
            "cid": "bafy",
            "author": ANA,
            "indexedAt": "2027-03-04T19:00:05.000Z",
            "record": {"text": "so true", "createdAt": "2027-03-04T19:00:04Z", "embed": embed},
        }
        assert seen_post(view).quote_of == quoted


def test_a_search_hit_must_carry_the_hashtag() -> None:
    """Search matches words and prefixes too; a hashtag is a tag facet, a record tag, or
    #tag in the text, in any case, and not the start of a longer tag."""

    def view(text: str, **record: Any) -> dict[str, Any]:
        return {"record": {"text": text, **record}}

    assert has_hashtag(view("A1: yes #blchat"), TAG)
    assert has_hashtag(view("A1: yes", tags=["BLCHAT"]), TAG)
    assert not has_hashtag(view("A1: #BLchat2027 is another chat"), TAG)
    assert not has_hashtag(view("BLchat without the hash"), TAG)


def test_the_network_is_a_reader(chat: Chat) -> None:
    """The runner reads every network that satisfies the Reader Protocol."""
    assert isinstance(chat.network, Reader)


# --- search ------------------------------------------------------------------------------


def test_search_follows_the_cursor_past_short_pages_and_stops_at_what_it_saw(
    chat: Chat,
) -> None:
    """Pages of 7 (a short page is not the end): 30 posts, every one. Then pages of 3 from a
    search that ignores ``since``: the new posts and the 5-minute overlap, and no further."""
    chat.view.page_size = 7
    first = [
        chat.view.post(ANA, f"A1: idea {n} #{TAG}", at=START + timedelta(minutes=n))
        for n in range(30)
    ]
    round1 = chat.collect()
    assert sorted(p.id for p in round1.posts) == sorted(first)
    newest = START + timedelta(minutes=29)
    assert datetime.fromisoformat(round1.cursors["search"]) == newest

    chat.view.page_size, chat.view.honour_since = 3, False
    later = [
        chat.view.post(BEN, f"A2: more {n} #{TAG}", at=newest + timedelta(minutes=1 + n))
        for n in range(5)
    ]
    before = len(chat.view.called("searchPosts"))
    round2 = chat.collect(round1.cursors)
    overlap = first[24:]  # within 5 minutes of the newest post seen
    assert sorted(p.id for p in round2.posts) == sorted(later + overlap)
    searches = chat.view.called("searchPosts")[before:]
    assert len(searches) == 4  # the fourth page reaches back past the overlap
    assert searches[0].url.params["since"] == _iso(newest - timedelta(minutes=5))
    assert all(s.url.params["q"] == f"#{TAG}" for s in searches)
    assert all(s.url.params["tag"] == TAG and s.url.params["sort"] == "latest" for s in searches)
    assert datetime.fromisoformat(round2.cursors["search"]) == newest + timedelta(minutes=5)


# --- threads, notifications, deletions ---------------------------------------------------


def test_replies_at_any_depth_come_from_one_thread_read(chat: Chat) -> None:
    """Replies under Q1 and Q2, without the hashtag, nested: found with their parents; the
    welcome's thread holds the questions, so it is the only one read."""
    r1 = chat.view.post(ANA, "Stations, every day", parent=chat.q1, root=chat.welcome)
    r2 = chat.view.post(BEN, "Same here", parent=r1, root=chat.welcome)
    r3 = chat.view.post(BEN, "A2: peer tutors", parent=chat.q2, root=chat.welcome)
    found = {p.id: p.reply_to for p in chat.collect().posts}
    assert found == {r1: chat.q1, r2: r1, r3: chat.q2}
    reads = chat.view.called("getPostThread")
    assert [r.url.params["uri"] for r in reads] == [chat.welcome]
    assert reads[0].url.params["depth"] == "1000"


def test_notifications_bring_mentions_and_quotes_from_the_chat_only(chat: Chat) -> None:
    """Mentions and quotes since the chat's start, 25 posts a getPosts call; likes and older
    mentions are not the chat; the next round starts at the newest notification seen."""
    old = chat.view.post(ANA, "@chatbot.test see you tonight", at=START - timedelta(days=1))
    chat.view.notify(old, "mention")
    mentions = [chat.view.post(ANA, f"@chatbot.test A1: idea {n}") for n in range(27)]
    for uri in mentions:
        chat.view.notify(uri, "mention")
    quote = chat.view.post(BEN, "Reading logs", quote=chat.q2)
    chat.view.notify(quote, "quote")
    chat.view.notify(chat.q1, "like")
    round1 = chat.collect()
    assert sorted(p.id for p in round1.posts) == sorted([*mentions, quote])
    assert next(p for p in round1.posts if p.id == quote).quote_of == chat.q2
    assert len(chat.view.called("getPosts")) == 2
    listed = chat.view.called("listNotifications")
    assert listed[0].url.params.get_list("reasons") == ["reply", "mention", "quote"]

    late = chat.view.post(BEN, "@chatbot.test A2: buddies")
    chat.view.notify(late, "mention")
    round2 = chat.collect(round1.cursors)
    assert late in [p.id for p in round2.posts]
    newest = datetime.fromisoformat(chat.view.posts[late]["indexedAt"])
    assert datetime.fromisoformat(round2.cursors["notifications"]) == newest


def test_a_deleted_reply_is_reported_and_its_orphans_are_kept(chat: Chat) -> None:
    """A deleted reply leaves the thread with the reply under it; getPosts says which one is
    gone: that uri is deleted, the other is returned as it is."""
    r1 = chat.view.post(ANA, "A1: stations", parent=chat.q1, root=chat.welcome)
    r2 = chat.view.post(BEN, "Same here", parent=r1, root=chat.welcome)
    cursors = chat.collect().cursors
    chat.view.delete(r1)
    after = chat.collect(cursors)
    assert after.deleted == (r1,)
    assert [p.id for p in after.posts] == [r2]


def test_a_deleted_hashtag_post_is_reported_on_a_sweep(tmp_path: Path) -> None:
    """A top-level post is in no thread: its deletion is seen when the search is swept from
    the chat's start (every second round here)."""
    chat = _chat(tmp_path, sweep_every=2)
    gone = chat.view.post(ANA, f"A1: oops #{TAG}")
    cursors = chat.collect().cursors
    chat.view.delete(gone)
    quiet = chat.collect(cursors)
    assert quiet.deleted == ()
    assert chat.collect(quiet.cursors).deleted == (gone,)


def test_a_reply_to_a_participants_own_post_is_collected_on_a_sweep(tmp_path: Path) -> None:
    """A reply without the hashtag to someone's top-level hashtag post is read on a sweep
    once that post's reply count changes, and only then."""
    chat = _chat(tmp_path, sweep_every=2)
    top = chat.view.post(ANA, f"A1: stations #{TAG}")
    cursors = chat.collect().cursors
    reply = chat.view.post(BEN, "Love this", parent=top, root=top)
    quiet = chat.collect(cursors)
    assert reply not in {p.id for p in quiet.posts}
    swept = chat.collect(quiet.cursors)
    assert {p.id: p.reply_to for p in swept.posts}[reply] == top

    def side_reads() -> int:
        return sum(r.url.params.get("uri") == top for r in chat.view.called("getPostThread"))

    assert side_reads() == 1
    chat.collect(chat.collect(swept.cursors).cursors)
    assert side_reads() == 1


def test_an_error_raises_before_any_cursor_moves(chat: Chat) -> None:
    """A 429 is RateLimited at the server's reset, a 5xx Transient; the same cursors later
    read everything."""
    cursors = chat.collect().cursors
    new = chat.view.post(ANA, f"A1: stations #{TAG}")
    reset = chat.clock() + timedelta(minutes=3)
    chat.view.faults["app.bsky.notification.listNotifications"] = [
        (
            429,
            {"error": "RateLimitExceeded", "message": "Rate Limit Exceeded"},
            {
                "ratelimit-limit": "3000",
                "ratelimit-remaining": "0",
                "ratelimit-reset": str(int(reset.timestamp())),
            },
        )
    ]
    with pytest.raises(errors.RateLimited) as raised:
        chat.collect(cursors)
    assert raised.value.retry_at == reset
    # A 5xx that lasts (a read is sent three times before the round gives up).
    chat.view.faults["app.bsky.feed.getPostThread"] = [(502, {"error": "Bad gateway"}, {})] * 3
    chat.clock.set(reset)
    with pytest.raises(errors.Transient):
        chat.collect(cursors)
    assert [p.id for p in chat.collect(cursors).posts] == [new]
