"""The real book against the naive reference book: the same commands must yield the same events.

Both books are fed one stream; after every command the event lists must be equal field for field
(classes, `seq`, `ts_ns`, trade ids, leaves, level totals), the real book's invariants must hold,
and the books must agree on what they show: status, reference price, best prices, depth, the
resting orders in book order with all their state.

Streams come from tests/strategies.py: thousands of seeded ones (a failing seed is reproducible
with `random_stream(seed, LENGTH)`), a few long ones that build deep books and churn levels, and
hypothesis ones that shrink by themselves. A divergence on a seeded stream is shrunk here to a
short command list before it is reported.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings

from matching import BookInvariantError, Command, Event, OrderBook, Side
from tests.reference_book import ReferenceBook
from tests.strategies import MARKETS, Market, Stream, random_stream, streams

CHUNKS = 20
SEEDS_PER_CHUNK = 150  # 3 000 seeded streams in all
LENGTH = 120  # commands per seeded stream
LONG_LENGTH = 4_000  # commands per long stream, one per market
DEPTH_LEVELS = 4


@dataclass(frozen=True)
class Divergence:
    index: int  # of the command where the books first disagreed
    what: str

    def describe(self, commands: Sequence[Command]) -> str:
        lines = [f"command {self.index}: {self.what}", "commands up to it:"]
        lines += [f"  {i}: {cmd!r}" for i, cmd in enumerate(commands[: self.index + 1])]
        return "\n".join(lines)


def _views(book: OrderBook | ReferenceBook) -> dict[str, object]:
    return {
        "status": book.status,
        "reference_price_fen": book.reference_price_fen,
        "best_bid": book.best_bid(),
        "best_ask": book.best_ask(),
        "bid_depth": book.depth(Side.BUY, DEPTH_LEVELS),
        "ask_depth": book.depth(Side.SELL, DEPTH_LEVELS),
        "resting_orders": book.resting_orders(),
    }


def _compare_command(
    real: OrderBook, reference: ReferenceBook, index: int, cmd: Command
) -> Divergence | None:
    expected = reference.submit(cmd)
    try:
        actual: list[Event] = real.submit(cmd)
    except Exception as error:  # a crash is a divergence like any other
        return Divergence(index, f"real book raised {error!r}; reference gave {expected!r}")
    if actual != expected:
        return Divergence(index, f"\n  real:      {actual!r}\n  reference: {expected!r}")
    try:
        real.check_invariants()
    except BookInvariantError as error:
        return Divergence(index, f"real book invariant broken: {error}")
    real_views, reference_views = _views(real), _views(reference)
    for name, value in reference_views.items():
        if real_views[name] != value:
            return Divergence(index, f"{name}: real {real_views[name]!r}, reference {value!r}")
    for order in reference.orders:
        found = real.order(order.order_id)
        if found != order:
            return Divergence(index, f"order({order.order_id}): real {found!r}, not {order!r}")
    return None


def first_divergence(market: Market, commands: Sequence[Command]) -> Divergence | None:
    """Feed both books `commands`; the first point where they disagree, if any."""
    real = OrderBook(market.rules, market.reference_price_fen)
    reference = ReferenceBook(market.rules, market.reference_price_fen)
    for index, cmd in enumerate(commands):
        divergence = _compare_command(real, reference, index, cmd)
        if divergence is not None:
            return divergence
    return None


def shrink(market: Market, commands: Sequence[Command]) -> tuple[list[Command], Divergence]:
    """A short sub-sequence of a diverging stream that still diverges (greedy chunk removal)."""
    divergence = first_divergence(market, commands)
    assert divergence is not None
    current = list(commands[: divergence.index + 1])
    chunk = max(1, len(current) // 2)
    while True:
        start = 0
        while start < len(current):
            candidate = current[:start] + current[start + chunk :]
            found = first_divergence(market, candidate) if candidate else None
            if found is not None:
                current, divergence = candidate[: found.index + 1], found
            else:
                start += chunk
        if chunk == 1:
            return current, divergence
        chunk = max(1, chunk // 2)


def assert_books_agree(stream: Stream) -> None:
    divergence = first_divergence(stream.market, stream.commands)
    if divergence is not None:
        commands, divergence = shrink(stream.market, stream.commands)
        pytest.fail(
            f"market {stream.market.name}: books disagree\n{divergence.describe(commands)}",
            pytrace=False,
        )


@pytest.mark.parametrize("chunk", range(CHUNKS))
def test_real_book_on_seeded_streams_yields_the_reference_events(chunk: int) -> None:
    for seed in range(chunk * SEEDS_PER_CHUNK, (chunk + 1) * SEEDS_PER_CHUNK):
        stream = random_stream(seed, LENGTH)
        divergence = first_divergence(stream.market, stream.commands)
        if divergence is not None:
            commands, divergence = shrink(stream.market, stream.commands)
            pytest.fail(
                f"seed {seed}, market {stream.market.name}: books disagree\n"
                f"{divergence.describe(commands)}",
                pytrace=False,
            )


@pytest.mark.parametrize("market", MARKETS, ids=lambda market: market.name)
def test_real_book_on_long_stream_yields_the_reference_events(market: Market) -> None:
    assert_books_agree(random_stream(1_000_003, LONG_LENGTH, market))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(streams(max_size=80))
def test_real_book_on_hypothesis_streams_yields_the_reference_events(stream: Stream) -> None:
    divergence = first_divergence(stream.market, stream.commands)
    assert divergence is None, divergence.describe(stream.commands)
