"""Properties of the real book that hold whatever the commands: hypothesis streams and a state
machine, each checked after every command.

- The book is never crossed while it is open.
- Every order's quantity is conserved: from its `Accepted`, filled (its trades) + resting leaves
  + cancelled == its quantity, an `Amended` setting a new total; the book's own view of each
  resting order (leaves, filled) agrees with the events.
- Event `seq` rises by exactly one, across commands, from 1; every command yields an event and
  every event carries its command's `ts_ns`; trade ids run 1, 2, 3, ... with no gap.
- Snapshot and restore: a book restored from a snapshot taken anywhere yields, for the rest of
  the stream, the very bytes the original yields; a restored book's snapshot encodes as the one
  it was restored from.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from matching import (
    Accepted,
    Amended,
    Cancelled,
    Command,
    Event,
    OrderBook,
    Trade,
    TradingStatus,
    decode_snapshot,
    encode_snapshot,
)
from tests.strategies import MARKETS, SMALL, DrawChooser, Market, Stream, StreamGenerator, streams

PROPERTY_SETTINGS = settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


# --- checkers, fed every command's events --------------------------------------------------


class SequenceChecker:
    """`seq` from 1 rising by one across commands, >= 1 event per command, the command's
    `ts_ns` on every event, trade ids from 1 rising by one."""

    def __init__(self) -> None:
        self.next_seq = 1
        self.next_trade_id = 1

    def check(self, command: Command, events: Sequence[Event]) -> None:
        assert events, f"{command!r} yielded no event"
        for event in events:
            assert event.seq == self.next_seq, (event, self.next_seq)
            assert event.ts_ns == command.ts_ns, (event, command)
            self.next_seq += 1
            if isinstance(event, Trade):
                assert event.trade_id == self.next_trade_id, (event, self.next_trade_id)
                self.next_trade_id += 1


@dataclass
class OrderTally:
    """One order, from its `Accepted` until it leaves the book, as its events tell it."""

    quantity_t: int  # its total: the Accepted quantity, then each Amended's
    leaves_t: int
    filled_t: int = 0
    cancelled_t: int = 0


class QuantityLedger:
    """Per-order quantity conservation, from the events alone, checked against the book."""

    def __init__(self) -> None:
        self.live: dict[int, OrderTally] = {}  # order id -> its current incarnation

    def apply(self, events: Sequence[Event]) -> None:
        for event in events:
            if isinstance(event, Accepted):
                assert event.order_id not in self.live, f"id reused while live: {event!r}"
                self.live[event.order_id] = OrderTally(event.quantity_t, event.quantity_t)
            elif isinstance(event, Trade):
                for order_id, leaves_t in (
                    (event.maker_order_id, event.maker_leaves_t),
                    (event.taker_order_id, event.taker_leaves_t),
                ):
                    tally = self.live[order_id]
                    tally.filled_t += event.quantity_t
                    tally.leaves_t -= event.quantity_t
                    assert tally.leaves_t == leaves_t, (event, tally)
            elif isinstance(event, Cancelled):
                tally = self.live[event.order_id]
                assert event.quantity_t == tally.leaves_t, (event, tally)
                tally.cancelled_t += event.quantity_t
                tally.leaves_t = 0
            elif isinstance(event, Amended):
                tally = self.live[event.order_id]
                assert event.leaves_t == event.quantity_t - tally.filled_t, (event, tally)
                tally.quantity_t = event.quantity_t
                tally.leaves_t = event.leaves_t

    def check(self, book: OrderBook) -> None:
        """Conservation for every live order; the book rests exactly those with leaves."""
        for order_id, tally in list(self.live.items()):
            assert tally.filled_t + tally.leaves_t + tally.cancelled_t == tally.quantity_t, tally
            resting = book.order(order_id)
            if tally.leaves_t == 0:
                assert resting is None, (resting, tally)
                del self.live[order_id]
            else:
                assert resting is not None, (order_id, tally)
                assert (resting.leaves_t, resting.filled_t) == (tally.leaves_t, tally.filled_t)
        assert {o.order_id for o in book.resting_orders()} == set(self.live)


def assert_not_crossed_while_open(book: OrderBook) -> None:
    bid, ask = book.best_bid(), book.best_ask()
    if book.status is TradingStatus.OPEN and bid is not None and ask is not None:
        assert bid < ask, f"open book crossed: bid {bid} >= ask {ask}"


def new_book(market: Market) -> OrderBook:
    return OrderBook(market.rules, market.reference_price_fen)


def restored(book: OrderBook) -> OrderBook:
    """A book restored from `book`'s snapshot, through its encoded bytes as recovery does."""
    return OrderBook.restore(decode_snapshot(encode_snapshot(book.snapshot())))


