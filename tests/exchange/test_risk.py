"""The risk view mirrors the ledger: random orders, amends, fills and releases go to both (to the
ledger through the feed's batches), and after every flush the view loaded afresh from the ledger
equals the view kept in memory — cash, free tonnes per block, and each order's reservation per
block; the view and the feed check their invariants after every step."""

from __future__ import annotations

import datetime as dt
import itertools
import random
from collections.abc import AsyncIterator

import pytest

from exchange.ledger_feed import BatchBuilder
from exchange.risk import RiskInvariantError, RiskView
from settlement.adjusts import OrderAdjust
from settlement.batches import OrderLock
from settlement.database import Database
from settlement.dvp import fees
from settlement.errors import LedgerError
from settlement.ledger import Ledger
from settlement.values import (
    ANY_CER,
    BlockInfo,
    ByQuantity,
    CerFilter,
    Methodology,
    Project,
    Role,
    TradeToSettle,
)

SELLERS, BUYERS = 3, 3
VINTAGES = (2023, 2024, 2025)


@pytest.fixture
async def ledger(database_url: str) -> AsyncIterator[Ledger]:
    database = await Database.open(database_url, min_size=1, max_size=4)
    ledger = Ledger(database)
    yield ledger
    await ledger.check()
    await database.close()


async def market(ledger: Ledger, tag: str) -> tuple[list[int], list[int]]:
    """Sellers holding three vintages of two methodologies; buyers with cash."""
    reg = (await ledger.open_account(f"{tag}/r", f"{tag}-reg", [Role.REGULATOR])).account_id
    sellers, buyers = [], []
    for m, meth in enumerate(("PV", "EV")):
        code = f"{tag}{meth}".upper()
        await ledger.register_methodology(f"{tag}/m{m}", reg, Methodology(code, meth, "energy"))
        owner = (
            await ledger.open_account(f"{tag}/o{m}", f"{tag}-owner{m}", [Role.PARTICIPANT])
        ).account_id
        await ledger.register_project(f"{tag}/p{m}", reg, Project(f"{code}P", owner, code, "X"))
        for vintage in VINTAGES:
            await ledger.issue(
                f"{tag}/i{m}{vintage}",
                reg,
                f"{code}P",
                300,
                dt.date(vintage, 1, 1),
                dt.date(vintage, 1, 31),
            )
        sellers.append(owner)
    for s in range(SELLERS - len(sellers)):
        trader = (await ledger.open_account(f"{tag}/s{s}", f"{tag}-s{s}", [Role.TRADER])).account_id
        await ledger.transfer(f"{tag}/t{s}", sellers[s], trader, ByQuantity(400))
        sellers.append(trader)
    for b in range(BUYERS):
        buyer = (await ledger.open_account(f"{tag}/b{b}", f"{tag}-b{b}", [Role.TRADER])).account_id
        await ledger.deposit(f"{tag}/d{b}", buyer, 2_000_000)
        buyers.append(buyer)
    return sellers, buyers


def snapshot(view: RiskView, accounts: list[int], orders: list[int]) -> dict[str, object]:
    return {
        "cash": {a: view.available_fen(a) for a in accounts},
        "free": {a: view.free_by_block(a) for a in accounts},
        "orders": {o: (view.reserved_by_block(o), view.reserved(o)) for o in orders},
    }


def amend(
    view: RiskView,
    feed: BatchBuilder,
    rng: random.Random,
    adjust_id: int,
    open_sells: dict[int, int],
    open_buys: dict[int, int],
    filters: dict[int, CerFilter],
) -> None:
    """Grow or trim one open order as an amend does; or hold and give back (a refused amend)."""
    order = rng.choice(sorted(open_sells.keys() | open_buys.keys()))
    sell = order in open_sells
    account = open_sells[order] if sell else open_buys[order]
    left = view.reserved(order)[0 if sell else 1]
    roll = rng.random()
    try:
        if roll < 0.5:
            amount = rng.randint(1, 60) if sell else rng.randint(1, 100_000)
            if sell:
                view.hold_sell(adjust_id, account, amount, filters[order])
            else:
                view.hold_buy(adjust_id, account, amount)
        elif left > 1:
            amount = -rng.randint(1, left - 1)  # an amend keeps at least a tonne
        else:
            return
    except LedgerError:
        return  # the account lacks it: the amend is refused before it is journaled
    if roll < 0.1:
        view.unhold(adjust_id)  # the book refused the amend
        return
    if amount > 0:
        view.grow(adjust_id, order)
    else:
        view.trim(order, tonnes=-amount if sell else 0, fen=0 if sell else -amount)
    feed.adjust(
        OrderAdjust(
            adjust_id,
            order,
            account,
            quantity_t=amount if sell else 0,
            amount_fen=0 if sell else amount,
            only=filters.get(order, ANY_CER),
        )
    )


