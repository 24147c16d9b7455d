"""The Mastodon adapter offline: errors, idempotency, find and limits, with a fake instance.

The fake sits at the network seam (a requests transport adapter under the real
Mastodon.py client); nothing of ours is mocked.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import structlog
from PIL import Image
from pydantic import SecretStr
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict

from chatbot import errors
from chatbot.kinds import Visibility
from chatbot.networks.base import Attachment, PostRequest
from chatbot.networks.mastodon import MastodonNetwork
from chatbot.networks.mastodon.statuses import comparable, local_mentions
from chatbot.posts import PostRef
from chatbot.script import NetworkName

TOKEN = "secret-token-0123456789"
INSTANCE = "https://mastodon.example"
NOW = datetime(2027, 3, 4, 19, 0, tzinfo=UTC)
NODEINFO_2_0 = "http://nodeinfo.diaspora.software/ns/schema/2.0"

Reply = tuple[int, Any, dict[str, str]]


@dataclass
class FakeInstance(BaseAdapter):
    """Answers Mastodon API requests from a small in-memory state, or from queued faults."""

    statuses: list[dict[str, Any]] = field(default_factory=list)
    requests: list[requests.PreparedRequest] = field(default_factory=list)
    faults: dict[str, list[Reply | Exception]] = field(default_factory=dict)
    keys: dict[str, dict[str, Any]] = field(default_factory=dict)
    max_characters: Any = 640
    media_ready_after: int = 0
    software: str = "mastodon"  # what its nodeinfo says it runs

    def __post_init__(self) -> None:
        super().__init__()
        self._media_polls = 0

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        self.requests.append(request)
        path = urlsplit(request.url or "").path.rstrip("/")
        queued = self.faults.get(path)
        if queued:
            fault = queued.pop(0)
            if isinstance(fault, Exception):
                raise fault
            return _response(request, *fault)
        return _response(request, *self._route(request, path))

    def close(self) -> None:
        pass

    def _route(self, request: requests.PreparedRequest, path: str) -> Reply:
        if path == "/api/v1/accounts/verify_credentials":
            return 200, _account(), {}
        if path == "/.well-known/nodeinfo":
            return 200, {"links": [{"rel": NODEINFO_2_0, "href": f"{INSTANCE}/nodeinfo/2.0"}]}, {}
        if path == "/nodeinfo/2.0":
            return 200, {"software": {"name": self.software, "version": "4.3.0"}}, {}
        if path == "/api/v2/instance":
            return 200, {"configuration": {"statuses": {"max_characters": self.max_characters}}}, {}
        if path == "/api/v1/instance":
            return 200, {"version": "4.3.0", "uri": "mastodon.example"}, {}
        if path == "/api/v1/statuses" and request.method == "POST":
            return self._post_status(request)
        if path == "/api/v1/accounts/1/statuses":
            query = parse_qs(urlsplit(request.url or "").query)
            newest_first = sorted(self.statuses, key=lambda s: int(s["id"]), reverse=True)
            if "max_id" in query:
                newest_first = [s for s in newest_first if int(s["id"]) < int(query["max_id"][0])]
            page = newest_first[: int(query.get("limit", ["20"])[0])]
            headers = {}
            if page:
                headers["Link"] = f'<{INSTANCE}{path}?max_id={page[-1]["id"]}&limit=2>; rel="next"'
            return 200, page, headers
        if path == "/api/v2/media":
            return 202, {"id": "77", "type": "image", "url": None, "description": "x"}, {}
        if path == "/api/v1/media/77":
            self._media_polls += 1
            ready = self._media_polls > self.media_ready_after
            url = f"{INSTANCE}/media/77.png" if ready else None
            return 200, {"id": "77", "type": "image", "url": url}, {}
        if path.startswith("/api/v1/timelines/tag/"):
            return 200, self.statuses[:3], {}
        return 404, {"error": "Record not found"}, {}

    def _post_status(self, request: requests.PreparedRequest) -> Reply:
        key = request.headers.get("Idempotency-Key")
        if key and key in self.keys:
            return 200, self.keys[key], {}
        body = _form(request)
        status = _status(
            str(100 + len(self.statuses)),
            f"<p>{body['status'][0]}</p>",
            body.get("in_reply_to_id", [None])[0],
            NOW,
        )
        status["visibility"] = body.get("visibility", ["public"])[0]
        status["media_ids"] = body.get("media_ids[]", [])
        self.statuses.append(status)
        if key:
            self.keys[key] = status
        return 200, status, {}


def _form(request: requests.PreparedRequest) -> dict[str, list[str]]:
    body = request.body or ""
    if isinstance(body, bytes):
        body = body.decode()
    if request.headers.get("Content-Type", "").startswith("application/json"):
        data = json.loads(body)
        return {k: v if isinstance(v, list) else [v] for k, v in data.items()}
    return parse_qs(body)


def _account() -> dict[str, Any]:
    return {
        "id": "1",
        "username": "districtchat",
        "acct": "districtchat",
        "bot": True,
        "url": f"{INSTANCE}/@districtchat",
        "created_at": "2026-01-01T00:00:00.000Z",
    }


def _status(sid: str, content: str, reply_to: str | None, created: datetime) -> dict[str, Any]:
    return {
        "id": sid,
        "uri": f"{INSTANCE}/users/districtchat/statuses/{sid}",
        "url": f"{INSTANCE}/@districtchat/{sid}",
        "content": content,
        "in_reply_to_id": reply_to,
        "created_at": created.isoformat().replace("+00:00", "Z"),
        "visibility": "public",
        "account": _account(),
        "media_attachments": [],
    }


def _response(
    request: requests.PreparedRequest, status: int, body: Any, headers: dict[str, str]
) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response.reason = {200: "OK", 202: "Accepted"}.get(status, "Error")
    response._content = json.dumps(body).encode()
    response.headers = CaseInsensitiveDict({"Content-Type": "application/json", **headers})
    response.url = request.url or ""
    response.request = request
    return response


@pytest.fixture
def instance() -> FakeInstance:
    return FakeInstance()


@pytest.fixture
def captured() -> Iterator[list[dict[str, Any]]]:
    with structlog.testing.capture_logs() as logs:
        yield logs


NetworkFactory = Callable[..., MastodonNetwork]


@pytest.fixture
def make(instance: FakeInstance) -> NetworkFactory:
    def build(**kwargs: Any) -> MastodonNetwork:
        session = requests.Session()
        session.mount("https://", instance)
        kwargs.setdefault("clock", lambda: NOW)
        return MastodonNetwork(
            instance=INSTANCE,
            access_token=SecretStr(TOKEN),
            session=session,
            sleep=lambda _s: None,
            **kwargs,
        )

    return build


def _request(key: str = "k-q1", text: str = "Q1: what works? #BLchat", **kw: Any) -> PostRequest:
    return PostRequest(idempotency_key=key, text=text, created_at=NOW, **kw)


def test_construction_makes_no_request(instance: FakeInstance, make: NetworkFactory) -> None:
    """Building the client is offline."""
    make()
    assert instance.requests == []


def test_post_sends_key_reply_and_visibility(instance: FakeInstance, make: NetworkFactory) -> None:
    """Every status carries the idempotency key, the parent and the visibility asked for."""
    network = make()
    parent = PostRef(NetworkName.MASTODON, "42")
    ref = network.post(_request(parent=parent, root=parent, visibility=Visibility.UNLISTED))
    sent = instance.requests[-1]
    assert sent.headers["Idempotency-Key"] == "k-q1"
    assert sent.headers["Authorization"] == f"Bearer {TOKEN}"
    assert instance.statuses[-1]["in_reply_to_id"] == "42"
    assert instance.statuses[-1]["visibility"] == "unlisted"
    assert ref == PostRef(NetworkName.MASTODON, "100", f"{INSTANCE}/@districtchat/100")


def test_a_repeat_returns_the_same_status(instance: FakeInstance, make: NetworkFactory) -> None:
    """The same key twice: one status (the server answers the repeat with the original)."""
    network = make()
    assert network.post(_request()) == network.post(_request())
    assert len(instance.statuses) == 1


def test_images_wait_for_processing_and_carry_alt(
    instance: FakeInstance, make: NetworkFactory, tmp_path: Path
) -> None:
    """An image still processing (202, url null) is polled until ready, then attached."""
    instance.media_ready_after = 2
    picture = tmp_path / "pic.png"
    Image.new("RGB", (8, 8)).save(picture)
    network = make()
    network.post(_request(attachments=(Attachment(picture, "A bar chart of answers"),)))
    upload = next(r for r in instance.requests if urlsplit(r.url or "").path == "/api/v2/media")
    assert b"A bar chart of answers" in (upload.body or b"")
    assert instance.statuses[-1]["media_ids"] == ["77"]


def test_image_that_never_finishes_is_transient(
    instance: FakeInstance, make: NetworkFactory, tmp_path: Path
) -> None:
    """Bounded wait: an image still processing after the wait is retried later."""
    instance.media_ready_after = 10_000
    picture = tmp_path / "pic.png"
    Image.new("RGB", (8, 8)).save(picture)
    network = make()
    with pytest.raises(errors.Transient, match="still processing"):
        network.post(_request(attachments=(Attachment(picture, "alt"),)))
    assert instance.statuses == []


def test_rate_limit_becomes_rate_limited_at_the_reset_time(
    instance: FakeInstance, make: NetworkFactory
) -> None:
    """A 429 carries X-RateLimit-Reset (ISO 8601): the runner is told to come back then."""
    now = datetime.now(UTC).replace(microsecond=0)
    reset = now + timedelta(minutes=4)
    instance.faults["/api/v1/statuses"] = [
        (
            429,
            {"error": "Too many requests"},
            {
                "X-RateLimit-Limit": "300",
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": reset.isoformat().replace("+00:00", ".000Z"),
                "Date": format_datetime(now, usegmt=True),
            },
        )
    ]
    network = make(clock=lambda: datetime.now(UTC))
    with pytest.raises(errors.RateLimited) as raised:
        network.post(_request())
    assert abs((raised.value.retry_at - reset).total_seconds()) < 3
    assert raised.value.status == 429
    assert isinstance(raised.value.__cause__, Exception)


def test_rate_limit_without_a_usable_reset_waits_a_minute(
    instance: FakeInstance, make: NetworkFactory
) -> None:
    """No reset header: retry a minute later rather than at once."""
    instance.faults["/api/v1/statuses"] = [(429, {"error": "Too many requests"}, {})]
    network = make()
    with pytest.raises(errors.RateLimited) as raised:
        network.post(_request())
    assert raised.value.retry_at == NOW + timedelta(seconds=60)


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (401, errors.AuthFailed),
        (403, errors.AuthFailed),
        (422, errors.Rejected),
        (404, errors.Rejected),
        (500, errors.Transient),
        (502, errors.Transient),
        (503, errors.Transient),
    ],
)
def test_http_errors_become_ours(
    instance: FakeInstance, make: NetworkFactory, status: int, expected: type
) -> None:
    """Auth, refused posts and server trouble are told apart and keep their status."""
    instance.faults["/api/v1/statuses"] = [(status, {"error": "Validation failed"}, {})]
    with pytest.raises(expected) as raised:
        make().post(_request())
    assert raised.value.status == status
    assert TOKEN not in str(raised.value)


@pytest.mark.parametrize(
    "exc",
    [
        requests.ConnectionError("connection refused"),
        requests.ReadTimeout("read timed out"),
    ],
)
def test_network_failures_are_transient(
    instance: FakeInstance, make: NetworkFactory, exc: Exception
) -> None:
    """A dropped connection or a timeout is worth retrying with the same key."""
    instance.faults["/api/v1/statuses"] = [exc]
    with pytest.raises(errors.Transient):
        make().post(_request())


def test_malformed_answer_is_transient(instance: FakeInstance, make: NetworkFactory) -> None:
    """A 200 whose body is not JSON: the post may exist; a retry with the key is safe."""

    def broken(request: requests.PreparedRequest) -> requests.Response:
        response = _response(request, 200, {}, {})
        response._content = b"<html>oops"
        return response

    original = instance.send

    def send(request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        if urlsplit(request.url or "").path == "/api/v1/statuses":
            return broken(request)
        return original(request, **kwargs)

    instance.send = send  # type: ignore[method-assign]
    with pytest.raises(errors.Transient):
        make().post(_request())


def test_find_matches_parent_and_text_through_html(
    instance: FakeInstance, make: NetworkFactory
) -> None:
    """find() reads the bot's own statuses: same parent, same text once the HTML is removed."""
    tag = (
        '<a href="https://mastodon.example/tags/BLchat" class="mention hashtag" rel="tag">'
        "#<span>BLchat</span></a>"
    )
    instance.statuses += [
        _status("7", f"<p>Q1: what   works? {tag}</p>", "42", NOW),
        _status("8", f"<p>Q1: what works? {tag}</p>", None, NOW),
        _status("9", "<p>Q2: something else</p>", "42", NOW),
    ]
    network = make()
    parent = PostRef(NetworkName.MASTODON, "42")
    found = network.find(_request(parent=parent))
    assert found is not None and found.id == "7"
    assert network.find(_request()) == PostRef(
        NetworkName.MASTODON, "8", f"{INSTANCE}/@districtchat/8"
    )
    assert network.find(_request(text="Q3: never posted #BLchat")) is None


