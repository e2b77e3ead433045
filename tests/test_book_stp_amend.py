"""Self-trade prevention (continuous and at auction entry), amend, cancel and cancel-all.

Instrument (tests/book_scenarios.py): tick 10 fen, lot 10 t, quantities 10..1 000 t, band
[900, 1100] around a reference of 1 000 fen.
"""

from __future__ import annotations

import pytest

from matching import (
    CancelReason,
    Command,
    Event,
    Halt,
    RejectCode,
    RestingOrder,
    Resume,
    StartAuction,
    StpMode,
    TradingStatus,
    Uncross,
)
from tests.book_scenarios import (
    ALICE,
    BOB,
    BOTH,
    BUY,
    CAROL,
    DAVE,
    ERIN,
    GTC,
    IOC,
    NEWEST,
    OLDEST,
    SELL,
    Level,
    Scenario,
    accepted,
    amend,
    amended,
    buy,
    cancel,
    cancel_all,
    cancelled,
    level,
    market,
    sell,
    status,
    trade,
    uncrossed,
)

USER = CancelReason.USER
IOC_REMAINDER = CancelReason.IOC_REMAINDER
SELF_TRADE = CancelReason.SELF_TRADE
R = RejectCode


# --- self-trade prevention in continuous matching ---------------------------------------------


def test_stp_cancel_newest_own_order_first_in_level_cancels_the_taker_and_leaves_level_alone() -> (
    None
):
    s = Scenario()
    s.given(sell(11, 10, 1000, ALICE), sell(12, 10, 1000, BOB))
    s.run(
        [
            (
                buy(21, 20, 1000, stp=NEWEST),
                [accepted(5, 21, ALICE, BUY, 20, 1000), cancelled(6, 21, ALICE, 20, SELF_TRADE)],
            ),
        ]
    )
    assert s.depth() == ([], [(1000, 20, 2)])
    assert s.queue() == [11, 12]


def test_stp_cancel_newest_after_a_trade_in_the_level_reports_the_level_then_cancels_taker() -> (
    None
):
    s = Scenario()
    s.given(sell(11, 10, 1000, BOB), sell(12, 10, 1000, ALICE), sell(13, 10, 1000, CAROL))
    s.run(
        [
            (
                buy(21, 30, 1000, stp=NEWEST),
                [
                    accepted(7, 21, ALICE, BUY, 30, 1000),
                    trade(8, 1, 1000, 10, (11, BOB, 0), (21, ALICE, 20), BUY),
                    level(9, SELL, 1000, 20, 2),
                    cancelled(10, 21, ALICE, 20, SELF_TRADE),
                ],
            ),
        ]
    )
    assert s.depth() == ([], [(1000, 20, 2)])
    assert s.queue() == [12, 13]


def test_stp_cancel_newest_market_order_is_cancelled_for_self_trade_not_as_ioc_remainder() -> None:
    s = Scenario()
    s.given(sell(11, 10, 1000, BOB), sell(12, 10, 1010, ALICE))
    s.run(
        [
            (
                market(BUY, 21, 30, ALICE, stp=NEWEST),
                [
                    accepted(5, 21, ALICE, BUY, 30, None),
                    trade(6, 1, 1000, 10, (11, BOB, 0), (21, ALICE, 20), BUY),
                    level(7, SELL, 1000, 0, 0),
                    cancelled(8, 21, ALICE, 20, SELF_TRADE),  # no LevelChanged for 1010
                ],
            ),
        ]
    )
    assert s.depth() == ([], [(1010, 10, 1)])


