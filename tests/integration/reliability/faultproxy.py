"""A small fault-injecting HTTP proxy on loopback, seeded, that records every request.

The bot is pointed at the proxy instead of the server. A share of the requests (chosen
by a seeded random generator, in storms: see :class:`Decider`) gets one of these faults
instead of, or on top of, the server's answer:

- ``5xx``: a 500, 502 or 503, the request not forwarded;
- ``429``: a rate limit with its reset in the headers (``Retry-After``, Mastodon's
  ``X-RateLimit-Reset``, the AT Protocol's ``RateLimit-Reset``), not forwarded; the
  time it allows is recorded, to check that no retry comes sooner;
- ``timeout``: no answer for longer than the bot waits, then the connection closed;
- ``malformed``: a 200 whose body is not JSON, not forwarded;
- ``truncated``: forwarded (a post is made), then half the answer and the connection
  closed;
- ``dropped``: forwarded or not (half of each), then the connection closed, no answer;
- ``slow``: forwarded, and answered after a delay.

In front of mastodon-mock the proxy can instead *arm* the mock's own fault API for the
request it chose (``MockFaults``), so that the mock answers with the fault.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import math
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import requests

KINDS = ("5xx", "429", "timeout", "malformed", "truncated", "dropped", "slow")
RESET_SECONDS = 2  # a 429's reset: this many whole seconds after the next full second
TIMEOUT_SECONDS = 8.0  # longer than the bot's 7 s request timeout
SLOW_SECONDS = 1.5
STORM_SECONDS = 2.0
IN_STORM = 0.9  # of the requests in a storm fail
BETWEEN_STORMS = 0.3  # of those between storms, while fewer than the share failed
EARLY_TOLERANCE = 0.05  # s: clock reading jitter between the proxy's threads
_HOP = {"connection", "keep-alive", "transfer-encoding", "accept-encoding", "host",
        "proxy-connection", "te", "upgrade"}  # fmt: skip


@dataclass
class Exchange:
    """One request through the proxy."""

    at: float  # epoch seconds when it arrived
    method: str
    path: str  # without the query
    fault: str  # "" or one of KINDS
    status: int | None = None  # what the client was answered, if anything
    allowed_at: float | None = None  # after a 429: when the client may come back


class Decider:
    """Which request gets which fault: seeded, in storms as outages come, at least
    ``share`` of the requests in all.

    Time (from the proxy's start) is cut in ``STORM_SECONDS`` windows, every third one a
    storm in which most requests fail. Between storms requests fail only while fewer than
    ``share`` of those so far have. A steady rate would fail nearly every collection round
    (a round is several requests, and one failure fails it); storms fail as many requests,
    and between them rounds get through, as after a real outage.
    """

    def __init__(self, seed: int, share: float, kinds: Sequence[str]) -> None:
        self._rng = random.Random(seed)
        self._share = share
        self._kinds = tuple(kinds)
        self._next: list[str] = []
        self._began = time.monotonic()
        self._seen = 0
        self._faulted = 0
        self._lock = threading.Lock()

    def stormy(self) -> bool:
        return int((time.monotonic() - self._began) / STORM_SECONDS) % 3 == 2

    def __call__(self) -> tuple[str, random.Random]:
        with self._lock:
            behind = self._faulted < self._share * (self._seen + 1)
            rate = IN_STORM if self.stormy() else BETWEEN_STORMS if behind else 0.0
            hit = bool(self._kinds) and self._rng.random() < rate
            if hit and not self._next:  # every kind in turn, in a shuffled order
                self._next = self._rng.sample(self._kinds, len(self._kinds))
            kind = self._next.pop() if hit else ""
            self._seen += 1
            self._faulted += bool(kind)
            return kind, random.Random(self._rng.random())


class FaultProxy:
    """The proxy: ``url`` is where the bot goes; ``exchanges`` what happened."""

    def __init__(
        self,
        upstream: str,
        *,
        seed: int,
        share: float,
        kinds: Sequence[str] = KINDS,
        rewrite: bool = False,
        arm: Callable[[str, str, str], None] | None = None,
    ) -> None:
        """``rewrite``: replace the upstream's address in answers by the proxy's (a PDS
        names itself in its DID documents); ``arm(kind, method, path)``: make the server
        itself answer the chosen fault (mastodon-mock's fault API) instead of the proxy."""
        parts = urlsplit(upstream)
        self.upstream = f"{parts.scheme}://{parts.netloc}"
        self._host, self._port = parts.hostname or "127.0.0.1", parts.port or 80
        self._decide = Decider(seed, share, kinds)
        self._rewrite = rewrite
        self._arm = arm
        self.exchanges: list[Exchange] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        host = "localhost" if parts.hostname == "localhost" else "127.0.0.1"
        self.url = f"{parts.scheme}://{host}:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    # --- what happened -----------------------------------------------------------------

    def record(self, exchange: Exchange) -> None:
        with self._lock:
            self.exchanges.append(exchange)

    def faults(self) -> Counter[str]:
        with self._lock:
            return Counter(e.fault for e in self.exchanges if e.fault)

    def early_retries(self) -> list[str]:
        """Requests sent again (same method and path) before a 429's reset had passed."""
        with self._lock:
            done = sorted(self.exchanges, key=lambda e: e.at)
        early = []
        for index, limited in enumerate(done):
            if limited.status != 429 or limited.allowed_at is None:
                continue
            for later in done[index + 1 :]:
                same = (later.method, later.path) == (limited.method, limited.path)
                if same and later.at < limited.allowed_at - EARLY_TOLERANCE:
                    early.append(
                        f"{later.method} {later.path} {limited.allowed_at - later.at:.2f} s "
                        "before the reset the 429 gave"
                    )
        return early

    # --- the handler ---------------------------------------------------------------------

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet: the exchanges are recorded instead

            def do_GET(self) -> None:
                proxy._serve(self)

            do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_GET

        return Handler

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        kind, rng = self._decide()
        exchange = Exchange(time.time(), handler.command, handler.path.split("?")[0], kind)
        self.record(exchange)
        handler.close_connection = True
        if kind and self._arm is not None and kind not in ("timeout", "dropped"):
            self._arm(kind, handler.command, exchange.path)
            kind = ""  # the server answers with the fault
        if kind == "5xx":
            self._answer(handler, exchange, rng.choice((500, 502, 503)), b'{"error": "injected"}')
        elif kind == "429":
            self._rate_limited(handler, exchange)
        elif kind == "timeout":
            time.sleep(TIMEOUT_SECONDS)
        elif kind == "malformed":
            self._answer(handler, exchange, 200, b"{not json")
        elif kind == "dropped" and rng.random() < 0.5:
            pass  # dropped before it reached the server
        else:
            if kind == "slow":
                time.sleep(SLOW_SECONDS)
            status, headers, answer = self._forward(handler, body)
            if kind == "dropped":
                return
            self._answer(handler, exchange, status, answer, headers,
                         truncated=kind == "truncated")  # fmt: skip

    def _forward(
        self, handler: BaseHTTPRequestHandler, body: bytes
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        connection = http.client.HTTPConnection(self._host, self._port, timeout=60)
        try:
            headers = {k: v for k, v in handler.headers.items() if k.lower() not in _HOP}
            headers["Host"] = f"{self._host}:{self._port}"
            connection.request(handler.command, handler.path, body=body or None, headers=headers)
            response = connection.getresponse()
            answer = response.read()
            kept = [(k, v) for k, v in response.getheaders() if k.lower() not in _HOP]
            status = response.status
        finally:
            connection.close()
        if self._rewrite:
            answer = answer.replace(self.upstream.encode(), self.url.encode())
            kept = [(k, v.replace(self.upstream, self.url)) for k, v in kept]
        return status, kept, answer

    def _rate_limited(self, handler: BaseHTTPRequestHandler, exchange: Exchange) -> None:
        now = time.time()
        reset = math.ceil(now) + RESET_SECONDS
        headers = [
            ("Retry-After", str(math.ceil(reset - now))),
            ("X-RateLimit-Limit", "300"),
            ("X-RateLimit-Remaining", "0"),
            ("X-RateLimit-Reset", datetime.fromtimestamp(reset, UTC).isoformat()),
            ("RateLimit-Limit", "300"),
            ("RateLimit-Remaining", "0"),
            ("RateLimit-Reset", str(reset)),
        ]
        body = json.dumps({"error": "RateLimitExceeded", "message": "Too many requests"})
        self._answer(handler, exchange, 429, body.encode(), headers)

    def _answer(
        self,
        handler: BaseHTTPRequestHandler,
        exchange: Exchange,
        status: int,
        body: bytes,
        headers: Sequence[tuple[str, str]] = (),
        *,
        truncated: bool = False,
    ) -> None:
        exchange.status = status
        if status == 429:
            exchange.allowed_at = allowed_at(headers, exchange.at)
        with contextlib.suppress(OSError):
            handler.send_response_only(status)
            handler.send_header("Date", formatdate(usegmt=True))
            names = {k.lower() for k, _v in headers}
            for name, value in headers:
                if name.lower() not in ("content-length", "date"):
                    handler.send_header(name, value)
            if "content-type" not in names:
                handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(body)))
            handler.send_header("Connection", "close")
            handler.end_headers()
            handler.wfile.write(body[: len(body) // 2] if truncated else body)
            handler.wfile.flush()


def allowed_at(headers: Sequence[tuple[str, str]], at: float) -> float | None:
    """When a 429's headers let the client come back (epoch seconds), the earliest they say."""
    found = {k.lower(): v for k, v in headers}
    times = []
    if "ratelimit-reset" in found:
        times.append(float(found["ratelimit-reset"]))
    if "x-ratelimit-reset" in found:
        value = found["x-ratelimit-reset"]
        with contextlib.suppress(ValueError):
            times.append(
                float(value) if value.isdigit() else datetime.fromisoformat(value).timestamp()
            )
    if "retry-after" in found and found["retry-after"].isdigit():
        times.append(at + float(found["retry-after"]) - 1)  # whole seconds, rounded
    return min(times) if times else None


class MockFaults:
    """Arms mastodon-mock's own fault API (``/api/v1/_mock/faults``) for one request."""

    def __init__(self, api_base_url: str) -> None:
        self._url = f"{api_base_url}/api/v1/_mock/faults"
        self._session = requests.Session()

    def __call__(self, kind: str, method: str, path: str) -> None:
        effect: dict[str, Any] = {
            "5xx": {"type": "status", "status": 503},
            "429": {"type": "ratelimit", "status": 429, "headers": _mock_reset()},
            "malformed": {"type": "malformed", "truncate": False},
            "truncated": {"type": "malformed", "truncate": True},
            "slow": {"type": "latency", "delay_ms": int(SLOW_SECONDS * 1000)},
        }[kind]
        rule = {"match": {"path": path, "methods": [method]}, "effect": effect, "count": 1}
        self._session.post(self._url, json=rule, timeout=10).raise_for_status()

    def close(self) -> None:
        self._session.close()


def _mock_reset() -> dict[str, str]:
    now = time.time()
    reset = math.ceil(now) + RESET_SECONDS
    return {
        "X-RateLimit-Reset": datetime.fromtimestamp(reset, UTC).isoformat(timespec="milliseconds"),
        "Retry-After": str(math.ceil(reset - now)),
    }


@contextlib.contextmanager
def proxied(upstream: str, **kwargs: Any) -> Iterator[FaultProxy]:
    with FaultProxy(upstream, **kwargs) as proxy:
        yield proxy
