"""The Bluesky adapter offline: record keys, facets, errors and sessions, with a fake PDS.

The fake sits at the network seam (an httpx transport under the real atproto
client); nothing of ours is mocked.
"""

from __future__ import annotations

import base64
import json
import stat
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog
from atproto_client.exceptions import (
    BadRequestError,
    InvokeTimeoutError,
    NetworkError,
    RateLimitExceededError,
    RequestException,
    UnauthorizedError,
)
from atproto_client.models.common import XrpcError
from atproto_client.models.string_formats import TID_RE
from atproto_client.request import Response
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image
from pydantic import SecretStr

from chatbot import errors
from chatbot.networks.base import Attachment, PostRequest
from chatbot.networks.bluesky import BlueskyNetwork
from chatbot.networks.bluesky.calls import translate
from chatbot.networks.bluesky.keys import record_key, tid_from, tid_parts
from chatbot.networks.bluesky.records import to_bluesky_facets
from chatbot.posts import PostRef
from chatbot.script import NetworkName
from chatbot.text import Facet, bluesky_facets

NOW = datetime(2027, 3, 4, 19, 0, tzinfo=UTC)
PASSWORD = "app-pass-word-1234"
DID = "did:plc:bot4testing0000000000000"
HANDLE = "chatbot.test"


# --- record keys ----------------------------------------------------------------------------


def test_tid_extremes_match_the_spec_alphabet() -> None:
    """The smallest and largest TIDs (top bit always 0) are 2222222222222 and bzzzzzzzzzzzz."""
    assert tid_from(0, 0) == "2222222222222"
    assert tid_from((1 << 53) - 1, 1023) == "bzzzzzzzzzzzz"


def test_tid_rejects_out_of_range_parts() -> None:
    """Timestamps need 53 bits and clock ids 10: anything bigger is an error, not a wrap."""
    with pytest.raises(ValueError, match="2\\*\\*53"):
        tid_from(1 << 53, 0)
    with pytest.raises(ValueError, match="1024"):
        tid_from(0, 1024)


@given(st.integers(0, (1 << 53) - 1), st.integers(0, 1023))
def test_tid_is_valid_for_the_sdk_and_round_trips(micros: int, clock_id: int) -> None:
    """Every TID passes the SDK's validator and decodes back to its parts."""
    tid = tid_from(micros, clock_id)
    assert TID_RE.match(tid)
    assert tid_parts(tid) == (micros, clock_id)


@given(
    st.integers(0, (1 << 53) - 2),
    st.integers(0, (1 << 53) - 1),
    st.integers(0, 1023),
    st.integers(0, 1023),
)
def test_tids_sort_by_time(a: int, b: int, clock_a: int, clock_b: int) -> None:
    """A later timestamp always gives a larger TID, whatever the clock ids."""
    if a == b:
        b = a + 1
    early, late = sorted((a, b))
    assert tid_from(early, clock_a) < tid_from(late, clock_b)


def test_record_key_is_deterministic_and_follows_the_planned_time() -> None:
    """Same step, same key; a later step sorts later; candidates move by microseconds."""
    key = record_key(NOW, "idem-q1")
    assert key == record_key(NOW, "idem-q1")
    assert TID_RE.match(key)
    micros, clock = tid_parts(key)
    assert micros == int(NOW.timestamp()) * 1_000_000
    assert record_key(NOW + timedelta(minutes=9), "idem-q2") > key
    assert tid_parts(record_key(NOW, "idem-q1", 2)) == (micros + 2, clock)


def test_record_keys_of_steps_at_the_same_time_differ_by_clock_id() -> None:
    """Two steps planned for the same instant get different keys from their idempotency keys."""
    keys = {record_key(NOW, f"step-{n}") for n in range(20)}
    assert len(keys) >= 19  # 10-bit clock ids: a clash is possible, and handled by candidates


def test_record_key_needs_an_aware_time() -> None:
    """A naive datetime has no defined instant: refused."""
    with pytest.raises(ValueError, match="aware"):
        record_key(datetime(2027, 3, 4, 19, 0), "k")  # noqa: DTZ001 - the point of the test