def test_stp_cancel_oldest_cancels_own_makers_and_keeps_matching_then_rests() -> None:
    s = Scenario()
    s.given(
        sell(11, 10, 1000, ALICE),
        sell(12, 10, 1000, BOB),
        sell(13, 20, 1010, ALICE),
        sell(14, 10, 1020, CAROL),
    )
    s.run(
        [
            (
                buy(21, 30, 1010, stp=OLDEST),
                [
                    accepted(9, 21, ALICE, BUY, 30, 1010),
                    cancelled(10, 11, ALICE, 10, SELF_TRADE),
                    trade(11, 1, 1000, 10, (12, BOB, 0), (21, ALICE, 20), BUY),
                    level(12, SELL, 1000, 0, 0),
                    cancelled(13, 13, ALICE, 20, SELF_TRADE),
                    level(14, SELL, 1010, 0, 0),
                    level(15, BUY, 1010, 20, 1),
                ],
            ),
        ]
    )
    assert s.depth() == ([(1010, 20, 1)], [(1020, 10, 1)])
    assert s.book.order(21) == RestingOrder(21, ALICE, BUY, 1010, 20, 10, GTC, OLDEST, False, 9)


def test_stp_cancel_oldest_ioc_with_nothing_left_to_match_cancels_its_remainder_as_ioc() -> None:
    s = Scenario()
    s.given(sell(11, 10, 1000, ALICE))
    s.run(
        [
            (
                buy(21, 10, 1000, tif=IOC, stp=OLDEST),
                [
                    accepted(3, 21, ALICE, BUY, 10, 1000),
                    cancelled(4, 11, ALICE, 10, SELF_TRADE),
                    level(5, SELL, 1000, 0, 0),
                    cancelled(6, 21, ALICE, 10, IOC_REMAINDER),
                ],
            ),
        ]
    )
    assert s.depth() == ([], [])


def test_stp_cancel_both_cancels_the_maker_reports_its_level_then_cancels_the_taker() -> None:
    s = Scenario()
    s.given(sell(11, 10, 1000, BOB), sell(12, 20, 1000, ALICE), sell(13, 10, 1000, CAROL))
    s.run(
        [
            (
                buy(21, 40, 1000, stp=BOTH),
                [
                    accepted(7, 21, ALICE, BUY, 40, 1000),
                    trade(8, 1, 1000, 10, (11, BOB, 0), (21, ALICE, 30), BUY),
                    cancelled(9, 12, ALICE, 20, SELF_TRADE),
                    level(10, SELL, 1000, 10, 1),
                    cancelled(11, 21, ALICE, 30, SELF_TRADE),
                ],
            ),
        ]
    )
    assert s.depth() == ([], [(1000, 10, 1)])
    assert s.queue() == [13]


def test_stp_mode_of_the_incoming_order_decides_not_the_makers() -> None:
    s = Scenario()
    s.given(sell(11, 10, 1000, ALICE, stp=BOTH))
    s.run(
        [
            (
                buy(21, 10, 1000, stp=NEWEST),
                [accepted(3, 21, ALICE, BUY, 10, 1000), cancelled(4, 21, ALICE, 10, SELF_TRADE)],
            ),
            (
                buy(22, 10, 1000, stp=OLDEST),
                [
                    accepted(5, 22, ALICE, BUY, 10, 1000),
                    cancelled(6, 11, ALICE, 10, SELF_TRADE),
                    level(7, SELL, 1000, 0, 0),
                    level(8, BUY, 1000, 10, 1),
                ],
            ),
        ]
    )
    assert s.depth() == ([(1000, 10, 1)], [])


def test_stp_sell_taker_cancel_oldest_cancels_own_bid() -> None:
    s = Scenario()
    s.given(buy(11, 10, 1000, BOB), buy(12, 10, 990, BOB))
    s.run(
        [
            (
                sell(21, 20, 990, BOB, stp=OLDEST),
                [
                    accepted(5, 21, BOB, SELL, 20, 990),
                    cancelled(6, 11, BOB, 10, SELF_TRADE),
                    level(7, BUY, 1000, 0, 0),
                    cancelled(8, 12, BOB, 10, SELF_TRADE),
                    level(9, BUY, 990, 0, 0),
                    level(10, SELL, 990, 20, 1),
                ],
            ),
        ]
    )
    assert s.depth() == ([], [(990, 20, 1)])


# --- self-trade prevention at auction entry ---------------------------------------------------


