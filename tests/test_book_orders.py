"""New orders in continuous trading: limit and market, every time in force, post-only, and the
refusals of docs/matching.md in their precedence order.

Instrument (tests/book_scenarios.py): tick 10 fen, lot 10 t, quantities 10..1 000 t, band
[900, 1100] around a reference of 1 000 fen.
"""

from __future__ import annotations

from matching import (
    CancelReason,
    Halt,
    InstrumentRules,
    RejectCode,
    RestingOrder,
    StartAuction,
    TradingStatus,
)
from tests.book_scenarios import (
    ALICE,
    BOB,
    BOTH,
    BUY,
    CAROL,
    DAVE,
    DAY,
    FOK,
    GTC,
    IOC,
    NEWEST,
    OLDEST,
    RULES,
    SELL,
    Scenario,
    accepted,
    buy,
    cancelled,
    level,
    market,
    sell,
    status,
    trade,
)

USER = CancelReason.USER
IOC_REMAINDER = CancelReason.IOC_REMAINDER
SELF_TRADE = CancelReason.SELF_TRADE
R = RejectCode


# --- limit orders ------------------------------------------------------------------------------


def test_limit_orders_without_a_cross_rest_fifo_within_their_level() -> None:
    s = Scenario()
    s.run(
        [
            (buy(1, 30, 1000), [accepted(1, 1, ALICE, BUY, 30, 1000), level(2, BUY, 1000, 30, 1)]),
            (
                buy(2, 10, 1000, CAROL),
                [accepted(3, 2, CAROL, BUY, 10, 1000), level(4, BUY, 1000, 40, 2)],
            ),
            (buy(3, 20, 990), [accepted(5, 3, ALICE, BUY, 20, 990), level(6, BUY, 990, 20, 1)]),
            (sell(4, 10, 1010), [accepted(7, 4, BOB, SELL, 10, 1010), level(8, SELL, 1010, 10, 1)]),
        ]
    )
    assert s.depth() == ([(1000, 40, 2), (990, 20, 1)], [(1010, 10, 1)])
    assert s.queue() == [1, 2, 3, 4]
    assert (s.book.best_bid(), s.book.best_ask()) == (1000, 1010)
    assert s.book.order(1) == RestingOrder(1, ALICE, BUY, 1000, 30, 0, GTC, NEWEST, False, 1)
    assert s.book.order(2) == RestingOrder(2, CAROL, BUY, 1000, 10, 0, GTC, NEWEST, False, 3)


def test_empty_book_has_no_best_prices_and_no_depth() -> None:
    s = Scenario()
    assert (s.book.best_bid(), s.book.best_ask()) == (None, None)
    assert s.depth() == ([], [])
    assert s.book.resting_orders() == []
    assert s.book.order(1) is None
    assert s.book.status is TradingStatus.OPEN
    assert s.book.reference_price_fen == 1000
    assert s.book.rules == RULES


def test_limit_buy_crossing_two_levels_trades_at_maker_prices_and_rests_its_remainder() -> None:
    s = Scenario()
    s.given(sell(11, 10, 1000), sell(12, 20, 1000, CAROL), sell(13, 10, 1010), sell(14, 10, 1030))
    s.run(
        [
            (
                buy(21, 50, 1020),
                [
                    accepted(9, 21, ALICE, BUY, 50, 1020),
                    trade(10, 1, 1000, 10, (11, BOB, 0), (21, ALICE, 40), BUY),
                    trade(11, 2, 1000, 20, (12, CAROL, 0), (21, ALICE, 20), BUY),
                    level(12, SELL, 1000, 0, 0),
                    trade(13, 3, 1010, 10, (13, BOB, 0), (21, ALICE, 10), BUY),
                    level(14, SELL, 1010, 0, 0),
                    level(15, BUY, 1020, 10, 1),
                ],
            ),
        ]
    )
    assert s.depth() == ([(1020, 10, 1)], [(1030, 10, 1)])
    assert s.book.order(21) == RestingOrder(21, ALICE, BUY, 1020, 10, 40, GTC, NEWEST, False, 9)
    assert s.book.order(11) is None


