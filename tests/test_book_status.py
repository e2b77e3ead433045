"""Trading status: halt and resume, the call auction and its uncross, end of day and the band.

Instrument (tests/book_scenarios.py): tick 10 fen, lot 10 t, quantities 10..1 000 t, band
[900, 1100] around a reference of 1 000 fen.
"""

from __future__ import annotations

import msgspec
import pytest

from matching import (
    CancelReason,
    ClosePriceRule,
    Command,
    EndOfDay,
    Halt,
    NewOrder,
    RejectCode,
    Resume,
    StartAuction,
    Trade,
    TradingStatus,
    Uncross,
)
from tests.book_scenarios import (
    ALICE,
    BOB,
    BUY,
    CAROL,
    DAVE,
    DAY,
    ERIN,
    FOK,
    IOC,
    RULES,
    SELL,
    Scenario,
    accepted,
    amend,
    amended,
    buy,
    cancel,
    cancelled,
    level,
    market,
    sell,
    session_closed,
    status,
    trade,
    uncrossed,
)

HALT = CancelReason.HALT
EXPIRED = CancelReason.EXPIRED
USER = CancelReason.USER
IOC_REMAINDER = CancelReason.IOC_REMAINDER
R = RejectCode
OPEN = TradingStatus.OPEN
HALTED = TradingStatus.HALTED
AUCTION = TradingStatus.AUCTION


def halt(cancel_resting: bool = False) -> Halt:
    return Halt(ts_ns=0, cancel_resting=cancel_resting)


RESUME = Resume(ts_ns=0)
START_AUCTION = StartAuction(ts_ns=0)
UNCROSS = Uncross(ts_ns=0)
END_OF_DAY = EndOfDay(ts_ns=0)


# --- halt and resume ---------------------------------------------------------------------------


def test_halt_without_cancel_keeps_orders_refuses_entry_and_amend_allows_cancel_until_resume() -> (
    None
):
    s = Scenario()
    s.given(buy(11, 10, 1000, ALICE), sell(12, 10, 1010, BOB))
    s.run(
        [
            (halt(), [status(5, HALTED)]),
            (halt(), R.BOOK_MUST_NOT_BE_HALTED),  # Rejected(code, None, None)
            (halt(cancel_resting=True), R.BOOK_MUST_NOT_BE_HALTED),
            (buy(21, 10, 1010, CAROL), R.BOOK_MUST_NOT_BE_HALTED),
            (amend(11, ALICE, 20), R.BOOK_MUST_NOT_BE_HALTED),
            (START_AUCTION, R.BOOK_MUST_NOT_BE_HALTED),
            (UNCROSS, R.BOOK_MUST_BE_IN_AUCTION),
            (cancel(12, BOB), [cancelled(12, 12, BOB, 10, USER), level(13, SELL, 1010, 0, 0)]),
            (RESUME, [status(14, OPEN)]),
            (RESUME, R.BOOK_MUST_BE_HALTED),
            (
                buy(22, 10, 1000, CAROL),
                [accepted(16, 22, CAROL, BUY, 10, 1000), level(17, BUY, 1000, 20, 2)],
            ),
        ]
    )
    assert s.depth() == ([(1000, 20, 2)], [])
    assert s.book.status is OPEN


def test_halt_with_cancel_resting_cancels_every_order_in_book_order() -> None:
    s = Scenario()
    s.given(
        buy(11, 10, 990, ALICE),
        buy(12, 20, 1000, BOB),
        buy(13, 10, 1000, CAROL),
        sell(14, 10, 1020, ALICE),
        sell(15, 10, 1010, BOB),
    )
    s.run(
        [
            (
                halt(cancel_resting=True),
                [
                    status(11, HALTED),
                    cancelled(12, 12, BOB, 20, HALT),
                    level(13, BUY, 1000, 10, 1),
                    cancelled(14, 13, CAROL, 10, HALT),
                    level(15, BUY, 1000, 0, 0),
                    cancelled(16, 11, ALICE, 10, HALT),
                    level(17, BUY, 990, 0, 0),
                    cancelled(18, 15, BOB, 10, HALT),
                    level(19, SELL, 1010, 0, 0),
                    cancelled(20, 14, ALICE, 10, HALT),
                    level(21, SELL, 1020, 0, 0),
                ],
            ),
        ]
    )
    assert s.depth() == ([], [])
    assert s.book.status is HALTED