def auction_with_own_asks() -> Scenario:
    """In auction: asks 990 [ALICE 11: 10, BOB 12: 10], 1000 [ALICE 13: 20], 1020 [ALICE 14: 10];
    bid 980 [ALICE 15: 10]. Events 1..11."""
    s = Scenario()
    s.given(
        StartAuction(ts_ns=0),
        sell(11, 10, 990, ALICE),
        sell(12, 10, 990, BOB),
        sell(13, 20, 1000, ALICE),
        sell(14, 10, 1020, ALICE),
        buy(15, 10, 980, ALICE),
    )
    return s


AUCTION_STP_CASES: list[tuple[StpMode, list[Event], tuple[list[Level], list[Level]]]] = [
    (
        NEWEST,
        [accepted(12, 21, ALICE, BUY, 30, 1010), cancelled(13, 21, ALICE, 30, SELF_TRADE)],
        ([(980, 10, 1)], [(990, 20, 2), (1000, 20, 1), (1020, 10, 1)]),
    ),
    (
        OLDEST,
        [
            accepted(12, 21, ALICE, BUY, 30, 1010),
            cancelled(13, 11, ALICE, 10, SELF_TRADE),
            level(14, SELL, 990, 10, 1),
            cancelled(15, 13, ALICE, 20, SELF_TRADE),
            level(16, SELL, 1000, 0, 0),
            level(17, BUY, 1010, 30, 1),
        ],
        ([(1010, 30, 1), (980, 10, 1)], [(990, 10, 1), (1020, 10, 1)]),
    ),
    (
        BOTH,
        [
            accepted(12, 21, ALICE, BUY, 30, 1010),
            cancelled(13, 11, ALICE, 10, SELF_TRADE),
            level(14, SELL, 990, 10, 1),
            cancelled(15, 13, ALICE, 20, SELF_TRADE),
            level(16, SELL, 1000, 0, 0),
            cancelled(17, 21, ALICE, 30, SELF_TRADE),
        ],
        ([(980, 10, 1)], [(990, 10, 1), (1020, 10, 1)]),
    ),
]


@pytest.mark.parametrize(
    ("stp", "events", "book"), AUCTION_STP_CASES, ids=[mode.name for mode, *_ in AUCTION_STP_CASES]
)
def test_stp_at_auction_entry_resolves_crossed_own_orders_in_book_order_without_matching(
    stp: StpMode, events: list[Event], book: tuple[list[Level], list[Level]]
) -> None:
    s = auction_with_own_asks()
    s.run([(buy(21, 30, 1010, ALICE, stp=stp), events)])  # crosses own 11 and 13, not 14
    assert s.depth() == book
    assert s.book.status is TradingStatus.AUCTION


def test_auction_entry_without_own_conflict_rests_even_when_it_crosses_others() -> None:
    s = auction_with_own_asks()
    s.run(
        [
            (
                buy(21, 10, 980, ALICE),
                [accepted(12, 21, ALICE, BUY, 10, 980), level(13, BUY, 980, 20, 2)],
            ),
            (
                buy(22, 40, 1020, CAROL),
                [accepted(14, 22, CAROL, BUY, 40, 1020), level(15, BUY, 1020, 40, 1)],
            ),
            (
                sell(23, 10, 1020, ALICE),
                [accepted(16, 23, ALICE, SELL, 10, 1020), level(17, SELL, 1020, 20, 2)],
            ),
        ]
    )
    assert s.depth() == (
        [(1020, 40, 1), (980, 20, 2)],
        [(990, 20, 2), (1000, 20, 1), (1020, 20, 2)],
    )


def test_auction_entry_sell_conflicts_with_own_bids_at_or_above_its_price() -> None:
    s = auction_with_own_asks()
    s.run(
        [
            (
                sell(21, 10, 980, ALICE, stp=OLDEST),
                [
                    accepted(12, 21, ALICE, SELL, 10, 980),
                    cancelled(13, 15, ALICE, 10, SELF_TRADE),
                    level(14, BUY, 980, 0, 0),
                    level(15, SELL, 980, 10, 1),
                ],
            ),
        ]
    )
    assert s.depth() == ([], [(980, 10, 1), (990, 20, 2), (1000, 20, 1), (1020, 10, 1)])


# --- amend -------------------------------------------------------------------------------------