def test_limit_sell_crossing_part_of_a_level_fills_the_oldest_bid_and_keeps_its_priority() -> None:
    s = Scenario()
    s.given(buy(11, 30, 1000), buy(12, 10, 1000, CAROL))
    s.run(
        [
            (
                sell(21, 20, 990),
                [
                    accepted(5, 21, BOB, SELL, 20, 990),
                    trade(6, 1, 1000, 20, (11, ALICE, 10), (21, BOB, 0), SELL),
                    level(7, BUY, 1000, 20, 2),
                ],
            ),
            (
                sell(22, 20, 1000, DAVE),
                [
                    accepted(8, 22, DAVE, SELL, 20, 1000),
                    trade(9, 2, 1000, 10, (11, ALICE, 0), (22, DAVE, 10), SELL),
                    trade(10, 3, 1000, 10, (12, CAROL, 0), (22, DAVE, 0), SELL),
                    level(11, BUY, 1000, 0, 0),
                ],
            ),
        ]
    )
    assert s.depth() == ([], [])


def test_limit_buy_at_exactly_the_best_ask_crosses() -> None:
    s = Scenario()
    s.given(sell(11, 10, 1000))
    s.run(
        [
            (
                buy(21, 10, 1000),
                [
                    accepted(3, 21, ALICE, BUY, 10, 1000),
                    trade(4, 1, 1000, 10, (11, BOB, 0), (21, ALICE, 0), BUY),
                    level(5, SELL, 1000, 0, 0),
                ],
            ),
        ]
    )
    assert s.depth() == ([], [])


def test_new_order_reusing_the_id_of_an_order_no_longer_resting_is_accepted() -> None:
    s = Scenario()
    s.given(sell(11, 10, 1000), buy(12, 10, 1000))  # 11 and 12 traded away
    s.run([(buy(11, 10, 990), [accepted(6, 11, ALICE, BUY, 10, 990), level(7, BUY, 990, 10, 1)])])


def test_limit_order_quantity_at_the_maximum_is_accepted() -> None:
    s = Scenario()
    s.run([(buy(1, 1000, 1000), "Accepted LevelChanged")])


# --- market orders -----------------------------------------------------------------------------


def test_market_ioc_buy_sweeps_to_the_band_edge_and_cancels_its_remainder() -> None:
    s = Scenario()
    s.given(sell(11, 10, 1000), sell(12, 10, 1100, CAROL))
    s.run(
        [
            (
                market(BUY, 21, 30, ALICE),
                [
                    accepted(5, 21, ALICE, BUY, 30, None),
                    trade(6, 1, 1000, 10, (11, BOB, 0), (21, ALICE, 20), BUY),
                    level(7, SELL, 1000, 0, 0),
                    trade(8, 2, 1100, 10, (12, CAROL, 0), (21, ALICE, 10), BUY),
                    level(9, SELL, 1100, 0, 0),
                    cancelled(10, 21, ALICE, 10, IOC_REMAINDER),
                ],
            ),
        ]
    )
    assert s.depth() == ([], [])


def test_market_ioc_sell_on_an_empty_book_is_accepted_then_cancelled_whole() -> None:
    s = Scenario()
    s.run(
        [
            (
                market(SELL, 21, 30, BOB),
                [accepted(1, 21, BOB, SELL, 30, None), cancelled(2, 21, BOB, 30, IOC_REMAINDER)],
            ),
        ]
    )
    assert s.depth() == ([], [])


def test_market_fok_sell_fills_completely_or_is_refused_whole() -> None:
    s = Scenario()
    s.given(buy(11, 10, 1000), buy(12, 20, 990, CAROL))
    s.run(
        [
            (market(SELL, 21, 40, BOB, tif=FOK), R.FOK_MUST_FILL_COMPLETELY),  # only 30 bid
            (
                market(SELL, 22, 30, BOB, tif=FOK),
                [
                    accepted(6, 22, BOB, SELL, 30, None),
                    trade(7, 1, 1000, 10, (11, ALICE, 0), (22, BOB, 20), SELL),
                    level(8, BUY, 1000, 0, 0),
                    trade(9, 2, 990, 20, (12, CAROL, 0), (22, BOB, 0), SELL),
                    level(10, BUY, 990, 0, 0),
                ],
            ),
        ]
    )
    assert s.depth() == ([], [])


