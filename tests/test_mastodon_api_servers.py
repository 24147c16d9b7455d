"""The Mastodon adapter on a Mastodon-API server that is not Mastodon, offline.

The fake answers as snac 2.75 does (tests/servers/README.md, "Things to know about
snac2"): no /api/v2/instance, the limit in /api/v1/instance, 42-character ids
that do not sort within a second, no Link header, max_id/min_id by the index's
order, Idempotency-Key and types[] ignored, unlisted posted as public, contexts
of direct replies only. It sits at the network seam under the real Mastodon.py.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import structlog
from pydantic import SecretStr
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict

from chatbot import errors
from chatbot.kinds import Visibility
from chatbot.networks.base import ChatThread, PostRequest
from chatbot.networks.mastodon import MastodonNetwork
from chatbot.networks.mastodon.server import (
    Instance,
    instance_from,
    software_from_nodeinfo,
    software_from_version,
)
from chatbot.posts import PostRef
from chatbot.script import NetworkName
from chatbot.testing import FakeClock

BASE = "http://snac.example"
START = datetime(2027, 3, 4, 19, 0, tzinfo=UTC)
TAG = "blchat"
NODEINFO_2_0 = "http://nodeinfo.diaspora.software/ns/schema/2.0"

Reply = tuple[int, Any, dict[str, str], str]
SNAC_V1 = {
    "uri": "snac.example",
    "domain": "snac.example",
    "version": "4.0.0 (not true; really snac/2.75)",
    "configuration": {"statuses": {"max_characters": 100000}},
}


def _person(name: str) -> dict[str, Any]:
    return {
        "id": hashlib.md5(f"{BASE}/{name}".encode()).hexdigest(),  # noqa: S324 - snac's ids
        "username": name,
        "acct": f"{name}@snac.example",
        "display_name": name,
        "url": f"{BASE}/{name}",
        "bot": False,
        "note": "",
    }


BOT = {**_person("bot"), "acct": "bot"}  # verify_credentials gives the bare name
ANA = _person("ana")
BEN = _person("ben")


@dataclass
class SnacLike(BaseAdapter):
    """A Mastodon API that answers as snac 2.75 does, over an in-memory index."""

    clock: FakeClock
    index: list[dict[str, Any]] = field(default_factory=list)  # in posting order
    notes: list[dict[str, Any]] = field(default_factory=list)
    requests: list[requests.PreparedRequest] = field(default_factory=list)
    serial: int = 0
    serves_instance: bool = True  # /api/v1/instance (no server here serves /api/v2/instance)

    def __post_init__(self) -> None:
        super().__init__()

    def add(self, author: dict[str, Any], text: str, *, reply_to: str | None = None,
            visibility: str = "public", mention: bool = False) -> dict[str, Any]:  # fmt: skip
        """A status, created now (whole seconds, as snac's times are)."""
        self.serial += 1
        second = int(self.clock().timestamp())
        digest = hashlib.md5(f"{self.serial}".encode()).hexdigest()  # noqa: S324
        status = {
            "id": f"{second:010d}{digest}",
            "uri": f"{BASE}/{author['username']}/p/{self.serial}",
            "url": f"{BASE}/{author['username']}/p/{self.serial}",
            "account": author,
            "content": f"<p>{text}</p>",
            "in_reply_to_id": reply_to,
            "created_at": datetime.fromtimestamp(second, UTC).isoformat().replace("+00:00", "Z"),
            "visibility": "public" if visibility == "unlisted" else visibility,
            "tags": [{"name": TAG}] if f"#{TAG}" in text.lower() else [],
            "reblog": None,
        }
        self.index.append(status)
        replies_to_bot = reply_to and self._get(reply_to)["account"]["id"] == BOT["id"]
        if author is not BOT and (mention or replies_to_bot):
            self.serial += 1
            self.notes.append({"id": f"{second}{self.serial:06d}", "type": "mention",
                               "created_at": status["created_at"], "account": author,
                               "status": status})  # fmt: skip
        return status

    def follow_note(self, who: dict[str, Any]) -> None:
        self.serial += 1
        self.notes.append({"id": f"{int(self.clock().timestamp())}{self.serial:06d}",
                           "type": "follow", "created_at": self.index[-1]["created_at"],
                           "account": who, "status": None})  # fmt: skip

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        self.requests.append(request)
        url = urlsplit(request.url or "")
        code, body, headers, ctype = self._route(request, url.path.rstrip("/"), parse_qs(url.query))
        response = requests.Response()
        response.status_code = code
        response.reason = "OK" if code == 200 else "Not Found"
        response._content = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        response.headers = CaseInsensitiveDict({"Content-Type": ctype, **headers})
        response.url = request.url or ""
        response.request = request
        return response

    def close(self) -> None:
        pass

    def paths(self) -> list[str]:
        return [urlsplit(r.url or "").path.rstrip("/") for r in self.requests]

    def queries(self, prefix: str) -> list[dict[str, list[str]]]:
        return [parse_qs(urlsplit(r.url or "").query) for r in self.requests
                if urlsplit(r.url or "").path.startswith(prefix)]  # fmt: skip

    def _get(self, sid: str) -> dict[str, Any]:
        return next(s for s in self.index if s["id"] == sid)

    def _route(self, request: requests.PreparedRequest, path: str, query: dict[str, list[str]]
               ) -> Reply:  # fmt: skip
        json_ = "application/json"
        parts = path.split("/")
        if path == "/.well-known/nodeinfo":
            return (
                200,
                {"links": [{"rel": NODEINFO_2_0, "href": f"{BASE}/nodeinfo_2_0"}]},
                {},
                json_,
            )
        if path == "/nodeinfo_2_0":
            return 200, {"software": {"name": "snac", "version": "2.75"}}, {}, json_
        if path == "/api/v1/instance" and self.serves_instance:
            return 200, SNAC_V1, {}, json_
        if path == "/api/v1/accounts/verify_credentials":
            if request.headers.get("Authorization") != "Bearer t":
                return 422, "", {}, "text/html; charset=utf-8"  # snac: "no login"
            return 200, BOT, {}, json_
        if path == "/api/v1/statuses" and request.method == "POST":
            form = _form(request)
            text = form["status"][0]
            reply_to = form.get("in_reply_to_id", [None])[0]
            visibility = form.get("visibility", ["public"])[0]
            return 200, self.add(BOT, text, reply_to=reply_to, visibility=visibility), {}, json_
        if path == f"/api/v1/accounts/{BOT['id']}/statuses":
            # snac: the newest 256, whatever limit and max_id say; no Link header.
            return 200, [s for s in reversed(self.index) if s["account"] is BOT], {}, json_
        if path.startswith("/api/v1/timelines/tag/"):
            tagged = [s for s in self.index if s["tags"] and s["visibility"] == "public"]
            return 200, _by_index(tagged, query), {}, json_
        if path == "/api/v1/notifications":
            return 200, _by_index(self.notes, query), {}, json_  # types[] ignored
        if len(parts) == 6 and parts[5] == "context":
            direct = [s for s in self.index if s["in_reply_to_id"] == parts[4]]
            return 200, {"ancestors": [], "descendants": direct}, {}, json_
        if len(parts) == 5 and parts[3] == "statuses":
            found = [s for s in self.index if s["id"] == parts[4]]
            return (200, found[0], {}, json_) if found else (404, "<h1>404</h1>", {}, "text/html")
        return 404, "<h1>404 Not Found (snac/2.75)</h1>", {}, "text/html; charset=utf-8"


def _form(request: requests.PreparedRequest) -> dict[str, list[str]]:
    body = request.body or ""
    text = body.decode() if isinstance(body, bytes) else str(body)
    if request.headers.get("Content-Type", "").startswith("application/json"):
        return {k: v if isinstance(v, list) else [v] for k, v in json.loads(text).items()}
    return parse_qs(text)


def _by_index(items: list[dict[str, Any]], query: dict[str, list[str]]) -> list[dict[str, Any]]:
    """snac's paging: newest first in index order; max_id starts after that entry, min_id
    gives the page just above it; an id that is not in the listing gives an empty page."""
    limit = int(query.get("limit", ["20"])[0])
    ids = [i["id"] for i in items]
    if "min_id" in query:
        if query["min_id"][0] not in ids:
            return []
        above = items[ids.index(query["min_id"][0]) + 1 :]
        return list(reversed(above[:limit]))
    newest_first = list(reversed(items))
    if "max_id" in query:
        if query["max_id"][0] not in ids:
            return []
        newest_first = newest_first[newest_first.index(items[ids.index(query["max_id"][0])]) + 1 :]
    return newest_first[:limit]


@dataclass
class Chat:
    server: SnacLike
    network: MastodonNetwork
    clock: FakeClock
    posts: list[str]

    def thread(self) -> ChatThread:
        refs = tuple(PostRef(NetworkName.MASTODON, i) for i in self.posts)
        return ChatThread("chat", f"#{TAG}", START, refs)


def _chat() -> Chat:
    clock = FakeClock(START)
    server = SnacLike(clock)
    session = requests.Session()
    session.mount(BASE, server)
    network = MastodonNetwork(instance=BASE, access_token=SecretStr("t"), session=session,
                              clock=clock, sleep=lambda _s: None)  # fmt: skip
    welcome = server.add(BOT, f"Welcome to #{TAG}!")["id"]
    q1 = server.add(BOT, f"Q1: what works? #{TAG}", reply_to=welcome)["id"]
    clock.advance(timedelta(seconds=30))
    q2 = server.add(BOT, f"Q2: what next? #{TAG}", reply_to=q1)["id"]
    return Chat(server, network, clock, [welcome, q1, q2])


def _request(key: str = "k-q3", **kw: Any) -> PostRequest:
    return PostRequest(idempotency_key=key, text=f"Q3: and then? #{TAG}", created_at=START, **kw)


# --- what the server is --------------------------------------------------------------------


def test_software_from_the_version_string() -> None:
    """snac's and Pleroma's pretences give their real name; a bare version names nothing."""
    snac = software_from_version("4.0.0 (not true; really snac/2.75)", "/api/v1/instance")
    assert (snac.name, snac.version) == ("snac", "2.75")
    akkoma = software_from_version("2.7.2 (compatible; Akkoma 3.13.2)", "/api/v1/instance")
    assert (akkoma.name, akkoma.version) == ("akkoma", "3.13.2")
    bare = software_from_version("4.3.0", "/api/v1/instance")
    assert (bare.name, bare.version, str(bare)) == (
        "", "4.3.0", "a server that gives its version as '4.3.0'"
    )  # fmt: skip
    assert software_from_nodeinfo({"software": {"name": "GoToSocial", "version": "0.17"}}) == (
        software_from_nodeinfo({"software": {"name": "gotosocial", "version": "0.17"}})
    )


def test_the_limit_in_every_form_servers_give_it() -> None:
    """configuration.statuses.max_characters, v1's max_toot_chars or max_characters; a URL
    as v1's uri gives its host."""
    assert instance_from({"configuration": {"statuses": {"max_characters": 100000}}}, "v1") == (
        Instance("v1", "", 100000, "")
    )
    assert instance_from({"max_toot_chars": "5000", "uri": "https://pl.example"}, "v1") == (
        Instance("v1", "pl.example", 5000, "")
    )
    assert instance_from({"max_characters": 640, "uri": "m.example"}, "v1").max_characters == 640
    assert instance_from({"configuration": {"statuses": {}}}, "v2").max_characters is None


def test_v1_answers_where_v2_is_not_served() -> None:
    """No /api/v2/instance (404): the limit and the domain come from /api/v1/instance."""
    chat = _chat()
    assert chat.network.limits().mastodon_max_characters == 100_000
    facts = chat.network.server()
    assert (facts.software, facts.software_source) == ("snac 2.75", "its nodeinfo")
    assert (facts.domain, facts.domain_source) == ("snac.example", "/api/v1/instance")
    assert (facts.max_characters, facts.limit_source) == (100_000, "/api/v1/instance")
    assert ("unlisted", "public") in facts.visibility_changes
    assert chat.network.account().handle == "@bot@snac.example"
    assert chat.server.paths().count("/api/v2/instance") == 1  # asked once, never again


def test_no_instance_at_all_gives_the_configured_host_and_the_default() -> None:
    """A server with neither instance endpoint: handles take the configured host, posts the
    default 500 characters, each said to come from there and not from the server."""
    chat = _chat()
    chat.server.serves_instance = False
    facts = chat.network.server()
    assert (facts.domain, facts.domain_source) == ("snac.example", "the configured address")
    assert (facts.max_characters, facts.limit_source) == (500, "")
    assert chat.network.limits().mastodon_max_characters == 500


def test_reading_the_hashtag_never_asks_for_v2() -> None:
    """Mastodon.py's own probe of /api/v2/instance before every timeline read is not made:
    v2 is asked once, for the instance, however many reads follow."""
    chat = _chat()
    chat.server.add(ANA, f"A1: stations #{TAG}")
    cursors: dict[str, str] = {}
    for _round in range(3):
        chat.network.hashtag_feed(TAG)
        cursors = dict(chat.network.collect(chat.thread(), cursors).cursors)
    assert chat.server.paths().count("/api/v2/instance") == 1


def test_a_token_snac_does_not_know_is_refused_credentials() -> None:
    """snac answers verify_credentials 422 for an unknown token: AuthFailed, not Rejected."""
    chat = _chat()
    session = requests.Session()
    session.mount(BASE, chat.server)
    wrong = MastodonNetwork(instance=BASE, access_token=SecretStr("wrong"), session=session,
                            clock=chat.clock, sleep=lambda _s: None)  # fmt: skip
    with pytest.raises(errors.AuthFailed, match="422"):
        wrong.account()


# --- reading by time -----------------------------------------------------------------------


def test_the_hashtag_is_read_by_time_without_gaps() -> None:
    """95 posts in one second, then 50 more in the next: every one found, by max_id pages
    and a time cursor; no id is compared and no min_id is sent."""
    chat = _chat()
    chat.clock.advance(timedelta(minutes=10))
    first = [chat.server.add(ANA, f"A1: idea {n} #{TAG}")["id"] for n in range(95)]
    round1 = chat.network.collect(chat.thread(), {})
    assert sorted(p.id for p in round1.posts) == sorted(first)
    assert round1.cursors["tag_time"] == chat.clock().isoformat()
    chat.clock.advance(timedelta(seconds=1))
    second = [chat.server.add(BEN, f"A2: more {n} #{TAG}")["id"] for n in range(50)]
    round2 = chat.network.collect(chat.thread(), round1.cursors)
    # Read again: the two minutes before the cursor (posts of its second may come after it).
    assert sorted(p.id for p in round2.posts) == sorted(first + second)
    chat.clock.advance(timedelta(minutes=5))
    third = [chat.server.add(ANA, f"A3: later #{TAG}")["id"]]
    round3 = chat.network.collect(chat.thread(), round2.cursors)
    assert [p.id for p in chat.network.collect(chat.thread(), round3.cursors).posts] == third
    pages = chat.server.queries(f"/api/v1/timelines/tag/{TAG}")
    assert not any("min_id" in q for q in pages)
    assert [len(q.get("max_id", [])) for q in pages[:4]] == [0, 1, 1, 1]


def test_posts_older_than_the_chat_are_left_out() -> None:
    """A hashtag post before the chat's first post (by the server's clock) is another chat's."""
    chat = _chat()
    old = chat.server.add(ANA, f"last month #{TAG}")
    old["created_at"] = (START - timedelta(hours=1)).isoformat()  # it arrived late, federated
    assert chat.network.collect(chat.thread(), {}).posts == ()


def test_notifications_are_filtered_here() -> None:
    """snac ignores types[]: a follow comes back with the mentions, and is left out."""
    chat = _chat()
    mention = chat.server.add(ANA, "@bot A1: morning meetings", mention=True)["id"]
    chat.server.follow_note(BEN)
    collected = chat.network.collect(chat.thread(), {})
    assert [p.id for p in collected.posts] == [mention]
    assert "mentions_time" in collected.cursors
    assert chat.network.notifications_feed() == 1


def test_every_bot_posts_context_is_read() -> None:
    """snac's context lists direct replies only: the welcome's does not cover the questions'."""
    chat = _chat()
    r1 = chat.server.add(ANA, "Stations, every day", reply_to=chat.posts[1])["id"]
    r2 = chat.server.add(BEN, "Peer tutors", reply_to=chat.posts[2])["id"]
    found = {p.id: p.reply_to for p in chat.network.collect(chat.thread(), {}).posts}
    assert found == {r1: chat.posts[1], r2: chat.posts[2]}
    contexts = [p for p in chat.server.paths() if p.endswith("/context")]
    assert len(contexts) == 3


# --- posting -------------------------------------------------------------------------------


def test_an_uncertain_retry_looks_at_once_and_finds_the_post() -> None:
    """The Idempotency-Key is ignored here: a retry whose first attempt's fate is unknown
    looks among the bot's statuses first, minutes (not 50) after it, and posts nothing."""
    chat = _chat()
    landed = chat.network.post(_request(parent=PostRef(NetworkName.MASTODON, chat.posts[2])))
    chat.clock.advance(timedelta(minutes=2))
    again = chat.network.post(
        _request(parent=PostRef(NetworkName.MASTODON, chat.posts[2]), first_attempt_at=START)
    )
    assert again == landed
    assert len([s for s in chat.server.index if s["content"].startswith("<p>Q3")]) == 1


def test_a_retry_that_finds_nothing_posts_once() -> None:
    """Nothing among the bot's statuses (snac ignores max_id there: one page): post it."""
    chat = _chat()
    ref = chat.network.post(_request(first_attempt_at=START))
    assert [s["id"] for s in chat.server.index if s["content"].startswith("<p>Q3")] == [ref.id]
    own = chat.server.queries(f"/api/v1/accounts/{BOT['id']}/statuses")
    assert len(own) == 2  # the first page, then one asked by max_id that brought nothing new


def test_a_visibility_the_server_changes_is_logged_once() -> None:
    """unlisted comes back public: one warning, with both."""
    chat = _chat()
    with structlog.testing.capture_logs() as logs:
        chat.network.post(_request(visibility=Visibility.UNLISTED))
        chat.network.post(_request("k-2", visibility=Visibility.UNLISTED))
    changed = [e for e in logs if e["event"] == "server changed the visibility"]
    assert [(e["asked"], e["given"]) for e in changed] == [("unlisted", "public")]
