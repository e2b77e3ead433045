"""Exchange fixtures: a database, a market made before the exchange opens, the exchange, a
real server for it on loopback, and a REST client with an operator's and a regulator's keys.
After each test the registration audit and the ledger's must pass."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from exchange import keys
from exchange.instruments import Instrument, list_instrument, listed
from exchange.limits import DEFAULT_LIMITS, Limits
from exchange.server import build_app
from exchange.service import Certifier, Exchange
from matching import InstrumentRules
from offsets.signing import PlatformKey
from registration.desk import RegistrationDesk
from settlement.database import Database
from settlement.ledger import Ledger
from settlement.values import CerFilter
from tests.exchange.figures import FIGURES
from tests.exchange.market import INSTRUMENT, accounts
from tests.exchange.rest_client import Rest, Staff, staff

_tags = itertools.count(1)
PUBLIC_URL = "https://cerx.test"

Market = tuple[list[int], list[int]]


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    database = await Database.open(database_url, min_size=2, max_size=8)
    try:
        yield database
        ledger = Ledger(database)
        await RegistrationDesk(ledger).check()
        await ledger.check()
    finally:
        database.pool.terminate()


@pytest.fixture
async def market(database: Database) -> Market:
    """Sellers and buyers made before the exchange opens, so its risk view starts with them."""
    return await accounts(Ledger(database), f"w{next(_tags)}")


async def open_exchange(database: Database, limits: Limits = DEFAULT_LIMITS) -> Exchange:
    """The exchange on what the database lists, as `cerx serve` opens it: the test instrument,
    and those listed by earlier tests of the module (their journal entries replay on them)."""
    async with database.pool.acquire() as conn:
        await list_instrument(conn, INSTRUMENT)
        instruments = await listed(conn)
    return await Exchange.open(database, instruments, limits)


@pytest.fixture(scope="session")
def platform_key(tmp_path_factory: pytest.TempPathFactory) -> PlatformKey:
    return PlatformKey.open(tmp_path_factory.mktemp("platform-key"))


@pytest.fixture
async def exchange(
    database: Database, market: Market, platform_key: PlatformKey
) -> AsyncIterator[Exchange]:
    exchange = await open_exchange(database)
    exchange.certifier = Certifier(platform_key, PUBLIC_URL)
    yield exchange
    await exchange.close()


@pytest.fixture
async def server(exchange: Exchange) -> AsyncIterator[TestServer]:
    server = TestServer(build_app(exchange), host="127.0.0.1")
    await server.start_server()
    yield server
    await server.close()


@pytest.fixture
async def rest(server: TestServer) -> AsyncIterator[Rest]:
    async with aiohttp.ClientSession() as http:
        yield Rest(server, http)


@pytest.fixture
async def team(exchange: Exchange) -> Staff:
    """An operator and a regulator with API keys."""
    return await staff(exchange)


async def make_key(exchange: Exchange, account_id: int) -> keys.ApiKey:
    async with exchange.database.pool.acquire() as conn:
        return await keys.create(conn, account_id)


_instrument_ids = itertools.count(100)


async def new_instrument(exchange: Exchange, only: CerFilter = INSTRUMENT.only) -> Instrument:
    """A newly listed instrument, traded at once: a book of its own for one test."""
    number = next(_instrument_ids)
    symbol = f"T{number}"
    instrument = Instrument(number, symbol, InstrumentRules(symbol=symbol), 5_000, only, 5, 5)
    async with exchange.database.pool.acquire() as conn:
        await list_instrument(conn, instrument)
    exchange.engine.add_instrument(instrument)
    return instrument


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if FIGURES:
        terminalreporter.write_sep("-", "hostile input")
        for name, n in sorted(FIGURES.items()):
            terminalreporter.write_line(f"{name}: {n:,}")
