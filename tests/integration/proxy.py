"""A loopback TCP proxy in front of a test server, which can cut the streams passing through.

The bot is given the proxy's address; mastodon-mock advertises its streaming URL
from the address a request came to, so the bot's streams pass through the proxy
too. :meth:`Proxy.drop_streams` closes every connection that asked for
``/api/v1/streaming``, as a load balancer or a restarting streaming server would.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from types import TracebackType

STREAMING = b"/api/v1/streaming"


class Proxy:
    """Forwards 127.0.0.1:<port> to ``upstream`` (host, port), one thread pair a connection."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self._upstream = upstream
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._lock = threading.Lock()
        self._streams: list[tuple[socket.socket, socket.socket]] = []
        self._all: list[socket.socket] = []
        self._closed = False
        self.dropped = 0
        threading.Thread(target=self._accept, name="proxy", daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def drop_streams(self) -> int:
        """Close every streaming connection now; returns how many there were."""
        with self._lock:
            streams, self._streams = self._streams, []
        for pair in streams:
            for sock in pair:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
        self.dropped += len(streams)
        return len(streams)

    def close(self) -> None:
        self._closed = True
        self._listener.close()
        with self._lock:
            socks, self._all = self._all, []
        for sock in socks:
            with contextlib.suppress(OSError):
                sock.close()

    def __enter__(self) -> Proxy:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _addr = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        try:
            server = socket.create_connection(self._upstream, timeout=10)
            server.settimeout(None)
        except OSError:
            client.close()
            return
        with self._lock:
            self._all += [client, server]
        threading.Thread(target=self._pump, args=(server, client, False), daemon=True).start()
        self._pump(client, server, True)

    @staticmethod
    def _recv(sock: socket.socket) -> bytes | None:
        try:
            data = sock.recv(65536)
        except OSError:
            return None
        return data or None

    def _pump(self, source: socket.socket, sink: socket.socket, requests: bool) -> None:
        """Copy ``source`` to ``sink``; on the request side, a connection that asks for a
        stream (kept-alive connections carry other requests first) is noted."""
        noted = False
        while True:
            data = self._recv(source)
            if data is None:
                break
            if requests and not noted and STREAMING in data:
                noted = True
                with self._lock:
                    self._streams.append((source, sink))
            try:
                sink.sendall(data)
            except OSError:
                break
        for sock in (source, sink):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                sock.close()
