"""1-minute OHLCV bars from trades: a bar per minute, updated by every trade in it, and a new
subscriber gets the current bar at once."""

from __future__ import annotations

import msgspec

from exchange.journal import Entry
from exchange.market_data import BAR_NS, MarketData
from matching import EndOfDay, InstrumentRules, OrderBook, Side, Trade
from tests.exchange.market import INSTRUMENT, SYMBOL

MINUTE = 29_000_000 * BAR_NS  # the start of some minute in 2025


def trade(n: int, ts_ns: int, price: int, quantity: int) -> Trade:
    return Trade(n, ts_ns, n, price, quantity, 1, 100, 2, 101, Side.BUY, 0, 0)


def test_bars_follow_the_trades_minute_by_minute() -> None:
    books = {SYMBOL: OrderBook(InstrumentRules(symbol=SYMBOL), 5_000)}
    data = MarketData(books, {SYMBOL: INSTRUMENT})
    heard: list[dict[str, object]] = []
    data.subscribe(f"bars:{SYMBOL}", 1, lambda raw: heard.append(msgspec.json.decode(raw)))
    entry = Entry(1, SYMBOL, EndOfDay(ts_ns=0))  # the entry's command does not matter to bars
    for n, (offset_s, price, quantity) in enumerate(
        [(1, 5_000, 10), (20, 5_030, 2), (59, 4_990, 3), (61, 5_010, 1)], 1
    ):
        data.publish(entry, [trade(n, MINUTE + offset_s * 1_000_000_000, price, quantity)])
    first, second = heard[2], heard[3]
    assert (first["start_ns"], first["open"], first["high"], first["low"], first["close"]) == (
        MINUTE,
        5_000,
        5_030,
        4_990,
        4_990,
    )
    assert (first["volume"], first["notional"]) == (15, 50_000 + 10_060 + 14_970)
    assert (second["start_ns"], second["open"], second["close"], second["volume"]) == (
        MINUTE + BAR_NS,
        5_010,
        5_010,
        1,
    )
    assert [bar["seq"] for bar in heard] == [1, 2, 3, 4]
    late: list[dict[str, object]] = []
    data.subscribe(f"bars:{SYMBOL}", 2, lambda raw: late.append(msgspec.json.decode(raw)))
    assert late == [second]
