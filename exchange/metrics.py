"""What the exchange exposes at `/metrics` (Prometheus text format), in one registry per
exchange so that tests and several exchanges in one process do not share counters.

What is counted per request, per book event and per applied input is kept in plain ints
(`Tally`, `IntHistogram`) and read at scrape time: a prometheus_client child takes a lock on
each `inc` or `observe`, and those cost the server more per request than the counting itself.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

LATENCY_S = (0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5)
GROUP_SIZES = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1_024, 4_096)


class Metrics:
    def __init__(self) -> None:
        self.registry = registry = CollectorRegistry()
        self.requests = Tally(
            "cerx_requests",
            "Requests by op and outcome (ok or the refusal code)",
            ("op", "outcome"),
            registry,
        )
        self.book_events = Tally(
            "cerx_book_events", "Book events by kind (rejects by code)", ("kind",), registry
        )
        self.match_seconds = IntHistogram(
            "cerx_match_seconds", "Time a book takes to apply one input", LATENCY_S, registry
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
        self.settlement_netted = CountedElsewhere(
            "cerx_settlement_netted_items",
            "Locks and releases of orders that finished before settlement took them, so never"
            " sent to the ledger",
            registry,
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

    def count_request(self, op: str, outcome: str) -> None:
        """One request served: its op and outcome (`ok` or the refusal code)."""
        self.requests.counts[op, outcome] += 1

    def count_book_event(self, kind: str) -> None:
        self.book_events.counts[(kind,)] += 1

    def journal_written(self, entries: int, seconds: float) -> None:
        self.journal_group.observe(entries)
        self.journal_seconds.observe(seconds)

    def track(
        self, lag: Callable[[], int], queued: Callable[[], int], netted: Callable[[], int]
    ) -> None:
        self.settlement_lag.set_function(lag)
        self.send_queue.set_function(queued)
        self.settlement_netted.read = netted

    def render(self) -> bytes:
        return generate_latest(self.registry)


class Tally(Collector):
    """A labelled counter in plain ints: `counts[labels] += 1` on the hot path (one thread's
    only), exported as a Prometheus counter when scraped."""

    def __init__(
        self, name: str, documentation: str, labels: Sequence[str], registry: CollectorRegistry
    ) -> None:
        self._name, self._documentation, self._labels = name, documentation, list(labels)
        self.counts: defaultdict[tuple[str, ...], int] = defaultdict(int)
        registry.register(self)

    def describe(self) -> Iterator[Metric]:
        yield CounterMetricFamily(self._name, self._documentation, labels=self._labels)

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(self._name, self._documentation, labels=self._labels)
        for labels, count in list(self.counts.items()):
            family.add_metric(list(labels), count)
        yield family


class CountedElsewhere(Collector):
    """A counter another part keeps (`read` returns it), exported when scraped."""

    def __init__(self, name: str, documentation: str, registry: CollectorRegistry) -> None:
        self._name, self._documentation = name, documentation
        self.read: Callable[[], int] = lambda: 0
        registry.register(self)

    def describe(self) -> Iterator[Metric]:
        yield CounterMetricFamily(self._name, self._documentation)

    def collect(self) -> Iterator[Metric]:
        yield CounterMetricFamily(self._name, self._documentation, value=self.read())


class IntHistogram(Collector):
    """A histogram counted in plain ints (one thread's only), exported as a Prometheus
    histogram when scraped."""

    def __init__(
        self,
        name: str,
        documentation: str,
        buckets: Sequence[float],
        registry: CollectorRegistry,
    ) -> None:
        self._name, self._documentation = name, documentation
        self._bounds = list(buckets)
        self._counts = [0] * (len(self._bounds) + 1)  # the last: above every bound
        self._sum = 0.0
        registry.register(self)

    def observe(self, value: float) -> None:
        self._counts[bisect_left(self._bounds, value)] += 1
        self._sum += value

    def describe(self) -> Iterator[Metric]:
        yield HistogramMetricFamily(self._name, self._documentation)

    def collect(self) -> Iterator[Metric]:
        cumulative, buckets = 0, []
        bounds = [*map(floatToGoString, self._bounds), "+Inf"]
        for bound, count in zip(bounds, self._counts, strict=True):
            cumulative += count
            buckets.append((bound, cumulative))
        yield HistogramMetricFamily(
            self._name, self._documentation, buckets=buckets, sum_value=self._sum
        )
