"""Amended orders' locks grown and trimmed: which serials, once only, and nothing on a refusal."""

from __future__ import annotations

import itertools

from settlement.adjusts import OrderAdjust
from settlement.batches import Batch, OrderLock
from settlement.errors import ErrorCode
from settlement.ledger import Ledger
from settlement.values import CashBalance, CerFilter, TradeToSettle
from tests.settlement.refusals import refused
from tests.settlement.test_batches import Twin

_ids = itertools.count(9_000_000)


async def test_a_sell_lock_grows_oldest_first_and_is_trimmed_from_the_end(ledger: Ledger) -> None:
    twin = await Twin.create(ledger)
    sell = next(_ids)
    await ledger.apply(Batch((OrderLock(sell, twin.seller, quantity_t=30),)))
    report = await ledger.apply(
        Batch(adjusts=(OrderAdjust(next(_ids), sell, twin.seller, quantity_t=20),))
    )
    assert len(report.adjusted) == 1
    assert sorted(twin.shape(await ledger.holdings(twin.seller))) == [
        ("new", 1, 10, "locked", True),
        ("new", 11, 60, "free", False),
        ("old", 1, 40, "locked", True),
    ]
    await ledger.apply(Batch(adjusts=(OrderAdjust(next(_ids), sell, twin.seller, quantity_t=-25),)))
    assert sorted(twin.shape(await ledger.holdings(twin.seller))) == [
        ("new", 1, 60, "free", False),
        ("old", 1, 25, "locked", True),
        ("old", 26, 40, "free", False),
    ]


async def test_a_grown_lock_keeps_to_the_instruments_filter(ledger: Ledger) -> None:
    twin = await Twin.create(ledger)
    sell = next(_ids)
    only_new = CerFilter(vintages=(2025,))
    await ledger.apply(Batch((OrderLock(sell, twin.seller, quantity_t=10, only=only_new),)))
    grow = OrderAdjust(next(_ids), sell, twin.seller, quantity_t=15, only=only_new)
    await ledger.apply(Batch(adjusts=(grow,)))
    assert sorted(twin.shape(await ledger.holdings(twin.seller))) == [
        ("new", 1, 25, "locked", True),
        ("new", 26, 60, "free", False),
        ("old", 1, 40, "free", False),
    ]


async def test_a_cash_lock_grows_and_is_trimmed(ledger: Ledger) -> None:
    twin = await Twin.create(ledger)
    buyer, buy = twin.buyers[0], next(_ids)
    await ledger.apply(Batch((OrderLock(buy, buyer, amount_fen=100_000),)))
    await ledger.apply(Batch(adjusts=(OrderAdjust(next(_ids), buy, buyer, amount_fen=50_000),)))
    assert await ledger.balance(buyer) == CashBalance(buyer, 850_000, 150_000)
    await ledger.apply(Batch(adjusts=(OrderAdjust(next(_ids), buy, buyer, amount_fen=-120_000),)))
    assert await ledger.balance(buyer) == CashBalance(buyer, 970_000, 30_000)
    report = await ledger.apply(Batch(releases=(buy,)))
    assert report.released == (buy,)
    assert await ledger.balance(buyer) == CashBalance(buyer, 1_000_000, 0)


async def test_an_adjustment_applies_once(ledger: Ledger) -> None:
    twin = await Twin.create(ledger)
    buy, sell = next(_ids), next(_ids)
    locks = (
        OrderLock(buy, twin.buyers[0], amount_fen=10_000),
        OrderLock(sell, twin.seller, quantity_t=5),
    )
    adjusts = (
        OrderAdjust(next(_ids), buy, twin.buyers[0], amount_fen=2_000),
        OrderAdjust(next(_ids), sell, twin.seller, quantity_t=3),
    )
    first = await ledger.apply(Batch(locks, adjusts=adjusts))
    assert first.adjusted == tuple(a.adjust_id for a in adjusts)
    before = await twin.state(ledger)
    again = await ledger.apply(Batch(locks, adjusts=adjusts))
    assert again.adjusted == ()
    assert await twin.state(ledger) == before


async def test_a_trim_before_earlier_trades_in_one_batch_equals_the_true_order(
    ledger: Ledger,
) -> None:
    """The batch applies adjustments before trades; the result is the same as trade-then-trim."""

    async def run(batched: bool) -> list[object]:
        twin = await Twin.create(ledger)
        sell, buy = next(_ids), next(_ids)
        lock = OrderLock(sell, twin.seller, quantity_t=60)  # old 1..40, new 1..20
        buy_lock = OrderLock(buy, twin.buyers[0], amount_fen=500_000)
        trade = TradeToSettle(next(_ids), buy, sell, twin.buyers[0], twin.seller, 1_000, 45, 5, 5)
        trim = OrderAdjust(next(_ids), sell, twin.seller, quantity_t=-15)
        if batched:
            await ledger.apply(Batch((lock, buy_lock), (trade,), adjusts=(trim,)))
        else:
            await ledger.apply(Batch((lock, buy_lock)))
            await ledger.apply(Batch(trades=(trade,)))
            await ledger.apply(Batch(adjusts=(trim,)))
        return await twin.state(ledger)

    assert await run(True) == await run(False)


async def test_a_refused_adjustment_moves_nothing(ledger: Ledger) -> None:
    twin = await Twin.create(ledger)
    sell, buy = next(_ids), next(_ids)
    await ledger.apply(
        Batch(
            (
                OrderLock(sell, twin.seller, quantity_t=90),
                OrderLock(buy, twin.buyers[0], amount_fen=1_000),
            )
        )
    )
    before = await twin.state(ledger)
    fine = OrderAdjust(next(_ids), buy, twin.buyers[0], amount_fen=500)
    cases = (
        (ErrorCode.INSUFFICIENT_HOLDINGS, OrderAdjust(next(_ids), sell, twin.seller, 11)),
        (ErrorCode.LOCK_INSUFFICIENT, OrderAdjust(next(_ids), sell, twin.seller, quantity_t=-91)),
        (
            ErrorCode.INSUFFICIENT_CASH,
            OrderAdjust(next(_ids), buy, twin.buyers[0], amount_fen=999_001),
        ),
        (
            ErrorCode.LOCK_INSUFFICIENT,
            OrderAdjust(next(_ids), buy, twin.buyers[0], amount_fen=-1_501),
        ),
        (ErrorCode.LOCK_INSUFFICIENT, OrderAdjust(next(_ids), next(_ids), twin.seller, -1)),
        (ErrorCode.QUANTITY_MUST_BE_POSITIVE, OrderAdjust(next(_ids), sell, twin.seller)),
        (ErrorCode.LOCK_INSUFFICIENT, OrderAdjust(next(_ids), sell, twin.seller, -90)),
        (
            ErrorCode.LOCK_INSUFFICIENT,
            OrderAdjust(next(_ids), buy, twin.buyers[0], amount_fen=-1_500),
        ),
    )
    for code, adjust in cases:
        await refused(code, ledger.apply(Batch(adjusts=(fine, adjust))))
    assert await twin.state(ledger) == before
    # the refused batches recorded nothing: the good adjustment applies now
    assert (await ledger.apply(Batch(adjusts=(fine,)))).adjusted == (fine.adjust_id,)