def test_find_pages_through_older_statuses_and_stops(
    instance: FakeInstance, make: NetworkFactory
) -> None:
    """find() follows pagination a bounded number of pages, and stops at posts too old."""
    for n in range(100):
        instance.statuses.append(_status(str(n), f"<p>chatter {n}</p>", None, NOW))
    instance.statuses[3]["content"] = "<p>Q1: what works? #BLchat</p>"
    network = make()
    assert network.find(_request()) is not None  # on the third page of 40
    old = [
        _status(str(200 + n), f"<p>old {n}</p>", None, NOW - timedelta(hours=5)) for n in range(5)
    ]
    instance.statuses[:] = old
    pages_before = len(instance.requests)
    found = network.find(_request(first_attempt_at=NOW - timedelta(hours=1)))
    assert found is None
    assert len(instance.requests) - pages_before == 1  # one page: older than the attempt


def test_a_late_retry_looks_before_posting(instance: FakeInstance, make: NetworkFactory) -> None:
    """Past ~50 minutes the key may be forgotten: a post found among the bot's statuses wins."""
    instance.statuses.append(_status("5", "<p>Q1: what works? #BLchat</p>", None, NOW))
    network = make()
    ref = network.post(_request(first_attempt_at=NOW - timedelta(minutes=55)))
    assert ref.id == "5"
    assert len(instance.statuses) == 1


