"""A replica's name, and when a lease's holder is known to be dead."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

from chatbot.run.replica import holder_gone, replica_name


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