def two_bids_and_an_ask() -> Scenario:
    """Bids 1000 [ALICE 11: 30, BOB 12: 10]; ask 1020 [CAROL 13: 10]. Events 1..6."""
    s = Scenario()
    s.given(buy(11, 30, 1000, ALICE), buy(12, 10, 1000, BOB), sell(13, 10, 1020, CAROL))
    return s


def test_amend_quantity_down_keeps_priority() -> None:
    s = two_bids_and_an_ask()
    s.run(
        [
            (
                amend(11, ALICE, 20),
                [
                    amended(7, 11, ALICE, 1000, 20, 20, priority_kept=True),
                    level(8, BUY, 1000, 30, 2),
                ],
            ),
            (
                sell(21, 10, 1000, DAVE),
                [
                    accepted(9, 21, DAVE, SELL, 10, 1000),
                    trade(10, 1, 1000, 10, (11, ALICE, 10), (21, DAVE, 0), SELL),
                    level(11, BUY, 1000, 20, 2),
                ],
            ),
        ]
    )
    assert s.queue() == [11, 12, 13]
    assert s.book.order(11) == RestingOrder(11, ALICE, BUY, 1000, 10, 10, GTC, NEWEST, False, 1)


def test_amend_quantity_up_loses_priority_to_the_back_of_its_level() -> None:
    s = two_bids_and_an_ask()
    s.run(
        [
            (
                amend(11, ALICE, 40),
                [
                    amended(7, 11, ALICE, 1000, 40, 40, priority_kept=False),
                    level(8, BUY, 1000, 50, 2),
                ],
            ),
            (
                sell(21, 10, 1000, DAVE),
                [
                    accepted(9, 21, DAVE, SELL, 10, 1000),
                    trade(10, 1, 1000, 10, (12, BOB, 0), (21, DAVE, 0), SELL),
                    level(11, BUY, 1000, 40, 1),
                ],
            ),
        ]
    )
    assert s.queue() == [11, 13]
    assert s.book.order(11) == RestingOrder(11, ALICE, BUY, 1000, 40, 0, GTC, NEWEST, False, 7)


def test_amend_price_change_loses_priority_even_when_moving_back() -> None:
    s = two_bids_and_an_ask()
    s.run(
        [
            (
                amend(11, ALICE, 30, 990),
                [
                    amended(7, 11, ALICE, 990, 30, 30, priority_kept=False),
                    level(8, BUY, 1000, 10, 1),
                    level(9, BUY, 990, 30, 1),
                ],
            ),
            (
                amend(11, ALICE, 30, 1000),
                [
                    amended(10, 11, ALICE, 1000, 30, 30, priority_kept=False),
                    level(11, BUY, 990, 0, 0),
                    level(12, BUY, 1000, 40, 2),
                ],
            ),
        ]
    )
    assert s.queue() == [12, 11, 13]
    order = s.book.order(11)
    assert order is not None and order.entry_seq == 10


def test_amend_price_change_with_quantity_down_still_loses_priority() -> None:
    s = two_bids_and_an_ask()
    s.run(
        [
            (
                amend(11, ALICE, 20, 1010),
                [
                    amended(7, 11, ALICE, 1010, 20, 20, priority_kept=False),
                    level(8, BUY, 1000, 10, 1),
                    level(9, BUY, 1010, 20, 1),
                ],
            ),
        ]
    )
    assert s.depth() == ([(1010, 20, 1), (1000, 10, 1)], [(1020, 10, 1)])


def test_amend_of_a_partly_filled_order_sets_total_quantity_and_leaves_total_minus_filled() -> None:
    s = two_bids_and_an_ask()
    s.given(sell(21, 20, 1000, DAVE))  # fills 20 of ALICE's 11: events 7..9
    s.run(
        [
            (
                amend(11, ALICE, 40),
                [
                    amended(10, 11, ALICE, 1000, 40, 20, priority_kept=False),
                    level(11, BUY, 1000, 30, 2),
                ],
            ),
            (
                amend(11, ALICE, 30),
                [
                    amended(12, 11, ALICE, 1000, 30, 10, priority_kept=True),
                    level(13, BUY, 1000, 20, 2),
                ],
            ),
            (amend(11, ALICE, 20), R.AMEND_QUANTITY_MUST_EXCEED_FILLED),
        ]
    )
    assert s.queue() == [12, 11, 13]
    assert s.book.order(11) == RestingOrder(11, ALICE, BUY, 1000, 10, 20, GTC, NEWEST, False, 10)