def test_halt_with_cancel_resting_on_an_empty_book_only_changes_status() -> None:
    s = Scenario()
    s.run([(halt(cancel_resting=True), [status(1, HALTED)])])


def test_resume_returns_a_halted_auction_to_auction() -> None:
    s = Scenario()
    s.given(START_AUCTION, buy(11, 10, 1000, ALICE))
    s.run(
        [
            (halt(), [status(4, HALTED)]),
            (halt(), R.BOOK_MUST_NOT_BE_HALTED),  # must not overwrite the remembered status
            (RESUME, [status(6, AUCTION)]),
            (buy(21, 10, 1000, tif=IOC), R.ORDER_MUST_REST_DURING_AUCTION),
            (
                halt(cancel_resting=True),
                [status(8, HALTED), cancelled(9, 11, ALICE, 10, HALT), level(10, BUY, 1000, 0, 0)],
            ),
            (END_OF_DAY, [session_closed(11, None, 1000, 0, 0)]),
            (RESUME, [status(12, AUCTION)]),
            (START_AUCTION, R.BOOK_MUST_NOT_BE_IN_AUCTION),
        ]
    )
    assert s.book.status is AUCTION


def test_resume_after_auction_uncrossed_returns_to_open_not_to_an_older_status() -> None:
    s = Scenario()
    s.run(
        [
            (START_AUCTION, [status(1, AUCTION)]),
            (halt(), [status(2, HALTED)]),
            (RESUME, [status(3, AUCTION)]),
            (UNCROSS, [uncrossed(4, None, 0), status(5, OPEN)]),
            (halt(), [status(6, HALTED)]),
            (RESUME, [status(7, OPEN)]),
        ]
    )


def test_status_commands_out_of_place_are_refused() -> None:
    s = Scenario()
    s.run(
        [
            (RESUME, R.BOOK_MUST_BE_HALTED),
            (UNCROSS, R.BOOK_MUST_BE_IN_AUCTION),
            (START_AUCTION, [status(3, AUCTION)]),
            (START_AUCTION, R.BOOK_MUST_NOT_BE_IN_AUCTION),
            (RESUME, R.BOOK_MUST_BE_HALTED),
        ]
    )
    assert s.book.status is AUCTION


# --- uncross -----------------------------------------------------------------------------------


def test_uncross_at_max_volume_price_fills_in_priority_with_earlier_entry_as_maker() -> None:
    s = Scenario()
    s.given(
        START_AUCTION,  # 1
        sell(21, 20, 990, BOB),  # entry 2
        buy(22, 30, 1010, ALICE),  # entry 4
        sell(23, 30, 1000, DAVE),  # entry 6
        buy(24, 20, 1000, CAROL),  # entry 8
        sell(25, 10, 1020, ERIN),  # entry 10
        buy(26, 10, 980, ERIN),  # entry 12
    )
    # At 990: 50 bid, 20 offered. At 1000: 50 and 50. At 1010: 30 and 50. At 980, 1020: 0.
    s.run(
        [
            (
                UNCROSS,
                [
                    uncrossed(14, 1000, 50),
                    trade(15, 1, 1000, 20, (21, BOB, 0), (22, ALICE, 10), None),
                    trade(16, 2, 1000, 10, (22, ALICE, 0), (23, DAVE, 20), None),
                    trade(17, 3, 1000, 20, (23, DAVE, 0), (24, CAROL, 0), None),
                    level(18, BUY, 1010, 0, 0),
                    level(19, BUY, 1000, 0, 0),
                    level(20, SELL, 990, 0, 0),
                    level(21, SELL, 1000, 0, 0),
                    status(22, OPEN),
                ],
            ),
            (END_OF_DAY, [session_closed(23, 1000, 1000, 50, 50_000)]),
        ]
    )
    assert s.depth() == ([(980, 10, 1)], [(1020, 10, 1)])
    assert s.book.status is OPEN


