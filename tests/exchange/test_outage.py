"""The database goes away under a running exchange and comes back: meanwhile every request is
refused cleanly — orders with JOURNAL_UNAVAILABLE, reads with DATABASE_UNAVAILABLE, both 503
with a time to retry — and afterwards the exchange carries on by itself, journal included.

On a private PostgreSQL of the test's own (`load.postgres.private`), since stopping the shared
server would take every other test's database with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Awaitable, Callable

import aiohttp
from aiohttp.test_utils import TestServer

from exchange.client import Refused, connect
from exchange.server import build_app
from exchange.service import Exchange
from load import postgres
from load.verify import check_ledger, replay
from matching import Side
from settlement.database import Database
from settlement.ledger import Ledger
from tests.exchange.conftest import make_key, open_exchange
from tests.exchange.market import SYMBOL, accounts
from tests.exchange.rest_client import Rest

BACK_S = 30


async def eventually(attempt: Callable[[], Awaitable[bool]]) -> None:
    deadline = time.monotonic() + BACK_S
    while not await attempt():
        assert time.monotonic() < deadline, f"not back within {BACK_S} s"
        await asyncio.sleep(0.1)


async def test_a_database_restart_is_refused_cleanly_then_trading_carries_on() -> None:
    async with postgres.private(lambda _line: None) as server:
        database = await Database.open(server.url, min_size=1, max_size=4)
        try:
            _, (buyer, _) = await accounts(Ledger(database), "outage")
            exchange = await open_exchange(database)
            site = TestServer(build_app(exchange), host="127.0.0.1")
            await site.start_server()
            key = await make_key(exchange, buyer)
            try:
                async with (
                    aiohttp.ClientSession() as http,
                    connect(site.make_url("/ws"), key.key_id, key.secret) as client,
                ):
                    rest = Rest(site, http)
                    await client.new_order(SYMBOL, "before", Side.BUY, 1, 4_900)
                    await server.stop()

                    status, body = await rest.get("/api/v1/account", key)
                    assert (status, body["error"]["code"]) == (503, "DATABASE_UNAVAILABLE")
                    assert body["error"]["retry_after_ms"] > 0
                    try:
                        await client.new_order(SYMBOL, "during", Side.BUY, 1, 4_900)
                        raise AssertionError("an order was acknowledged with no database")
                    except Refused as refused:
                        assert refused.code == "JOURNAL_UNAVAILABLE"
                        assert refused.retry_after_ms

                    await server.start()

                    async def read() -> bool:
                        return (await rest.get("/api/v1/account", key))[0] == 200

                    async def order() -> bool:
                        try:
                            await client.new_order(SYMBOL, "after", Side.BUY, 1, 4_900)
                        except Refused as refused:
                            assert refused.code == "JOURNAL_UNAVAILABLE"
                            return False
                        return True

                    await eventually(read)
                    await eventually(order)
                    status, body = await rest.get("/api/v1/orders", key)
                    assert status == 200
                    assert {o["cl_ord_id"] for o in body["result"]} == {"before", "after"}
            finally:
                await site.close()
                await exchange.close()
            await Ledger(database).check()
        finally:
            await database.close()


async def test_reads_racing_a_database_restart_are_answered_or_refused_unavailable() -> None:
    # Sessions the restart ends under pooled connections make asyncpg fail oddly on their next
    # use ("cannot switch to state 12"): the database's absence all the same, not a bug.
    async with postgres.private(lambda _line: None) as server:
        database = await Database.open(server.url, min_size=4, max_size=8)
        try:
            _, (buyer, _) = await accounts(Ledger(database), "race")
            exchange: Exchange = await open_exchange(database)
            site = TestServer(build_app(exchange), host="127.0.0.1")
            await site.start_server()
            key = await make_key(exchange, buyer)
            answers: dict[int, int] = {}
            codes: set[str] = set()
            reading = True
            try:
                async with aiohttp.ClientSession() as http:
                    rest = Rest(site, http)

                    async def read() -> None:
                        while reading:
                            status, body = await rest.get("/api/v1/account", key)
                            answers[status] = answers.get(status, 0) + 1
                            if status != 200:
                                codes.add(body["error"]["code"])

                    readers = [asyncio.create_task(read()) for _ in range(8)]
                    for _ in range(2):
                        await asyncio.sleep(0.3)
                        await server.restart()
                    await asyncio.sleep(0.3)
                    reading = False
                    await asyncio.gather(*readers)
            finally:
                await site.close()
                await exchange.close()
        finally:
            await database.close()
    assert answers.get(200) and set(answers) <= {200, 503}, answers
    assert codes <= {"DATABASE_UNAVAILABLE"}, codes


async def test_settlement_carries_on_through_database_restarts_mid_batch() -> None:
    # A restart under a settlement batch used to end the worker for good (asyncpg's "cannot call
    # Transaction.rollback(): the underlying connection is closed"), silently: trades went on,
    # and none settled until the exchange itself restarted.
    async with postgres.private(lambda _line: None) as server:
        database = await Database.open(server.url, min_size=2, max_size=8)
        try:
            (_, seller), (buyer, _) = await accounts(Ledger(database), "settle")
            exchange = await open_exchange(database)
            site = TestServer(build_app(exchange), host="127.0.0.1")
            await site.start_server()
            keys = [await make_key(exchange, account) for account in (seller, buyer)]
            trading = True
            try:
                async with (
                    connect(site.make_url("/ws"), keys[0].key_id, keys[0].secret) as selling,
                    connect(site.make_url("/ws"), keys[1].key_id, keys[1].secret) as buying,
                ):

                    async def trade(lane: int) -> None:
                        for n in itertools.count():
                            if not trading:
                                return
                            with contextlib.suppress(Refused):  # the database away, meanwhile
                                await selling.new_order(SYMBOL, f"s{lane}-{n}", Side.SELL, 1, 5_000)
                                await buying.new_order(SYMBOL, f"b{lane}-{n}", Side.BUY, 1, 5_000)

                    lanes = [asyncio.create_task(trade(lane)) for lane in range(4)]
                    for _ in range(2):
                        await asyncio.sleep(0.5)
                        await server.restart()
                    await asyncio.sleep(0.5)
                    trading = False
                    await asyncio.gather(*lanes)

                async def settled() -> bool:
                    return exchange.settler.lag == 0 or exchange.settler.error is not None

                await eventually(settled)
                assert exchange.settler.error is None
                assert exchange.settler.applied_batches
                assert await check_ledger(database, await replay(database)) == []
            finally:
                await site.close()
                await exchange.close()
        finally:
            await database.close()