def test_amend_to_a_crossing_price_trades_as_a_taker_and_rests_its_remainder() -> None:
    s = Scenario()
    s.given(
        buy(11, 30, 990, ALICE),
        buy(12, 10, 990, BOB),
        sell(13, 10, 1000, CAROL),
        sell(14, 10, 1010, DAVE),
        sell(15, 10, 1030, CAROL),
    )
    s.run(
        [
            (
                amend(11, ALICE, 40, 1010),
                [
                    amended(11, 11, ALICE, 1010, 40, 40, priority_kept=False),
                    level(12, BUY, 990, 10, 1),
                    trade(13, 1, 1000, 10, (13, CAROL, 0), (11, ALICE, 30), BUY),
                    level(14, SELL, 1000, 0, 0),
                    trade(15, 2, 1010, 10, (14, DAVE, 0), (11, ALICE, 20), BUY),
                    level(16, SELL, 1010, 0, 0),
                    level(17, BUY, 1010, 20, 1),
                ],
            ),
        ]
    )
    assert s.depth() == ([(1010, 20, 1), (990, 10, 1)], [(1030, 10, 1)])
    assert s.book.order(11) == RestingOrder(11, ALICE, BUY, 1010, 20, 20, GTC, NEWEST, False, 11)


def test_amend_to_a_crossing_price_that_fills_completely_leaves_the_book() -> None:
    s = Scenario()
    s.given(buy(11, 10, 990, ALICE), sell(12, 10, 1000, BOB))
    s.run(
        [
            (
                amend(11, ALICE, 10, 1000),
                [
                    amended(5, 11, ALICE, 1000, 10, 10, priority_kept=False),
                    level(6, BUY, 990, 0, 0),
                    trade(7, 1, 1000, 10, (12, BOB, 0), (11, ALICE, 0), BUY),
                    level(8, SELL, 1000, 0, 0),
                ],
            ),
        ]
    )
    assert s.depth() == ([], [])
    assert s.book.order(11) is None


def test_amend_crossing_own_order_applies_the_amended_orders_stp_mode() -> None:
    newest = Scenario()
    newest.given(buy(11, 10, 990, ALICE, stp=NEWEST), sell(12, 10, 1000, ALICE))
    newest.run(
        [
            (
                amend(11, ALICE, 10, 1000),
                [
                    amended(5, 11, ALICE, 1000, 10, 10, priority_kept=False),
                    level(6, BUY, 990, 0, 0),
                    cancelled(7, 11, ALICE, 10, SELF_TRADE),
                ],
            ),
        ]
    )
    assert newest.depth() == ([], [(1000, 10, 1)])

    oldest = Scenario()
    oldest.given(buy(11, 10, 990, ALICE, stp=OLDEST), sell(12, 10, 1000, ALICE))
    oldest.run(
        [
            (
                amend(11, ALICE, 10, 1000),
                [
                    amended(5, 11, ALICE, 1000, 10, 10, priority_kept=False),
                    level(6, BUY, 990, 0, 0),
                    cancelled(7, 12, ALICE, 10, SELF_TRADE),
                    level(8, SELL, 1000, 0, 0),
                    level(9, BUY, 1000, 10, 1),
                ],
            ),
        ]
    )
    assert oldest.depth() == ([(1000, 10, 1)], [])


def test_post_only_amend_that_would_cross_is_refused_and_one_that_would_not_is_applied() -> None:
    s = Scenario()
    s.given(buy(11, 10, 990, ALICE, post_only=True), sell(12, 10, 1010, BOB))
    s.run(
        [
            (amend(11, ALICE, 10, 1010), R.POST_ONLY_MUST_NOT_CROSS),
            (
                amend(11, ALICE, 20, 1000),
                [
                    amended(6, 11, ALICE, 1000, 20, 20, priority_kept=False),
                    level(7, BUY, 990, 0, 0),
                    level(8, BUY, 1000, 20, 1),
                ],
            ),
        ]
    )
    assert s.depth() == ([(1000, 20, 1)], [(1010, 10, 1)])
    assert s.book.order(11) == RestingOrder(11, ALICE, BUY, 1000, 20, 0, GTC, NEWEST, True, 6)


