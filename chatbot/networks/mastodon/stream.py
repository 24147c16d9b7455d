"""Mastodon's streaming API: what arrived, and a wake-up to read the chat soon.

Each event (a status under the chat's hashtag, a notification for the bot) tells
the collector to run a round soon; a status under the hashtag (new or edited), or
one that mentions the bot (a reply to its post), is also handed over, so it is
stored at once if it is the chat's. The round reads from the cursors as
always, so a post that arrived while a stream was down is read by the round that
follows the gap (one is asked for when a stream drops and again when it is back),
and a post both streamed and read is the same post, stored by its id.

:class:`Stream` keeps one stream open in its own thread: a blocking read
(Mastodon.py's ``stream_*`` with ``run_async=False``), then, when the connection
ends, a wait that doubles from :data:`FIRST_WAIT` up to :data:`LONGEST_WAIT`
before the next attempt. A stream is *live* while its connection is open and the
server spoke (an event or a heartbeat) within :data:`QUIET`. A server that has
no streaming (404: snac, an instance with it switched off) is not asked again:
the chat is polled as before.

:class:`Streams` holds the account's streams: one hashtag stream per chat, and
one user stream (mentions and replies) shared by every chat.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import structlog
from mastodon import StreamListener

log = structlog.get_logger("chatbot.networks.mastodon.stream")

# Mastodon's streaming server sends a heartbeat every 15 s (mastodon-mock too):
# a connection silent for longer than this is dead, and is read with this timeout.
QUIET = 40.0
FIRST_WAIT = 1.0
LONGEST_WAIT = 300.0

Opener = Callable[[StreamListener], None]  # blocks while the stream is open
Carried = Callable[[str, list[Any]], None]  # (chat id, the statuses an event carried)


def backoff(failures: int, *, first: float = FIRST_WAIT, longest: float = LONGEST_WAIT) -> float:
    """Seconds to wait before the next attempt after ``failures`` failures in a row."""
    return float(min(longest, first * 2 ** max(0, failures - 1)))


class NoStream(Exception):
    """The server is known to have no streaming API."""


def unsupported(exc: BaseException) -> bool:
    """The server has no such stream (Mastodon.py names only the HTTP reason)."""
    if isinstance(exc, NoStream):
        return True
    text = str(exc)
    return "Not Found" in text or "404" in text


# The events that carry a status: a new one, an edited one (Mastodon 3.5+).
STATUS_EVENTS = frozenset({"update", "status.update"})


def carried(name: str, data: Any) -> list[Any]:
    """The status an event carries: a new or edited one (the hashtag stream), or the one
    that mentions the bot (a reply to its post is one; the user stream); else none."""
    if name in STATUS_EVENTS and isinstance(data, dict):
        return [data]
    if name == "notification" and isinstance(data, dict) and data.get("type") == "mention":
        status = data.get("status")
        return [status] if isinstance(status, dict) else []
    return []


class _Listener(StreamListener):
    """Every event is a wake-up (with its status, if it carries one); heartbeats only show
    that the stream is alive."""

    def __init__(self, stream: Stream) -> None:
        super().__init__()
        self._stream = stream

    def on_any_event(self, name: str, data: Any = None, for_stream: Any = None) -> None:
        self._stream.heard(event=True, statuses=carried(name, data))

    def handle_heartbeat(self) -> None:
        self._stream.heard(event=False)

    def on_unknown_event(self, name: str, unknown_event: Any = None) -> None:
        pass  # on_any_event woke the chat already


class Stream:
    """One stream, kept open in its own thread, reconnected after a wait that grows."""

    def __init__(
        self,
        what: str,
        opener: Opener,
        *,
        on_event: Callable[[list[Any]], None],
        on_gap: Callable[[], None],
        monotonic: Callable[[], float] = time.monotonic,
        first_wait: float = FIRST_WAIT,
        longest_wait: float = LONGEST_WAIT,
        quiet: float = QUIET,
    ) -> None:
        self.what = what
        self._opener = opener
        self._on_event = on_event
        self._on_gap = on_gap
        self._monotonic = monotonic
        self._first_wait = first_wait
        self._longest_wait = longest_wait
        self._quiet = quiet
        self._stopping = threading.Event()
        self._heard_at: float | None = None  # None: not connected
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.unsupported = False
        self.connections = 0  # how many times it came up (a reconnect counts)

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self.run, name=f"stream {self.what}", daemon=True
            )
            self._thread.start()

    def stop(self) -> None:
        """Stop at the next event or heartbeat (the thread is a daemon: it never holds an exit)."""
        self._stopping.set()

    @property
    def stopped(self) -> bool:
        return self._stopping.is_set()

    def live(self) -> bool:
        """Connected, and the server spoke within the quiet time."""
        with self._lock:
            heard = self._heard_at
        return heard is not None and self._monotonic() - heard <= self._quiet

    def heard(self, *, event: bool, statuses: list[Any] | None = None) -> None:
        """Called from the listener: an event (a wake-up, with the statuses it carried) or a
        heartbeat."""
        if self._stopping.is_set():
            raise _Stopped
        with self._lock:
            first = self._heard_at is None
            self._heard_at = self._monotonic()
        if first:
            # Up (again): what arrived while it was down is read now.
            self.connections += 1
            log.info("stream live", stream=self.what, connections=self.connections)
            self._on_gap()
        if event:
            self._on_event(statuses or [])

    def run(self) -> None:
        """Open, read until it ends, wait, again; until stopped or the server has no stream."""
        failures = 0
        while not self._stopping.is_set():
            error = ""
            try:
                self._opener(_Listener(self))
            except _Stopped:
                return
            except Exception as exc:  # noqa: BLE001 - any failure is a gap, read by polling
                if unsupported(exc):
                    self.unsupported = True
                    log.info("no stream on this server: polling", stream=self.what)
                    self._down()
                    return
                error = type(exc).__name__
            was_up = self._down()
            if self._stopping.is_set():
                return
            failures = 1 if was_up else failures + 1
            wait = backoff(failures, first=self._first_wait, longest=self._longest_wait)
            log.info("stream down", stream=self.what, error=error, retry_in=round(wait, 1))
            if was_up:
                self._on_gap()  # the round reads what the stream would have woken it for
            self._stopping.wait(wait)

    def _down(self) -> bool:
        with self._lock:
            was_up = self._heard_at is not None
            self._heard_at = None
        return was_up


class _Stopped(Exception):
    """Raised inside the listener to leave the blocking read once the stream is stopped."""


class Streams:
    """The account's streams: a hashtag stream per chat, one user stream for all chats."""

    def __init__(self, open_hashtag: Callable[[str], Opener], open_user: Opener | None) -> None:
        self._open_hashtag = open_hashtag
        self._open_user = open_user
        self._chats: dict[str, tuple[Stream, Carried]] = {}
        self._user: Stream | None = None
        self._lock = threading.Lock()

    def listen(self, chat_id: str, hashtag: str, arrived: Carried) -> None:
        """Keep the chat's hashtag stream (and the user stream) open; idempotent.
        ``arrived(chat_id, statuses)``: the statuses the hashtag stream carried, and those
        the user stream carried (mentions of the bot, handed to every chat: which chat one
        is for, the collector says)."""
        with self._lock:
            if chat_id in self._chats:
                return
            stream = Stream(
                f"#{hashtag.removeprefix('#')}",
                self._open_hashtag(hashtag.removeprefix("#")),
                on_event=lambda statuses: arrived(chat_id, statuses),
                on_gap=lambda: arrived(chat_id, []),
            )
            self._chats[chat_id] = (stream, arrived)
            if self._user is None and self._open_user is not None:
                self._user = Stream(
                    "user",
                    self._open_user,
                    on_event=self._wake_all,
                    on_gap=self._wake_all,
                )
                self._user.start()
        stream.start()

    def unlisten(self, chat_id: str) -> None:
        with self._lock:
            entry = self._chats.pop(chat_id, None)
            user = self._user if not self._chats else None
            if user is not None:
                self._user = None
        if entry is not None:
            entry[0].stop()
        if user is not None:
            user.stop()

    def live(self, chat_id: str) -> bool:
        """Whether every stream the chat relies on is live (else it is polled as usual)."""
        with self._lock:
            entry = self._chats.get(chat_id)
            user = self._user
        if entry is None or not entry[0].live():
            return False
        return user is None or user.live()

    def close(self) -> None:
        with self._lock:
            chats, user = list(self._chats), self._user
        for chat_id in chats:
            self.unlisten(chat_id)
        if user is not None:
            user.stop()

    def _wake_all(self, statuses: list[Any] | None = None) -> None:
        """The user stream heard something: every chat reads soon, and is handed what it
        carried (which chat a mention is for, the collector says)."""
        with self._lock:
            entries = list(self._chats.items())
        for chat_id, (_stream, arrived) in entries:
            arrived(chat_id, statuses or [])
