"""The schedules folder watched: an edit is picked up within a second, not at the next sync.

A folder removed under the watcher (or swapped, as a Kubernetes ConfigMap update
does) is no longer watched by the OS. That is a failure to record and recover
from, not a reason to stop noticing edits: the watch is started again, with a
growing pause, and once it stands a sync catches what changed meanwhile.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import structlog
import watchfiles

from chatbot.errors import ChatbotError

log = structlog.get_logger("chatbot.run.watcher")

# A failed watch starts again after this, doubling up to WATCH_RESTART_MAX.
WATCH_RESTART = timedelta(seconds=5)
WATCH_RESTART_MAX = timedelta(minutes=5)


class Watcher:
    """Calls ``on_change`` when a file in ``folder`` changes, until ``stopping`` is set."""

    def __init__(
        self,
        folder: Path,
        *,
        on_change: Callable[[], None],
        # Runs the work, records a failure and returns it (None when the work succeeded).
        guarded: Callable[[Callable[[], None]], object],
        stopping: threading.Event,
        restart: timedelta = WATCH_RESTART,
    ) -> None:
        self._folder = folder
        self._on_change = on_change
        self._guarded = guarded
        self._stopping = stopping
        self._restart = restart

    def run(self) -> None:
        """Watch until stopped; a failed watch (recorded by ``guarded``) is started again."""
        delay = self._restart
        while not self._stopping.is_set():
            failed = self._guarded(self.watch_once) is not None
            delay = min(delay * 2, WATCH_RESTART_MAX) if failed else self._restart
            self._stopping.wait(delay.total_seconds())

    def watch_once(self) -> None:
        """Watch until stopped; raise if the folder goes or is replaced."""
        identity = _identity(self._folder)
        watching = False
        # Closed at once when this raises: a watch left open holds the OS's watch too.
        with contextlib.closing(
            watchfiles.watch(
                self._folder,
                stop_event=self._stopping,
                debounce=300,
                # At rest a bot mostly waits here: a quarter of a second between looks at the
                # stop event, and the folder's identity checked every five seconds.
                step=250,
                rust_timeout=5000,
                yield_on_timeout=True,
            )
        ) as batches:
            for changes in batches:
                if self._stopping.is_set():
                    return
                if _identity(self._folder) != identity:
                    self._on_change()
                    raise ChatbotError(
                        f"the schedules folder {self._folder} was removed or replaced"
                    )
                if changes:
                    log.info("schedules changed", files=sorted({Path(p).name for _c, p in changes}))
                if changes or not watching:
                    # Once the watch stands, one sync catches what changed while none stood.
                    watching = True
                    self._on_change()


def _identity(folder: Path) -> tuple[int, int] | None:
    """Which folder is at ``folder`` (device, inode), or None if there is none."""
    try:
        found = folder.stat()
    except OSError:
        return None
    return found.st_dev, found.st_ino