# --- facets -----------------------------------------------------------------------------------


def test_facets_keep_byte_offsets_after_emoji_and_accents() -> None:
    """Hashtags after accented letters and emoji keep their UTF-8 byte ranges."""
    text = "Café ☕️ Q1: qu'avez-vous lu? #ÉduChat 🎉 #BLchat https://example.org/x"
    converted = to_bluesky_facets(bluesky_facets(text), lambda _h: None)
    encoded = text.encode()
    found = [
        (
            f.features[0].py_type,
            encoded[f.index.byte_start : f.index.byte_end].decode(),
            getattr(f.features[0], "tag", None) or getattr(f.features[0], "uri", None),
        )
        for f in converted
    ]
    assert found == [
        ("app.bsky.richtext.facet#tag", "#ÉduChat", "ÉduChat"),
        ("app.bsky.richtext.facet#tag", "#BLchat", "BLchat"),
        ("app.bsky.richtext.facet#link", "https://example.org/x", "https://example.org/x"),
    ]


def test_mentions_resolve_to_dids_and_unknown_handles_are_dropped() -> None:
    """A mention becomes a DID facet; a handle that does not resolve loses its facet."""
    facets = (
        Facet("mention", 0, 13, "host.bsky.social"),
        Facet("mention", 14, 27, "gone.bsky.social"),
        Facet("tag", 28, 35, "BLchat"),
    )
    resolved = {"host.bsky.social": "did:plc:host"}
    converted = to_bluesky_facets(facets, resolved.get)
    assert [(f.features[0].py_type, f.index.byte_start) for f in converted] == [
        ("app.bsky.richtext.facet#mention", 0),
        ("app.bsky.richtext.facet#tag", 28),
    ]
    assert converted[0].features[0].did == "did:plc:host"


# --- errors -----------------------------------------------------------------------------------


def _response(status: int, error: str = "", headers: dict[str, str] | None = None) -> Response:
    content = XrpcError(error=error, message=f"{error} happened") if error else None
    return Response(False, status, content, headers or {})


def test_rate_limit_becomes_rate_limited_at_the_reset_time() -> None:
    """A 429 waits until RateLimit-Reset (epoch seconds)."""
    reset = NOW + timedelta(minutes=7)
    exc = RateLimitExceededError(
        _response(429, "RateLimitExceeded", {"ratelimit-reset": str(int(reset.timestamp()))})
    )
    result = translate(exc, "posting", NOW)
    assert isinstance(result, errors.RateLimited)
    assert result.retry_at == reset


def test_rate_limit_without_reset_uses_retry_after_or_a_minute() -> None:
    """No reset header: Retry-After, else a minute from now."""
    with_retry = RateLimitExceededError(_response(429, "", {"retry-after": "30"}))
    result = translate(with_retry, "posting", NOW)
    assert isinstance(result, errors.RateLimited)
    assert result.retry_at == NOW + timedelta(seconds=30)
    bare = translate(RateLimitExceededError(_response(429)), "posting", NOW)
    assert isinstance(bare, errors.RateLimited)
    assert bare.retry_at == NOW + timedelta(seconds=60)


@pytest.mark.parametrize(
    ("exc", "expected", "status"),
    [
        (UnauthorizedError(_response(401, "AuthenticationRequired")), errors.AuthFailed, 401),
        (BadRequestError(_response(400, "ExpiredToken")), errors.AuthFailed, 400),
        (BadRequestError(_response(400, "AccountTakedown")), errors.AuthFailed, 400),
        (BadRequestError(_response(400, "InvalidRequest")), errors.Rejected, 400),
        (NetworkError(_response(413, "PayloadTooLarge")), errors.Rejected, 413),
        (NetworkError(_response(502)), errors.Transient, 502),
        (RequestException(_response(500, "InternalServerError")), errors.Transient, 500),
        (RequestException(_response(503)), errors.Transient, 503),
        (NetworkError(), errors.Transient, None),
        (InvokeTimeoutError(), errors.Transient, None),
    ],
)
def test_sdk_errors_become_ours(exc: Exception, expected: type, status: int | None) -> None:
    """Auth problems, refused records and passing trouble are told apart, with the status."""
    assert isinstance(exc, BadRequestError | NetworkError | RequestException | UnauthorizedError)
    result = translate(exc, "posting", NOW)
    assert type(result) is expected
    assert result.status == status