# --- time in force -----------------------------------------------------------------------------


def test_limit_ioc_trades_what_crosses_and_cancels_the_rest_without_resting() -> None:
    s = Scenario()
    s.given(sell(11, 10, 1000), sell(12, 10, 1020))
    s.run(
        [
            (
                buy(21, 30, 1010, tif=IOC),
                [
                    accepted(5, 21, ALICE, BUY, 30, 1010),
                    trade(6, 1, 1000, 10, (11, BOB, 0), (21, ALICE, 20), BUY),
                    level(7, SELL, 1000, 0, 0),
                    cancelled(8, 21, ALICE, 20, IOC_REMAINDER),
                ],
            ),
            (
                buy(22, 10, 990, tif=IOC),
                [accepted(9, 22, ALICE, BUY, 10, 990), cancelled(10, 22, ALICE, 10, IOC_REMAINDER)],
            ),
        ]
    )
    assert s.depth() == ([], [(1020, 10, 1)])


def test_limit_fok_counts_only_liquidity_within_its_price() -> None:
    s = Scenario()
    s.given(sell(11, 10, 1000), sell(12, 10, 1010, CAROL), sell(13, 10, 1020))
    s.run(
        [
            (buy(21, 30, 1010, tif=FOK), R.FOK_MUST_FILL_COMPLETELY),  # 1020 is beyond its price
            (
                buy(22, 20, 1010, tif=FOK),
                [
                    accepted(8, 22, ALICE, BUY, 20, 1010),
                    trade(9, 1, 1000, 10, (11, BOB, 0), (22, ALICE, 10), BUY),
                    level(10, SELL, 1000, 0, 0),
                    trade(11, 2, 1010, 10, (12, CAROL, 0), (22, ALICE, 0), BUY),
                    level(12, SELL, 1010, 0, 0),
                ],
            ),
        ]
    )
    assert s.depth() == ([], [(1020, 10, 1)])


def test_fok_with_cancel_oldest_skips_own_orders_when_counting_and_cancels_them() -> None:
    s = Scenario()
    s.given(sell(11, 10, 1000, ALICE), sell(12, 10, 1000, BOB))
    s.run(
        [
            (buy(21, 20, 1000, tif=FOK, stp=OLDEST), R.FOK_MUST_FILL_COMPLETELY),  # 10 fillable
            (
                buy(22, 10, 1000, tif=FOK, stp=OLDEST),
                [
                    accepted(6, 22, ALICE, BUY, 10, 1000),
                    cancelled(7, 11, ALICE, 10, SELF_TRADE),
                    trade(8, 1, 1000, 10, (12, BOB, 0), (22, ALICE, 0), BUY),
                    level(9, SELL, 1000, 0, 0),
                ],
            ),
        ]
    )
    assert s.depth() == ([], [])


def test_fok_with_cancel_newest_or_both_stops_counting_at_its_own_order() -> None:
    s = Scenario()
    s.given(sell(11, 10, 1000, BOB), sell(12, 10, 1000, ALICE), sell(13, 10, 1010, CAROL))
    s.run(
        [
            (buy(21, 20, 1010, tif=FOK, stp=NEWEST), R.FOK_MUST_FILL_COMPLETELY),  # 11, then own 12
            (buy(22, 20, 1010, tif=FOK, stp=BOTH), R.FOK_MUST_FILL_COMPLETELY),
            (
                buy(23, 10, 1010, tif=FOK, stp=NEWEST),
                [
                    accepted(9, 23, ALICE, BUY, 10, 1010),
                    trade(10, 1, 1000, 10, (11, BOB, 0), (23, ALICE, 0), BUY),
                    level(11, SELL, 1000, 10, 1),
                ],
            ),
        ]
    )
    assert s.depth() == ([], [(1000, 10, 1), (1010, 10, 1)])
    assert s.queue() == [12, 13]


def test_day_limit_order_rests_and_trades_like_gtc() -> None:
    s = Scenario()
    s.run(
        [
            (
                buy(11, 20, 1000, tif=DAY),
                [accepted(1, 11, ALICE, BUY, 20, 1000), level(2, BUY, 1000, 20, 1)],
            ),
            (
                sell(12, 10, 1000),
                [
                    accepted(3, 12, BOB, SELL, 10, 1000),
                    trade(4, 1, 1000, 10, (11, ALICE, 10), (12, BOB, 0), SELL),
                    level(5, BUY, 1000, 10, 1),
                ],
            ),
        ]
    )
    assert s.book.order(11) == RestingOrder(11, ALICE, BUY, 1000, 10, 10, DAY, NEWEST, False, 1)


