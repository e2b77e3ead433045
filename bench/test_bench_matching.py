"""pytest-benchmark suite for the order book: `make bench`, or `pytest bench --benchmark-enable`.

Each benchmark times one round of a batch of commands against a book in the standard workload's
steady state (about 1,500 live orders): `BATCH` passive adds, `BATCH` cancels, `BATCH` crossing
orders, or `STREAM_SIZE` commands of the mixed standard stream from an empty book. A fresh book
is restored from a snapshot before each round, untimed (`benchmark.pedantic` with a setup), so
every round sees the same book. Divide a round's time by `extra_info["commands"]` for the time per
command. Without `--benchmark-enable` (the default addopts) each runs once, as a plain test.
"""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from bench.workload import (
    ACCOUNTS,
    REFERENCE_PRICE_FEN,
    STANDARD_RULES,
    StreamBuilder,
    build_standard_stream,
)
from matching import (
    BookSnapshot,
    Cancel,
    Command,
    NewOrder,
    OrderBook,
    OrderType,
    Side,
    TimeInForce,
    Trade,
    price_band,
)

SEED = 1
WARM_SIZE = 20_000  # commands of the standard stream that bring a book to its steady state
STREAM_SIZE = 20_000
BATCH = 1_000
ROUNDS = 20
TAKER_ACCOUNT = ACCOUNTS + 1  # owns no resting order: crossing orders never meet themselves

Setup = Callable[[], tuple[tuple[OrderBook, list[Command]], dict[str, object]]]


@pytest.fixture(scope="module")
def steady() -> tuple[BookSnapshot, int, int]:
    """A steady-state book's snapshot, its last order id and its last timestamp."""
    builder = StreamBuilder(SEED)
    for _ in range(WARM_SIZE):
        builder.step()
    return builder.book.snapshot(), builder.next_order_id(), builder.next_ts_ns()


def replay(book: OrderBook, commands: list[Command]) -> int:
    """Submit every command; return the number of events (so nothing is optimised away)."""
    submit = book.submit
    events = 0
    for command in commands:
        events += len(submit(command))
    return events


def restoring(snapshot: BookSnapshot, commands: list[Command]) -> Setup:
    def setup() -> tuple[tuple[OrderBook, list[Command]], dict[str, object]]:
        return (OrderBook.restore(snapshot), commands), {}

    return setup


def run(benchmark: BenchmarkFixture, setup: Setup, commands: list[Command]) -> int:
    benchmark.extra_info["commands"] = len(commands)
    events: int = benchmark.pedantic(  # type: ignore[no-untyped-call]
        replay, setup=setup, rounds=ROUNDS, iterations=1
    )
    return events


def test_passive_add(benchmark: BenchmarkFixture, steady: tuple[BookSnapshot, int, int]) -> None:
    """New GTC limit orders behind the touch: each rests, none trades."""
    snapshot, order_id, ts_ns = steady
    book = OrderBook.restore(snapshot)
    best_bid, best_ask = book.best_bid(), book.best_ask()
    assert best_bid is not None and best_ask is not None
    rng = random.Random(SEED)
    commands: list[Command] = []
    for index in range(BATCH):
        side = Side.BUY if index % 2 else Side.SELL
        offset = rng.randint(0, 30)
        price = best_bid - offset if side is Side.BUY else best_ask + offset
        commands.append(
            NewOrder(ts_ns + index, order_id + index, rng.randint(1, ACCOUNTS), side, 10, price)
        )
    events = run(benchmark, restoring(snapshot, commands), commands)
    assert events == 2 * BATCH  # Accepted + LevelChanged each


def test_cancel(benchmark: BenchmarkFixture, steady: tuple[BookSnapshot, int, int]) -> None:
    """Cancels of resting orders, in random order, from all over the book."""
    snapshot, _, ts_ns = steady
    resting = [*snapshot.bids, *snapshot.asks]
    assert len(resting) >= BATCH
    chosen = random.Random(SEED).sample(resting, BATCH)
    commands: list[Command] = [
        Cancel(ts_ns + index, order.order_id, order.account_id)
        for index, order in enumerate(chosen)
    ]
    events = run(benchmark, restoring(snapshot, commands), commands)
    assert events == 2 * BATCH  # Cancelled + LevelChanged each


def test_crossing_order(benchmark: BenchmarkFixture, steady: tuple[BookSnapshot, int, int]) -> None:
    """Small IOC orders that take from the touch, alternately buying and selling."""
    snapshot, order_id, ts_ns = steady
    low, high = price_band(STANDARD_RULES, REFERENCE_PRICE_FEN)
    rng = random.Random(SEED)
    commands: list[Command] = []
    for index in range(BATCH):
        side = Side.BUY if index % 2 else Side.SELL
        quantity = rng.randint(1, 20)
        oid, ts = order_id + index, ts_ns + index
        if index % 4 < 2:
            commands.append(
                NewOrder(
                    ts, oid, TAKER_ACCOUNT, side, quantity, None, OrderType.MARKET, TimeInForce.IOC
                )
            )
        else:  # a limit at the band's edge: through the touch whatever the book did
            limit = high if side is Side.BUY else low
            commands.append(
                NewOrder(ts, oid, TAKER_ACCOUNT, side, quantity, limit, tif=TimeInForce.IOC)
            )
    book = OrderBook.restore(snapshot)
    trades = sum(type(event) is Trade for cmd in commands for event in book.submit(cmd))
    assert trades >= BATCH  # every one of them trades
    run(benchmark, restoring(snapshot, commands), commands)


def test_standard_stream(benchmark: BenchmarkFixture) -> None:
    """The mixed standard stream from an empty book: 60 % passive, 25 % cancel, 15 % crossing."""
    stream, _ = build_standard_stream(SEED, STREAM_SIZE)

    def setup() -> tuple[tuple[OrderBook, list[Command]], dict[str, object]]:
        return (OrderBook(STANDARD_RULES, REFERENCE_PRICE_FEN), stream), {}

    events = run(benchmark, setup, stream)
    assert events > STREAM_SIZE
