"""Recovery from a crash between the journal and the ledger: the process died after its inputs
were durable and before any of them was settled, so on restart the ledger is handed the whole
tail at once — including orders that only unsettled trades paid for."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from exchange.engine import Engine
from exchange.journal import Journal
from exchange.ledger_feed import BatchBuilder
from exchange.recovery import recover
from exchange.risk import RiskView
from matching import Side
from settlement.database import Database
from settlement.ledger import Ledger
from tests.exchange.market import INSTRUMENT, accounts, order


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    database = await Database.open(database_url, min_size=2, max_size=6)
    try:
        yield database
        await Ledger(database).check()
    finally:
        database.pool.terminate()


async def started(database: Database) -> tuple[Engine, Journal]:
    feed, journal = BatchBuilder(), Journal(database.pool)
    engine = Engine([INSTRUMENT], journal, feed)
    await recover(engine, database.pool, Ledger(database), feed)
    journal.start()
    return engine, journal


async def test_orders_paid_for_by_unsettled_trades_recover(database: Database) -> None:
    ledger = Ledger(database)
    (_, seller), (buyer, _) = await accounts(ledger, "k")
    assert (await ledger.balance(seller)).available_fen == 0
    live, journal = await started(database)
    await live.new_order(seller, order("k1", Side.SELL, 10, 5_000))
    await live.new_order(buyer, order("k2", Side.BUY, 20, 5_000))  # 10 bought; 10 rest
    await live.new_order(buyer, order("k3", Side.SELL, 4, 5_100))  # some of what it bought
    await live.new_order(seller, order("k4", Side.BUY, 2, 4_990))  # with what it sold for
    await journal.close()  # durable, and the process dies before settling any of it

    recovered, journal = await started(database)
    await journal.close()
    locked = [h for h in await ledger.holdings(buyer) if h.order_id is not None]
    assert sum(h.quantity_t for h in locked) == 4
    assert (await ledger.balance(seller)).locked_fen > 0
    async with database.pool.acquire() as conn:
        loaded = await RiskView.load(conn)
    assert recovered.risk is not None
    for account in (seller, buyer):
        assert loaded.available_fen(account) == recovered.risk.available_fen(account)
        assert loaded.free_by_block(account) == recovered.risk.free_by_block(account)
    assert recovered.books["SZCER-2025"].depth(Side.SELL, 5) == [(5_100, 4, 1)]
