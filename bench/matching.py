"""Throughput and latency of the order book on the standard stream, with proof it stayed right.

Run as `python -m bench.matching [--size 1000000] [--seed 1] [--repeat 3] [--warmup N]`.

1. Generate the standard stream (`bench.workload`) once: a fixed list of commands.
2. Warm up: replay the first `--warmup` commands into a throw-away book, and the floor loop.
3. `--repeat` times: replay the whole stream into a fresh book (the throughput pass), then the
   floor loop. The throughput pass times `book.submit` plus keeping each command's event list and
   releasing them; it stops the clock only to hash the lists of each chunk of `CHUNK` commands
   (msgspec JSON of each command's list into one sha256), so hashing costs it nothing and no
   latency bookkeeping touches it. (Chunks of 8,192 commands cost ~10 % more than a bare loop in
   GC work on the kept lists; at 512 the difference is not measurable.) The floor is the least
   Python work per command: a loop step, a dict insert and a `SortedDict` lookup.
4. One more replay, the latency pass (separate, so that the throughput pass is not slowed):
   `perf_counter_ns` around each `submit`, the hash again, and per-order accounting of events.
5. Check: every hash is the same; `check_invariants()` on every final book; for every accepted
   order, filled + resting + cancelled == quantity over the whole event stream.

Exits 1 if a check fails. Prices and quantities are integers throughout; floats appear only in
timing statistics.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import os
import platform
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import msgspec
from sortedcontainers import SortedDict

from bench.workload import REFERENCE_PRICE_FEN, STANDARD_RULES, StreamStats, build_standard_stream
from matching import (
    Accepted,
    Amended,
    BookInvariantError,
    Cancel,
    Cancelled,
    Command,
    Event,
    NewOrder,
    OrderBook,
    Rejected,
    Trade,
)

CHUNK = 512  # commands between hash updates: small, so keeping their events costs no GC work
PERCENTILES = (("p50", 50_000), ("p99", 99_000), ("p99.9", 99_900))  # per 100,000

Log = Callable[[str], None]


def say(line: str) -> None:
    """Print a line at once: progress of a long run must not wait in a pipe's buffer."""
    print(line, flush=True)


# -- conservation over the event stream ------------------------------------------------------------


@dataclass(slots=True)
class Accounting:
    """Per-order quantities as the event stream tells them, and totals over it."""

    quantity: dict[int, int] = field(default_factory=dict)  # order id -> total quantity
    filled: dict[int, int] = field(default_factory=dict)
    cancelled: dict[int, int] = field(default_factory=dict)
    events: Counter[str] = field(default_factory=Counter)
    rejects: Counter[str] = field(default_factory=Counter)
    cancel_reasons: Counter[str] = field(default_factory=Counter)
    volume_t: int = 0
    notional_fen: int = 0
    problems: list[str] = field(default_factory=list)

    def take(self, events: list[Event]) -> None:
        """Account for one command's events."""
        for event in events:
            kind = type(event)
            self.events[kind.__name__] += 1
            if kind is Trade:
                assert isinstance(event, Trade)
                quantity = event.quantity_t
                filled = self.filled
                filled[event.maker_order_id] = filled.get(event.maker_order_id, 0) + quantity
                filled[event.taker_order_id] = filled.get(event.taker_order_id, 0) + quantity
                self.volume_t += quantity
                self.notional_fen += quantity * event.price_fen
            elif kind is Cancelled:
                assert isinstance(event, Cancelled)
                cancelled = self.cancelled
                cancelled[event.order_id] = cancelled.get(event.order_id, 0) + event.quantity_t
                self.cancel_reasons[event.reason.value] += 1
            elif kind is Accepted:
                assert isinstance(event, Accepted)
                if event.order_id in self.quantity:  # the standard stream never reuses an id
                    self._problem(f"order id {event.order_id} accepted twice")
                self.quantity[event.order_id] = event.quantity_t
            elif kind is Rejected:
                assert isinstance(event, Rejected)
                self.rejects[event.code.value] += 1
            elif kind is Amended:
                assert isinstance(event, Amended)
                self.quantity[event.order_id] = event.quantity_t

    def close(self, book: OrderBook) -> tuple[int, int, int, int]:
        """Check every order against the final book; return quantity, filled, resting, cancelled."""
        resting = {order.order_id: order for order in book.resting_orders()}
        for order_id in resting.keys() - self.quantity.keys():
            self._problem(f"order {order_id} rests but was never accepted")
        total = filled_total = resting_total = cancelled_total = 0
        for order_id, quantity in self.quantity.items():
            filled = self.filled.get(order_id, 0)
            cancelled = self.cancelled.get(order_id, 0)
            order = resting.get(order_id)
            leaves = 0 if order is None else order.leaves_t
            if filled + leaves + cancelled != quantity:
                self._problem(
                    f"order {order_id}: filled {filled} + resting {leaves} + cancelled "
                    f"{cancelled} != quantity {quantity}"
                )
            if order is not None and order.filled_t != filled:
                self._problem(f"order {order_id}: book says filled {order.filled_t}, not {filled}")
            total += quantity
            filled_total += filled
            resting_total += leaves
            cancelled_total += cancelled
        if filled_total != 2 * self.volume_t:
            self._problem(f"fills {filled_total} t are not twice the volume {self.volume_t} t")
        return total, filled_total, resting_total, cancelled_total

    def _problem(self, message: str) -> None:
        if len(self.problems) < 10:
            self.problems.append(message)


