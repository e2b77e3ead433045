"""The exchange a run loads: one it starts itself (`cerx serve --demo` on a database of the run's
own, so the demo's operator and regulator keys set the market up), or one already running at a
URL, with the operator's and regulator's keys given.

Either way the run ends with the same checks, for which it reads the server's database: its
own, or the one `--database-url` names for a server at a URL (without it, only what clients can
see is checked).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from bench.exchange import free_port
from load import postgres
from load.cast import OPERATOR_KEY_VARIABLE, REGULATOR_KEY_VARIABLE, Key, parse_key
from load.process import ServerCommand, ServerProcess, running


@dataclass
class Target:
    http_url: str  # such as http://127.0.0.1:8080
    operator: Key
    regulator: Key
    database_url: str | None  # the server's database, for the checks
    server: ServerProcess | None = None  # when the run started it
    command: ServerCommand | None = None  # how it was started, to start it again

    @property
    def ws_url(self) -> str:
        return self.http_url.replace("http", "ws", 1) + "/ws"


def demo_key(server: ServerProcess, name: str) -> Key:
    key = server.keys[name]
    return Key(key.account_id, key.key_id, key.secret_hex)


@contextlib.asynccontextmanager
async def started(command: ServerCommand, database_url: str) -> AsyncIterator[Target]:
    async with running(command) as server:
        yield Target(
            server.http_url,
            demo_key(server, "operator"),
            demo_key(server, "regulator"),
            database_url,
            server,
            command,
        )


@contextlib.asynccontextmanager
async def target(
    url: str | None,
    database_url: str | None,
    embedded: bool,
    operator_key: str | None,
    regulator_key: str | None,
    say: Callable[[str], None],
) -> AsyncIterator[Target]:
    """The server at `url`; else one started here, on the embedded PostgreSQL in a temporary
    directory, or on a scratch database of the server `database_url` names (else of
    `$CERX_DATABASE_URL`, else of the local server)."""
    if url is not None:
        yield Target(
            url.rstrip("/"),
            parse_key(operator_key or os.environ.get(OPERATOR_KEY_VARIABLE), "operator"),
            parse_key(regulator_key or os.environ.get(REGULATOR_KEY_VARIABLE), "regulator"),
            database_url,
        )
        return
    port = free_port()
    if embedded:
        async with (
            postgres.embedded(say) as (folder, db_url),
            started(ServerCommand(port, data_dir=folder), db_url) as found,
        ):
            yield found
        return
    async with (
        postgres.scratch(database_url, say) as db_url,
        started(ServerCommand(port, db_url), db_url) as found,
    ):
        yield found
