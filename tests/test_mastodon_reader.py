"""The Mastodon reader offline: statuses -> SeenPost, opt-outs, paging without gaps, contexts,
mentions, edits and deletions, cursors on errors, pacing, other instances.

The fake instance sits at the network seam (a requests transport adapter under
the real Mastodon.py client) and pages like Mastodon does; nothing of ours is mocked.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from pydantic import SecretStr
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict

from chatbot import errors
from chatbot.networks.base import ChatThread, Collected, Reader
from chatbot.networks.mastodon import MastodonNetwork
from chatbot.networks.mastodon.reading import opt_out_reason, seen_status, web_opt_out_reason
from chatbot.networks.reading import as_utc
from chatbot.posts import PostRef
from chatbot.script import NetworkName
from chatbot.testing import FakeClock

INSTANCE = "https://school.example"
OTHER = "https://other.example"
START = datetime(2027, 3, 4, 19, 0, tzinfo=UTC)
NODEINFO_2_0 = "http://nodeinfo.diaspora.software/ns/schema/2.0"
TAG = "BLchat"
BOT = {
    "id": "1",
    "username": "chatbot",
    "acct": "chatbot",
    "bot": True,
    "url": f"{INSTANCE}/@chatbot",
}

Reply = tuple[int, Any, dict[str, str]]


@dataclass
class Fault:
    """The next ``count`` requests to paths starting with ``prefix`` fail, after ``after`` pass."""

    prefix: str
    reply: Reply
    after: int = 0
    count: int = 1


def _account(name: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": str(abs(hash(name)) % 10_000 + 10),
        "username": name.split("@")[0],
        "acct": name,
        "display_name": name.title(),
        "url": f"{INSTANCE}/@{name}",
        "bot": False,
        "note": "",
        "fields": [],
        "indexable": True,
        "noindex": False,
        **extra,
    }


@dataclass
class FakeInstance(BaseAdapter):
    """A Mastodon instance's reading API over an in-memory set of statuses."""

    base: str = INSTANCE
    statuses: dict[int, dict[str, Any]] = field(default_factory=dict)
    notes: list[dict[str, Any]] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    requests: list[requests.PreparedRequest] = field(default_factory=list)
    accounts: list[dict[str, Any]] = field(default_factory=list)
    next_id: int = 1000
    software: str = "mastodon"  # what its nodeinfo says it runs

    def __post_init__(self) -> None:
        super().__init__()

    # --- what people do -------------------------------------------------------------------

    def add(
        self,
        author: dict[str, Any],
        text: str,
        *,
        reply_to: str | None = None,
        at: datetime | None = None,
        visibility: str = "public",
        quote: str | None = None,
        spoiler: str = "",
    ) -> str:
        self.next_id += 1
        sid = self.next_id
        tags = [w[1:].rstrip(".,!") for w in text.split() if w.startswith("#")]
        self.statuses[sid] = {
            "id": str(sid),
            "uri": f"{self.base}/users/{author['username']}/statuses/{sid}",
            "url": f"{self.base}/@{author['username']}/{sid}",
            "account": author,
            "content": f"<p>{text}</p>",
            "spoiler_text": spoiler,
            "in_reply_to_id": reply_to,
            "created_at": _iso(at or START + timedelta(seconds=sid - 1000)),
            "edited_at": None,
            "visibility": visibility,
            "tags": [{"name": t.lower(), "url": f"{self.base}/tags/{t}"} for t in tags],
            "favourites_count": 2,
            "reblogs_count": 1,
            "replies_count": 0,
            "reblog": None,
            "quote": {"state": "accepted", "quoted_status": self.statuses[int(quote)]}
            if quote
            else None,
        }
        if reply_to is not None and int(reply_to) in self.statuses:
            self.statuses[int(reply_to)]["replies_count"] += 1
        return str(sid)

    def edit(self, sid: str, text: str, at: datetime) -> None:
        self.statuses[int(sid)]["content"] = f"<p>{text}</p>"
        self.statuses[int(sid)]["edited_at"] = _iso(at)

    def delete(self, sid: str) -> None:
        gone = self.statuses.pop(int(sid))
        parent = gone["in_reply_to_id"]
        if parent is not None and int(parent) in self.statuses:
            self.statuses[int(parent)]["replies_count"] -= 1

    def mention(self, sid: str, kind: str = "mention") -> None:
        self.next_id += 1
        status = self.statuses[int(sid)]
        self.notes.append(
            {
                "id": str(self.next_id),
                "type": kind,
                "created_at": status["created_at"],
                "account": status["account"],
                "status": status,
            }
        )

    # --- the API --------------------------------------------------------------------------

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        self.requests.append(request)
        path = urlsplit(request.url or "").path.rstrip("/")
        for fault in self.faults:
            if not path.startswith(fault.prefix) or fault.count <= 0:
                continue
            if fault.after > 0:
                fault.after -= 1
                break
            fault.count -= 1
            return _response(request, *fault.reply)
        return _response(request, *self._route(path, parse_qs(urlsplit(request.url or "").query)))

    def close(self) -> None:
        pass

    def _route(self, path: str, query: dict[str, list[str]]) -> Reply:
        parts = path.split("/")
        if path == "/api/v1/accounts/verify_credentials":
            return 200, BOT, {}
        if path == "/.well-known/nodeinfo":
            return 200, {"links": [{"rel": NODEINFO_2_0, "href": f"{self.base}/nodeinfo/2.0"}]}, {}
        if path == "/nodeinfo/2.0":
            return 200, {"software": {"name": self.software, "version": "4.3.0"}}, {}
        if path == "/api/v2/instance":
            domain = urlsplit(self.base).netloc
            return 200, {"domain": domain, "configuration": {"statuses": {}}}, {}
        if path.startswith("/api/v1/timelines/tag/"):
            tag = parts[-1].lower()
            tagged = [
                s
                for s in self.statuses.values()
                if s["visibility"] == "public" and tag in [t["name"] for t in s["tags"]]
            ]
            return 200, _page(tagged, query), {}
        if path == "/api/v1/notifications":
            kinds = query.get("types[]", [])
            notes = [n for n in self.notes if not kinds or n["type"] in kinds]
            return 200, _page(notes, query), {}
        if path == "/api/v1/accounts/search":
            wanted = query["q"][0].lower()
            return 200, [a for a in self.accounts if f"{a['acct']}".lower() == wanted], {}
        if len(parts) == 6 and parts[3] == "statuses" and parts[5] == "context":
            return 200, {"ancestors": [], "descendants": self._descendants(parts[4])}, {}
        if len(parts) == 5 and parts[3] == "statuses":
            found = self.statuses.get(int(parts[4]))
            return (200, found, {}) if found else (404, {"error": "Record not found"}, {})
        return 404, {"error": "Record not found"}, {}

    def _descendants(self, sid: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        for status in sorted(self.statuses.values(), key=lambda s: int(s["id"])):
            if status["in_reply_to_id"] == sid:
                found += [status, *self._descendants(status["id"])]
        return found

    def paged(self, path: str) -> list[dict[str, list[str]]]:
        """The queries of the requests made to ``path``, in order."""
        return [
            parse_qs(urlsplit(r.url or "").query)
            for r in self.requests
            if urlsplit(r.url or "").path.startswith(path)
        ]


def _page(items: list[dict[str, Any]], query: dict[str, list[str]]) -> list[dict[str, Any]]:
    """Mastodon's id paging: newest first; min_id gives the page just above it."""
    limit = int(query.get("limit", ["20"])[0])
    newest_first = sorted(items, key=lambda s: int(s["id"]), reverse=True)
    if "max_id" in query:
        newest_first = [s for s in newest_first if int(s["id"]) < int(query["max_id"][0])]
    if "since_id" in query:
        newest_first = [s for s in newest_first if int(s["id"]) > int(query["since_id"][0])]
    if "min_id" in query:
        above = [s for s in newest_first if int(s["id"]) > int(query["min_id"][0])]
        return list(reversed(list(reversed(above))[:limit]))
    return newest_first[:limit]


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _response(
    request: requests.PreparedRequest, status: int, body: Any, headers: dict[str, str]
) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response.reason = "OK" if status == 200 else "Error"
    response._content = json.dumps(body).encode()
    response.headers = CaseInsensitiveDict({"Content-Type": "application/json", **headers})
    response.url = request.url or ""
    response.request = request
    return response


@dataclass
class Chat:
    """A fake instance with the bot's welcome and two questions, and a network reading it."""

    server: FakeInstance
    network: MastodonNetwork
    clock: FakeClock
    welcome: str
    q1: str
    q2: str

    def thread(self) -> ChatThread:
        refs = tuple(PostRef(NetworkName.MASTODON, i) for i in (self.welcome, self.q1, self.q2))
        return ChatThread("chat", TAG, START, refs)

    def collect(self, cursors: dict[str, str] | None = None) -> Collected:
        return self.network.collect(self.thread(), dict(cursors or {}))


def _chat(
    *, sweep_every: int = 8, extra: FakeInstance | None = None, server: FakeInstance | None = None
) -> Chat:
    """The chat on ``server`` (a new fake instance if None), read by a real network."""
    server = server if server is not None else FakeInstance()
    clock = FakeClock(START + timedelta(hours=1))
    session = requests.Session()
    session.mount(INSTANCE, server)
    if extra is not None:
        session.mount(extra.base, extra)
    network = MastodonNetwork(
        instance=INSTANCE,
        access_token=SecretStr("token"),
        session=session,
        clock=clock,
        sleep=lambda _s: None,
        sweep_every=sweep_every,
        extra_instances=[extra.base] if extra is not None else [],
    )
    welcome = server.add(BOT, f"Welcome to #{TAG}!")
    q1 = server.add(BOT, f"Q1: what works? #{TAG}", reply_to=welcome)
    q2 = server.add(BOT, f"Q2: what next? #{TAG}", reply_to=q1)
    return Chat(server, network, clock, welcome, q1, q2)


ANA = _account("ana")
BEN = _account("ben@remote.example")


# --- mapping and opt-outs ----------------------------------------------------------------


def test_a_status_becomes_a_seen_post_with_every_field() -> None:
    """Text from HTML with the content warning first, full handle, aware UTC times,
    reply, quote, lowercase tags, counts and the author's flags."""
    status = {
        "id": 77,
        "uri": f"{INSTANCE}/users/ana/statuses/77",
        "url": f"{INSTANCE}/@ana/77",
        "account": {**ANA, "bot": True},
        "content": '<p>A1: stations<br>and timers <a href="x">#<span>BLchat</span></a></p>',
        "spoiler_text": "Long answer",
        "in_reply_to_id": 12,
        "created_at": "2027-03-04T19:05:00.000Z",
        "edited_at": "2027-03-04T20:05:00+01:00",
        "tags": [{"name": "BLchat"}, {"name": "blchat"}, {"name": "Edu"}],
        "favourites_count": 4,
        "reblogs_count": 3,
        "quote": {"state": "accepted", "quoted_status_id": 55},
    }
    seen = seen_status(status, domain="school.example")
    assert seen.uri == f"{INSTANCE}/users/ana/statuses/77"
    assert (seen.id, seen.reply_to, seen.quote_of) == ("77", "12", "55")
    assert seen.url == f"{INSTANCE}/@ana/77"
    assert seen.text == "Long answer\n\nA1: stations\nand timers #BLchat"
    assert seen.created_at == datetime(2027, 3, 4, 19, 5, tzinfo=UTC)
    assert seen.edited_at == datetime(2027, 3, 4, 19, 5, tzinfo=UTC)
    assert seen.tags == ("blchat", "edu")
    assert (seen.likes, seen.reposts) == (4, 3)
    author = seen.author
    assert (author.id, author.handle, author.display_name) == (
        ANA["id"],
        "ana@school.example",
        "Ana",
    )
    assert author.bot and author.opt_out == ""
    remote = seen_status({**status, "account": BEN, "quote": None}, domain="school.example")
    assert remote.author.handle == "ben@remote.example"
    assert remote.quote_of is None


@pytest.mark.parametrize(
    ("account", "reason"),
    [
        ({"note": "<p>Teacher. #NoBot</p>"}, "#nobot in the profile"),
        (
            {"note": '<p>Librarian <a href="x" class="hashtag">#<span>nobots</span></a></p>'},
            "#nobots in the profile",
        ),
        ({"fields": [{"name": "bots", "value": "<p>#noindex</p>"}]}, "#noindex in the profile"),
        ({"note": "<p>#nobotty is not a tag we know</p>"}, ""),
        ({"noindex": True}, ""),  # the web only: see web_opt_out_reason
        ({"indexable": False}, ""),  # search only, and most accounts' default
        ({"indexable": None, "noindex": None}, ""),  # older servers: no signal
        (
            {"note": "#nobot", "fields": [{"name": "x", "value": "#noindex"}]},
            "#nobot in the profile",
        ),
    ],
)
def test_opt_out_signals_come_from_the_bio_and_fields(account: dict[str, Any], reason: str) -> None:
    """#nobot and its variants in the bio or the profile fields keep a person out of every
    public output; noindex and indexable do not."""
    assert opt_out_reason({**ANA, **account}) == reason


@pytest.mark.parametrize(
    ("account", "reason"),
    [({"noindex": True}, "noindex"), ({"noindex": False}, ""), ({"noindex": None}, "")],
)
def test_noindex_keeps_a_person_off_the_web_only(account: dict[str, Any], reason: str) -> None:
    """noindex (the person asked search engines to stay away) is a web opt-out."""
    assert web_opt_out_reason({**ANA, **account}) == reason


def test_indexable_false_counts_only_when_the_config_asks() -> None:
    """indexable: false is Mastodon's default for most people: it is a signal only on request."""
    assert opt_out_reason({**ANA, "indexable": False}) == ""
    assert opt_out_reason({**ANA, "indexable": False}, indexable_opts_out=True) == (
        "indexable: false"
    )


def test_the_network_is_a_reader() -> None:
    """The runner reads every network that satisfies the Reader Protocol."""
    assert isinstance(_chat().network, Reader)


# --- the hashtag timeline ----------------------------------------------------------------


def test_the_hashtag_is_read_forward_without_gaps_or_rereads() -> None:
    """95 posts, then 50 more: every one once; each page starts where the last one ended."""
    chat = _chat()
    first = [chat.server.add(ANA, f"A1: idea {n} #{TAG}") for n in range(95)]
    round1 = chat.collect()
    assert sorted(p.id for p in round1.posts) == first
    assert round1.cursors["tag"] == first[-1]
    pages = chat.server.paged(f"/api/v1/timelines/tag/{TAG}")
    tagged = [chat.q1, chat.q2, *first]  # the bot's questions carry the hashtag too
    assert [q["min_id"][0] for q in pages] == [chat.welcome, tagged[39], tagged[79], first[-1]]
    assert all(q["limit"] == ["40"] for q in pages)

    second = [chat.server.add(ANA, f"A2: more {n} #{TAG}") for n in range(50)]
    round2 = chat.collect(round1.cursors)
    assert sorted(p.id for p in round2.posts) == second
    assert round2.cursors["tag"] == second[-1]
    assert chat.collect(round2.cursors).posts == ()


def test_an_error_raises_before_any_cursor_moves_and_the_retry_loses_nothing() -> None:
    """A 429 on the second page: RateLimited at the reset; the same cursors later read it all.
    A 5xx is Transient, a 401 AuthFailed; neither returns anything."""
    chat = _chat()
    cursors = chat.collect().cursors
    new = [chat.server.add(ANA, f"A1: idea {n} #{TAG}") for n in range(60)]
    reset = chat.clock() + timedelta(minutes=2)
    limited = (429, {"error": "Too many requests"}, {"X-RateLimit-Reset": _iso(reset)})
    chat.server.faults.append(Fault(f"/api/v1/timelines/tag/{TAG}", limited, after=1))
    with pytest.raises(errors.RateLimited) as raised:
        chat.collect(cursors)
    assert raised.value.retry_at == reset
    chat.clock.set(reset + timedelta(seconds=1))
    retried = chat.collect(cursors)
    assert sorted(p.id for p in retried.posts) == new

    bad_gateway = (502, {"error": "Bad gateway"}, {})
    chat.server.faults.append(Fault("/api/v1/statuses", bad_gateway, count=3))  # it lasts
    with pytest.raises(errors.Transient):
        chat.collect(cursors)
    refused = (401, {"error": "The access token is invalid"}, {})
    chat.server.faults.append(Fault("/api/v1/notifications", refused))
    with pytest.raises(errors.AuthFailed):
        chat.collect(cursors)


def test_after_a_429_nothing_is_sent_before_the_reset() -> None:
    """The pacer holds every request, reading or posting, until the server's reset."""
    chat = _chat()
    reset = chat.clock() + timedelta(minutes=2)
    limited = (429, {"error": "Too many requests"}, {"X-RateLimit-Reset": _iso(reset)})
    chat.server.faults.append(Fault("/api/v1/timelines/tag", limited))
    with pytest.raises(errors.RateLimited):
        chat.collect()
    sent = len(chat.server.requests)
    with pytest.raises(errors.RateLimited, match="pacing") as raised:
        chat.collect()
    assert raised.value.retry_at >= reset
    assert len(chat.server.requests) == sent
    chat.clock.set(reset)
    assert chat.collect().cursors["tag"] == chat.q2


def test_a_stream_wakes_rounds_no_more_often_than_half_the_request_limit_allows() -> None:
    """Mastodon allows 300 requests in 5 minutes (one a second): a round that cost n
    requests is followed by a woken one no sooner than 2n seconds later."""
    chat = _chat()
    cursors = chat.collect().cursors  # the first round also reads what the server is
    sent = len(chat.server.requests)
    chat.collect(cursors)
    cost = len(chat.server.requests) - sent
    assert cost >= 3  # the hashtag, the notifications, the chat's thread
    assert chat.network.woken_gap() == timedelta(seconds=2 * cost)


# --- threads, mentions, edits, deletions ---------------------------------------------------


def test_replies_at_any_depth_come_from_one_context_read() -> None:
    """Replies under Q1 and Q2, without the hashtag, nested: all found with their parents;
    the welcome's context holds the questions, so it is the only one read."""
    chat = _chat()
    r1 = chat.server.add(ANA, "Stations, every day", reply_to=chat.q1)
    r2 = chat.server.add(BEN, "Same here", reply_to=r1)
    r3 = chat.server.add(BEN, "A2: peer tutors", reply_to=chat.q2)
    found = {p.id: p.reply_to for p in chat.collect().posts}
    assert found == {r1: chat.q1, r2: r1, r3: chat.q2}
    contexts = [r for r in chat.server.requests if (r.url or "").endswith("/context")]
    assert len(contexts) == 1 and f"/statuses/{chat.welcome}/" in (contexts[0].url or "")


def test_a_deleted_reply_is_reported_and_its_orphans_are_kept() -> None:
    """A reply deleted: its uri comes back as deleted; the reply under it leaves the
    context too, but it still exists, so it is returned, not deleted."""
    chat = _chat()
    r1 = chat.server.add(ANA, "A1: stations", reply_to=chat.q1)
    r2 = chat.server.add(BEN, "Same here", reply_to=r1)
    cursors = chat.collect().cursors
    uri = chat.server.statuses[int(r1)]["uri"]
    chat.server.delete(r1)
    after = chat.collect(cursors)
    assert after.deleted == (uri,)
    assert [p.id for p in after.posts] == [r2]
    assert chat.collect(after.cursors).deleted == ()


def test_edits_and_deletions_under_the_hashtag_show_on_a_sweep() -> None:
    """A top-level post is in no thread: its edit and its deletion are seen when the
    timeline is swept from the chat's start (every second round here)."""
    chat = _chat(sweep_every=2)
    kept = chat.server.add(ANA, f"A1: first draft #{TAG}")
    dropped = chat.server.add(BEN, f"A2: oops #{TAG}")
    cursors = chat.collect().cursors  # round 1: a sweep
    chat.server.edit(kept, f"A1: final answer #{TAG}", START + timedelta(minutes=9))
    uri = chat.server.statuses[int(dropped)]["uri"]
    chat.server.delete(dropped)
    quiet = chat.collect(cursors)  # round 2: from the cursor only
    assert (quiet.posts, quiet.deleted) == ((), ())
    swept = chat.collect(quiet.cursors)  # round 3: a sweep
    assert swept.deleted == (uri,)
    [edited] = swept.posts
    assert edited.text == f"A1: final answer #{TAG}"
    assert edited.edited_at == START + timedelta(minutes=9)
    assert dropped not in swept.cursors["tagged"]


def test_a_reply_to_a_participants_own_post_is_collected_on_a_sweep() -> None:
    """A conversation beside the bot's thread: a reply (no hashtag) to someone's top-level
    hashtag post is read on a sweep, once its post's reply count changes; a later sweep
    with the count unchanged reads nothing more, and a deletion there is noticed."""
    chat = _chat(sweep_every=2)
    top = chat.server.add(ANA, f"A1: stations #{TAG}")
    cursors = chat.collect().cursors  # round 1: a sweep, no replies yet
    reply = chat.server.add(BEN, "Love this, stealing it", reply_to=top)
    quiet = chat.collect(cursors)  # round 2: from the cursor only
    assert reply not in {p.id for p in quiet.posts}
    swept = chat.collect(quiet.cursors)  # round 3: a sweep
    assert {p.id: p.reply_to for p in swept.posts}[reply] == top

    def side_reads() -> int:
        return sum(f"/statuses/{top}/context" in (r.url or "") for r in chat.server.requests)

    assert side_reads() == 1
    again = chat.collect(chat.collect(swept.cursors).cursors)  # rounds 4 and 5 (a sweep)
    assert side_reads() == 1
    uri = chat.server.statuses[int(reply)]["uri"]
    chat.server.delete(reply)
    after = chat.collect(chat.collect(again.cursors).cursors)  # rounds 6 and 7 (a sweep)
    assert after.deleted == (uri,)
    assert side_reads() == 2


def test_mentions_go_back_to_the_chat_start_then_forward() -> None:
    """The first round reads mentions back to the chat's first post (older ones are
    another chat's); later rounds read forward from the cursor."""
    chat = _chat()
    old = chat.server.add(ANA, "@chatbot see you tonight", at=START - timedelta(days=1))
    chat.server.mention(old)
    now = chat.server.add(ANA, "@chatbot A1: morning meetings")
    chat.server.mention(now)
    quote = chat.server.add(BEN, "Love it", quote=chat.q1)
    chat.server.mention(quote, kind="quote")
    round1 = chat.collect()
    assert {p.id: p.quote_of for p in round1.posts} == {now: None, quote: chat.q1}
    later = chat.server.add(BEN, "@chatbot A2: reading buddies")
    chat.server.mention(later)
    round2 = chat.collect(round1.cursors)
    assert [p.id for p in round2.posts] == [later]
    queries = chat.server.paged("/api/v1/notifications")
    assert "min_id" not in queries[0] and queries[-1]["min_id"] == [round2.cursors["mentions"]]
    assert queries[0]["types[]"] == ["mention", "quote"]


def test_statuses_a_stream_carried_become_posts_except_private_ones_and_the_bots_own() -> None:
    chat = _chat()
    chat.collect()  # the bot's account is known
    public = chat.server.add(ANA, f"A1: stations #{TAG}")
    private = chat.server.add(ANA, f"A1: for my followers #{TAG}", visibility="private")
    statuses = [chat.server.statuses[int(i)] for i in (public, private, chat.q2)]
    posts = chat.network._sources.streamed(statuses)
    assert [(p.id, p.text) for p in posts] == [(public, f"A1: stations #{TAG}")]


def test_private_posts_boosts_and_the_bots_own_posts_are_left_out() -> None:
    """Followers-only and direct replies stay private; boosts are no posts; the bot's own
    posts (this chat's or another's) are not the conversation."""
    chat = _chat()
    chat.server.add(ANA, "A1: for my followers", reply_to=chat.q1, visibility="private")
    chat.server.add(ANA, "A1: just to you", reply_to=chat.q1, visibility="direct")
    chat.server.add(BOT, f"Next month: #{TAG} again!")
    boost = chat.server.add(BEN, f"#{TAG}")
    chat.server.statuses[int(boost)]["reblog"] = chat.server.statuses[int(chat.q1)]
    shown = chat.server.add(ANA, "A1: unlisted is fine", reply_to=chat.q1, visibility="unlisted")
    assert [p.id for p in chat.collect().posts] == [shown]


# --- other instances -----------------------------------------------------------------------


def test_other_instances_add_the_posts_ours_never_saw() -> None:
    """Another instance's public #tag timeline: a post ours has is left out (same uri); a
    new one comes with its uri as id and the author's id on our instance."""
    other = FakeInstance(base=OTHER)
    chat = _chat(extra=other)
    cleo_there = _account("cleo", url=f"{OTHER}/@cleo")
    cleo_here = {**_account("cleo@other.example"), "id": "555"}
    chat.server.accounts.append(cleo_here)
    ours = chat.server.add(ANA, f"A1: stations #{TAG}")
    other.next_id = 5000
    copy = other.add(ANA, f"A1: stations #{TAG}")
    other.statuses[int(copy)]["uri"] = chat.server.statuses[int(ours)]["uri"]
    new = other.add(cleo_there, f"A2: choice boards #{TAG}")
    reply = other.add(cleo_there, "and timers", reply_to=new)  # no tag: not in the timeline
    collected = chat.collect()
    uri = other.statuses[int(new)]["uri"]
    assert sorted(p.id for p in collected.posts) == sorted([ours, uri])
    remote = next(p for p in collected.posts if p.id == uri)
    assert (remote.author.id, remote.author.handle) == ("555", "cleo@other.example")
    # Another server's ids mean nothing here: its cursor is the newest time read there.
    read_to = as_utc(collected.cursors["tag@other.example"])
    assert read_to == as_utc(other.statuses[int(new)]["created_at"])
    assert read_to != as_utc(other.statuses[int(reply)]["created_at"])
    assert all(r.headers.get("Authorization") is None for r in other.requests)
