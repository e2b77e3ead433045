"""Exchange fixtures: a database, a market made before the exchange opens, the exchange, and
a real server for it on loopback."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestServer

from exchange import keys
from exchange.server import build_app
from exchange.service import Exchange
from settlement.database import Database
from settlement.ledger import Ledger
from tests.exchange.market import INSTRUMENT, accounts

_tags = itertools.count(1)

Market = tuple[list[int], list[int]]


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    database = await Database.open(database_url, min_size=2, max_size=8)
    try:
        yield database
        await Ledger(database).check()
    finally:
        database.pool.terminate()


@pytest.fixture
async def market(database: Database) -> Market:
    """Sellers and buyers made before the exchange opens, so its risk view starts with them."""
    return await accounts(Ledger(database), f"w{next(_tags)}")


@pytest.fixture
async def exchange(database: Database, market: Market) -> AsyncIterator[Exchange]:
    exchange = await Exchange.open(database, [INSTRUMENT])
    yield exchange
    await exchange.close()


@pytest.fixture
async def server(exchange: Exchange) -> AsyncIterator[TestServer]:
    server = TestServer(build_app(exchange), host="127.0.0.1")
    await server.start_server()
    yield server
    await server.close()


async def make_key(exchange: Exchange, account_id: int) -> keys.ApiKey:
    async with exchange.database.pool.acquire() as conn:
        return await keys.create(conn, account_id)
