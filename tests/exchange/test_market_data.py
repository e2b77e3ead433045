"""1-minute OHLCV bars from trades: a bar per minute, updated by every trade in it, and a new
subscriber gets the current bar at once."""

from __future__ import annotations

import msgspec

from exchange.journal import Entry
from exchange.market_data import BAR_NS, HISTORY_BARS, MarketData, MarketState
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


def test_a_days_bars_are_kept_for_charts_and_come_back_from_a_snapshot() -> None:
    books = {SYMBOL: OrderBook(InstrumentRules(symbol=SYMBOL), 5_000)}
    data = MarketData(books, {SYMBOL: INSTRUMENT})
    entry = Entry(1, SYMBOL, EndOfDay(ts_ns=0))
    assert data.bars(SYMBOL) == []
    minutes = HISTORY_BARS + 5
    for n in range(minutes):  # one trade a minute, a day and five minutes of them
        data.publish(entry, [trade(n + 1, MINUTE + n * BAR_NS, 5_000 + n, 1)])
    bars = data.bars(SYMBOL)
    # the last day of closed minutes, and the current one last
    assert len(bars) == HISTORY_BARS + 1
    assert [bar.start_ns for bar in bars] == [
        MINUTE + n * BAR_NS for n in range(minutes - HISTORY_BARS - 1, minutes)
    ]
    assert [bar.close for bar in bars[-2:]] == [5_000 + minutes - 2, 5_000 + minutes - 1]
    bars[-1].close = 1  # a copy: the caller cannot change the market's bars
    assert data.bars(SYMBOL)[-1].close == 5_000 + minutes - 1

    state = msgspec.msgpack.decode(msgspec.msgpack.encode(data.state()), type=MarketState)
    again = MarketData(books, {SYMBOL: INSTRUMENT})
    again.restore(state)
    assert again.bars(SYMBOL) == data.bars(SYMBOL)
    # a snapshot written before bars were kept has none, and restores
    older = msgspec.msgpack.decode(
        msgspec.msgpack.encode({"seqs": {}, "bars": {}, "days": {}}), type=MarketState
    )
    assert older.closed == {}