def test_an_early_retry_trusts_the_key(instance: FakeInstance, make: NetworkFactory) -> None:
    """Within the hour the server's key answers: no search first."""
    network = make()
    network.post(_request(first_attempt_at=NOW - timedelta(minutes=5)))
    paths = [urlsplit(r.url or "").path for r in instance.requests]
    assert "/api/v1/accounts/1/statuses" not in paths


def test_limits_from_instance_override_and_default(
    instance: FakeInstance, make: NetworkFactory, captured: list[dict[str, Any]]
) -> None:
    """The instance's max_characters is read once; the config's wins; 500 if it names none or
    cannot be read."""
    network = make()
    assert network.limits().mastodon_max_characters == 640
    assert network.limits().mastodon_max_characters == 640
    reads = [r for r in instance.requests if "/api/v2/instance" in (r.url or "")]
    assert len(reads) == 1
    assert make(max_characters=1000).limits().mastodon_max_characters == 1000
    instance.max_characters = "lots"
    assert make().limits().mastodon_max_characters == 500
    instance.faults["/api/v2/instance"] = [(503, {"error": "down"}, {})] * 3
    assert make().limits().mastodon_max_characters == 500
    events = [e["event"] for e in captured]
    assert events.count("the instance names no length limit") == 1
    assert events.count("mastodon limits unreadable") == 1