# -- the passes ------------------------------------------------------------------------------------


def new_book() -> OrderBook:
    return OrderBook(STANDARD_RULES, REFERENCE_PRICE_FEN)


def throughput_pass(stream: Sequence[Command]) -> tuple[int, str, int, OrderBook]:
    """Replay into a fresh book; return the timed ns, the event hash, the event count, the book."""
    book = new_book()
    submit = book.submit
    hasher = hashlib.sha256()
    encode = msgspec.json.Encoder().encode
    produced: list[list[Event]] = []
    keep = produced.append
    clock = time.perf_counter_ns
    elapsed = 0
    events = 0
    gc.collect()
    for start in range(0, len(stream), CHUNK):
        part = stream[start : start + CHUNK]
        started = clock()
        for command in part:
            keep(submit(command))
        stopped = clock()
        for produced_events in produced:  # untimed: hash and count
            hasher.update(encode(produced_events))
            events += len(produced_events)
        resumed = clock()
        produced.clear()  # timed: releasing the events is part of the cost
        elapsed += stopped - started + clock() - resumed
    return elapsed, hasher.hexdigest(), events, book


def floor_pass(stream: Sequence[Command]) -> int:
    """Time the least work a book could do per command: a dict insert and a sorted lookup."""
    index: dict[int, Command] = {}
    levels = SortedDict({REFERENCE_PRICE_FEN + offset: offset for offset in range(-64, 64)})
    peek = levels.peekitem
    clock = time.perf_counter_ns
    elapsed = 0
    gc.collect()
    for start in range(0, len(stream), CHUNK):
        part = stream[start : start + CHUNK]
        started = clock()
        for command in part:
            index[command.ts_ns & 2047] = command  # bounded, as a book's order index is
            peek(0)
        elapsed += clock() - started
    return elapsed


@dataclass(slots=True)
class LatencyResult:
    digest: str
    latencies_ns: dict[str, list[int]]  # by command kind, and "all"
    accounting: Accounting
    book: OrderBook


def command_kind(command: Command, events: list[Event]) -> str:
    if isinstance(command, Cancel):
        return "cancel"
    if isinstance(command, NewOrder):
        if any(type(event) is Trade for event in events):
            return "new order, trades"
        return "new order, no trade"
    return type(command).__name__


def latency_pass(stream: Sequence[Command]) -> LatencyResult:
    """Replay into a fresh book timing each command; hash and account for every event."""
    book = new_book()
    submit = book.submit
    hasher = hashlib.sha256()
    encode = msgspec.json.Encoder().encode
    accounting = Accounting()
    by_kind: dict[str, list[int]] = {}
    every: list[int] = []
    clock = time.perf_counter_ns
    gc.collect()
    for command in stream:
        started = clock()
        events = submit(command)
        took = clock() - started
        every.append(took)
        by_kind.setdefault(command_kind(command, events), []).append(took)
        hasher.update(encode(events))
        accounting.take(events)
    return LatencyResult(hasher.hexdigest(), {"all": every, **by_kind}, accounting, book)


