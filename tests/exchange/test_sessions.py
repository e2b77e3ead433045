"""Trading sessions on a real book, day by day: closed overnight, a call auction that uncrosses at
the open, the close taking the next reference price, catch-up after a restart, and an operator's
halt respected until the next day's auction."""

from __future__ import annotations

import datetime as dt

from exchange.journal import Entry
from exchange.sessions import Sessions, TradingHours
from matching import (
    Command,
    EndOfDay,
    Event,
    Halt,
    InstrumentRules,
    NewOrder,
    OrderBook,
    Resume,
    StartAuction,
    Trade,
    TradingStatus,
    Uncross,
)
from matching.values import Side

SYMBOL = "SZCER-2025"
HOURS = TradingHours(holidays=(dt.date(2026, 11, 26),))
MONDAY = dt.date(2026, 11, 23)


def at(day: dt.date, hour: int, minute: int = 0) -> int:
    return HOURS.at(day, dt.time(hour, minute))


class Market:
    """One book driven by its schedule, with every applied command kept as a journal would."""

    def __init__(self, journal: list[tuple[Entry, list[Event]]] | None = None) -> None:
        self.book = OrderBook(InstrumentRules(symbol=SYMBOL), 5_000)
        self.now = 0
        self.journal: list[tuple[Entry, list[Event]]] = []
        self.sessions = Sessions(
            {SYMBOL: HOURS}, lambda _symbol: self.book.status, self.operate, lambda: self.now
        )
        for entry, _ in journal or []:
            self.apply(entry.command)  # a restart replays the journal into a fresh book

    def apply(self, command: Command) -> list[Event]:
        entry = Entry(len(self.journal) + 1, SYMBOL, command)
        events = self.book.submit(command)
        self.journal.append((entry, events))
        self.sessions.observe(entry, events)
        return events

    async def operate(self, symbol: str, command: Command) -> list[Event]:
        assert symbol == SYMBOL
        return self.apply(command)

    async def step(self, ts_ns: int) -> list[type]:
        """Move the clock to `ts_ns` and run the schedule; the kinds of command it issued."""
        self.now = ts_ns
        before = len(self.journal)
        await self.sessions.tick()
        return [type(entry.command) for entry, _ in self.journal[before:]]


async def test_a_day_closed_then_auction_then_continuous_then_closed() -> None:
    market = Market()
    # before Monday's auction: Friday's close is taken, and the book is closed (halted)
    assert await market.step(at(MONDAY, 8)) == [EndOfDay, Halt]
    assert await market.step(at(MONDAY, 9)) == []
    assert await market.step(at(MONDAY, 9, 15)) == [Resume, StartAuction]
    assert market.book.status is TradingStatus.AUCTION
    for order_id, side, price in ((1, Side.BUY, 5_020), (2, Side.SELL, 4_990)):
        market.apply(NewOrder(at(MONDAY, 9, 20), order_id, order_id, side, 10, price))
    assert not any(isinstance(e, Trade) for _, events in market.journal for e in events)
    assert await market.step(at(MONDAY, 9, 25)) == [Uncross]
    assert market.book.status is TradingStatus.OPEN
    trades = [e for _, events in market.journal for e in events if isinstance(e, Trade)]
    # one price for all: of the limits that match the most, the nearest the reference
    assert [(t.price_fen, t.quantity_t) for t in trades] == [(4_990, 10)]
    assert await market.step(at(MONDAY, 11)) == []
    assert await market.step(at(MONDAY, 15)) == [EndOfDay, Halt]
    assert market.book.reference_price_fen == 4_990  # the close: the next day's band centre
    # Tuesday opens again; Thursday is a holiday and the weekend is closed
    assert await market.step(at(MONDAY + dt.timedelta(days=1), 9, 16)) == [Resume, StartAuction]
    assert await market.step(at(MONDAY + dt.timedelta(days=1), 16)) == [Uncross, EndOfDay, Halt]
    thursday, saturday = MONDAY + dt.timedelta(days=3), MONDAY + dt.timedelta(days=5)
    # down all Wednesday: its close is taken; the book stayed closed
    assert await market.step(at(MONDAY + dt.timedelta(days=2), 15, 1)) == [EndOfDay]
    assert await market.step(at(thursday, 10)) == []
    # Friday is missed entirely; on Saturday its close is taken, and nothing more
    assert await market.step(at(saturday, 10)) == [EndOfDay]
    assert await market.step(at(saturday, 11)) == []


async def test_a_restart_catches_up_from_where_the_book_stands() -> None:
    market = Market()
    await market.step(at(MONDAY, 9, 15))
    market.apply(NewOrder(at(MONDAY, 9, 16), 1, 1, Side.BUY, 5, 5_010))
    market.apply(NewOrder(at(MONDAY, 9, 17), 2, 2, Side.SELL, 5, 5_010))
    # down from 9:18 Monday to 10:00 Tuesday: Monday's auction is matched late and its close
    # taken once; Tuesday's missed auction is held late and matched at once
    restarted = Market(market.journal)
    assert restarted.book.status is TradingStatus.AUCTION
    tuesday = MONDAY + dt.timedelta(days=1)
    assert await restarted.step(at(tuesday, 10)) == [Uncross, EndOfDay, StartAuction, Uncross]
    assert restarted.book.status is TradingStatus.OPEN
    assert any(isinstance(e, Trade) for _, events in restarted.journal for e in events)
    assert await restarted.step(at(tuesday, 10, 1)) == []


async def test_an_operators_halt_stands_until_the_next_days_auction() -> None:
    market = Market()
    await market.step(at(MONDAY, 9, 25))
    assert market.book.status is TradingStatus.OPEN
    market.apply(Halt(at(MONDAY, 10)))
    assert await market.step(at(MONDAY, 11)) == []
    assert market.book.status is TradingStatus.HALTED
    assert await market.step(at(MONDAY, 15)) == [EndOfDay]  # already halted
    tuesday = MONDAY + dt.timedelta(days=1)
    assert await market.step(at(tuesday, 9, 15)) == [Resume, StartAuction]
    # halted during the auction: the open waits for the operator, then uncrosses
    market.apply(Halt(at(tuesday, 9, 20)))
    assert await market.step(at(tuesday, 9, 30)) == []
    market.apply(Resume(at(tuesday, 9, 40)))
    assert await market.step(at(tuesday, 9, 41)) == [Uncross]
    # an auction the operator starts during the day is the operator's to uncross
    market.apply(StartAuction(at(tuesday, 11)))
    assert await market.step(at(tuesday, 11, 30)) == []
    assert market.book.status is TradingStatus.AUCTION


def test_hours_are_local_to_shanghai() -> None:
    utc = dt.datetime(2026, 11, 23, 1, 15, tzinfo=dt.UTC)
    assert HOURS.at(MONDAY, dt.time(9, 15)) == int(utc.timestamp()) * 1_000_000_000
    assert HOURS.last_close(at(MONDAY, 14)) == at(MONDAY - dt.timedelta(days=3), 15)