def test_uncross_fills_bids_by_price_then_time_and_reports_partly_filled_levels() -> None:
    s = Scenario()
    s.given(
        START_AUCTION,  # 1
        buy(31, 10, 1000, ALICE),  # entry 2
        buy(32, 10, 1010, BOB),  # entry 4
        buy(33, 10, 1000, CAROL),  # entry 6
        sell(34, 20, 990, DAVE),  # entry 8
    )
    # 990 and 1000 both execute 20 with imbalance 10; 1000 is nearer the reference.
    s.run(
        [
            (
                UNCROSS,
                [
                    uncrossed(10, 1000, 20),
                    trade(11, 1, 1000, 10, (32, BOB, 0), (34, DAVE, 10), None),
                    trade(12, 2, 1000, 10, (31, ALICE, 0), (34, DAVE, 0), None),
                    level(13, BUY, 1010, 0, 0),
                    level(14, BUY, 1000, 10, 1),
                    level(15, SELL, 990, 0, 0),
                    status(16, OPEN),
                ],
            ),
        ]
    )
    assert s.depth() == ([(1000, 10, 1)], [])
    assert s.queue() == [33]


def test_uncross_partial_fill_of_an_ask_leaves_it_resting_with_its_priority() -> None:
    s = Scenario()
    s.given(
        START_AUCTION, sell(41, 30, 990, BOB), sell(42, 10, 990, CAROL), buy(43, 20, 1000, ALICE)
    )
    # 990 and 1000 both: demand 20, supply 40, so 20 with imbalance 20; 1000 is nearer.
    s.run(
        [
            (
                UNCROSS,
                [
                    uncrossed(8, 1000, 20),
                    trade(9, 1, 1000, 20, (41, BOB, 10), (43, ALICE, 0), None),
                    level(10, BUY, 1000, 0, 0),
                    level(11, SELL, 990, 20, 2),
                    status(12, OPEN),
                ],
            ),
        ]
    )
    assert s.depth() == ([], [(990, 20, 2)])
    assert s.queue() == [41, 42]


UncrossCase = tuple[str, int, list[NewOrder], int, int]
UNCROSS_CASES: list[UncrossCase] = [
    # (name, reference, orders, expected price, expected volume)
    (
        "greatest volume beats least imbalance",
        1000,
        [buy(1, 20, 1000), sell(2, 10, 990), sell(3, 30, 1000, CAROL)],
        1000,  # 990: 10 (imbalance 10); 1000: 20 (imbalance 20)
        20,
    ),
    (
        "least imbalance beats nearest reference",
        1000,
        [buy(1, 20, 1000), sell(2, 20, 990), sell(3, 10, 1000, CAROL)],
        990,  # both 20; 990 imbalance 0, 1000 imbalance 10
        20,
    ),
    (
        "nearest reference beats lower price",
        1000,
        [buy(1, 20, 1010), sell(2, 20, 980)],
        1010,  # both 20, imbalance 0; 1010 is 10 away, 980 is 20
        20,
    ),
    (
        "equal distance: lower price, and the reference itself is no candidate",
        1000,
        [buy(1, 20, 1010), sell(2, 20, 990)],
        990,
        20,
    ),
    (
        "reference above every candidate: the highest is nearest",
        1060,  # band [950, 1170]
        [buy(1, 20, 1010), sell(2, 20, 990)],
        1010,
        20,
    ),
]


@pytest.mark.parametrize(
    ("reference", "orders", "price", "volume"),
    [case[1:] for case in UNCROSS_CASES],
    ids=[case[0] for case in UNCROSS_CASES],
)
def test_uncross_price_tie_breaks(
    reference: int, orders: list[NewOrder], price: int, volume: int
) -> None:
    s = Scenario(RULES, reference)
    s.given(START_AUCTION, *orders)
    events = s.submit(UNCROSS)
    assert events[0] == uncrossed(2 + 2 * len(orders), price, volume)
    assert sum(event.quantity_t for event in events if isinstance(event, Trade)) == volume
    assert events[-1] == status(events[-1].seq, OPEN)
    assert s.book.status is OPEN
    bid, ask = s.book.best_bid(), s.book.best_ask()
    assert bid is None or ask is None or bid < ask


