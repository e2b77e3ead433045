"""The exchange's batches: locks, trades and releases in one transaction, idempotent as a whole,
and equal in effect to the same operations made one by one."""

from __future__ import annotations

import itertools

from settlement.batches import Batch, OrderLock
from settlement.errors import ErrorCode
from settlement.ledger import Ledger
from settlement.values import CashBalance, CerFilter, Holding, TradeToSettle
from tests.settlement import builders
from tests.settlement.builders import World
from tests.settlement.conftest import unique
from tests.settlement.refusals import refused

_ids = itertools.count(7_000_000)


class Twin:
    """A seller with two vintages and two buyers with cash, built the same way each time."""

    @classmethod
    async def create(cls, ledger: Ledger) -> Twin:
        twin = cls()
        world = await World.create(ledger)
        twin.old = (await world.issue(ledger, 40, vintage=2023)).block_id
        twin.new = (await world.issue(ledger, 60, vintage=2025)).block_id
        twin.seller = world.owner.account_id
        twin.buyers = [(await builders.account(ledger)).account_id for _ in range(2)]
        for buyer in twin.buyers:
            await ledger.deposit(unique("d"), buyer, 1_000_000)
        return twin

    def shape(self, holdings: list[Holding]) -> list[tuple[str, int, int, str, bool]]:
        """Holdings with the block named by vintage and the order id reduced to locked-or-not."""
        names = {self.old: "old", self.new: "new"}
        return [
            (names[h.block_id], h.first, h.last, h.state.value, h.order_id is not None)
            for h in holdings
        ]

    async def state(self, ledger: Ledger) -> list[object]:
        accounts = [self.seller, *self.buyers]
        out: list[object] = []
        for account in accounts:
            out.append(self.shape(await ledger.holdings(account)))
            balance = await ledger.balance(account)
            out.append((balance.available_fen, balance.locked_fen))
        return out


def _script(twin: Twin) -> tuple[list[OrderLock], list[TradeToSettle], list[int]]:
    sell_a, sell_b, buy_a, buy_b = (next(_ids) for _ in range(4))
    locks = [
        OrderLock(sell_a, twin.seller, quantity_t=50),  # 40 of 2023, then 10 of 2025
        OrderLock(sell_b, twin.seller, quantity_t=20, only=CerFilter(vintages=(2025,))),
        OrderLock(buy_a, twin.buyers[0], amount_fen=300_000),
        OrderLock(buy_b, twin.buyers[1], amount_fen=100_000),
    ]
    trades = [
        TradeToSettle(next(_ids), buy_a, sell_a, twin.buyers[0], twin.seller, 5_000, 30, 5, 5),
        TradeToSettle(next(_ids), buy_b, sell_b, twin.buyers[1], twin.seller, 4_990, 12, 5, 5),
        TradeToSettle(next(_ids), buy_a, sell_b, twin.buyers[0], twin.seller, 4_995, 8, 5, 5),
    ]
    return locks, trades, [sell_a, buy_a, buy_b]


async def test_a_batch_equals_the_same_operations_one_by_one(ledger: Ledger) -> None:
    batched, single = await Twin.create(ledger), await Twin.create(ledger)
    locks, trades, releases = _script(batched)
    report = await ledger.apply(Batch(tuple(locks), tuple(trades), tuple(releases)))
    assert report.locked == tuple(lock.order_id for lock in locks)
    assert report.settled == tuple(trade.trade_id for trade in trades)
    assert report.released == tuple(sorted(releases))

    locks, trades, releases = _script(single)
    for lock in locks:
        if lock.quantity_t:
            await ledger.lock_cers(lock.order_id, lock.account_id, lock.quantity_t, lock.only)
        else:
            await ledger.lock_cash(lock.order_id, lock.account_id, lock.amount_fen)
    await ledger.settle(trades)
    for order_id in releases:
        await ledger.release(order_id)
    assert await batched.state(ledger) == await single.state(ledger)


async def test_applying_a_batch_again_changes_nothing(ledger: Ledger) -> None:
    twin = await Twin.create(ledger)
    locks, trades, releases = _script(twin)
    batch = Batch(tuple(locks), tuple(trades), tuple(releases))
    await ledger.apply(batch)
    before = await twin.state(ledger)
    again = await ledger.apply(batch)
    assert (again.locked, again.settled, again.released) == ((), (), ())
    assert again.already_locked == tuple(lock.order_id for lock in locks)
    assert again.already_settled == tuple(trade.trade_id for trade in trades)
    assert await twin.state(ledger) == before


async def test_a_batch_that_cannot_be_applied_leaves_nothing(ledger: Ledger) -> None:
    twin = await Twin.create(ledger)
    before = await twin.state(ledger)
    too_much = OrderLock(next(_ids), twin.seller, quantity_t=61, only=CerFilter(vintages=(2025,)))
    fine = OrderLock(next(_ids), twin.buyers[0], amount_fen=1_000)
    await refused(ErrorCode.INSUFFICIENT_HOLDINGS, ledger.apply(Batch((fine, too_much))))
    poor = OrderLock(next(_ids), twin.buyers[1], amount_fen=1_000_001)
    await refused(ErrorCode.INSUFFICIENT_CASH, ledger.apply(Batch((fine, poor))))
    both = OrderLock(next(_ids), twin.seller, quantity_t=1, amount_fen=1)
    await refused(ErrorCode.QUANTITY_MUST_BE_POSITIVE, ledger.apply(Batch((both,))))
    assert await twin.state(ledger) == before
    # the refused batches recorded no lock: the good order locks now
    assert (await ledger.apply(Batch((fine,)))).locked == (fine.order_id,)
    assert await ledger.balance(twin.buyers[0]) == CashBalance(twin.buyers[0], 999_000, 1_000)


