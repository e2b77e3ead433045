"""A freshly created PostgreSQL database per test module, on the test server.

The server is `$CERX_TEST_DATABASE_URL` (default: the local server on 127.0.0.1:5432, user
postgres). Each module gets its own database, created and migrated before its first test and
dropped after its last, so modules cannot see each other's data and a run leaves nothing behind.
Packages that need it import `database_url` into their conftest.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Iterator

import asyncpg
import pytest

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
