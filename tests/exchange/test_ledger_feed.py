"""The feed's batches: cut before a sell lock (or an amend's growth of one) of an account that
receives tonnes in the batch (a release or trim of its sell order, or a trade in which it buys),
and when full; otherwise everything rides in one batch, in order, buy locks after releases and
sales too (the ledger nets cash)."""

from __future__ import annotations

from exchange.ledger_feed import BatchBuilder
from settlement.adjusts import OrderAdjust
from settlement.batches import Batch, OrderLock
from settlement.values import TradeToSettle

TRADE = TradeToSettle(1, 10, 11, 100, 101, 5_000, 1)


def test_a_sell_lock_after_a_release_of_a_sell_order_of_the_same_account_starts_a_new_batch() -> (
    None
):
    feed = BatchBuilder()
    feed.lock(OrderLock(11, 101, quantity_t=3))
    feed.release(11, 101, tonnes_back=3)
    feed.lock(OrderLock(12, 100, quantity_t=3))  # another account: same batch
    feed.lock(OrderLock(13, 101, quantity_t=3))  # may need what order 11 released
    assert feed.take() == [
        Batch((OrderLock(11, 101, quantity_t=3), OrderLock(12, 100, quantity_t=3)), (), (11,)),
        Batch((OrderLock(13, 101, quantity_t=3),)),
    ]
    assert feed.take() == []


def test_a_sell_lock_after_a_purchase_of_the_same_account_starts_a_new_batch() -> None:
    feed = BatchBuilder()
    feed.lock(OrderLock(10, 100, amount_fen=9_000))
    feed.trade(TRADE)  # account 100 buys a tonne
    feed.lock(OrderLock(14, 101, quantity_t=1))  # the seller sells again: nothing received
    feed.lock(OrderLock(15, 100, quantity_t=1))  # may be the tonne just bought
    assert feed.take() == [
        Batch((OrderLock(10, 100, amount_fen=9_000), OrderLock(14, 101, quantity_t=1)), (TRADE,)),
        Batch((OrderLock(15, 100, quantity_t=1),)),
    ]


def test_cash_never_cuts_a_batch() -> None:
    feed = BatchBuilder()
    feed.lock(OrderLock(10, 100, amount_fen=9_000))
    feed.trade(TRADE)
    feed.release(10, 100, tonnes_back=0)  # a buy order's remainder comes back
    feed.lock(OrderLock(13, 100, amount_fen=5_000))  # may need it: the ledger nets the cash
    feed.lock(OrderLock(16, 101, amount_fen=5_000))  # may spend the sale's proceeds: likewise
    feed.release(16, 101, tonnes_back=0)
    feed.lock(OrderLock(17, 101, quantity_t=1))  # a buy order's release frees no tonnes
    assert feed.take() == [
        Batch(
            (
                OrderLock(10, 100, amount_fen=9_000),
                OrderLock(13, 100, amount_fen=5_000),
                OrderLock(16, 101, amount_fen=5_000),
                OrderLock(17, 101, quantity_t=1),
            ),
            (TRADE,),
            (10, 16),
        )
    ]


def test_a_growth_after_a_trim_of_the_same_account_starts_a_new_batch() -> None:
    feed = BatchBuilder()
    trim = OrderAdjust(5, 10, 100, quantity_t=-4)
    other = OrderAdjust(6, 12, 101, amount_fen=700)
    grow = OrderAdjust(7, 11, 100, quantity_t=4)  # may need the tonnes the trim gave back
    for adjust in (trim, other, grow):
        feed.adjust(adjust)
    lock = OrderLock(13, 100, amount_fen=1)
    feed.lock(lock)  # the trim was in an earlier batch; the growth only took
    assert feed.take() == [Batch(adjusts=(trim, other)), Batch((lock,), adjusts=(grow,))]


def test_a_lock_after_a_trade_of_the_same_account_starts_a_new_batch() -> None:
    feed = BatchBuilder()
    feed.trade(TRADE)  # 100 buys tonnes from 101, which is paid
    feed.lock(OrderLock(20, 102, amount_fen=5_000))  # not a party: same batch
    feed.lock(OrderLock(23, 100, amount_fen=5_000))  # the buyer pays from what it had: same
    feed.lock(OrderLock(24, 101, quantity_t=1))  # the seller sells what it had: same
    feed.lock(OrderLock(21, 100, quantity_t=1))  # may sell what it just bought
    feed.lock(OrderLock(22, 101, amount_fen=5_000))  # may pay with what it was just paid
    assert feed.take() == [
        Batch(
            (
                OrderLock(20, 102, amount_fen=5_000),
                OrderLock(23, 100, amount_fen=5_000),
                OrderLock(24, 101, quantity_t=1),
            ),
            (TRADE,),
        ),
        Batch((OrderLock(21, 100, quantity_t=1), OrderLock(22, 101, amount_fen=5_000))),
    ]


