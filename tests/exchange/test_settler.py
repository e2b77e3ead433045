"""The settlement worker: trades reach the ledger without anyone waiting for them, `drain`
returns once the lag is zero, and a batch the ledger refuses stops the worker, kept, with why."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from exchange.engine import Engine
from exchange.journal import Journal
from exchange.ledger_feed import BatchBuilder
from exchange.recovery import recover
from exchange.settler import Settler
from matching import Side, Trade
from settlement.batches import OrderLock
from settlement.database import Database
from settlement.errors import ErrorCode
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


async def test_trades_settle_in_the_background(database: Database) -> None:
    ledger, feed = Ledger(database), BatchBuilder()
    journal = Journal(database.pool)
    engine = Engine([INSTRUMENT], journal, feed)
    (_, seller), (buyer, _) = await accounts(ledger, "w")
    await recover(engine, database.pool, ledger, feed)
    journal.start()
    settler = Settler(ledger, feed)
    engine.listeners.append(lambda _entry, _events: settler.wake())
    settler.start()
    traded = 0
    for n in range(20):
        await engine.new_order(seller, order(f"s{n}", Side.SELL, 5, 5_000 + n % 3))
        _, events = await engine.new_order(buyer, order(f"b{n}", Side.BUY, 5, 5_002))
        traded += sum(e.quantity_t for e in events if isinstance(e, Trade))
    await settler.drain()
    assert settler.lag == 0 and settler.error is None and settler.applied_batches >= 1
    assert traded == 100
    assert sum(h.quantity_t for h in await ledger.holdings(buyer)) == traded
    await settler.close()
    await journal.close()


async def test_a_refused_batch_stops_the_worker_and_is_kept(database: Database) -> None:
    ledger, feed = Ledger(database), BatchBuilder()
    (_, seller), _ = await accounts(ledger, "x")
    settler = Settler(ledger, feed)
    settler.start()
    feed.lock(OrderLock(9_000_001, seller, quantity_t=10_000))  # more than it holds
    settler.wake()
    await settler.drain()
    assert settler.error is not None and settler.error.code is ErrorCode.INSUFFICIENT_HOLDINGS
    assert settler.lag == 1
    await settler.close()


async def test_closing_with_a_deadline_leaves_the_rest_for_recovery(database: Database) -> None:
    ledger, feed = Ledger(database), BatchBuilder()
    (_, seller), _ = await accounts(ledger, "y")
    settler = Settler(ledger, feed)
    settler.start()
    feed.lock(OrderLock(9_000_002, seller, quantity_t=1))
    await settler.close(timeout_s=0)  # never woken: nothing applied, and no error either
    assert settler.lag == 1 and settler.error is None
    held = await ledger.holdings(seller)
    assert all(h.order_id is None for h in held)


async def test_items_netted_away_count_as_applied_in_their_turn(database: Database) -> None:
    ledger, feed = Ledger(database), BatchBuilder()
    feed.netting = True
    (_, seller), (buyer, _) = await accounts(ledger, "n")
    settler = Settler(ledger, feed)
    settler.start()
    feed.lock(OrderLock(9_000_003, buyer, amount_fen=5_000))
    feed.release(9_000_003, buyer, tonnes_back=0)  # nothing for the ledger at all
    settler.wake()
    await settler.reach(feed.decided)
    assert (settler.applied_items, settler.applied_batches, settler.lag) == (2, 0, 0)
    feed.lock(OrderLock(9_000_004, seller, quantity_t=2))  # a batch, and two netted after it
    feed.lock(OrderLock(9_000_005, buyer, amount_fen=7_000))
    feed.release(9_000_005, buyer, tonnes_back=0)
    settler.wake()
    await settler.reach(feed.decided)
    assert (settler.applied_items, settler.applied_batches, settler.lag) == (5, 1, 0)
    async with database.pool.acquire() as conn:
        locked = await conn.fetch(
            "SELECT order_id FROM cash_locks WHERE order_id = ANY($1::bigint[])"
            " UNION SELECT order_id FROM cer_locks WHERE order_id = ANY($1::bigint[])",
            [9_000_003, 9_000_004, 9_000_005],
        )
    assert [row[0] for row in locked] == [9_000_004]
    feed.release(9_000_004, seller, tonnes_back=2)  # its lock is in the ledger: released there
    await settler.drain()
    assert all(h.order_id is None for h in await ledger.holdings(seller))
    await settler.close()
