"""HTTP connections to a Mastodon-API server that may close them without saying so.

snac2 answers one request per connection and then closes it, without a
``Connection: close`` header; a pooled connection is then sometimes reused after
the server closed it, and the request fails with "connection reset by peer"
(about 1 request in 10, back to back: tests/servers/README.md). Mastodon keeps
connections alive. :class:`Connections` serves both:

- a write (POST, PUT, PATCH, DELETE) always goes on a new connection, so a
  stale one can never make a post's fate uncertain;
- a read (GET, HEAD) that finds its pooled connection dropped is sent once
  more on a new connection: it changes nothing on the server;
- once a server has dropped a pooled connection, or is known to close them
  (:meth:`Connections.keep_alive` set False), every request of that session
  gets a new connection.
"""

from __future__ import annotations

import threading
from typing import Any

import requests
import structlog
from requests.adapters import BaseAdapter, HTTPAdapter
from urllib3.exceptions import ProtocolError

log = structlog.get_logger("chatbot.networks.mastodon")

# Requests that change nothing on the server: safe to send again (RFC 9110 9.2.1).
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def dropped(exc: requests.ConnectionError) -> bool:
    """Whether the connection broke under a request (reset, closed), rather than never opening.

    requests raises ConnectionError both for a refused connection (urllib3's
    MaxRetryError around NewConnectionError: nothing was sent) and for a
    connection that broke (urllib3's ProtocolError "Connection aborted").
    """
    return bool(exc.args) and isinstance(exc.args[0], ProtocolError)


class Connections(BaseAdapter):
    """A transport adapter that keeps connections alive only while the server does."""

    def __init__(self, *, keep_alive: bool = True, inner: HTTPAdapter | None = None) -> None:
        """``inner``: the adapter that sends and pools (a plain HTTPAdapter unless a test gives
        one); ``keep_alive`` False: a new connection for every request from the start."""
        super().__init__()
        self._inner = inner or HTTPAdapter()
        self._keep_alive = keep_alive
        self._lock = threading.Lock()

    @property
    def keep_alive(self) -> bool:
        """Whether idle connections are pooled for the next read."""
        return self._keep_alive

    @keep_alive.setter
    def keep_alive(self, value: bool) -> None:
        self._keep_alive = value
        if not value:
            self._inner.close()

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: Any = None,
        verify: Any = True,
        cert: Any = None,
        proxies: dict[str, str] | None = None,
    ) -> requests.Response:
        options: dict[str, Any] = {
            "stream": stream, "timeout": timeout, "verify": verify, "cert": cert, "proxies": proxies
        }  # fmt: skip
        safe = (request.method or "GET").upper() in SAFE_METHODS
        if not (safe and self._keep_alive):
            self._drop_idle()
        try:
            response = self._inner.send(request, **options)
        except requests.ConnectionError as exc:
            if not (safe and dropped(exc)):
                raise
            if self._keep_alive:
                log.info("server closes idle connections; one connection per request from now on")
                self._keep_alive = False
            self._drop_idle()
            response = self._inner.send(request, **options)
        if not self._keep_alive and not stream:
            _ = response.content  # read it all: the connection returns to the pool...
            self._drop_idle()  # ...and is closed there
        return response

    def close(self) -> None:
        self._inner.close()

    def _drop_idle(self) -> None:
        """Close the pooled idle connections; the next request opens a new one."""
        with self._lock:
            self._inner.close()


def session(*, keep_alive: bool = True) -> requests.Session:
    """A requests.Session whose http and https requests go through :class:`Connections`."""
    made = requests.Session()
    adapter = Connections(keep_alive=keep_alive)
    made.mount("http://", adapter)
    made.mount("https://", adapter)
    return made


def connections_of(made: requests.Session) -> Connections | None:
    """The :class:`Connections` adapter of a session built by :func:`session`, if it is one."""
    adapter = made.get_adapter("https://")
    return adapter if isinstance(adapter, Connections) else None
