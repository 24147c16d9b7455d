"""Connections to a server that closes them after each answer (snac), offline and on loopback.

The fake transport stands under :class:`Connections` where urllib3's pool stands;
the loopback server answers one request per connection, as snac does, without a
``Connection: close`` header.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests
from requests.adapters import BaseAdapter
from urllib3.exceptions import NewConnectionError, ProtocolError

from chatbot.networks.mastodon import connections
from chatbot.networks.mastodon.connections import Connections


class Flaky(BaseAdapter):
    """Fails the first ``drops`` requests as a dropped connection (or ``error``), then answers."""

    def __init__(self, drops: int = 1, error: Exception | None = None) -> None:
        super().__init__()
        self.drops = drops
        self.error = error or requests.ConnectionError(
            ProtocolError("Connection aborted.", ConnectionResetError(104, "reset by peer"))
        )
        self.sent: list[str] = []
        self.closes = 0

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        self.sent.append(str(request.method))
        if self.drops > 0:
            self.drops -= 1
            raise self.error
        response = requests.Response()
        response.status_code = 200
        response._content = b"{}"
        response.request = request
        return response

    def close(self) -> None:
        self.closes += 1


def _send(adapter: Connections, method: str) -> requests.Response:
    request = requests.Request(method, "http://snac.example/api/v1/instance").prepare()
    return adapter.send(request)


def test_a_dropped_read_is_sent_once_more() -> None:
    """A GET whose pooled connection was reset is sent again, on a new connection."""
    inner = Flaky(drops=1)
    adapter = Connections(inner=inner)  # type: ignore[arg-type]
    assert _send(adapter, "GET").status_code == 200
    assert inner.sent == ["GET", "GET"]


def test_after_a_drop_every_request_gets_a_new_connection() -> None:
    """Once the server dropped a pooled connection, idle ones are closed after every answer."""
    inner = Flaky(drops=1)
    adapter = Connections(inner=inner)  # type: ignore[arg-type]
    _send(adapter, "GET")
    assert adapter.keep_alive is False
    closes = inner.closes
    _send(adapter, "GET")
    assert inner.closes == closes + 2  # before the request and after its answer


def test_a_write_is_never_sent_twice() -> None:
    """A POST goes on a new connection, and a failure is raised, not retried."""
    inner = Flaky(drops=1)
    adapter = Connections(inner=inner)  # type: ignore[arg-type]
    with pytest.raises(requests.ConnectionError):
        _send(adapter, "POST")
    assert inner.sent == ["POST"]
    assert inner.closes == 1  # the idle connections were closed before it


def test_a_refused_connection_is_not_retried() -> None:
    """Nothing was sent when the connection never opened: the error is the caller's."""
    refused = requests.ConnectionError(NewConnectionError(None, "refused"))  # type: ignore[arg-type]
    inner = Flaky(drops=1, error=refused)
    adapter = Connections(inner=inner)  # type: ignore[arg-type]
    with pytest.raises(requests.ConnectionError):
        _send(adapter, "GET")
    assert inner.sent == ["GET"] and adapter.keep_alive is True


class OneRequest(BaseHTTPRequestHandler):
    """Answers one request, then closes the connection without saying so (as snac does)."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        body = b'{"ok": true}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def snac_like() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), OneRequest)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_server_that_closes_every_connection_is_read_without_errors(snac_like: str) -> None:
    """200 reads back to back from a server that closes after each answer: all answered."""
    with connections.session() as session:
        answers = [session.get(f"{snac_like}/api/v1/instance", timeout=5) for _ in range(200)]
    assert {a.status_code for a in answers} == {200}