# --- a fake PDS at the HTTP seam ----------------------------------------------------------


def _jwt(scope: str, exp: datetime) -> str:
    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    payload = {"scope": scope, "sub": DID, "exp": int(exp.timestamp()), "iat": 0}
    return f"{part({'alg': 'ES256K', 'typ': 'JWT'})}.{part(payload)}.c2lnbmF0dXJl"


class FakePds:
    """Just enough of a PDS: sessions, putRecord/getRecord, uploadBlob, resolveHandle."""

    def __init__(self) -> None:
        self.records: dict[str, dict[str, Any]] = {}
        self.calls: list[str] = []
        self.bodies: list[dict[str, Any]] = []
        self.sessions_created = 0
        self.valid_access: set[str] = set()
        self.fail_next: dict[str, tuple[int, dict[str, Any], dict[str, str]]] = {}

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def _session(self) -> dict[str, Any]:
        self.sessions_created += 1
        access = _jwt(
            "com.atproto.access",
            datetime.now(UTC) + timedelta(hours=2, seconds=self.sessions_created),
        )
        self.valid_access.add(access)
        return {
            "accessJwt": access,
            "refreshJwt": _jwt("com.atproto.refresh", datetime.now(UTC) + timedelta(days=60)),
            "handle": HANDLE,
            "did": DID,
        }

    def handle(self, request: httpx.Request) -> httpx.Response:
        method = request.url.path.removeprefix("/xrpc/")
        self.calls.append(method)
        if method in self.fail_next:
            status, body, headers = self.fail_next.pop(method)
            return httpx.Response(status, json=body, headers=headers)
        if method == "com.atproto.server.createSession":
            body = json.loads(request.content)
            if body["identifier"] != HANDLE or body["password"] != PASSWORD:
                return _error(401, "AuthenticationRequired", "Invalid identifier or password")
            return httpx.Response(200, json=self._session())
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        if token not in self.valid_access:
            return _error(400, "ExpiredToken", "Token has expired")
        if method == "com.atproto.server.getSession":
            return httpx.Response(200, json={"handle": HANDLE, "did": DID})
        if method == "com.atproto.repo.putRecord":
            body = json.loads(request.content)
            self.bodies.append(body)
            rkey = body["rkey"]
            if rkey in self.records:
                return _error(400, "InvalidSwap", f"Record was at cid-{rkey}")
            self.records[rkey] = body["record"]
            return httpx.Response(200, json={"uri": _uri(rkey), "cid": f"cid-{rkey}"})
        if method == "com.atproto.repo.getRecord":
            rkey = request.url.params["rkey"]
            if rkey not in self.records:
                return _error(400, "RecordNotFound", "Could not locate record")
            return httpx.Response(
                200, json={"uri": _uri(rkey), "cid": f"cid-{rkey}", "value": self.records[rkey]}
            )
        if method == "com.atproto.repo.uploadBlob":
            return httpx.Response(
                200,
                json={
                    "blob": {
                        "$type": "blob",
                        "ref": {
                            "$link": "bafkreibr2x2z63qrz6buq4rvfnoqvvxqjqbis4fflkiz4e7tfdmxtvhiim"
                        },
                        "mimeType": "image/png",
                        "size": len(request.content),
                    }
                },
            )
        if method == "com.atproto.identity.resolveHandle":
            if request.url.params["handle"] == "host.test":
                return httpx.Response(200, json={"did": "did:plc:host"})
            return _error(400, "InvalidRequest", "Unable to resolve handle")
        return _error(501, "MethodNotImplemented", method)


def _uri(rkey: str) -> str:
    return f"at://{DID}/app.bsky.feed.post/{rkey}"


def _error(status: int, error: str, message: str) -> httpx.Response:
    return httpx.Response(status, json={"error": error, "message": message})


@pytest.fixture
def pds() -> FakePds:
    return FakePds()