def percentile_ns(ordered: Sequence[int], per_100k: int) -> int:
    """Nearest-rank percentile of an ascending sequence, the rank given per 100,000."""
    rank = max(1, -(-per_100k * len(ordered) // 100_000))
    return ordered[rank - 1]


# -- the run ---------------------------------------------------------------------------------------


@dataclass(slots=True)
class Report:
    size: int
    seed: int
    stream: StreamStats
    book_ns: list[int]
    floor_ns: list[int]
    digests: list[str]  # one per repetition, then the latency pass's
    events: int
    latency_us: dict[str, tuple[int, dict[str, float]]]  # kind -> (count, percentiles in µs)
    accounting: Accounting
    totals: tuple[int, int, int, int]  # quantity, filled, resting, cancelled (t)
    problems: list[str]

    @property
    def digest_stable(self) -> bool:
        return len(set(self.digests)) == 1

    @property
    def ok(self) -> bool:
        return self.digest_stable and not self.problems


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return (
        f"{platform.platform()}, {platform.python_implementation()} {platform.python_version()}, "
        f"{os.cpu_count()} CPUs ({cpu})"
    )


def run(size: int, seed: int, repeat: int, warmup: int, log: Log = say) -> Report:
    """Generate, warm up, replay, measure and check; log progress through `log`."""
    log(f"machine    {machine()}")
    log(f"generating the standard stream: seed {seed}, {size:,} commands")
    started = time.perf_counter()
    stream, stats = build_standard_stream(
        seed, size, progress=log, progress_every=max(size // 10, 100_000)
    )
    log(
        f"generated  in {time.perf_counter() - started:.1f} s: {stats.passive:,} passive, "
        f"{stats.cancels:,} cancels, {stats.crossing:,} crossing; live orders over the second "
        f"half: mean {stats.live_mean_after_fill:,}, max {stats.live_max:,}, "
        f"final {stats.live_final:,}"
    )
    warm = stream[: min(warmup, size)]
    if warm:
        log(f"warm-up    {len(warm):,} commands into a throw-away book and the floor, untimed")
        throughput_pass(warm)
        floor_pass(warm)

    problems: list[str] = []
    book_ns: list[int] = []
    floor_ns: list[int] = []
    digests: list[str] = []
    events = 0
    for repetition in range(1, repeat + 1):
        elapsed, digest, events, book = throughput_pass(stream)
        problems.extend(_invariants(book, f"repetition {repetition}"))
        floor = floor_pass(stream)
        book_ns.append(elapsed)
        floor_ns.append(floor)
        digests.append(digest)
        log(
            f"repetition {repetition}/{repeat}: book {elapsed / 1e9:.3f} s "
            f"({_rate(size, elapsed)} cmd/s), floor {floor / 1e9:.3f} s, "
            f"sha256 {digest[:16]}…"
        )

    log("latency    pass: perf_counter_ns around each submit (separate from the timed passes)")
    measured = latency_pass(stream)
    digests.append(measured.digest)
    problems.extend(_invariants(measured.book, "latency pass"))
    totals = measured.accounting.close(measured.book)
    problems.extend(measured.accounting.problems)
    latency_us: dict[str, tuple[int, dict[str, float]]] = {}
    for kind, values in measured.latencies_ns.items():
        values.sort()
        rows = {name: percentile_ns(values, rank) / 1e3 for name, rank in PERCENTILES}
        rows["max"] = values[-1] / 1e3
        latency_us[kind] = (len(values), rows)
    if len(set(digests)) != 1:
        problems.append("event hashes differ: " + ", ".join(d[:16] for d in digests))
    return Report(
        size=size,
        seed=seed,
        stream=stats,
        book_ns=book_ns,
        floor_ns=floor_ns,
        digests=digests,
        events=events,
        latency_us=latency_us,
        accounting=measured.accounting,
        totals=totals,
        problems=problems,
    )


def _invariants(book: OrderBook, where: str) -> list[str]:
    try:
        book.check_invariants()
    except BookInvariantError as error:
        return [f"{where}: check_invariants: {error}"]
    return []


def _rate(commands: int, elapsed_ns: int) -> str:
    return f"{commands * 1_000_000_000 // max(elapsed_ns, 1):,}"


def print_report(report: Report, log: Log = say) -> None:
    size = report.size
    book_min, book_median = min(report.book_ns), int(statistics.median(report.book_ns))
    floor_min = min(report.floor_ns)
    accounting = report.accounting
    trades = accounting.events["Trade"]
    log("")
    log(f"results    {size:,} commands, seed {report.seed}, {len(report.book_ns)} repetitions")
    log(
        f"  book        {_rate(size, book_min)} cmd/s at the min time {book_min / 1e9:.3f} s, "
        f"{_rate(size, book_median)} cmd/s at the median {book_median / 1e9:.3f} s"
    )
    log(
        f"  floor       {_rate(size, floor_min)} cmd/s at the min time {floor_min / 1e9:.3f} s "
        "(dict insert + SortedDict.peekitem per command)"
    )
    log(
        f"  ratio       book / floor = {book_min / max(floor_min, 1):.1f}× "
        f"({book_min / size:.0f} ns vs {floor_min / size:.0f} ns per command, min times)"
    )
    log(
        f"  events      {report.events:,} ({report.events / size:.2f} per command); "
        f"trades {trades:,}, volume {accounting.volume_t:,} t, "
        f"notional {_yuan(accounting.notional_fen)} yuan"
    )
    log("  by kind     " + ", ".join(f"{k} {v:,}" for k, v in sorted(accounting.events.items())))
    log(
        "  cancels     "
        + ", ".join(f"{k} {v:,}" for k, v in sorted(accounting.cancel_reasons.items()))
        + (
            "; rejects " + ", ".join(f"{k} {v:,}" for k, v in sorted(accounting.rejects.items()))
            if accounting.rejects
            else "; no rejects"
        )
    )
    log("  latency µs  (latency pass)       count      p50      p99    p99.9      max")
    for kind, (count, rows) in report.latency_us.items():
        cells = "".join(f"{rows[name]:>9.1f}" for name in ("p50", "p99", "p99.9", "max"))
        log(f"    {kind:<28}{count:>10,}{cells}")
    same = "identical" if report.digest_stable else "DIFFERENT"
    log(
        f"  sha256      {report.digests[0]} ({same} over {len(report.book_ns)} repetitions "
        "and the latency pass)"
    )
    quantity, filled, resting, cancelled = report.totals
    balanced = "==" if filled + resting + cancelled == quantity else "!="
    log(
        f"  conserved   {len(accounting.quantity):,} orders: quantity {quantity:,} t {balanced} "
        f"filled {filled:,} + resting {resting:,} + cancelled {cancelled:,}; "
        f"filled = 2 × volume; check_invariants() on every final book"
    )
    if report.problems:
        log("FAILED")
        for problem in report.problems:
            log(f"  {problem}")
    else:
        log("OK")


def _yuan(fen: int) -> str:
    yuan, cents = divmod(fen, 100)
    return f"{yuan:,}.{cents:02d}"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.matching", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--size", type=int, default=1_000_000, help="commands in the stream")
    parser.add_argument("--seed", type=int, default=1, help="seed of the standard stream")
    parser.add_argument("--repeat", type=int, default=3, help="timed repetitions")
    parser.add_argument(
        "--warmup", type=int, default=100_000, help="commands replayed untimed before timing"
    )
    args = parser.parse_args(argv)
    if args.size < 1 or args.repeat < 1 or args.warmup < 0:
        parser.error("need --size >= 1, --repeat >= 1, --warmup >= 0")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    report = run(args.size, args.seed, args.repeat, args.warmup)
    print_report(report)
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
