"""The feed's batches: cut before a lock of an account that a release or a trade in the batch
credited, and when full; otherwise everything rides in one batch, in order."""

from __future__ import annotations

from exchange.ledger_feed import BatchBuilder
from settlement.batches import Batch, OrderLock
from settlement.values import TradeToSettle

TRADE = TradeToSettle(1, 10, 11, 100, 101, 5_000, 1)


def test_a_lock_after_a_release_of_the_same_account_starts_a_new_batch() -> None:
    feed = BatchBuilder()
    feed.lock(OrderLock(10, 100, amount_fen=9_000))
    feed.trade(TRADE)
    feed.release(10, 100)
    feed.lock(OrderLock(12, 102, quantity_t=3))  # another account: same batch
    feed.lock(OrderLock(13, 100, amount_fen=5_000))  # may need what order 10 released
    assert feed.take() == [
        Batch(
            (OrderLock(10, 100, amount_fen=9_000), OrderLock(12, 102, quantity_t=3)),
            (TRADE,),
            (10,),
        ),
        Batch((OrderLock(13, 100, amount_fen=5_000),)),
    ]
    assert feed.take() == []


def test_a_lock_after_a_trade_of_the_same_account_starts_a_new_batch() -> None:
    feed = BatchBuilder()
    feed.trade(TRADE)  # 100 buys tonnes from 101, which is paid
    feed.lock(OrderLock(20, 102, amount_fen=5_000))  # not a party: same batch
    feed.lock(OrderLock(21, 100, quantity_t=1))  # may sell what it just bought
    feed.lock(OrderLock(22, 101, amount_fen=5_000))  # may pay with what it was just paid
    assert feed.take() == [
        Batch((OrderLock(20, 102, amount_fen=5_000),), (TRADE,)),
        Batch((OrderLock(21, 100, quantity_t=1), OrderLock(22, 101, amount_fen=5_000))),
    ]


def test_a_full_batch_is_cut() -> None:
    feed = BatchBuilder(max_items=2)
    for order in range(1, 6):
        feed.lock(OrderLock(order, 100 + order, quantity_t=1))
    assert len(feed) == 5
    assert [len(batch.locks) for batch in feed.take()] == [2, 2, 1]
    assert len(feed) == 0