@pytest.fixture
def captured() -> Iterator[list[dict[str, Any]]]:
    with structlog.testing.capture_logs() as logs:
        yield logs


def _network(pds: FakePds, data_dir: Path, password: str = PASSWORD) -> BlueskyNetwork:
    return BlueskyNetwork(
        service="https://pds.example",
        handle=HANDLE,
        app_password=SecretStr(password),
        session_dir=data_dir / "sessions",
        transport=pds.transport(),
        clock=lambda: NOW,
    )


def _request(
    key: str = "idem-welcome", text: str = "Welcome to #BLchat!", **kw: Any
) -> PostRequest:
    return PostRequest(
        idempotency_key=key, text=text, facets=tuple(bluesky_facets(text)), created_at=NOW, **kw
    )


def test_construction_makes_no_request(pds: FakePds, tmp_path: Path) -> None:
    """Building the client is offline; the session starts with the first real call."""
    network = _network(pds, tmp_path)
    assert pds.calls == []
    assert network.limits().mastodon_max_characters == 500
    network.close()


def test_post_is_create_only_and_a_repeat_returns_the_first_post(
    pds: FakePds, tmp_path: Path
) -> None:
    """putRecord carries swapRecord: null; a repeat (InvalidSwap) answers with the existing post."""
    network = _network(pds, tmp_path)
    first = network.post(_request())
    again = network.post(_request())
    assert again == first
    assert len(pds.records) == 1
    assert all("swapRecord" in body and body["swapRecord"] is None for body in pds.bodies)
    assert first.id == _uri(record_key(NOW, "idem-welcome"))
    assert first.cid == f"cid-{record_key(NOW, 'idem-welcome')}"
    record = next(iter(pds.records.values()))
    assert record["facets"][0]["features"][0] == {
        "$type": "app.bsky.richtext.facet#tag",
        "tag": "BLchat",
    }


def test_a_posts_link_names_the_bot_by_handle_in_the_configured_web_app(
    pds: FakePds, tmp_path: Path
) -> None:
    """Links are one form everywhere (handle, not DID), on the web app the config names."""
    network = BlueskyNetwork(
        service="https://pds.example",
        handle=HANDLE,
        app_password=SecretStr(PASSWORD),
        session_dir=tmp_path / "sessions",
        transport=pds.transport(),
        clock=lambda: NOW,
        web="https://social.district.example/",
    )
    posted = network.post(_request())
    key = record_key(NOW, "idem-welcome")
    assert posted.url == f"https://social.district.example/profile/{HANDLE}/post/{key}"
    network.close()


def test_a_key_held_by_another_post_moves_to_the_next_candidate(
    pds: FakePds, tmp_path: Path
) -> None:
    """If the record key is taken by a different text, the post gets the next key, once."""
    network = _network(pds, tmp_path)
    pds.records[record_key(NOW, "idem-q1")] = {"text": "someone else's post", "createdAt": "x"}
    ref = network.post(_request("idem-q1", "Q1: what works? #BLchat"))
    assert ref.id == _uri(record_key(NOW, "idem-q1", 1))
    assert network.find(_request("idem-q1", "Q1: what works? #BLchat")) == ref
    assert network.post(_request("idem-q1", "Q1: what works? #BLchat")) == ref
    assert len(pds.records) == 2


def test_find_returns_nothing_when_nothing_was_posted(pds: FakePds, tmp_path: Path) -> None:
    """find() only reads: no record, no post."""
    network = _network(pds, tmp_path)
    assert network.find(_request()) is None
    assert "com.atproto.repo.putRecord" not in pds.calls


def test_a_retry_looks_before_uploading_again(pds: FakePds, tmp_path: Path) -> None:
    """A request with an earlier attempt that landed is answered without any upload or write."""
    network = _network(pds, tmp_path)
    picture = tmp_path / "pic.png"
    Image.new("RGB", (30, 20)).save(picture)
    request = _request(attachments=(Attachment(picture, "a black box"),))
    first = network.post(request)
    pds.calls.clear()
    retried = PostRequest(**{**request.__dict__, "first_attempt_at": NOW})
    assert network.post(retried) == first
    assert "com.atproto.repo.uploadBlob" not in pds.calls
    assert "com.atproto.repo.putRecord" not in pds.calls


