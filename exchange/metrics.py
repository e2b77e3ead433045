"""What the exchange exposes at `/metrics` (Prometheus text format), in one registry per
exchange so that tests and several exchanges in one process do not share counters."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_S = (0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5)
GROUP_SIZES = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1_024, 4_096)


class Metrics:
    def __init__(self) -> None:
        self.registry = registry = CollectorRegistry()
        self.requests = Counter(
            "cerx_requests",
            "Requests by op and outcome (ok or the refusal code)",
            ["op", "outcome"],
            registry=registry,
        )
        self.book_events = Counter(
            "cerx_book_events",
            "Book events by kind (rejects by code)",
            ["kind"],
            registry=registry,
        )
        self.match_seconds = Histogram(
            "cerx_match_seconds",
            "Time a book takes to apply one input",
            buckets=LATENCY_S,
            registry=registry,
        )
        self.journal_seconds = Histogram(
            "cerx_journal_commit_seconds",
            "Time one group-commit write takes",
            buckets=LATENCY_S,
            registry=registry,
        )
        self.journal_group = Histogram(
            "cerx_journal_group_entries",
            "Entries per group-commit write",
            buckets=GROUP_SIZES,
            registry=registry,
        )
        self.settlement_seconds = Histogram(
            "cerx_settlement_batch_seconds",
            "Time the ledger takes to apply one batch",
            buckets=LATENCY_S,
            registry=registry,
        )
        self.settlement_lag = Gauge(
            "cerx_settlement_lag_items",
            "Locks, trades and releases not yet in the ledger",
            registry=registry,
        )
        self.connections = Gauge("cerx_connections", "Open WebSocket sessions", registry=registry)
        self.send_queue = Gauge(
            "cerx_send_queue_messages",
            "Messages waiting in all sessions' send queues",
            registry=registry,
        )
        self.slow_consumers = Counter(
            "cerx_slow_consumer_closes",
            "Sessions closed because they did not read",
            registry=registry,
        )
        self.closes = Counter(
            "cerx_connection_closes",
            "Sessions the server closed for what the client sent, by reason",
            ["reason"],
            registry=registry,
        )
        self.connection_refusals = Counter(
            "cerx_connection_refusals",
            "WebSocket upgrades refused for a cap on open sessions (per_address or total)",
            ["reason"],
            registry=registry,
        )
        self._requests: dict[tuple[str, str], Counter] = {}  # the labelled children, by labels
        self._book_events: dict[str, Counter] = {}

    def count_request(self, op: str, outcome: str) -> None:
        """One request served: its op and outcome (`ok` or the refusal code)."""
        child = self._requests.get((op, outcome))
        if child is None:  # a label lookup per request costs more than the count itself
            child = self._requests[op, outcome] = self.requests.labels(op, outcome)
        child.inc()

    def count_book_event(self, kind: str) -> None:
        child = self._book_events.get(kind)
        if child is None:
            child = self._book_events[kind] = self.book_events.labels(kind)
        child.inc()

    def journal_written(self, entries: int, seconds: float) -> None:
        self.journal_group.observe(entries)
        self.journal_seconds.observe(seconds)

    def track(self, lag: Callable[[], int], queued: Callable[[], int]) -> None:
        self.settlement_lag.set_function(lag)
        self.send_queue.set_function(queued)

    def render(self) -> bytes:
        return generate_latest(self.registry)
