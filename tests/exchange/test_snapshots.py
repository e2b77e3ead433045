"""Snapshots: a start from the newest snapshot plus the journal after it yields the same books,
live orders, client order ids and reports as replaying the whole journal; a snapshot is written
only once the ledger has everything before it; and trading carries on where it stopped."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator

import pytest

from exchange.engine import Engine
from exchange.errors import ExchangeError
from exchange.journal import Journal, last_seq, read
from exchange.ledger_feed import BatchBuilder
from exchange.service import Exchange
from exchange.snapshots import CHUNK, ClientOrder, ExchangeSnapshot, latest, save
from matching import NewOrder, OrderType, Side, TimeInForce
from settlement.database import Database
from settlement.ledger import Ledger
from tests.exchange.market import INSTRUMENT, SYMBOL, accounts, order


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    database = await Database.open(database_url, min_size=2, max_size=8)
    try:
        yield database
        await Ledger(database).check()
    finally:
        database.pool.terminate()


async def trade_randomly(exchange: Exchange, people: list[int], seed: int, count: int) -> None:
    rng = random.Random(seed)
    engine = exchange.engine
    mine: list[tuple[int, int]] = []
    for n in range(count):
        account = rng.choice(people)
        roll = rng.random()
        try:
            if roll < 0.7 or not mine:
                side = rng.choice([Side.BUY, Side.SELL])
                market = rng.random() < 0.1
                order_id, _ = await engine.new_order(
                    account,
                    order(
                        f"s{seed}-{n}",
                        side,
                        rng.randint(1, 12),
                        None if market else 5_000 + rng.randint(-6, 6),
                        order_type=OrderType.MARKET if market else OrderType.LIMIT,
                        tif=TimeInForce.IOC if market else TimeInForce.GTC,
                    ),
                )
                mine.append((account, order_id))
            elif roll < 0.85:
                owner, order_id = rng.choice(mine)
                await engine.amend(owner, SYMBOL, order_id, rng.randint(1, 14))
            else:
                owner, order_id = mine.pop(rng.randrange(len(mine)))
                await engine.cancel(owner, SYMBOL, order_id)
        except ExchangeError:
            pass  # refusals (cash, holdings) are part of the stream
        engine.check_invariants()


async def full_replay(database: Database) -> Engine:
    """An engine that replayed the whole journal from empty books."""
    engine = Engine([INSTRUMENT], Journal(database.pool), BatchBuilder())
    async for entry in read(database.pool, 0):
        engine.replay(entry)
    return engine


async def test_a_restart_from_the_final_snapshot_equals_a_full_replay(database: Database) -> None:
    sellers, buyers = await accounts(Ledger(database), "f")
    people = sellers[1:] + buyers
    exchange = await Exchange.open(database, [INSTRUMENT])
    await trade_randomly(exchange, people, 1, 250)
    await exchange.close()  # drains the ledger, then writes a snapshot of the final state
    stored = await latest(database.pool)
    assert stored is not None
    snapshot, clients = stored
    async with database.pool.acquire() as conn:
        assert snapshot.seq == await last_seq(conn)
    assert snapshot.client_orders == len(clients) == len(exchange.engine.client_orders) > 100

    reopened = await Exchange.open(database, [INSTRUMENT])
    assert reopened.replayed == 0
    reference = await full_replay(database)
    assert reopened.engine.books[SYMBOL].snapshot() == reference.books[SYMBOL].snapshot()
    assert reopened.engine.capture() == reference.capture()
    assert reopened.engine.client_orders == reference.client_orders == clients
    # trading carries on: a repeated client order id is still the first order, live orders
    # can be amended and cancelled, and their reports remember what was filled
    first = next(c for c in clients if c.account_id in people)
    known = await reopened.engine.new_order(
        first.account_id,
        order(
            first.cl_ord_id,
            first.command.side,
            first.command.quantity_t,
            first.command.price_fen,
            order_type=first.command.order_type,
            tif=first.command.tif,
        ),
    )
    assert known == (first.command.order_id, [])
    resting = reopened.engine.books[SYMBOL].resting_orders()
    assert resting
    await trade_randomly(reopened, people, 2, 150)
    await reopened.close()


async def test_a_crash_after_a_snapshot_restarts_from_it_and_the_journal(
    database: Database,
) -> None:
    sellers, buyers = await accounts(Ledger(database), "c")
    people = sellers[1:] + buyers
    exchange = await Exchange.open(database, [INSTRUMENT], snapshot_every=60)
    await trade_randomly(exchange, people, 3, 200)
    await exchange.settler.drain()
    await exchange.snapshots.write_ready()
    assert exchange.snapshots.written
    stored = await latest(database.pool)
    assert stored is not None
    written = stored[0]
    await trade_randomly(exchange, people, 4, 40)
    # a crash: the ledger stops where it is, no final snapshot; the journal is all that survives
    await exchange.journal.close()
    await exchange.settler.close(timeout_s=0)
    await exchange.snapshots.close()
    await exchange.sessions.close()
    async with database.pool.acquire() as conn:
        assert await last_seq(conn) > written.seq

    stored = await latest(database.pool)
    reopened = await Exchange.open(database, [INSTRUMENT])
    assert stored is not None and stored[0].seq >= written.seq
    async with database.pool.acquire() as conn:
        assert reopened.replayed == await last_seq(conn) - stored[0].seq > 0
        # several snapshots were written, each storing only the client orders after the last
        rows = await conn.fetch("SELECT first_index, size FROM exchange_client_orders")
    assert sorted(r["first_index"] for r in rows) == [
        sum(r["size"] for r in rows if r["first_index"] < first)
        for first in sorted(r["first_index"] for r in rows)
    ]
    assert len(rows) > 1
    reference = await full_replay(database)
    assert reopened.engine.capture() == reference.capture()
    assert reopened.engine.client_orders == reference.client_orders
    await reopened.settler.drain()
    await reopened.close()


async def test_a_snapshot_waits_for_the_ledger(database: Database) -> None:
    sellers, buyers = await accounts(Ledger(database), "w")
    exchange = await Exchange.open(database, [INSTRUMENT], snapshot_every=10**9)
    await exchange.settler.close(timeout_s=0)  # the ledger stops catching up
    before = await latest(database.pool)
    await trade_randomly(exchange, sellers[1:] + buyers, 5, 30)
    assert exchange.settler.lag
    exchange.snapshots.take()
    await exchange.snapshots.write_ready()
    assert await latest(database.pool) == before  # not written: the ledger lacks its effects
    exchange.settler.start()
    await exchange.settler.drain()
    await exchange.snapshots.write_ready()
    after = await latest(database.pool)
    assert after is not None and after[0].seq == exchange.engine.applied_seq
    await exchange.close()


def _client_orders(count: int) -> list[ClientOrder]:
    return [
        ClientOrder(5, f"c-{n}", SYMBOL, NewOrder(1 + n, n, 5, Side.BUY, 1, 4_700))
        for n in range(count)
    ]


def _snapshot(seq: int, clients: int) -> ExchangeSnapshot:
    return ExchangeSnapshot(seq, clients, {}, [], clients, {SYMBOL: {"Halt": 3}})


@pytest.fixture
async def no_snapshots(database: Database) -> AsyncIterator[Database]:
    """The module's database without the other tests' snapshots, and without these after."""
    clear = "DELETE FROM exchange_snapshots; DELETE FROM exchange_client_orders"
    await database.pool.execute(clear)
    yield database
    await database.pool.execute(clear)


async def test_each_client_order_is_stored_once_in_rows_after_the_last(
    no_snapshots: Database,
) -> None:
    database = no_snapshots
    clients = _client_orders(3 * CHUNK + 7)
    assert await latest(database.pool) is None
    for seq, count in [(5, 0), (9, 1), (20, CHUNK + 1), (21, CHUNK + 1), (30, 3 * CHUNK + 7)]:
        await save(database.pool, _snapshot(seq, count), clients)
        assert await latest(database.pool) == (_snapshot(seq, count), clients[:count])
    # writing a snapshot again changes nothing
    await save(database.pool, _snapshot(20, CHUNK + 1), clients)
    async with database.pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT first_index, size FROM exchange_client_orders ORDER BY first_index"
        )
    assert [(r["first_index"], r["size"]) for r in rows] == [
        (0, 1),
        (1, CHUNK),
        (CHUNK + 1, CHUNK),
        (2 * CHUNK + 1, CHUNK),
        (3 * CHUNK + 1, 6),
    ]
    assert await latest(database.pool) == (_snapshot(30, 3 * CHUNK + 7), clients)


async def test_a_snapshot_whose_client_orders_are_missing_is_refused(
    no_snapshots: Database,
) -> None:
    database = no_snapshots
    clients = _client_orders(2 * CHUNK)
    for missing, refusal in [
        (CHUNK, f"holds {2 * CHUNK:,} client orders; {CHUNK:,} are stored"),
        (0, "client orders break at 0"),
    ]:
        await database.pool.execute("DELETE FROM exchange_client_orders")
        await save(database.pool, _snapshot(8, 2 * CHUNK), clients)
        await database.pool.execute(
            "DELETE FROM exchange_client_orders WHERE first_index = $1", missing
        )
        with pytest.raises(RuntimeError, match=refusal):
            await latest(database.pool)
