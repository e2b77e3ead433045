"""A small table runner for order-book scenario tests, and compact builders for its rows.

A scenario is a list of rows, one per command, each with what the command must yield:

- a list of events, compared field for field (seq, trade ids, leaves and level totals included);
- a `RejectCode`, which stands for the single exact `Rejected` event the command must yield;
- a string of event class names (`"Accepted Trade LevelChanged"`) where only the kinds matter.

Commands are built with `ts_ns=0`; the runner stamps each with a fresh, rising timestamp, checks
that every event carries it, then compares with `ts_ns` zeroed, so the tables need not repeat it.
After every command it also checks the book's invariants, that the command yielded at least one
event, and that `seq` continued from the previous command with no gap.

The shared instrument: tick 10 fen, lot 10 t, quantities 10..1 000 t, band ±10 % around a
reference of 1 000 fen, so the band is [900, 1100].
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import msgspec

from matching import (
    Accepted,
    Amend,
    Amended,
    Cancel,
    CancelAll,
    Cancelled,
    CancelReason,
    Command,
    Event,
    InstrumentRules,
    LevelChanged,
    NewOrder,
    OrderBook,
    RejectCode,
    Rejected,
    SessionClosed,
    Side,
    StatusChanged,
    StpMode,
    TimeInForce,
    Trade,
    TradingStatus,
    Uncrossed,
)
from matching.values import OrderType

RULES = InstrumentRules(
    symbol="SZCER-2025", tick_fen=10, lot_t=10, min_quantity_t=10, max_quantity_t=1_000
)
REFERENCE_PRICE_FEN = 1_000  # band [900, 1100]

BUY = Side.BUY
SELL = Side.SELL
GTC = TimeInForce.GTC
IOC = TimeInForce.IOC
FOK = TimeInForce.FOK
DAY = TimeInForce.DAY
NEWEST = StpMode.CANCEL_NEWEST
OLDEST = StpMode.CANCEL_OLDEST
BOTH = StpMode.CANCEL_BOTH

# Accounts: named so that a table shows at a glance who trades with whom.
ALICE = 1
BOB = 2
CAROL = 3
DAVE = 4
ERIN = 5

Level = tuple[int, int, int]  # (price_fen, quantity_t, order_count), as OrderBook.depth gives it
Expect = list[Event] | RejectCode | str
Row = tuple[Command, Expect]


# --- commands ------------------------------------------------------------------------------


def buy(
    order_id: int,
    quantity_t: int,
    price_fen: int | None,
    account_id: int = ALICE,
    *,
    tif: TimeInForce = GTC,
    post_only: bool = False,
    stp: StpMode = NEWEST,
) -> NewOrder:
    """A limit buy."""
    return _order(BUY, order_id, quantity_t, price_fen, account_id, tif, post_only, stp)


def sell(
    order_id: int,
    quantity_t: int,
    price_fen: int | None,
    account_id: int = BOB,
    *,
    tif: TimeInForce = GTC,
    post_only: bool = False,
    stp: StpMode = NEWEST,
) -> NewOrder:
    """A limit sell."""
    return _order(SELL, order_id, quantity_t, price_fen, account_id, tif, post_only, stp)


def market(
    side: Side,
    order_id: int,
    quantity_t: int,
    account_id: int,
    *,
    tif: TimeInForce = IOC,
    price_fen: int | None = None,
    post_only: bool = False,
    stp: StpMode = NEWEST,
) -> NewOrder:
    """A market order (IOC unless told otherwise)."""
    return NewOrder(
        ts_ns=0,
        order_id=order_id,
        account_id=account_id,
        side=side,
        quantity_t=quantity_t,
        price_fen=price_fen,
        order_type=OrderType.MARKET,
        tif=tif,
        post_only=post_only,
        stp=stp,
    )


def _order(
    side: Side,
    order_id: int,
    quantity_t: int,
    price_fen: int | None,
    account_id: int,
    tif: TimeInForce,
    post_only: bool,
    stp: StpMode,
) -> NewOrder:
    return NewOrder(
        ts_ns=0,
        order_id=order_id,
        account_id=account_id,
        side=side,
        quantity_t=quantity_t,
        price_fen=price_fen,
        tif=tif,
        post_only=post_only,
        stp=stp,
    )


def cancel(order_id: int, account_id: int) -> Cancel:
    return Cancel(ts_ns=0, order_id=order_id, account_id=account_id)


def cancel_all(account_id: int) -> CancelAll:
    return CancelAll(ts_ns=0, account_id=account_id)


def amend(order_id: int, account_id: int, quantity_t: int, price_fen: int | None = None) -> Amend:
    return Amend(
        ts_ns=0,
        order_id=order_id,
        account_id=account_id,
        quantity_t=quantity_t,
        price_fen=price_fen,
    )


# --- expected events (ts_ns 0: the runner compares with ts_ns zeroed) -----------------------


def accepted(
    seq: int, order_id: int, account_id: int, side: Side, quantity_t: int, price_fen: int | None
) -> Accepted:
    return Accepted(seq, 0, order_id, account_id, side, quantity_t, price_fen)


def rejected(seq: int, code: RejectCode, order_id: int | None, account_id: int | None) -> Rejected:
    return Rejected(seq, 0, code, order_id, account_id)


def trade(
    seq: int,
    trade_id: int,
    price_fen: int,
    quantity_t: int,
    maker: tuple[int, int, int],
    taker: tuple[int, int, int],
    aggressor: Side | None,
) -> Trade:
    """A trade; `maker` and `taker` are (order_id, account_id, leaves_t after the fill)."""
    maker_order_id, maker_account_id, maker_leaves_t = maker
    taker_order_id, taker_account_id, taker_leaves_t = taker
    return Trade(
        seq,
        0,
        trade_id,
        price_fen,
        quantity_t,
        maker_order_id,
        maker_account_id,
        taker_order_id,
        taker_account_id,
        aggressor,
        maker_leaves_t,
        taker_leaves_t,
    )


def cancelled(
    seq: int, order_id: int, account_id: int, quantity_t: int, reason: CancelReason
) -> Cancelled:
    return Cancelled(seq, 0, order_id, account_id, quantity_t, reason)


def amended(
    seq: int,
    order_id: int,
    account_id: int,
    price_fen: int,
    quantity_t: int,
    leaves_t: int,
    *,
    priority_kept: bool,
) -> Amended:
    return Amended(seq, 0, order_id, account_id, price_fen, quantity_t, leaves_t, priority_kept)


def level(seq: int, side: Side, price_fen: int, quantity_t: int, order_count: int) -> LevelChanged:
    return LevelChanged(seq, 0, side, price_fen, quantity_t, order_count)


def status(seq: int, new_status: TradingStatus) -> StatusChanged:
    return StatusChanged(seq, 0, new_status)


def uncrossed(seq: int, price_fen: int | None, quantity_t: int) -> Uncrossed:
    return Uncrossed(seq, 0, price_fen, quantity_t)


def session_closed(
    seq: int,
    close_price_fen: int | None,
    reference_price_fen: int,
    volume_t: int,
    notional_fen: int,
) -> SessionClosed:
    return SessionClosed(seq, 0, close_price_fen, reference_price_fen, volume_t, notional_fen)


# --- the runner ----------------------------------------------------------------------------


class Scenario:
    """One book, fed one command at a time, checked after every command."""

    def __init__(
        self, rules: InstrumentRules = RULES, reference_price_fen: int = REFERENCE_PRICE_FEN
    ) -> None:
        self.book = OrderBook(rules, reference_price_fen)
        self.ts_ns = 0
        self.next_seq = 1

    def submit(self, command: Command) -> list[Event]:
        """Stamp, submit, check; return the events with `ts_ns` zeroed."""
        self.ts_ns += 1_000
        stamped = msgspec.structs.replace(command, ts_ns=self.ts_ns)
        events = self.book.submit(stamped)
        self.book.check_invariants()
        assert events, f"{command!r} yielded no event"
        seqs = [event.seq for event in events]
        assert seqs == list(range(self.next_seq, self.next_seq + len(events))), seqs
        assert all(event.ts_ns == self.ts_ns for event in events), events
        self.next_seq += len(events)
        return [msgspec.structs.replace(event, ts_ns=0) for event in events]

    def given(self, *commands: Command) -> None:
        """Submit set-up commands; they must not be rejected."""
        for command in commands:
            events = self.submit(command)
            assert not any(type(event) is Rejected for event in events), (command, events)

    def run(self, rows: Sequence[Row]) -> None:
        """Submit each row's command and compare what it yields with the row's expectation."""
        for index, (command, expect) in enumerate(rows):
            seq = self.next_seq
            events = self.submit(command)
            if isinstance(expect, RejectCode):
                expected: Any = [rejected(seq, expect, _order_id(command), _account_id(command))]
                actual: Any = events
            elif isinstance(expect, str):
                expected = expect.split()
                actual = [type(event).__name__ for event in events]
            else:
                expected, actual = expect, events
            assert actual == expected, _mismatch(index, command, actual, expected)

    def depth(self) -> tuple[list[Level], list[Level]]:
        """Every level of both sides, best first: (bids, asks)."""
        return self.book.depth(BUY, 1_000), self.book.depth(SELL, 1_000)

    def queue(self) -> list[int]:
        """Resting order ids in book order: bids best first, FIFO; then asks."""
        return [order.order_id for order in self.book.resting_orders()]


def _mismatch(index: int, command: Command, actual: list[Any], expected: list[Any]) -> str:
    """Say which row failed and list both sides, one event a line (this module is not rewritten
    by pytest, so the message carries the diff)."""
    lines = [f"row {index}: {command!r}", "actual:"]
    lines += [f"  {item!r}" for item in actual]
    lines += ["expected:"]
    lines += [f"  {item!r}" for item in expected]
    return "\n".join(lines)


def _order_id(command: Command) -> int | None:
    return getattr(command, "order_id", None)


def _account_id(command: Command) -> int | None:
    return getattr(command, "account_id", None)


def kinds(events: Iterable[Event]) -> list[str]:
    return [type(event).__name__ for event in events]