def test_a_full_batch_is_cut() -> None:
    feed = BatchBuilder(max_items=2)
    for order in range(1, 6):
        feed.lock(OrderLock(order, 100 + order, quantity_t=1))
    assert len(feed) == 5
    assert [len(batch.locks) for batch in feed.take()] == [2, 2, 1]
    assert len(feed) == 0


def test_netting_drops_an_order_locked_and_released_within_the_open_batch() -> None:
    feed = BatchBuilder()
    feed.netting = True
    feed.lock(OrderLock(20, 100, amount_fen=9_000))
    feed.lock(OrderLock(21, 101, quantity_t=2))
    feed.lock(OrderLock(22, 100, amount_fen=5_000))
    feed.release(21, 101, tonnes_back=2)  # locked and released unfilled: nothing for the ledger
    feed.lock(OrderLock(23, 101, quantity_t=2))  # so no cut: the ledger never took its tonnes
    feed.release(20, 100, tonnes_back=0)
    feed.check_invariants()
    assert (feed.decided, feed.netted, len(feed)) == (6, 4, 2)
    assert feed.take() == [
        Batch((OrderLock(22, 100, amount_fen=5_000), OrderLock(23, 101, quantity_t=2)))
    ]
    feed.release(22, 100, tonnes_back=0)  # its lock was handed over: the release must follow
    feed.check_invariants()
    assert feed.take() == [Batch(releases=(22,))]
    assert (feed.decided, feed.netted) == (7, 4)


def test_netting_keeps_an_order_that_traded_or_was_amended_in_the_batch() -> None:
    feed = BatchBuilder()
    feed.netting = True
    buy, sell = OrderLock(10, 100, amount_fen=9_000), OrderLock(11, 101, quantity_t=3)
    grow = OrderAdjust(1, 12, 100, amount_fen=1_000)
    feed.lock(buy)
    feed.lock(sell)
    feed.lock(OrderLock(12, 100, amount_fen=2_000))
    feed.trade(TRADE)  # orders 10 and 11
    feed.adjust(grow)
    for order_id, account_id in [(10, 100), (11, 101), (12, 100)]:
        feed.release(order_id, account_id, tonnes_back=2 if order_id == 11 else 0)
    feed.check_invariants()
    assert feed.netted == 0
    assert feed.take() == [
        Batch((buy, sell, OrderLock(12, 100, amount_fen=2_000)), (TRADE,), (10, 11, 12), (grow,))
    ]


def test_without_netting_every_item_goes_to_the_ledger() -> None:
    # as in a replay, whose locks the ledger may already hold
    feed = BatchBuilder()
    lock = OrderLock(30, 100, amount_fen=1_000)
    feed.lock(lock)
    feed.release(30, 100, tonnes_back=0)
    assert feed.netted == 0
    assert feed.take() == [Batch((lock,), releases=(30,))]


def test_live_a_sell_lock_shares_the_batch_if_the_view_says_it_took_nothing_received() -> None:
    asked: list[tuple[int, int]] = []
    fits = {12: True, 13: False}  # what the risk view answers for each lock

    def view(lock: OrderLock, received: int) -> bool:
        asked.append((lock.order_id, received))
        return fits[lock.order_id]

    feed = BatchBuilder()
    feed.fits = view
    feed.lock(OrderLock(11, 101, quantity_t=3))
    feed.trade(TradeToSettle(2, 10, 11, 100, 101, 5_000, 3))  # order 11 fills: nothing back
    feed.release(11, 101, tonnes_back=0)
    feed.lock(OrderLock(14, 101, quantity_t=1))  # account 101 received nothing: no question
    feed.release(14, 101, tonnes_back=1)  # 1 t back to account 101
    feed.lock(OrderLock(12, 101, quantity_t=2))  # the view: it took none of them
    feed.release(12, 101, tonnes_back=2)  # 3 t received now
    feed.lock(OrderLock(13, 101, quantity_t=2))  # the view: it may have: a cut
    assert asked == [(12, 1), (13, 3)]
    assert [len(batch) for batch in feed.take()] == [7, 1]
