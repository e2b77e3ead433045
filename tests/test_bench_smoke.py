"""Tiny runs of the benchmarks and the demo, so that none of them goes stale."""

from __future__ import annotations

import asyncio
import itertools
import os
from collections import Counter
from collections.abc import Sequence
from itertools import pairwise

import asyncpg
import pytest

from bench import demo
from bench import exchange as bench_exchange
from bench import matching as bench_matching
from bench import offsets as bench_offsets
from bench import points as bench_points
from bench import settlement as bench_settlement
from bench.workload import build_standard_stream, standard_stream
from matching import Cancelled, Command, Event, NewOrder, OrderBook
from settlement.dvp import fees
from settlement.values import TradeToSettle

pytestmark = pytest.mark.bench

SIZE = 2_000
SERVER_URL = os.environ.get(
    "CERX_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def quiet(_line: str) -> None:
    pass


def test_bench_matching_is_stable_and_conserves() -> None:
    first = bench_matching.run(size=SIZE, seed=1, repeat=1, warmup=0, log=quiet)
    second = bench_matching.run(size=SIZE, seed=1, repeat=2, warmup=100, log=quiet)
    assert first.ok, first.problems
    assert second.ok, second.problems
    assert len(set(first.digests + second.digests)) == 1  # same seed, same events, every pass
    quantity, filled, resting, cancelled = first.totals
    assert quantity == filled + resting + cancelled
    assert first.accounting.events["Trade"] > 0
    assert set(first.latency_us) >= {"all", "cancel", "new order, trades", "new order, no trade"}


def test_bench_matching_main_prints_the_report(capsys: pytest.CaptureFixture[str]) -> None:
    assert bench_matching.main(["--size", str(SIZE), "--repeat", "1", "--warmup", "0"]) == 0
    out = capsys.readouterr().out
    for needle in ("machine", "cmd/s", "floor", "ratio", "p99.9", "sha256", "conserved", "OK"):
        assert needle in out


def test_a_different_seed_gives_a_different_stream() -> None:
    assert standard_stream(1, 500) != standard_stream(2, 500)


def test_standard_stream_shape() -> None:
    stream, stats = build_standard_stream(3, 20_000)
    assert stats.passive + stats.cancels + stats.crossing == len(stream) == 20_000
    percent = [
        100 * count // len(stream) for count in (stats.passive, stats.cancels, stats.crossing)
    ]
    assert 58 <= percent[0] <= 62 and 23 <= percent[1] <= 27 and 13 <= percent[2] <= 17
    assert 1_200 <= stats.live_mean_after_fill <= 1_800
    new_orders = [cmd for cmd in stream if isinstance(cmd, NewOrder)]
    assert all(a.order_id < b.order_id for a, b in pairwise(new_orders))
    assert all(a.ts_ns < b.ts_ns for a, b in pairwise(stream))


def test_accounting_catches_a_lost_cancel() -> None:
    """A wrong answer must not pass: drop one Cancelled event and the conservation check fails."""
    stream = standard_stream(1, SIZE)
    book = bench_matching.new_book()
    accounting = bench_matching.Accounting()
    dropped = False
    for command in stream:
        events: list[Event] = book.submit(command)
        if not dropped and any(type(event) is Cancelled for event in events):
            events = [event for event in events if type(event) is not Cancelled]
            dropped = True
        accounting.take(events)
    accounting.close(book)
    assert dropped
    assert accounting.problems


def test_demo_runs_and_prints_trades(capsys: pytest.CaptureFixture[str]) -> None:
    assert demo.main() == 0
    out = capsys.readouterr().out
    assert "uncrossed" in out
    assert "trade #1 " in out
    assert "Refused, by code:" in out
    assert "Final book" in out
    assert demo.main() == 0
    assert capsys.readouterr().out == out  # deterministic


def test_demo_stream_replays_to_the_same_book() -> None:
    commands = demo.build_demo_stream()
    books = [OrderBook(demo.RULES, demo.REFERENCE_PRICE_FEN) for _ in range(2)]
    for book in books:
        for command in commands:
            book.submit(command)
    assert books[0].snapshot() == books[1].snapshot()


def test_bench_matching_fails_when_a_repetition_differs(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    honest = bench_matching.throughput_pass
    calls = 0

    def flaky(stream: Sequence[Command]) -> tuple[int, str, int, OrderBook]:
        nonlocal calls
        calls += 1
        elapsed, digest, events, book = honest(stream)
        return elapsed, digest if calls == 1 else "0" * 64, events, book

    monkeypatch.setattr(bench_matching, "throughput_pass", flaky)
    assert bench_matching.main(["--size", "500", "--repeat", "2", "--warmup", "0"]) == 1
    assert "FAILED" in capsys.readouterr().out


def test_bench_settlement_settles_checks_and_drops_its_database(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["--database-url", SERVER_URL, "--trades", "300", "--batches", "1,100", "--statements"]
    assert bench_settlement.main(argv) == 0
    out = capsys.readouterr().out
    for needle in (
        "trades/s",
        "statements at batch 100",
        "INSERT settled_trades",
        "300 trades",
        "all already settled",
        "clean",
        "conserved  every account",
        "OK",
    ):
        assert needle in out
    assert "FAILED" not in out

    async def leftover() -> object:
        conn = await asyncpg.connect(SERVER_URL)
        try:
            return await conn.fetchval(
                "SELECT datname FROM pg_database WHERE datname = $1", f"cerx_bench_{os.getpid()}"
            )
        finally:
            await conn.close()

    assert asyncio.run(leftover()) is None


def test_settlement_stream_locks_exactly_what_its_trades_take() -> None:
    market = bench_settlement.Market(100, (101,), (102, 103), (104, 105))
    stream = bench_settlement.generate(7, 10, 500, market, itertools.count(1), itertools.count(1))
    again = bench_settlement.generate(7, 10, 500, market, itertools.count(1), itertools.count(1))
    assert stream.trades == again.trades
    assert len({trade.trade_id for trade in stream.trades}) == 500
    sold: dict[int, int] = {}
    paid: dict[int, int] = {}
    for trade in stream.trades:
        sold[trade.sell_order_id] = sold.get(trade.sell_order_id, 0) + trade.quantity_t
        buyer_fee, _ = fees(trade)
        paid[trade.buy_order_id] = (
            paid.get(trade.buy_order_id, 0) + trade.price_fen * trade.quantity_t + buyer_fee
        )
    assert {order.order_id: order.amount for order in stream.sells} == sold
    assert {order.order_id: order.amount for order in stream.buys} == paid
    assert len(sold) < len(stream.trades) // 5  # many trades per order


def test_bench_settlement_fails_when_a_position_is_off(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A wrong answer must not pass: forget one trade in the expected positions."""
    honest = bench_settlement.settle_positions

    def forgetful(expected: Counter[tuple[int, str]], trades: Sequence[TradeToSettle]) -> None:
        honest(expected, trades[1:])

    monkeypatch.setattr(bench_settlement, "settle_positions", forgetful)
    argv = ["--database-url", SERVER_URL, "--trades", "200", "--batches", "100"]
    assert bench_settlement.main(argv) == 1
    out = capsys.readouterr().out
    assert "conserved  NO" in out and "FAILED" in out


def test_bench_exchange_drives_a_real_server_and_audits(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = [
        "--database-url",
        SERVER_URL,
        "--seconds",
        "1",
        "--connections",
        "2",
        "--window",
        "4",
        "--rate",
        "200",
    ]
    assert bench_exchange.main(argv) == 0
    out = capsys.readouterr().out
    assert "acks/s" in out and "audit      clean" in out and out.rstrip().endswith("OK")


def test_bench_offsets_runs_and_checks(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["--database-url", SERVER_URL, "--entities", "3", "--each", "4", "--concurrency", "3"]
    assert bench_offsets.main(args) == 0
    out = capsys.readouterr().out
    assert "surrenders" in out and "retirements" in out and "OK" in out


def test_bench_points_runs_and_checks(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["--database-url", SERVER_URL, "--users", "300", "--batch", "200", "--batches", "3"]
    assert bench_points.main(args) == 0
    out = capsys.readouterr().out
    assert "distribute" in out and "redeem" in out and "OK" in out
