"""Where a chat's post is made: one unit from the store to the network, exactly once.

:func:`build_request` turns a stored unit into the request a network receives,
from the store alone: the unit's text, facets, image and visibility, and the
thread it continues (the chat's first post and the one before it on that
network). :class:`Poster` then writes the intent, makes the call, and records
the result, a retry, or why the unit is closed without a post.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path

import structlog
import tenacity

from chatbot.errors import AuthFailed, NetworkError, RateLimited, Rejected, Transient
from chatbot.kinds import REPLY_KINDS, ReplyKind, StepKind
from chatbot.metrics import NoMetrics, Observer
from chatbot.networks.base import Attachment, Interacting, Network, PostRequest
from chatbot.posts import PostRef
from chatbot.run import policy
from chatbot.script import NetworkName
from chatbot.store import Fence, Store, UnitRow, UnitState

log = structlog.get_logger("chatbot.run.posting")
Clock = Callable[[], datetime]

# Transient errors (timeouts, 5xx) are retried at once a few times, then the
# unit is rescheduled with a growing delay: the chat goes on, nothing is lost.
QUICK_RETRIES = 3
RETRY_BACKOFF = (
    timedelta(seconds=5),
    timedelta(seconds=15),
    timedelta(seconds=30),
    timedelta(seconds=60),
)


def build_request(units: Sequence[UnitRow], unit: UnitRow) -> PostRequest:
    """The request for ``unit``, given every unit of its chat as stored.

    The chat is one thread per network; the recap starts a thread of its own.
    """
    root: PostRef | None
    parent: PostRef | None
    if unit.reply_to is not None:  # a reply to someone's post, in that post's thread
        root, parent = unit.reply_root or unit.reply_to, unit.reply_to
    else:
        same_thread = [
            u
            for u in units
            if u.network is unit.network
            and u.kind not in REPLY_KINDS
            and (u.kind == StepKind.RECAP) == (unit.kind == StepKind.RECAP)
        ]
        posted = sorted(
            (u for u in same_thread if u.state is UnitState.POSTED and u.remote is not None),
            key=lambda u: u.seq,
        )
        earlier = [u for u in posted if u.seq < unit.seq]
        root = earlier[0].remote if earlier else None
        parent = earlier[-1].remote if earlier else None
    return PostRequest(
        idempotency_key=unit.idempotency_key,
        text=unit.text,
        facets=unit.facets,
        attachments=((Attachment(Path(unit.image.path), unit.image.alt),) if unit.image else ()),
        root=root,
        parent=parent,
        visibility=unit.visibility,
        kind=unit.kind,
        number=unit.number,
        created_at=unit.planned_at,
        first_attempt_at=unit.intent_at,
    )


class Poster:
    """Posts units and records what happened; never raises for a network's refusal."""

    def __init__(
        self,
        *,
        store: Store,
        networks: Mapping[NetworkName, Network],
        clock: Clock,
        stopping: threading.Event,
        quick_retry_wait: tenacity.wait.wait_base | None = None,
        on_posted: Callable[[str], None] = lambda _chat_id: None,
        metrics: Observer | None = None,
    ) -> None:
        self._store = store
        self._networks = networks
        self._clock = clock
        self._stopping = stopping
        self._wait = quick_retry_wait or tenacity.wait_exponential_jitter(multiplier=0.5, max=2)
        self._on_posted = on_posted
        self._metrics = metrics or NoMetrics()

    def post(self, chat_id: str, unit: UnitRow, fence: Fence | None = None) -> None:
        """Post ``unit`` now: intent, call (retried briefly), then the result or a retry."""
        chat = self._store.chats.get(chat_id)
        request = build_request(self._store.units.of_chat(chat_id), unit)
        # Write-ahead: the intent is committed before the call, so a crash right
        # after the call is re-sent with the same idempotency key, never twice.
        intent_at = self._clock()
        self._store.units.mark_intent(
            chat_id, unit.step_key, unit.network, now=intent_at, fence=fence
        )
        try:
            ref = self._call(self._networks[unit.network], request, intent_at)
        except RateLimited as exc:
            self.retry(
                chat_id, unit, exc.retry_at, f"rate limited until {exc.retry_at:%H:%M:%S} UTC"
            )
        except Transient as exc:
            delay = RETRY_BACKOFF[min(unit.attempts, len(RETRY_BACKOFF) - 1)]
            self.retry(chat_id, unit, self._clock() + delay, f"network trouble: {exc}", fence)
        except (AuthFailed, Rejected, NetworkError) as exc:
            if isinstance(exc, AuthFailed):
                self._store.leases.account_refused(unit.network.value, str(exc), now=self._clock())
            self.close(chat_id, unit, UnitState.FAILED, f"{type(exc).__name__}: {exc}", fence)
        else:
            now = self._clock()
            self._store.units.mark_posted(chat_id, unit.step_key, ref, now=now, fence=fence)
            self._store.leases.account_ok(unit.network.value, now=now)
            self._on_posted(chat_id)
            late = (now - policy.due_at(chat, unit)).total_seconds() if chat else 0.0
            self._metrics.posted(unit.network.value, late)
            log.info(
                "posted",
                chat=chat_id,
                step=unit.step_key,
                network=unit.network.value,
                url=ref.url,
                late_ms=round(late * 1000),
            )

    def reconcile(
        self, chat_id: str, unit: UnitRow, reason: str, fence: Fence | None = None
    ) -> None:
        """An attempt's result was never recorded and it is too late to post: record what
        the network holds, or close the unit with ``reason``."""
        request = build_request(self._store.units.of_chat(chat_id), unit)
        ref = self._networks[unit.network].find(request)
        if ref is None:
            self.close(chat_id, unit, UnitState.SKIPPED, reason, fence)
            return
        self._store.units.mark_posted(chat_id, unit.step_key, ref, now=self._clock(), fence=fence)
        log.info(
            "reconciled", chat=chat_id, step=unit.step_key, network=unit.network.value, url=ref.url
        )

    def retry(
        self,
        chat_id: str,
        unit: UnitRow,
        at: datetime,
        reason: str,
        fence: Fence | None = None,
    ) -> None:
        """Try the unit again at ``at``; the intent stays (the post may exist)."""
        now = self._clock()
        self._store.units.mark_retry(
            chat_id, unit.step_key, unit.network, at, reason, now=now, fence=fence
        )
        log.warning(
            "will retry",
            chat=chat_id,
            step=unit.step_key,
            network=unit.network.value,
            at=at.isoformat(),
            reason=reason,
        )
        self._store.events.add(
            "warning",
            f"will retry at {at:%H:%M:%S} UTC: {reason}",
            chat_id=chat_id,
            step_key=unit.step_key,
            network=unit.network,
            now=now,
        )

    def close(
        self,
        chat_id: str,
        unit: UnitRow,
        state: UnitState,
        reason: str,
        fence: Fence | None = None,
    ) -> None:
        """A unit ends without a post (skipped or failed): stored, logged, shown in status."""
        now = self._clock()
        self._store.units.mark_done(
            chat_id, unit.step_key, unit.network, state, reason, now=now, fence=fence
        )
        failed = state is UnitState.FAILED
        self._metrics.closed(unit.network.value, state.value)
        (log.error if failed else log.warning)(
            "post failed" if failed else "skipped",
            chat=chat_id,
            step=unit.step_key,
            network=unit.network.value,
            reason=reason,
        )
        self._store.events.add(
            "error" if failed else "warning",
            f"{'failed' if failed else 'skipped'}: {reason}",
            chat_id=chat_id,
            step_key=unit.step_key,
            network=unit.network,
            now=now,
        )

    def _call(self, network: Network, request: PostRequest, intent_at: datetime) -> PostRef:
        """The call, retried at once a few times. A retry is uncertain (the failed attempt
        may have published): it carries ``first_attempt_at``, so that a network whose
        server ignores idempotency keys (snac) looks for the post before posting again."""
        retry = dataclasses.replace(request, first_attempt_at=request.first_attempt_at or intent_at)
        attempts = iter((request,))

        def next_request() -> PostRequest:
            return next(attempts, retry)

        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(Transient),
            stop=(
                tenacity.stop_after_attempt(QUICK_RETRIES)
                | tenacity.stop_when_event_set(self._stopping)
            ),
            wait=self._wait,
            reraise=True,
        )
        if request.kind == ReplyKind.LIKE:
            if not isinstance(network, Interacting) or request.parent is None:
                raise Rejected(f"liking posts is not possible on {network.name.value}")
            return retrying(network.like, request.parent)
        return retrying(lambda: network.post(next_request()))
