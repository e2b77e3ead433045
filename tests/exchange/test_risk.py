"""The risk view mirrors the ledger: random orders, fills and releases go to both (to the ledger
through the feed's batches), and after every flush the view loaded afresh from the ledger equals
the view kept in memory — cash, free tonnes per block, and each order's reservation per block."""

from __future__ import annotations

import datetime as dt
import itertools
import random
from collections.abc import AsyncIterator

import pytest

from exchange.ledger_feed import BatchBuilder
from exchange.risk import RiskView
from settlement.batches import OrderLock
from settlement.database import Database
from settlement.dvp import fees
from settlement.errors import LedgerError
from settlement.ledger import Ledger
from settlement.values import (
    ANY_CER,
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


@pytest.mark.parametrize("seed", range(12))
async def test_the_view_in_memory_equals_the_view_of_the_ledger(ledger: Ledger, seed: int) -> None:
    rng = random.Random(seed)
    sellers, buyers = await market(ledger, f"k{seed}")
    accounts = sellers + buyers
    async with ledger.database.pool.acquire() as conn:
        view = await RiskView.load(conn)
    feed = BatchBuilder(max_items=rng.choice([3, 10, 50]))
    ids = itertools.count(seed * 1_000_000 + 1)
    open_sells: dict[int, int] = {}
    open_buys: dict[int, int] = {}
    orders: list[int] = []
    for step in range(150):
        roll = rng.random()
        if roll < 0.3:  # any account may sell: a buyer what it bought, before it settled
            order, account = next(ids), rng.choice(accounts)
            only = rng.choice([ANY_CER, CerFilter(vintages=(rng.choice(VINTAGES),))])
            tonnes = rng.randint(1, 120)
            try:
                view.reserve_sell(order, account, tonnes, only)
            except LedgerError:
                continue
            feed.lock(OrderLock(order, account, quantity_t=tonnes, only=only))
            open_sells[order] = account
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
            view.release(order)
            feed.release(order, side.pop(order), tonnes=side is open_sells)
        if rng.random() < 0.2 or step == 149:
            for batch in feed.take():
                await ledger.apply(batch)
            async with ledger.database.pool.acquire() as conn:
                loaded = await RiskView.load(conn)
            assert snapshot(loaded, accounts, orders) == snapshot(view, accounts, orders), (
                f"seed {seed}, step {step}"
            )
