"""The feed's batches: cut before a sell lock of an account that receives tonnes in the batch
(a release of its sell order, or a trade in which it buys), and when full; otherwise everything
rides in one batch, in order, buy locks after releases and sales too (the ledger nets cash)."""

from __future__ import annotations

from exchange.ledger_feed import BatchBuilder
from settlement.batches import Batch, OrderLock
from settlement.values import TradeToSettle

TRADE = TradeToSettle(1, 10, 11, 100, 101, 5_000, 1)


def test_a_sell_lock_after_a_release_of_a_sell_order_of_the_same_account_starts_a_new_batch() -> (
    None
):
    feed = BatchBuilder()
    feed.lock(OrderLock(11, 101, quantity_t=3))
    feed.release(11, 101, tonnes=True)
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
    feed.release(10, 100, tonnes=False)  # a buy order's remainder comes back
    feed.lock(OrderLock(13, 100, amount_fen=5_000))  # may need it: the ledger nets the cash
    feed.lock(OrderLock(16, 101, amount_fen=5_000))  # may spend the sale's proceeds: likewise
    feed.release(16, 101, tonnes=False)
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


def test_a_full_batch_is_cut() -> None:
    feed = BatchBuilder(max_items=2)
    for order in range(1, 6):
        feed.lock(OrderLock(order, 100 + order, quantity_t=1))
    assert len(feed) == 5
    assert [len(batch.locks) for batch in feed.take()] == [2, 2, 1]
    assert len(feed) == 0