def test_amend_in_auction_rests_without_matching_and_passes_the_entry_self_trade_check() -> None:
    s = Scenario()
    s.given(
        StartAuction(ts_ns=0),
        buy(11, 10, 990, ALICE),
        sell(12, 10, 1000, BOB),
        sell(13, 10, 1010, ALICE),
    )
    s.run(
        [
            (
                amend(11, ALICE, 10, 1000),  # crosses BOB's ask: rests, no trade
                [
                    amended(8, 11, ALICE, 1000, 10, 10, priority_kept=False),
                    level(9, BUY, 990, 0, 0),
                    level(10, BUY, 1000, 10, 1),
                ],
            ),
            (
                amend(11, ALICE, 20, 1010),  # crosses ALICE's own ask 13: cancel newest
                [
                    amended(11, 11, ALICE, 1010, 20, 20, priority_kept=False),
                    level(12, BUY, 1000, 0, 0),
                    cancelled(13, 11, ALICE, 20, SELF_TRADE),
                ],
            ),
        ]
    )
    assert s.depth() == ([], [(1000, 10, 1), (1010, 10, 1)])


def test_post_only_amended_across_in_auction_rests_and_its_new_entry_decides_maker() -> None:
    s = Scenario()
    s.given(buy(11, 10, 990, ALICE, post_only=True), sell(12, 10, 1000, BOB), StartAuction(ts_ns=0))
    s.run(
        [
            (
                amend(11, ALICE, 10, 1000),
                [
                    amended(6, 11, ALICE, 1000, 10, 10, priority_kept=False),
                    level(7, BUY, 990, 0, 0),
                    level(8, BUY, 1000, 10, 1),
                ],
            ),
            (
                Uncross(ts_ns=0),
                [
                    uncrossed(9, 1000, 10),
                    trade(10, 1, 1000, 10, (12, BOB, 0), (11, ALICE, 0), None),
                    level(11, BUY, 1000, 0, 0),
                    level(12, SELL, 1000, 0, 0),
                    status(13, TradingStatus.OPEN),
                ],
            ),
        ]
    )
    assert s.depth() == ([], [])


def test_amend_checks_run_in_order_and_the_earlier_failing_check_wins() -> None:
    """One row per amend check; each row also fails a later check, which must not win."""
    s = Scenario()
    s.given(
        buy(11, 30, 1000, ALICE, post_only=True),
        sell(12, 20, 1000, BOB),  # fills 20 of 11: filled 20, leaves 10
        sell(13, 10, 1020, BOB),
    )
    s.run(
        [
            (amend(99, ALICE, 0), R.ORDER_MUST_EXIST),  # also quantity 0
            (amend(11, BOB, 0), R.ORDER_MUST_BELONG_TO_ACCOUNT),  # also quantity 0
            (amend(11, ALICE, 0), R.QUANTITY_MUST_BE_POSITIVE),  # also not above filled
            (amend(11, ALICE, 5), R.QUANTITY_MUST_BE_ON_LOT),  # also under the minimum
            (amend(11, ALICE, 1010, 0), R.QUANTITY_MUST_BE_WITHIN_LIMITS),  # also price 0
            (amend(11, ALICE, 20, 0), R.AMEND_QUANTITY_MUST_EXCEED_FILLED),  # equal; also price 0
            (amend(11, ALICE, 10), R.AMEND_QUANTITY_MUST_EXCEED_FILLED),  # below filled
            (amend(11, ALICE, 30, 0), R.PRICE_MUST_BE_POSITIVE),  # also outside the band
            (amend(11, ALICE, 30, -10), R.PRICE_MUST_BE_POSITIVE),
            (amend(11, ALICE, 30, 1205), R.PRICE_MUST_BE_ON_TICK),  # also outside the band
            (amend(11, ALICE, 30, 1110), R.PRICE_MUST_BE_WITHIN_BAND),  # also crosses, post-only
            (amend(11, ALICE, 30), R.AMEND_MUST_CHANGE_ORDER),
            (amend(11, ALICE, 30, 1000), R.AMEND_MUST_CHANGE_ORDER),  # the same price, given
            (amend(11, ALICE, 30, 1020), R.POST_ONLY_MUST_NOT_CROSS),
            (Halt(ts_ns=0), [status(22, TradingStatus.HALTED)]),
            (amend(99, ALICE, 0), R.BOOK_MUST_NOT_BE_HALTED),  # also unknown, quantity 0
        ]
    )
    assert s.depth() == ([(1000, 10, 1)], [(1020, 10, 1)])
    assert s.book.order(11) == RestingOrder(11, ALICE, BUY, 1000, 10, 20, GTC, NEWEST, True, 1)