def test_uncross_with_an_empty_book_executes_nothing_and_opens() -> None:
    s = Scenario()
    s.run(
        [(START_AUCTION, [status(1, AUCTION)]), (UNCROSS, [uncrossed(2, None, 0), status(3, OPEN)])]
    )
    assert s.depth() == ([], [])


def test_uncross_without_a_cross_executes_nothing_and_leaves_the_book_as_it_was() -> None:
    s = Scenario()
    s.given(
        START_AUCTION, buy(11, 10, 990, ALICE), buy(12, 10, 1000, CAROL), sell(13, 10, 1010, BOB)
    )
    s.run([(UNCROSS, [uncrossed(8, None, 0), status(9, OPEN)])])
    assert s.depth() == ([(1000, 10, 1), (990, 10, 1)], [(1010, 10, 1)])
    assert s.queue() == [12, 11, 13]


def test_uncross_with_one_side_only_executes_nothing() -> None:
    s = Scenario()
    s.given(START_AUCTION, buy(11, 10, 990, ALICE), buy(12, 10, 1000, CAROL))
    s.run([(UNCROSS, [uncrossed(6, None, 0), status(7, OPEN)])])
    assert s.depth() == ([(1000, 10, 1), (990, 10, 1)], [])


def test_after_uncross_the_book_matches_continuously() -> None:
    s = Scenario()
    s.given(START_AUCTION, buy(11, 20, 1000, ALICE), sell(12, 10, 1000, BOB), UNCROSS)
    # events: 1 auction, 2-3 buy, 4-5 sell, 6 uncrossed, 7 trade, 8-9 levels, 10 open
    s.run(
        [
            (
                sell(13, 10, 990, CAROL),
                [
                    accepted(11, 13, CAROL, SELL, 10, 990),
                    trade(12, 2, 1000, 10, (11, ALICE, 0), (13, CAROL, 0), SELL),
                    level(13, BUY, 1000, 0, 0),
                ],
            ),
        ]
    )


# --- end of day --------------------------------------------------------------------------------


def test_end_of_day_expires_day_orders_in_book_order_and_closes_at_the_last_trade() -> None:
    s = Scenario()
    s.given(
        buy(11, 10, 990, ALICE, tif=DAY),
        buy(12, 10, 1000, BOB),
        buy(13, 20, 1000, CAROL, tif=DAY),
        sell(14, 10, 1020, ALICE, tif=DAY),
        sell(15, 10, 1010, BOB),
        sell(16, 20, 1010, DAVE, tif=DAY),
    )
    s.run(
        [
            (
                sell(17, 20, 1000, ERIN, tif=IOC),
                [
                    accepted(13, 17, ERIN, SELL, 20, 1000),
                    trade(14, 1, 1000, 10, (12, BOB, 0), (17, ERIN, 10), SELL),
                    trade(15, 2, 1000, 10, (13, CAROL, 10), (17, ERIN, 0), SELL),
                    level(16, BUY, 1000, 10, 1),
                ],
            ),
            (
                END_OF_DAY,
                [
                    cancelled(17, 13, CAROL, 10, EXPIRED),
                    level(18, BUY, 1000, 0, 0),
                    cancelled(19, 11, ALICE, 10, EXPIRED),
                    level(20, BUY, 990, 0, 0),
                    cancelled(21, 16, DAVE, 20, EXPIRED),
                    level(22, SELL, 1010, 10, 1),
                    cancelled(23, 14, ALICE, 10, EXPIRED),
                    level(24, SELL, 1020, 0, 0),
                    session_closed(25, 1000, 1000, 20, 20_000),
                ],
            ),
        ]
    )
    assert s.depth() == ([], [(1010, 10, 1)])
    assert s.queue() == [15]