async def test_release_reports_only_orders_with_something_left(ledger: Ledger) -> None:
    twin = await Twin.create(ledger)
    sell, buy = next(_ids), next(_ids)
    trade = TradeToSettle(next(_ids), buy, sell, twin.buyers[0], twin.seller, 1_000, 5)
    batch = Batch(
        (
            OrderLock(sell, twin.seller, quantity_t=5),
            OrderLock(buy, twin.buyers[0], amount_fen=6_000),
        ),
        (trade,),
        (sell, buy, next(_ids)),
    )
    report = await ledger.apply(batch)
    assert report.released == (buy,)  # the sell lock was used up; the third order never locked
    assert await ledger.balance(twin.buyers[0]) == CashBalance(twin.buyers[0], 995_000, 0)


async def test_a_buy_may_lock_cash_that_a_release_or_a_sale_in_the_same_batch_returns(
    ledger: Ledger,
) -> None:
    """Cash is posted once per batch: only each balance's net change must keep it non-negative,
    as on the exchange, where the release or the sale came before the new buy."""
    twin = await Twin.create(ledger)
    buyer = twin.buyers[0]
    first, second = next(_ids), next(_ids)
    await ledger.apply(Batch((OrderLock(first, buyer, amount_fen=1_000_000),)))
    # all the buyer's cash is locked; the new buy needs what the release returns
    report = await ledger.apply(
        Batch((OrderLock(second, buyer, amount_fen=600_000),), (), (first,))
    )
    assert (report.locked, report.released) == ((second,), (first,))
    assert await ledger.balance(buyer) == CashBalance(buyer, 400_000, 600_000)
    # the seller has no cash but what it sells for in the same batch
    sell, buy, spend = next(_ids), next(_ids), next(_ids)
    trade = TradeToSettle(next(_ids), buy, sell, twin.buyers[1], twin.seller, 5_000, 10, 5, 5)
    locks = (
        OrderLock(sell, twin.seller, quantity_t=10),
        OrderLock(buy, twin.buyers[1], amount_fen=60_000),
        OrderLock(spend, twin.seller, amount_fen=40_000),
    )
    report = await ledger.apply(Batch(locks, (trade,)))
    assert report.locked == (sell, buy, spend) and report.settled == (trade.trade_id,)
    assert await ledger.balance(twin.seller) == CashBalance(
        twin.seller, 50_000 - 25 - 40_000, 40_000
    )
    # more than the batch returns is still refused, and leaves nothing
    before = await twin.state(ledger)
    greedy = OrderLock(next(_ids), buyer, amount_fen=1_000_001)
    await refused(ErrorCode.INSUFFICIENT_CASH, ledger.apply(Batch((greedy,), (), (second,))))
    assert await twin.state(ledger) == before


async def test_locks_in_a_batch_take_the_oldest_of_fragmented_holdings_as_single_locks_do(
    ledger: Ledger,
) -> None:
    # a batch fetches only the first n free runs of an account selling n tonnes with no filter:
    # with holdings broken into one-tonne runs it must still take exactly what one-by-one
    # locks take, oldest vintage and lowest serial first, and all runs for a filtered lock
    batched, single = await Twin.create(ledger), await Twin.create(ledger)
    for twin in (batched, single):
        pieces = [next(_ids) for _ in range(10)]
        await ledger.apply(Batch(tuple(OrderLock(o, twin.seller, quantity_t=1) for o in pieces)))
        await ledger.apply(Batch(releases=tuple(pieces[1::2])))  # free 2, 4, 6, 8, 10..40
    only_2025 = CerFilter(vintages=(2025,))
    wanted = [(1, None), (2, None), (3, None), (2, only_2025), (1, None), (1, only_2025)]
    wanted.append((2, only_2025))
    locks = [
        OrderLock(next(_ids), batched.seller, quantity_t=t, only=only or CerFilter())
        for t, only in wanted
    ]
    await ledger.apply(Batch(tuple(locks[:3])))  # no filter: the first six runs are enough
    await ledger.apply(Batch(tuple(locks[3:5])))  # two filters: every run is fetched
    await ledger.apply(Batch(tuple(locks[5:])))  # one filter: the first three it admits
    for t, only in wanted:
        await ledger.lock_cers(next(_ids), single.seller, t, only or CerFilter())
    assert await batched.state(ledger) == await single.state(ledger)
    free = [h for h in await ledger.holdings(batched.seller) if h.state.value == "free"]
    assert [batched.shape([h])[0][:3] for h in free] == [("old", 13, 40), ("new", 6, 60)]