# --- cancel and cancel-all ----------------------------------------------------------------------


def test_cancel_removes_own_resting_order_and_refuses_unknown_or_foreign_orders() -> None:
    s = two_bids_and_an_ask()
    s.run(
        [
            (cancel(99, ALICE), R.ORDER_MUST_EXIST),
            (cancel(11, BOB), R.ORDER_MUST_BELONG_TO_ACCOUNT),
            (cancel(11, ALICE), [cancelled(9, 11, ALICE, 30, USER), level(10, BUY, 1000, 10, 1)]),
            (cancel(11, ALICE), R.ORDER_MUST_EXIST),  # already gone
        ]
    )
    assert s.depth() == ([(1000, 10, 1)], [(1020, 10, 1)])


def test_cancel_of_a_partly_filled_order_takes_off_its_leaves() -> None:
    s = Scenario()
    s.given(buy(11, 30, 1000, ALICE), sell(12, 10, 1000, BOB))
    s.run(
        [
            (cancel(11, ALICE), [cancelled(6, 11, ALICE, 20, USER), level(7, BUY, 1000, 0, 0)]),
            (cancel(12, BOB), R.ORDER_MUST_EXIST),  # 12 filled and never rested
        ]
    )
    assert s.depth() == ([], [])


STATUS_SETUPS: dict[str, list[Command]] = {
    "open": [],
    "halted": [Halt(ts_ns=0)],
    "auction": [StartAuction(ts_ns=0)],
    "halted from auction": [StartAuction(ts_ns=0), Halt(ts_ns=0)],
    "resumed": [Halt(ts_ns=0), Resume(ts_ns=0)],
}


@pytest.mark.parametrize("setup", list(STATUS_SETUPS.values()), ids=list(STATUS_SETUPS))
def test_cancel_and_cancel_all_are_allowed_in_every_status(setup: list[Command]) -> None:
    s = Scenario()
    s.given(buy(11, 10, 990, ALICE), sell(12, 10, 1010, BOB))
    s.given(*setup)
    before = s.book.status
    seq = s.next_seq
    s.run(
        [
            (
                cancel(11, ALICE),
                [cancelled(seq, 11, ALICE, 10, USER), level(seq + 1, BUY, 990, 0, 0)],
            ),
            (
                cancel_all(BOB),
                [cancelled(seq + 2, 12, BOB, 10, USER), level(seq + 3, SELL, 1010, 0, 0)],
            ),
        ]
    )
    assert s.depth() == ([], [])
    assert s.book.status is before