def _feed(max_items: int, live: RiskView | None) -> BatchBuilder:
    """A feed as a replay has it, or as the live exchange has it with `live` as its view."""
    feed = BatchBuilder(max_items)
    if live is not None:

        def fits(lock: OrderLock, received: int) -> bool:
            FITS.append(live.keeps_free(lock.order_id, lock.account_id, received))
            return FITS[-1]

        feed.netting, feed.fits = True, fits
    return feed


FITS: list[bool] = []  # what the live feeds asked the view, and its answers


@pytest.mark.parametrize("netting", [False, True], ids=["replay", "live"])
@pytest.mark.parametrize("seed", range(20))
async def test_the_view_in_memory_equals_the_view_of_the_ledger(
    ledger: Ledger, seed: int, netting: bool
) -> None:
    # live, orders locked and released within a batch never reach the ledger, and a sell lock
    # of an account that receives tonnes in the batch cuts it only if the view says the lock
    # may have used them: the ledger must still hold what the view holds, at every boundary
    rng = random.Random(seed)
    sellers, buyers = await market(ledger, f"k{seed}{'n' if netting else ''}")
    accounts = sellers + buyers
    async with ledger.database.pool.acquire() as conn:
        view = await RiskView.load(conn)
    feed = _feed(rng.choice([3, 10, 50]), view if netting else None)
    ids = itertools.count(seed * 1_000_000 + (500_001 if netting else 1))
    open_sells: dict[int, int] = {}
    open_buys: dict[int, int] = {}
    filters: dict[int, CerFilter] = {}
    orders: list[int] = []
    for step in range(200):
        roll = rng.random()
        if roll < 0.12 and (open_sells or open_buys):
            amend(view, feed, rng, next(ids), open_sells, open_buys, filters)
        elif roll < 0.3:  # any account may sell: a buyer what it bought, before it settled
            order, account = next(ids), rng.choice(accounts)
            only = rng.choice([ANY_CER, CerFilter(vintages=(rng.choice(VINTAGES),))])
            tonnes = rng.randint(1, 120)
            try:
                view.reserve_sell(order, account, tonnes, only)
            except LedgerError:
                continue
            feed.lock(OrderLock(order, account, quantity_t=tonnes, only=only))
            open_sells[order] = account
            filters[order] = only
            orders.append(order)
        elif roll < 0.55:  # any account may buy: a seller with what it sold for, too
            order, account = next(ids), rng.choice(accounts)
            fen = rng.randint(1_000, 400_000)
            try:
                view.reserve_buy(order, account, fen)
            except LedgerError:
                continue
            feed.lock(OrderLock(order, account, amount_fen=fen))
            open_buys[order] = account
            orders.append(order)
        elif roll < 0.85 and open_sells and open_buys:
            sell, buy = rng.choice(list(open_sells)), rng.choice(list(open_buys))
            tonnes_left, fen_left = view.reserved(sell)[0], view.reserved(buy)[1]
            price = rng.randint(100, 1_000)
            quantity = rng.randint(1, max(1, tonnes_left))
            trade = TradeToSettle(
                next(ids), buy, sell, open_buys[buy], open_sells[sell], price, quantity, 5, 5
            )
            cost = price * quantity + fees(trade)[0]
            if quantity > tonnes_left or cost > fen_left or trade.buyer_id == trade.seller_id:
                continue
            view.fill(trade)
            feed.trade(trade)
        elif open_sells or open_buys:
            side = open_sells if (rng.random() < 0.5 and open_sells) or not open_buys else open_buys
            order = rng.choice(list(side))
            back = view.reserved(order)[0] if side is open_sells else 0
            view.release(order)
            feed.release(order, side.pop(order), tonnes_back=back)
        view.check_invariants()
        feed.check_invariants()
        if rng.random() < 0.2 or step == 199:
            for batch in feed.take():
                await ledger.apply(batch)
            async with ledger.database.pool.acquire() as conn:
                loaded = await RiskView.load(conn)
            assert snapshot(loaded, accounts, orders) == snapshot(view, accounts, orders), (
                f"seed {seed}, step {step}, {feed.netted} netted"
            )
    NETTED[netting] += feed.netted