def test_account_and_hashtag_feed(instance: FakeInstance, make: NetworkFactory) -> None:
    """check reads who the bot is (with its bot flag) and whether the tag timeline answers."""
    instance.statuses.append(_status("1", "<p>hi #BLchat</p>", None, NOW))
    network = make()
    account = network.account()
    assert (account.id, account.handle, account.is_bot) == (
        "1",
        "@districtchat@mastodon.example",
        True,
    )
    assert network.hashtag_feed("#BLchat") == 1


def test_comparable_ignores_whitespace_and_mention_domains() -> None:
    """Mastodon shows @user@domain as @user and collapses whitespace."""
    assert comparable("Hi  @host@mastodon.social\n#BLchat") == comparable("Hi @host #BLchat")
    assert comparable("mail me: a@b.org") == "mail me: a@b.org"


def test_local_accounts_are_mentioned_by_their_bare_name(
    instance: FakeInstance, make: NetworkFactory
) -> None:
    """@coach@mastodon.example on mastodon.example is posted as @coach (every server reads it
    so; mastodon-mock notifies no one for its own domain); other servers' handles stay."""
    make().post(_request(text="@coach@Mastodon.example Paused. cc @ana@other.example"))
    assert _form(instance.requests[-1])["status"] == ["@coach Paused. cc @ana@other.example"]
    assert local_mentions("@coach@127.0.0.1:8001 hi", "127.0.0.1:8001") == "@coach hi"
    assert local_mentions("@coach@127.0.0.1:80011 hi", "127.0.0.1:8001") == (
        "@coach@127.0.0.1:80011 hi"
    )


def test_find_looks_among_the_parents_replies_for_a_private_answer(
    instance: FakeInstance, make: NetworkFactory
) -> None:
    """snac leaves a direct (private) status out of its author's statuses: a retry of an
    answer to a command finds it in the command's context instead of sending it twice."""
    answer = {**_status("55", "<p>@coach Paused.</p>", "42", NOW), "visibility": "private"}
    instance.faults["/api/v1/statuses/42/context"] = [
        (200, {"ancestors": [], "descendants": [answer]}, {})
    ]
    parent = PostRef(NetworkName.MASTODON, "42")
    found = make().find(_request(text="@coach@mastodon.example Paused.", parent=parent))
    assert found is not None and found.id == "55"


def test_token_never_logged(
    instance: FakeInstance, make: NetworkFactory, captured: list[dict[str, Any]]
) -> None:
    """No log line carries the access token, whatever happens."""
    instance.faults["/api/v2/instance"] = [(401, {"error": "The access token is invalid"}, {})]
    network = make()
    network.limits()
    with pytest.raises(errors.NetworkError):
        instance.faults["/api/v1/statuses"] = [(401, {"error": "invalid token"}, {})]
        network.post(_request())
    assert TOKEN not in repr(captured)