def test_end_of_day_expires_a_day_order_that_was_amended_to_a_new_price() -> None:
    s = Scenario()
    s.given(buy(11, 10, 990, ALICE, tif=DAY))
    s.run(
        [
            (
                amend(11, ALICE, 20, 1000),
                [
                    amended(3, 11, ALICE, 1000, 20, 20, priority_kept=False),
                    level(4, BUY, 990, 0, 0),
                    level(5, BUY, 1000, 20, 1),
                ],
            ),
            (
                END_OF_DAY,
                [
                    cancelled(6, 11, ALICE, 20, EXPIRED),
                    level(7, BUY, 1000, 0, 0),
                    session_closed(8, None, 1000, 0, 0),
                ],
            ),
        ]
    )
    assert s.depth() == ([], [])


def test_end_of_day_with_no_trade_has_no_close_and_keeps_the_reference() -> None:
    s = Scenario()
    s.given(buy(11, 10, 990, ALICE))
    s.run([(END_OF_DAY, [session_closed(3, None, 1000, 0, 0)])])
    assert s.book.reference_price_fen == 1000
    assert s.depth() == ([(990, 10, 1)], [])


def test_end_of_day_vwap_with_no_trade_has_no_close_and_keeps_the_reference() -> None:
    s = Scenario(msgspec.structs.replace(RULES, close_rule=ClosePriceRule.VWAP))
    s.given(buy(11, 10, 990, ALICE))
    s.run([(END_OF_DAY, [session_closed(3, None, 1000, 0, 0)])])
    assert s.book.reference_price_fen == 1000
    assert s.depth() == ([(990, 10, 1)], [])


def test_end_of_day_close_moves_the_reference_and_the_band_and_restarts_the_session() -> None:
    s = Scenario()
    s.given(
        sell(11, 10, 1000, BOB),
        buy(12, 10, 1000, ALICE),  # trade 10 at 1000
        sell(13, 10, 1100, BOB),
        buy(14, 10, 1100, CAROL),  # trade 10 at 1100, the last
        buy(15, 10, 980, DAVE),  # inside today's band, below tomorrow's
    )
    s.run(
        [
            (END_OF_DAY, [session_closed(13, 1100, 1100, 20, 21_000)]),  # band now [990, 1210]
            (
                market(
                    SELL, 21, 10, ERIN
                ),  # its limit is the new low edge, 990: 980 is out of reach
                [
                    accepted(14, 21, ERIN, SELL, 10, None),
                    cancelled(15, 21, ERIN, 10, IOC_REMAINDER),
                ],
            ),
            (
                buy(22, 10, 990, CAROL),
                [accepted(16, 22, CAROL, BUY, 10, 990), level(17, BUY, 990, 10, 1)],
            ),
            (buy(23, 10, 980, CAROL), R.PRICE_MUST_BE_WITHIN_BAND),
            (
                sell(24, 10, 1210, BOB),
                [accepted(19, 24, BOB, SELL, 10, 1210), level(20, SELL, 1210, 10, 1)],
            ),
            (sell(25, 10, 1220, BOB), R.PRICE_MUST_BE_WITHIN_BAND),
            (END_OF_DAY, [session_closed(22, None, 1100, 0, 0)]),
        ]
    )
    assert s.book.reference_price_fen == 1100
    assert s.depth() == ([(990, 10, 1), (980, 10, 1)], [(1210, 10, 1)])


VWAP_CASES: list[tuple[str, list[tuple[int, int]], int]] = [
    # (name, trades as (quantity, price), expected close)
    ("exact", [(10, 1000), (10, 1020)], 1010),
    ("half a tick rounds up", [(10, 1000), (10, 1010)], 1010),  # 1005
    ("under half a tick rounds down", [(30, 1000), (10, 1010)], 1000),  # 1002.5
    ("over half a tick rounds up", [(10, 1000), (30, 1010)], 1010),  # 1007.5
    ("rounded once, straight to the tick", [(110, 1000), (90, 1010)], 1000),  # 1004.5
]


