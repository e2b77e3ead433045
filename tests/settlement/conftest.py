"""Integration fixtures: a fresh PostgreSQL database per test module, audited after every test.

The server is `$CERX_TEST_DATABASE_URL` (default: the local server on 127.0.0.1:5432, user
postgres). Each module gets its own database, created before its first test and dropped after its
last, so modules cannot see each other's data and a failed run leaves nothing behind.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import re
from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest

from settlement.database import Database
from settlement.ledger import Ledger
from settlement.migrate import migrate

SERVER_URL = os.environ.get(
    "CERX_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def _url_for(database: str) -> str:
    return re.sub(r"/[^/?]*(\?|$)", f"/{database}\\1", SERVER_URL.split("://", 1)[1], count=1)


async def _admin(sql: str) -> None:
    try:
        conn = await asyncpg.connect(SERVER_URL)
    except OSError as error:
        raise RuntimeError(
            f"no PostgreSQL at {SERVER_URL} ({error}); start it (see README, Testing) or set"
            " CERX_TEST_DATABASE_URL"
        ) from error
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(scope="module")
def database_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A freshly created and migrated database for this module; dropped afterwards."""
    module = request.module.__name__.rsplit(".", 1)[-1]
    name = f"cerx_test_{module}_{os.getpid()}"[:63]
    url = SERVER_URL.split("://", 1)[0] + "://" + _url_for(name)

    async def create() -> None:
        await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await _admin(f'CREATE DATABASE "{name}"')
        conn = await asyncpg.connect(url)
        try:
            await migrate(conn)
        finally:
            await conn.close()

    asyncio.run(create())
    yield url
    asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
async def ledger(database_url: str) -> AsyncIterator[Ledger]:
    """The ledger on this module's database; the audit must pass after the test."""
    database = await Database.open(database_url, min_size=1, max_size=12)
    ledger = Ledger(database)
    try:
        yield ledger
        await ledger.check()
    finally:
        await database.close()


_names = itertools.count(1)


def unique(prefix: str) -> str:
    """A name no other test in the module uses (tests share their module's database)."""
    return f"{prefix}-{os.getpid()}-{next(_names)}"
