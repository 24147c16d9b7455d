"""This process as one replica among those sharing a database: its name, its leases, its pulse.

Every ``chatbot run`` is a replica with a name of its own (host, process, a
nonce). It acts for a chat only while it holds the chat's lease
(:mod:`chatbot.store.leases`), renews its leases and records a heartbeat every
few seconds, and releases its leases when it stops cleanly. The name and the
process id are written to ``data_dir/replica.json`` for ``chatbot health``.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
from collections.abc import Callable, Collection
from datetime import datetime, timedelta
from pathlib import Path

import structlog

from chatbot.store import OVER_STATES, Fence, LeaseRow, Store

log = structlog.get_logger("chatbot.run.replica")
Clock = Callable[[], datetime]

# A lease lasts this long unless renewed; renewed every third of it.
LEASE_TTL = timedelta(seconds=30)
REPLICA_FILE = "replica.json"
# A chat another replica holds is looked at again at least this often.
LOOK_AGAIN = timedelta(seconds=5)
# Leases on open chats that start within this are renewed at each heartbeat (reminders
# come a day or so before a chat at most; fifty chats a year away cost nothing at rest).
HOLD_AHEAD = timedelta(days=2)


def _pid_namespace() -> str:
    """Which process-id namespace this process lives in (containers each have their own)."""
    try:
        return str(Path("/proc/self/ns/pid").readlink()).removeprefix("pid:[").removesuffix("]")
    except OSError:
        return ""


def replica_name() -> str:
    """``host:pid:nonce:namespace``: unique to this process, and says where it runs."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}:{_pid_namespace()}"


def holder_gone(holder: str) -> bool:
    """Whether a lease's holder is known to be dead: a process of this host and this
    process namespace that is not running, or an earlier life of this very process id (a
    restarted container). Holders elsewhere (another host, another container sharing
    the host's name) are never judged: their leases expire instead."""
    parts = holder.split(":")
    if len(parts) < 4 or parts[0] != socket.gethostname() or not parts[1].isdigit():
        return False
    if parts[3] != _pid_namespace() or not parts[3]:
        return False
    pid = int(parts[1])
    if pid == os.getpid():
        return True  # the same pid under another name: a life of this process before it
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # alive, someone else's
    return False


class Replica:
    """Leases and heartbeat of this process."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        *,
        name: str | None = None,
        ttl: timedelta = LEASE_TTL,
        folder: Path | None = None,
    ) -> None:
        self.name = name or replica_name()
        self.ttl = ttl
        self._store = store
        self._clock = clock
        self._started_at = clock()
        self._folder = folder

    def lease(self, chat_id: str) -> Fence | LeaseRow:
        """Take or renew the chat's lease (a Fence), or the lease another replica holds."""
        return self._store.leases.acquire(
            chat_id, self.name, now=self._clock(), ttl=self.ttl, gone=holder_gone
        )

    def look_again(self, lease: LeaseRow) -> datetime:
        """When to try again for a chat another replica holds: just after its lease expires,
        or sooner (a replica that stops cleanly hands its leases over at once)."""
        return min(lease.expires_at, self._clock() + LOOK_AGAIN) + timedelta(seconds=1)

    def beat(self, *, collecting: Collection[str] = ()) -> None:
        """Record that this replica is alive, and renew the leases it holds on open chats that
        start within :data:`HOLD_AHEAD` (a lease on a chat months away may lapse: the chat's
        job takes it again when it wakes) and on the chats whose answers it still
        ``collecting`` (after the closing: a lease that lapsed there would let another
        replica read them too, and write a second transcript)."""
        now = self._clock()
        self._store.leases.beat(self.name, now=now, started_at=self._started_at)
        open_chats = {
            c.chat_id
            for c in self._store.chats.list()
            if c.state not in OVER_STATES and c.start_at - now <= HOLD_AHEAD
        }
        for lease in self._store.leases.of_chats():
            if lease.holder == self.name and (
                lease.chat_id in open_chats or lease.chat_id in collecting
            ):
                self.lease(lease.chat_id)

    def started(self) -> None:
        self.beat()
        if self._folder is not None:
            self._folder.mkdir(parents=True, exist_ok=True)
            (self._folder / REPLICA_FILE).write_text(
                json.dumps({"name": self.name, "pid": os.getpid()}), encoding="utf-8"
            )
        log.info("replica started", replica=self.name)

    def stopped(self) -> None:
        """Hand the leases over at once: another replica need not wait for them to expire."""
        now = self._clock()
        self._store.leases.release(self.name, now=now)
        self._store.leases.stopped(self.name, now=now)