NETTED = {False: 0, True: 0}


def test_the_sessions_above_netted_orders_away_only_when_netting() -> None:
    # runs after them (in file order): the netting sessions must have netted something
    assert NETTED[False] == 0
    assert NETTED[True] > 0
    # and sell locks of accounts receiving tonnes in the batch shared it, or cut it
    assert FITS.count(True) > 0 and FITS.count(False) > 0, (FITS.count(True), FITS.count(False))


def test_a_lock_keeps_free_what_the_blocks_it_took_from_still_hold() -> None:
    view = RiskView({"B1": BlockInfo(2024, "PV01", "P1"), "B2": BlockInfo(2025, "PV01", "P1")})
    view.credit_tonnes(7, "B1", 10)
    view.credit_tonnes(7, "B2", 2)
    view.reserve_sell(1, 7, 4, ANY_CER)  # the oldest: 4 of B1's, 6 left there
    assert view.keeps_free(1, 7, 6) and not view.keeps_free(1, 7, 7)
    assert not view.keeps_free(2, 7, 0)  # nothing reserved: nothing says a lock fits


def test_the_invariant_checks_can_fail() -> None:
    view = RiskView({"B1": BlockInfo(2025, "PV01", "P1")})
    view.credit_tonnes(7, "B1", 10)
    view.reserve_sell(1, 7, 4, ANY_CER)
    view.check_invariants()
    view.credit_cash(7, -1)  # spent what it did not have
    with pytest.raises(RiskInvariantError, match="-1 fen"):
        view.check_invariants()
    feed = BatchBuilder()
    feed.lock(OrderLock(1, 7, quantity_t=4))
    feed.check_invariants()
    feed.decided += 1  # an item counted that never arrived
    with pytest.raises(AssertionError, match="2 items in"):
        feed.check_invariants()


async def test_a_block_issued_while_running_ranks_by_vintage_as_the_ledgers_lock_does(
    ledger: Ledger,
) -> None:
    sellers, buyers = await market(ledger, "late")
    async with ledger.database.pool.acquire() as conn:
        view = await RiskView.load(conn)
    owner = sellers[0]
    reg = (await ledger.open_account("late/r2", "late-reg2", [Role.REGULATOR])).account_id
    (project,) = {h.project for h in await ledger.holdings(owner)}
    block = await ledger.issue(
        "late/i2022", reg, project, 100, dt.date(2022, 1, 1), dt.date(2022, 1, 31)
    )
    methodology = (await ledger.project(project)).methodology
    view.add_block(block.block_id, BlockInfo(block.vintage, methodology, project))
    view.credit_tonnes(owner, block.block_id, block.quantity_t)
    view.reserve_sell(1, owner, 150, ANY_CER)
    assert next(iter(view.reserved_by_block(1))) == block.block_id  # the oldest vintage first
    assert view.reserved_by_block(1)[block.block_id] == 100

    buyer = buyers[0]
    view.debit_cash(buyer, 500_000)
    with pytest.raises(LedgerError, match="INSUFFICIENT_CASH"):
        view.debit_cash(buyer, view.available_fen(buyer) + 1)
    await ledger.withdraw("late/w", buyer, 500_000)
    feed = BatchBuilder()
    feed.lock(OrderLock(1, owner, quantity_t=150))
    for batch in feed.take():
        await ledger.apply(batch)
    async with ledger.database.pool.acquire() as conn:
        loaded = await RiskView.load(conn)
    assert snapshot(loaded, [owner, buyer], [1]) == snapshot(view, [owner, buyer], [1])