def test_reply_refs_images_and_mentions(pds: FakePds, tmp_path: Path) -> None:
    """A reply points root and parent at their strong refs; images carry alt and aspect ratio."""
    network = _network(pds, tmp_path)
    picture = tmp_path / "pic.png"
    Image.new("RGB", (300, 200)).save(picture)
    root = PostRef(NetworkName.BLUESKY, _uri("3root22222222"), cid="cid-root")
    parent = PostRef(NetworkName.BLUESKY, _uri("3parent222222"), cid="cid-parent")
    text = "Q2: hi @host.test and @nobody.test #BLchat"
    network.post(
        _request(
            "idem-q2",
            text,
            root=root,
            parent=parent,
            attachments=(Attachment(picture, "A chart of the answers"),),
        )
    )
    record = next(iter(pds.records.values()))
    assert (record["reply"]["root"]["uri"], record["reply"]["root"]["cid"]) == (root.id, "cid-root")
    assert (record["reply"]["parent"]["uri"], record["reply"]["parent"]["cid"]) == (
        parent.id,
        "cid-parent",
    )
    image = record["embed"]["images"][0]
    assert image["alt"] == "A chart of the answers"
    assert (image["aspectRatio"]["width"], image["aspectRatio"]["height"]) == (300, 200)
    features = [f["features"][0] for f in record["facets"]]
    assert {"$type": "app.bsky.richtext.facet#mention", "did": "did:plc:host"} in features
    assert len(features) == 2  # @nobody.test did not resolve


def test_account_names_who_the_session_signed_in(pds: FakePds, tmp_path: Path) -> None:
    """check reads the DID and handle from the session the server gave, and the profile labels."""
    account = _network(pds, tmp_path).account()
    assert (account.id, account.handle, account.is_bot) == (DID, HANDLE, False)
    assert pds.calls == ["com.atproto.server.createSession", "com.atproto.repo.getRecord"]


def test_session_file_is_private_and_resumed_without_login(
    pds: FakePds, tmp_path: Path, captured: list[dict[str, Any]]
) -> None:
    """The session is stored 0600 in a 0700 folder; the next start resumes it, no createSession."""
    first = _network(pds, tmp_path)
    first.post(_request())
    path = first.session_file
    assert path == tmp_path / "sessions" / "bluesky-chatbot.test.session"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert pds.sessions_created == 1
    first.close()

    second = _network(pds, tmp_path, password="not-even-used")
    assert second.find(_request()) is not None
    assert pds.sessions_created == 1
    assert second.logins == 0
    events = [entry["event"] for entry in captured]
    assert events.count("bluesky login (new session)") == 1
    assert events.count("bluesky session resumed") == 1
    second.close()


def test_a_rejected_stored_session_logs_in_once(
    pds: FakePds, tmp_path: Path, captured: list[dict[str, Any]]
) -> None:
    """A stored session the server refuses is replaced by one new login."""
    first = _network(pds, tmp_path)
    first.post(_request())
    pds.valid_access.clear()  # the server forgot every session
    second = _network(pds, tmp_path)
    assert second.find(_request()) is not None
    assert pds.sessions_created == 2
    assert [e["event"] for e in captured].count("bluesky stored session rejected") == 1


def test_a_corrupt_session_file_falls_back_to_login(pds: FakePds, tmp_path: Path) -> None:
    """A damaged session file is not fatal: the bot logs in and overwrites it."""
    network = _network(pds, tmp_path)
    network.session_file.parent.mkdir(parents=True)
    network.session_file.write_text("garbage")
    assert network.find(_request()) is None
    assert pds.sessions_created == 1
    assert network.session_file.read_text().count(":::") == 4


def test_a_session_that_dies_mid_run_logs_in_again(pds: FakePds, tmp_path: Path) -> None:
    """ExpiredToken on a call with a resumed session: one new login, then the call succeeds."""
    _network(pds, tmp_path).find(_request())  # an earlier run stored a session
    network = _network(pds, tmp_path)
    network.find(_request())  # resumed
    pds.valid_access.clear()
    assert network.post(_request()).id.startswith("at://")
    assert pds.sessions_created == 2
    assert network.logins == 1


