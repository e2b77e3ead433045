"""Snapshots: a start from the newest snapshot plus the journal after it yields the same books,
live orders, client order ids and reports as replaying the whole journal; a snapshot is written
only once the ledger has everything before it; and trading carries on where it stopped."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator

import msgspec
import pytest

from exchange.engine import Engine
from exchange.errors import ExchangeError
from exchange.journal import Journal, last_seq, read
from exchange.ledger_feed import BatchBuilder
from exchange.service import Exchange
from exchange.snapshots import CHUNK, ClientOrder, ExchangeSnapshot, encode, latest
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
    snapshot = await latest(database.pool)
    async with database.pool.acquire() as conn:
        assert snapshot is not None and snapshot.seq == await last_seq(conn)

    reopened = await Exchange.open(database, [INSTRUMENT])
    assert reopened.replayed == 0
    reference = await full_replay(database)
    assert reopened.engine.books[SYMBOL].snapshot() == reference.books[SYMBOL].snapshot()
    assert reopened.engine.capture() == reference.capture()
    # trading carries on: a repeated client order id is still the first order, live orders
    # can be amended and cancelled, and their reports remember what was filled
    first = next(c for c in snapshot.client_orders if c.account_id in people)
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
    written = await latest(database.pool)
    assert written is not None
    await trade_randomly(exchange, people, 4, 40)
    # a crash: the ledger stops where it is, no final snapshot; the journal is all that survives
    await exchange.journal.close()
    await exchange.settler.close(timeout_s=0)
    await exchange.snapshots.close()
    await exchange.sessions.close()
    async with database.pool.acquire() as conn:
        assert await last_seq(conn) > written.seq

    newest = await latest(database.pool)
    reopened = await Exchange.open(database, [INSTRUMENT])
    assert newest is not None and newest.seq >= written.seq
    async with database.pool.acquire() as conn:
        assert reopened.replayed == await last_seq(conn) - newest.seq > 0
    reference = await full_replay(database)
    assert reopened.engine.capture() == reference.capture()
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
    assert after is not None and after.seq == exchange.engine.applied_seq
    await exchange.close()


@pytest.mark.parametrize("clients", [0, 1, 15, 16, CHUNK, CHUNK + 1, 65_535, 65_536, 70_001])
async def test_a_snapshot_encoded_in_chunks_is_the_same_bytes(clients: int) -> None:
    # every array header size msgpack has: fixed (under 16), 16-bit and 32-bit
    snapshot = ExchangeSnapshot(
        7,
        clients,
        {},
        [],
        [
            ClientOrder(5, f"c-{n}", SYMBOL, NewOrder(1 + n, n, 5, Side.BUY, 1, 4_700))
            for n in range(clients)
        ],
        {SYMBOL: {"Halt": 3}},
    )
    body = await encode(snapshot)
    assert body == msgspec.msgpack.encode(snapshot)
    assert msgspec.msgpack.decode(body, type=ExchangeSnapshot) == snapshot