# --- post-only ---------------------------------------------------------------------------------


def test_post_only_rests_when_it_does_not_cross_and_is_refused_when_it_would() -> None:
    s = Scenario()
    s.given(sell(11, 10, 1010), buy(12, 10, 990, CAROL))
    s.run(
        [
            (
                buy(21, 10, 1000, post_only=True),
                [accepted(5, 21, ALICE, BUY, 10, 1000), level(6, BUY, 1000, 10, 1)],
            ),
            (buy(22, 10, 1010, post_only=True), R.POST_ONLY_MUST_NOT_CROSS),  # equal to the ask
            (sell(23, 10, 1000, ALICE, post_only=True), R.POST_ONLY_MUST_NOT_CROSS),  # own bid too
            (
                sell(24, 10, 1010, DAVE, tif=DAY, post_only=True),
                [accepted(9, 24, DAVE, SELL, 10, 1010), level(10, SELL, 1010, 20, 2)],
            ),
        ]
    )
    assert s.depth() == ([(1000, 10, 1), (990, 10, 1)], [(1010, 20, 2)])
    assert s.book.order(21) == RestingOrder(21, ALICE, BUY, 1000, 10, 0, GTC, NEWEST, True, 5)


def test_post_only_against_an_empty_opposite_side_rests() -> None:
    s = Scenario()
    s.run([(sell(1, 10, 900, post_only=True), "Accepted LevelChanged")])
    assert s.depth() == ([], [(900, 10, 1)])


# --- refusals ----------------------------------------------------------------------------------


def test_new_order_checks_run_in_table_order_and_the_earlier_failing_check_wins() -> None:
    """One row per check of the table; each row also fails a later check, which must not win."""
    s = Scenario()
    s.given(sell(7, 10, 1000))  # resting: order id 7, ask 10 t at 1000
    s.run(
        [
            # 2 beats 3: a duplicate id with quantity 0
            (buy(7, 0, 1000), R.ORDER_ID_MUST_BE_UNIQUE),
            # 3 beats 4 and 5: -5 is off the lot and under the minimum too
            (buy(21, -5, 1000), R.QUANTITY_MUST_BE_POSITIVE),
            (buy(21, 0, 1000), R.QUANTITY_MUST_BE_POSITIVE),
            # 4 beats 5: 5 t is under the minimum too
            (buy(21, 5, 1000), R.QUANTITY_MUST_BE_ON_LOT),
            # 5 beats 6: a market order with a price
            (market(BUY, 21, 1010, ALICE, price_fen=1000), R.QUANTITY_MUST_BE_WITHIN_LIMITS),
            # 6 beats 7: market with a price and GTC
            (
                market(BUY, 21, 10, ALICE, tif=GTC, price_fen=1000),
                R.PRICE_MUST_NOT_BE_GIVEN_FOR_MARKET,
            ),
            # 7 beats 12: market DAY post-only
            (
                market(BUY, 21, 10, ALICE, tif=DAY, post_only=True),
                R.MARKET_ORDER_MUST_BE_IOC_OR_FOK,
            ),
            (market(BUY, 21, 10, ALICE, tif=GTC), R.MARKET_ORDER_MUST_BE_IOC_OR_FOK),
            # 8 beats 12: limit without a price, IOC post-only
            (buy(21, 10, None, tif=IOC, post_only=True), R.PRICE_MUST_BE_GIVEN_FOR_LIMIT),
            # 9 beats 11: 0 and -10 are outside the band too
            (buy(21, 10, 0), R.PRICE_MUST_BE_POSITIVE),
            (sell(21, 10, -10), R.PRICE_MUST_BE_POSITIVE),
            # 10 beats 11: 1205 is outside the band too
            (buy(21, 10, 1205), R.PRICE_MUST_BE_ON_TICK),
            # 11 beats 12: IOC post-only outside the band, at both edges
            (buy(21, 10, 1110, tif=IOC, post_only=True), R.PRICE_MUST_BE_WITHIN_BAND),
            (sell(21, 10, 890, tif=IOC, post_only=True), R.PRICE_MUST_BE_WITHIN_BAND),
            # 12 beats 14 and 15: FOK post-only that crosses and cannot fill
            (buy(21, 20, 1000, tif=FOK, post_only=True), R.POST_ONLY_MUST_BE_RESTING_LIMIT),
            (market(BUY, 21, 10, ALICE, post_only=True), R.POST_ONLY_MUST_BE_RESTING_LIMIT),
            # 14 (no later check can fail with it: FOK post-only stops at 12)
            (buy(21, 10, 1000, post_only=True), R.POST_ONLY_MUST_NOT_CROSS),
            # 15
            (buy(21, 20, 1000, tif=FOK), R.FOK_MUST_FILL_COMPLETELY),
            (StartAuction(ts_ns=0), [status(21, TradingStatus.AUCTION)]),
            # 12 beats 13: IOC post-only in auction
            (buy(21, 10, 1000, tif=IOC, post_only=True), R.POST_ONLY_MUST_BE_RESTING_LIMIT),
            # 13 beats 15: an unfillable FOK in auction
            (buy(21, 20, 1000, tif=FOK), R.ORDER_MUST_REST_DURING_AUCTION),
            # 13 beats 14: a crossing post-only in auction
            (buy(21, 10, 1000, post_only=True), R.ORDER_MUST_REST_DURING_AUCTION),
            (buy(21, 10, 990, tif=IOC), R.ORDER_MUST_REST_DURING_AUCTION),
            (market(SELL, 21, 10, BOB), R.ORDER_MUST_REST_DURING_AUCTION),
            (Halt(ts_ns=0), [status(27, TradingStatus.HALTED)]),
            # 1 beats 2, 3, 8: halted, duplicate id, quantity 0, no price
            (buy(7, 0, None), R.BOOK_MUST_NOT_BE_HALTED),
        ]
    )
    assert s.depth() == ([], [(1000, 10, 1)])
    assert s.queue() == [7]


