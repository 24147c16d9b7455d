"""What the bot reports to Prometheus, when a port is configured (off by default).

Counters and histograms are fed by the runner, the collector and the network
calls through :class:`Metrics`; the chats per state and the leases are read from
the store at each scrape. :class:`NoMetrics` is the default and costs nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

    from chatbot.store import Store

# A post this much after its planned time counts as late (it was still posted).
LATE_AFTER = 60.0
LATENESS_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 15, 60, 300, 1800)
ROUND_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60)


class Observer(Protocol):
    """What the bot tells its metrics; every method is cheap and never raises."""

    def posted(self, network: str, lateness: float) -> None: ...
    def closed(self, network: str, state: str) -> None: ...
    def collected(self, network: str, answers: int, seconds: float, ok: bool) -> None: ...
    def request(self, network: str, endpoint: str, outcome: str) -> None: ...


class NoMetrics:
    """Metrics off: nothing is counted."""

    def posted(self, network: str, lateness: float) -> None:
        """Not counted."""

    def closed(self, network: str, state: str) -> None:
        """Not counted."""

    def collected(self, network: str, answers: int, seconds: float, ok: bool) -> None:
        """Not counted."""

    def request(self, network: str, endpoint: str, outcome: str) -> None:
        """Not counted."""


class Metrics:
    """The Prometheus metrics of one bot process, in a registry of its own."""

    def __init__(
        self, store: Store, clock: Callable[[], datetime], networks: Sequence[str] = ()
    ) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.registry = CollectorRegistry()
        self._posts = Counter(
            "chatbot_posts",
            "Steps by outcome: posted, late (posted after a minute), skipped, failed.",
            ["network", "outcome"],
            registry=self.registry,
        )
        self._lateness = Histogram(
            "chatbot_post_lateness_seconds",
            "How long after its planned instant each post went out.",
            ["network"],
            buckets=LATENESS_BUCKETS,
            registry=self.registry,
        )
        self._answers = Counter(
            "chatbot_answers_collected",
            "Answers stored by collection rounds.",
            ["network"],
            registry=self.registry,
        )
        self._rounds = Histogram(
            "chatbot_collection_round_seconds",
            "How long one network's part of a collection round took.",
            ["network", "outcome"],
            buckets=ROUND_BUCKETS,
            registry=self.registry,
        )
        self._requests = Counter(
            "chatbot_api_requests",
            "Requests to a network's API by endpoint class and outcome (ok, rate_limited, error).",
            ["network", "endpoint", "outcome"],
            registry=self.registry,
        )
        self.registry.register(_StoreCollector(store, clock))
        # Every series exists from the start, at 0: an alert on increase() sees the first one.
        for network in networks:
            for outcome in ("posted", "late", "skipped", "failed"):
                self._posts.labels(network, outcome)
            self._answers.labels(network)

    def posted(self, network: str, lateness: float) -> None:
        self._posts.labels(network, "posted").inc()
        if lateness > LATE_AFTER:
            self._posts.labels(network, "late").inc()
        self._lateness.labels(network).observe(max(lateness, 0.0))

    def closed(self, network: str, state: str) -> None:
        self._posts.labels(network, state).inc()

    def collected(self, network: str, answers: int, seconds: float, ok: bool) -> None:
        if answers:
            self._answers.labels(network).inc(answers)
        self._rounds.labels(network, "ok" if ok else "failed").observe(seconds)

    def request(self, network: str, endpoint: str, outcome: str) -> None:
        self._requests.labels(network, endpoint, outcome).inc()

    def serve(self, address: str, port: int) -> None:
        """Serve ``/metrics`` on ``address:port`` from a daemon thread."""
        from prometheus_client import start_http_server

        start_http_server(port, addr=address, registry=self.registry)


class _StoreCollector:
    """Read at each scrape: chats per state, and each lease's holder and age."""

    def __init__(self, store: Store, clock: Callable[[], datetime]) -> None:
        self._store = store
        self._clock = clock

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.core import GaugeMetricFamily

        from chatbot.store import ChatState

        chats = GaugeMetricFamily("chatbot_chats", "Chats by state.", labels=["state"])
        counts = {state.value: 0 for state in ChatState}
        for chat in self._store.chats.list():
            counts[chat.state.value] += 1
        for state, count in counts.items():
            chats.add_metric([state], count)
        yield chats
        now = self._clock()
        age = GaugeMetricFamily(
            "chatbot_lease_age_seconds",
            "How long the holder of each open chat's lease has held it.",
            labels=["chat", "holder"],
        )
        expires = GaugeMetricFamily(
            "chatbot_lease_expires_in_seconds",
            "Seconds until each lease expires unless renewed (negative: expired).",
            labels=["chat", "holder"],
        )
        open_chats = {
            c.chat_id for c in self._store.chats.list([ChatState.SCHEDULED, ChatState.RUNNING])
        }
        for lease in self._store.leases.of_chats():
            if lease.chat_id not in open_chats:
                continue
            age.add_metric([lease.chat_id, lease.holder], (now - lease.acquired_at).total_seconds())
            expires.add_metric(
                [lease.chat_id, lease.holder], (lease.expires_at - now).total_seconds()
            )
        yield age
        yield expires
        refused = GaugeMetricFamily(
            "chatbot_account_auth_failed",
            "1 while an account's credentials are refused (since its last success), else 0.",
            labels=["network"],
        )
        for account in self._store.leases.accounts():
            refused.add_metric([account.network], 1.0 if account.auth_failed_at else 0.0)
        yield refused