def test_cancel_all_cancels_the_accounts_orders_in_book_order() -> None:
    s = Scenario()
    s.given(
        buy(11, 10, 990, ALICE),
        buy(12, 10, 1000, BOB),
        buy(13, 20, 1000, ALICE),
        buy(14, 10, 1000, ALICE),
        sell(15, 10, 1020, ALICE),
        sell(16, 10, 1010, CAROL),
        sell(17, 10, 1010, ALICE),
    )
    s.run(
        [
            (
                cancel_all(ALICE),
                [
                    cancelled(15, 13, ALICE, 20, USER),
                    level(16, BUY, 1000, 20, 2),
                    cancelled(17, 14, ALICE, 10, USER),
                    level(18, BUY, 1000, 10, 1),
                    cancelled(19, 11, ALICE, 10, USER),
                    level(20, BUY, 990, 0, 0),
                    cancelled(21, 17, ALICE, 10, USER),
                    level(22, SELL, 1010, 10, 1),
                    cancelled(23, 15, ALICE, 10, USER),
                    level(24, SELL, 1020, 0, 0),
                ],
            ),
            (cancel_all(ALICE), R.ORDER_MUST_EXIST),  # Rejected(code, None, ALICE)
            (cancel_all(ERIN), R.ORDER_MUST_EXIST),
        ]
    )
    assert s.depth() == ([(1000, 10, 1)], [(1010, 10, 1)])
    assert s.queue() == [12, 16]


def test_stp_cancel_oldest_taker_filled_before_reaching_its_own_order_leaves_it_alone() -> None:
    s = Scenario()
    s.given(sell(11, 10, 1000, BOB), sell(12, 10, 1000, ALICE))
    s.run(
        [
            (
                buy(21, 10, 1000, stp=OLDEST),
                [
                    accepted(5, 21, ALICE, BUY, 10, 1000),
                    trade(6, 1, 1000, 10, (11, BOB, 0), (21, ALICE, 0), BUY),
                    level(7, SELL, 1000, 10, 1),
                ],
            ),
        ]
    )
    assert s.queue() == [12]


def test_amend_giving_the_same_price_keeps_priority_down_and_loses_it_up() -> None:
    s = two_bids_and_an_ask()
    s.run(
        [
            (
                amend(11, ALICE, 20, 1000),
                [
                    amended(7, 11, ALICE, 1000, 20, 20, priority_kept=True),
                    level(8, BUY, 1000, 30, 2),
                ],
            ),
            (
                amend(11, ALICE, 40, 1000),
                [
                    amended(9, 11, ALICE, 1000, 40, 40, priority_kept=False),
                    level(10, BUY, 1000, 50, 2),
                ],
            ),
        ]
    )
    assert s.queue() == [12, 11, 13]


def test_amend_in_auction_with_cancel_oldest_cancels_own_conflicts_then_rests() -> None:
    s = Scenario()
    s.given(
        StartAuction(ts_ns=0),
        buy(11, 10, 990, ALICE, stp=OLDEST),
        sell(12, 10, 1000, ALICE),
        sell(13, 10, 1000, BOB),
    )
    s.run(
        [
            (
                amend(11, ALICE, 20, 1000),
                [
                    amended(8, 11, ALICE, 1000, 20, 20, priority_kept=False),
                    level(9, BUY, 990, 0, 0),
                    cancelled(10, 12, ALICE, 10, SELF_TRADE),
                    level(11, SELL, 1000, 10, 1),
                    level(12, BUY, 1000, 20, 1),
                ],
            ),
            (
                Uncross(ts_ns=0),
                [
                    uncrossed(13, 1000, 10),
                    trade(14, 1, 1000, 10, (13, BOB, 0), (11, ALICE, 10), None),
                    level(15, BUY, 1000, 10, 1),
                    level(16, SELL, 1000, 0, 0),
                    status(17, TradingStatus.OPEN),
                ],
            ),
        ]
    )
    assert s.depth() == ([(1000, 10, 1)], [])


def test_amend_in_auction_of_partly_filled_order_cancelled_for_self_trade_takes_its_leaves() -> (
    None
):
    s = Scenario()
    s.given(
        buy(11, 30, 990, ALICE),
        sell(12, 10, 990, BOB),  # fills 10 of 11
        sell(13, 10, 1010, ALICE),
        StartAuction(ts_ns=0),
    )
    s.run(
        [
            (
                amend(11, ALICE, 30, 1010),
                [
                    amended(9, 11, ALICE, 1010, 30, 20, priority_kept=False),
                    level(10, BUY, 990, 0, 0),
                    cancelled(11, 11, ALICE, 20, SELF_TRADE),
                ],
            ),
        ]
    )
    assert s.depth() == ([], [(1010, 10, 1)])