def test_quantity_under_the_minimum_but_on_the_lot_is_refused() -> None:
    rules = InstrumentRules(
        symbol="X", tick_fen=10, lot_t=10, min_quantity_t=20, max_quantity_t=100
    )
    s = Scenario(rules)
    s.run(
        [
            (buy(1, 10, 1000), R.QUANTITY_MUST_BE_WITHIN_LIMITS),
            (buy(1, 110, 1000), R.QUANTITY_MUST_BE_WITHIN_LIMITS),
            (buy(1, 20, 1000), "Accepted LevelChanged"),
            (buy(2, 100, 1000), "Accepted LevelChanged"),
        ]
    )


def test_limit_price_on_a_band_edge_is_accepted_and_one_tick_beyond_is_refused() -> None:
    s = Scenario()
    s.run(
        [
            (buy(1, 10, 890), R.PRICE_MUST_BE_WITHIN_BAND),
            (buy(1, 10, 900), "Accepted LevelChanged"),
            (sell(2, 10, 1110), R.PRICE_MUST_BE_WITHIN_BAND),
            (sell(2, 10, 1100), "Accepted LevelChanged"),
        ]
    )
    assert s.depth() == ([(900, 10, 1)], [(1100, 10, 1)])


def test_refused_order_changes_nothing_and_consumes_no_trade_id() -> None:
    s = Scenario()
    s.given(sell(11, 10, 1000))
    before = s.book.snapshot()
    s.run([(buy(21, 20, 1000, tif=FOK), R.FOK_MUST_FILL_COMPLETELY)])
    after = s.book.snapshot()
    assert after.bids == before.bids and after.asks == before.asks
    assert after.next_trade_id == before.next_trade_id
    assert after.next_seq == before.next_seq + 1
    s.run(
        [
            (
                buy(22, 10, 1000),
                [
                    accepted(4, 22, ALICE, BUY, 10, 1000),
                    trade(5, 1, 1000, 10, (11, BOB, 0), (22, ALICE, 0), BUY),
                    level(6, SELL, 1000, 0, 0),
                ],
            ),
        ]
    )
