"""A replica's name, when a lease's holder is known to be dead, and what its heartbeat renews."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from chatbot.run.replica import Replica, holder_gone, replica_name
from chatbot.store import ChatState, Store
from chatbot.store.leases import Fence
from chatbot.testing import FakeClock


def test_a_replica_is_named_by_host_process_and_nonce() -> None:
    """Two replicas of one process never share a name."""
    host, pid, nonce, namespace = replica_name().split(":")
    assert (host, pid) == (socket.gethostname(), str(os.getpid()))
    assert namespace.isdigit()
    assert nonce and replica_name() != replica_name()


def test_a_holder_whose_process_ended_is_gone() -> None:
    """A process of this host that no longer runs holds nothing."""
    ended = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert holder_gone(f"{socket.gethostname()}:{ended.stdout.strip()}:ab:{_namespace()}")


def test_an_earlier_life_of_this_process_id_is_gone() -> None:
    """A restarted container's bot has the same pid as before, under another name."""
    assert holder_gone(f"{socket.gethostname()}:{os.getpid()}:older:{_namespace()}")


def test_a_running_process_or_another_host_is_not_known_to_be_gone() -> None:
    """A live process here, or any holder elsewhere, is waited for until its lease expires."""
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"]) as alive:
        try:
            assert not holder_gone(f"{socket.gethostname()}:{alive.pid}:x:{_namespace()}")
        finally:
            alive.kill()
    assert not holder_gone(f"another-host:1:x:{_namespace()}")


def test_a_holder_in_another_process_namespace_is_never_judged() -> None:
    """Containers sharing a host name each have pid 1: their leases are not taken early."""
    assert not holder_gone(f"{socket.gethostname()}:{os.getpid()}:other:1")


def _namespace() -> str:
    return replica_name().split(":")[3]


def test_a_heartbeat_renews_the_lease_of_a_chat_whose_answers_it_still_reads(
    tmp_path: Path,
) -> None:
    """After the closing the chat is over, but its answers are read for the answer tail: the
    replica reading them keeps its lease, so no other replica reads them (or writes a second
    transcript); a chat it no longer reads is left to expire."""

    clock = FakeClock(datetime(2030, 1, 3, 20, 0, tzinfo=UTC))
    store = Store.open(f"sqlite:///{tmp_path / 'state.db'}", now=clock())
    for chat_id in ("read", "left"):
        _chat(store, chat_id, clock(), clock())
    replica = Replica(store, clock, ttl=timedelta(seconds=30))
    assert isinstance(replica.lease("read"), Fence) and isinstance(replica.lease("left"), Fence)
    for chat_id in ("read", "left"):
        store.chats.update(chat_id, state=ChatState.DONE, now=clock())
    clock.advance(timedelta(seconds=20))
    replica.beat(collecting={"read"})
    expiry = {lease.chat_id: lease.expires_at for lease in store.leases.of_chats()}
    assert expiry["read"] == clock() + timedelta(seconds=30)
    assert expiry["left"] == clock() + timedelta(seconds=10)
    store.close()


def test_a_heartbeat_renews_the_leases_of_chats_soon_and_lets_those_months_away_lapse(
    tmp_path: Path,
) -> None:
    """Fifty series a year away would cost a transaction each, every ten seconds, at rest;
    their chat jobs take the lease again when they wake."""
    clock = FakeClock(datetime(2030, 1, 3, 20, 0, tzinfo=UTC))
    store = Store.open(f"sqlite:///{tmp_path / 'state.db'}", now=clock())
    for chat_id, start in (("tomorrow", timedelta(days=1)), ("next-year", timedelta(days=365))):
        _chat(store, chat_id, clock() + start, clock())
    replica = Replica(store, clock, ttl=timedelta(seconds=30))
    assert isinstance(replica.lease("tomorrow"), Fence)
    assert isinstance(replica.lease("next-year"), Fence)
    clock.advance(timedelta(seconds=20))
    replica.beat()
    expiry = {lease.chat_id: lease.expires_at for lease in store.leases.of_chats()}
    assert expiry["tomorrow"] == clock() + timedelta(seconds=30)
    assert expiry["next-year"] == clock() + timedelta(seconds=10)
    store.close()


def _chat(store: Store, chat_id: str, start: datetime, now: datetime) -> None:
    """An hour-long chat starting at ``start``."""
    store.chats.upsert(
        chat_id=chat_id,
        script_id=chat_id,
        title="t",
        hashtag="T",
        timezone="UTC",
        start_at=start,
        end_at=start + timedelta(hours=1),
        now=now,
    )
