"""`cerx serve --demo` in its own process, as an operator runs it: started on a database and a
port, its demo keys read from what it prints, stopped with SIGTERM or killed with SIGKILL.

What the server prints after it listens is read as it comes, so a chatty server never blocks on
a full pipe; `running` kills the process on the way out whatever happened, so none is left."""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
import sys
from collections.abc import AsyncIterator

from exchange.demo import DemoKey

KEY_LINE = re.compile(r"demo key\s+(\w+)\s+account (\d+)\s+key (\S+)\s+secret ([0-9a-f]+)")
START_S = 60  # a generous bound on a busy machine; the start takes about a second


class ServerProcess:
    def __init__(self, process: asyncio.subprocess.Process, lines: list[str]) -> None:
        self.process = process
        self.lines = lines
        self.keys = {
            m[1]: DemoKey(m[1], int(m[2]), m[3], m[4])
            for line in lines
            if (m := KEY_LINE.search(line))
        }
        self.url = next(line.split()[1] for line in lines if line.startswith("listening"))
        self._reader = asyncio.create_task(self._read_on())

    @property
    def output(self) -> str:
        return "".join(self.lines)

    async def _read_on(self) -> None:
        assert self.process.stdout is not None
        while line := await self.process.stdout.readline():
            self.lines.append(line.decode())

    async def stop(self) -> str:
        """SIGTERM, as Ctrl-C: the server drains settlement and exits 0. What it printed."""
        self.process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(self.process.wait(), START_S)
        await self._reader
        assert self.process.returncode == 0, self.output
        return self.output

    async def kill(self) -> None:
        """SIGKILL: no clean-up of any kind, as a power cut for the process."""
        if self.process.returncode is None:
            self.process.kill()
        await self.process.wait()
        await self._reader


async def start(database_url: str, port: int, *options: str) -> ServerProcess:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "exchange",
        "serve",
        "--demo",
        "--port",
        str(port),
        "--database-url",
        database_url,
        *options,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert process.stdout is not None
    lines: list[str] = []
    try:
        while not (lines and lines[-1].startswith("listening")):
            line = await asyncio.wait_for(process.stdout.readline(), START_S)
            assert line, "the server exited early:\n" + "".join(lines)
            lines.append(line.decode())
    except BaseException:
        if process.returncode is None:
            process.kill()
        await process.wait()
        raise
    return ServerProcess(process, lines)


@contextlib.asynccontextmanager
async def running(database_url: str, port: int, *options: str) -> AsyncIterator[ServerProcess]:
    """A started server, killed on the way out if it is still running."""
    server = await start(database_url, port, *options)
    try:
        yield server
    finally:
        await server.kill()