def test_a_fresh_session_is_not_replaced_in_a_loop(pds: FakePds, tmp_path: Path) -> None:
    """A session created moments ago and refused at once: AuthFailed, not another login."""
    network = _network(pds, tmp_path)
    network.find(_request())
    pds.valid_access.clear()
    with pytest.raises(errors.AuthFailed):
        network.post(_request())
    assert pds.sessions_created == 1


def test_a_refused_password_is_not_retried_at_once(pds: FakePds, tmp_path: Path) -> None:
    """createSession is rate limited with a lock-out: a refused password waits before a retry."""
    network = _network(pds, tmp_path, password="wrong-password-999")
    for _ in range(3):
        with pytest.raises(errors.AuthFailed):
            network.post(_request())
    assert pds.calls.count("com.atproto.server.createSession") == 1


def test_wrong_password_is_auth_failed_and_never_logged(
    pds: FakePds, tmp_path: Path, captured: list[dict[str, Any]]
) -> None:
    """A refused app password raises AuthFailed; neither logs nor the message contain it."""
    network = _network(pds, tmp_path, password="wrong-password-999")
    with pytest.raises(errors.AuthFailed) as raised:
        network.post(_request())
    assert "wrong-password-999" not in str(raised.value)
    assert "wrong-password-999" not in repr(captured)


def test_secrets_never_reach_the_logs(
    pds: FakePds, tmp_path: Path, captured: list[dict[str, Any]]
) -> None:
    """Neither the app password nor any token of the session appears in a log line."""
    network = _network(pds, tmp_path)
    network.post(_request())
    session = network.session_file.read_text()
    logged = repr(captured)
    assert PASSWORD not in logged
    for secret in session.split(":::")[2:4]:
        assert secret not in logged


def test_rate_limited_post(pds: FakePds, tmp_path: Path) -> None:
    """A 429 on putRecord raises RateLimited with the server's reset time."""
    network = _network(pds, tmp_path)
    reset = int((datetime.now(UTC) + timedelta(minutes=3)).timestamp())
    pds.fail_next["com.atproto.repo.putRecord"] = (
        429,
        {"error": "RateLimitExceeded", "message": "Rate Limit Exceeded"},
        {"RateLimit-Reset": str(reset), "RateLimit-Remaining": "0"},
    )
    with pytest.raises(errors.RateLimited) as raised:
        network.post(_request())
    assert raised.value.retry_at == datetime.fromtimestamp(reset, UTC)


def test_unreachable_pds_is_transient(tmp_path: Path) -> None:
    """A connection error is worth retrying later (and burns no login)."""

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    network = BlueskyNetwork(
        service="https://pds.example",
        handle=HANDLE,
        app_password=SecretStr(PASSWORD),
        session_dir=tmp_path,
        transport=httpx.MockTransport(refuse),
    )
    with pytest.raises(errors.Transient):
        network.post(_request())


@pytest.mark.parametrize(
    "answer",
    [
        lambda request: httpx.Response(
            200, content=b"{not json", headers={"Content-Type": "application/json"}
        ),
        lambda request: (_ for _ in ()).throw(
            httpx.RemoteProtocolError("peer closed connection without sending complete body")
        ),
    ],
    ids=["malformed body", "connection closed mid-answer"],
)
def test_an_unreadable_answer_is_transient_not_an_escaped_error(
    tmp_path: Path, answer: Any
) -> None:
    """A 200 whose JSON cannot be read, or a connection closed before the whole answer came,
    is a Transient like any unreadable answer (it escaped as ValueError or httpx's error and
    failed the job: the fault suite found it)."""
    network = BlueskyNetwork(
        service="https://pds.example",
        handle=HANDLE,
        app_password=SecretStr(PASSWORD),
        session_dir=tmp_path,
        transport=httpx.MockTransport(answer),
    )
    with pytest.raises(errors.Transient):
        network.post(_request())
    network.close()