@pytest.mark.parametrize(
    ("trades", "close"), [case[1:] for case in VWAP_CASES], ids=[case[0] for case in VWAP_CASES]
)
def test_end_of_day_vwap_close_is_rounded_half_up_to_the_tick(
    trades: list[tuple[int, int]], close: int
) -> None:
    rules = msgspec.structs.replace(RULES, close_rule=ClosePriceRule.VWAP)
    s = Scenario(rules)
    order_id = 0
    for quantity_t, price_fen in trades:
        s.given(
            sell(order_id + 1, quantity_t, price_fen, BOB),
            buy(order_id + 2, quantity_t, price_fen, ALICE),
        )
        order_id += 2
    volume = sum(quantity for quantity, _ in trades)
    notional = sum(quantity * price for quantity, price in trades)
    s.run([(END_OF_DAY, [session_closed(s.next_seq, close, close, volume, notional)])])
    assert s.book.reference_price_fen == close


STATUS_SETUPS: dict[str, list[Command]] = {
    "open": [],
    "halted": [halt()],
    "auction": [START_AUCTION],
}


@pytest.mark.parametrize("setup", list(STATUS_SETUPS.values()), ids=list(STATUS_SETUPS))
def test_end_of_day_is_allowed_in_every_status_and_keeps_it(setup: list[Command]) -> None:
    s = Scenario()
    s.given(buy(11, 10, 1000, ALICE, tif=DAY), buy(12, 10, 990, BOB), *setup)
    before = s.book.status
    seq = s.next_seq
    s.run(
        [
            (
                END_OF_DAY,
                [
                    cancelled(seq, 11, ALICE, 10, EXPIRED),
                    level(seq + 1, BUY, 1000, 0, 0),
                    session_closed(seq + 2, None, 1000, 0, 0),
                ],
            ),
        ]
    )
    assert s.book.status is before
    assert s.depth() == ([(990, 10, 1)], [])


# --- the price band ----------------------------------------------------------------------------


BAND_CASES: list[tuple[int, int, int]] = [
    # (reference, low, high) with tick 10 and a 10 % band
    (1050, 950, 1160),  # 945 and 1155: both exactly half a tick, both round up
    (1060, 950, 1170),  # 954 rounds down, 1166 rounds up
    (1040, 940, 1140),  # 936 rounds up, 1144 rounds down
]


@pytest.mark.parametrize(
    ("reference", "low", "high"), BAND_CASES, ids=[str(c[0]) for c in BAND_CASES]
)
def test_price_band_edges_are_rounded_half_up_to_the_tick(
    reference: int, low: int, high: int
) -> None:
    s = Scenario(RULES, reference)
    s.run(
        [
            (buy(1, 10, low - 10), R.PRICE_MUST_BE_WITHIN_BAND),
            (buy(1, 10, low), "Accepted LevelChanged"),
            (sell(2, 10, high + 10), R.PRICE_MUST_BE_WITHIN_BAND),
            (sell(2, 10, high), "Accepted LevelChanged"),
        ]
    )
    assert s.depth() == ([(low, 10, 1)], [(high, 10, 1)])


def test_market_buy_does_not_reach_asks_above_the_band_high_edge() -> None:
    s = Scenario()
    s.given(
        sell(11, 10, 1100, BOB),  # the high edge today, above tomorrow's band
        buy(12, 10, 900, ALICE),
        sell(13, 10, 900, DAVE),  # trade 10 at 900: close 900, band [810, 990]
    )
    s.run(
        [
            (END_OF_DAY, [session_closed(8, 900, 900, 10, 9_000)]),
            (market(BUY, 20, 10, ERIN, tif=FOK), R.FOK_MUST_FILL_COMPLETELY),
            (
                sell(14, 10, 990, CAROL),
                [accepted(10, 14, CAROL, SELL, 10, 990), level(11, SELL, 990, 10, 1)],
            ),
            (
                market(BUY, 21, 30, ERIN),
                [
                    accepted(12, 21, ERIN, BUY, 30, None),
                    trade(13, 2, 990, 10, (14, CAROL, 0), (21, ERIN, 20), BUY),
                    level(14, SELL, 990, 0, 0),
                    cancelled(15, 21, ERIN, 20, IOC_REMAINDER),
                ],
            ),
        ]
    )
    assert s.depth() == ([], [(1100, 10, 1)])