# --- stream properties ---------------------------------------------------------------------


@PROPERTY_SETTINGS
@given(streams())
def test_open_book_after_any_command_is_not_crossed(stream: Stream) -> None:
    book = new_book(stream.market)
    for command in stream.commands:
        book.submit(command)
        book.check_invariants()
        assert_not_crossed_while_open(book)


@PROPERTY_SETTINGS
@given(streams())
def test_order_quantity_after_any_command_is_filled_plus_leaves_plus_cancelled(
    stream: Stream,
) -> None:
    book = new_book(stream.market)
    ledger = QuantityLedger()
    for command in stream.commands:
        ledger.apply(book.submit(command))
        book.check_invariants()
        ledger.check(book)


@PROPERTY_SETTINGS
@given(streams())
def test_events_across_commands_have_gapless_seq_and_trade_ids_from_one(stream: Stream) -> None:
    book = new_book(stream.market)
    sequence = SequenceChecker()
    for command in stream.commands:
        sequence.check(command, book.submit(command))
        book.check_invariants()


@PROPERTY_SETTINGS
@given(streams(), st.data())
def test_book_restored_mid_stream_yields_the_same_event_bytes_for_the_rest(
    stream: Stream, data: st.DataObject
) -> None:
    split = data.draw(st.integers(0, len(stream.commands)), label="split")
    original = new_book(stream.market)
    for command in stream.commands[:split]:
        original.submit(command)
    snapshot_bytes = encode_snapshot(original.snapshot())
    copy = OrderBook.restore(decode_snapshot(snapshot_bytes))
    assert encode_snapshot(copy.snapshot()) == snapshot_bytes
    for command in stream.commands[split:]:
        expected = msgspec.json.encode(original.submit(command))
        assert msgspec.json.encode(copy.submit(command)) == expected, command
        copy.check_invariants()
    assert encode_snapshot(copy.snapshot()) == encode_snapshot(original.snapshot())


@PROPERTY_SETTINGS
@given(streams())
def test_snapshot_of_restored_book_after_any_command_equals_and_encodes_as_original(
    stream: Stream,
) -> None:
    book = new_book(stream.market)
    for command in stream.commands:
        book.submit(command)
        snapshot = book.snapshot()
        copy = OrderBook.restore(snapshot)
        copy.check_invariants()
        assert copy.snapshot() == snapshot
        assert encode_snapshot(copy.snapshot()) == encode_snapshot(snapshot)


# --- all of it at once, with the book swapped for a restored copy at random -----------------


class BookMachine(RuleBasedStateMachine):
    """One real book under random commands; now and then it is replaced by a copy restored
    from its snapshot. The checkers carry on across the swap, so a restored book must continue
    the seq, the trade ids and every order's tally exactly where the original left them."""

    def __init__(self) -> None:
        super().__init__()
        self.start(SMALL)

    def start(self, market: Market) -> None:
        self.book = new_book(market)
        self.generator = StreamGenerator(market)
        self.sequence = SequenceChecker()
        self.ledger = QuantityLedger()

    @initialize(market=st.sampled_from(MARKETS))
    def choose_market(self, market: Market) -> None:
        self.start(market)

    @rule(data=st.data())
    def submit(self, data: st.DataObject) -> None:
        command = self.generator.next(DrawChooser(data.draw))
        events = self.book.submit(command)
        self.sequence.check(command, events)
        self.ledger.apply(events)

    @rule()
    def restore_from_snapshot(self) -> None:
        before = encode_snapshot(self.book.snapshot())
        self.book = restored(self.book)
        assert encode_snapshot(self.book.snapshot()) == before

    @invariant()
    def book_is_consistent(self) -> None:
        self.book.check_invariants()
        assert_not_crossed_while_open(self.book)
        self.ledger.check(self.book)


BookMachine.TestCase.settings = settings(
    max_examples=100,
    stateful_step_count=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestBookUnderRandomCommandsAndRestores = BookMachine.TestCase
