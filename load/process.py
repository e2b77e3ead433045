"""`cerx serve` in its own process, as an operator runs it: started on a database and a port,
its demo keys read from what it prints, stopped with SIGTERM or killed with SIGKILL, and started
again on the same port, so that clients reconnect to the address they know.

What the server prints after it listens is read as it comes, so a chatty server never blocks on
a full pipe; `running` kills the process on the way out whatever happened, so none is left."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import sys
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from exchange.demo import DemoKey
from exchange.limits import DEFAULT_LIMITS
from settlement.database import DATABASE_URL_VARIABLE

KEY_LINE = re.compile(r"demo key\s+(\w+)\s+account (\d+)\s+key (\S+)\s+secret ([0-9a-f]+)")
START_S = 60  # a generous bound on a busy machine; the start takes about a second
# the load's many users all connect from loopback: one address stands for many clients
UNLIMITED = (
    "--session-rate",
    "1000000",
    "--account-rate",
    "1000000",
    "--max-sessions-per-address",
    str(DEFAULT_LIMITS.sessions_total),
)


class ServerExitedError(Exception):
    """The server exited before it listened; the message has what it printed."""


@dataclass(frozen=True)
class ServerCommand:
    """How to start the server: on `database_url`, or on the embedded PostgreSQL under
    `data_dir` when there is none; with the demo market or without."""

    port: int
    database_url: str | None = None
    data_dir: Path | None = None
    demo: bool = True
    options: Sequence[str] = ()
    environment: dict[str, str] = field(default_factory=lambda: dict(os.environ))

    def argv(self) -> list[str]:
        argv = [sys.executable, "-m", "exchange", "serve", "--port", str(self.port)]
        if self.demo:
            argv.append("--demo")
        if self.database_url is not None:
            argv += ["--database-url", self.database_url]
        if self.data_dir is not None:
            argv += ["--data-dir", str(self.data_dir)]
        return argv + list(self.options)

    def env(self) -> dict[str, str]:
        env = dict(self.environment)
        if self.database_url is None:
            env.pop(DATABASE_URL_VARIABLE, None)  # the embedded database, as asked
        return env


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
        self.http_url = self.url.replace("ws://", "http://", 1).removesuffix("/ws")
        self._reader = asyncio.create_task(self._read_on())

    @property
    def output(self) -> str:
        return "".join(self.lines)

    @property
    def running(self) -> bool:
        return self.process.returncode is None

    async def _read_on(self) -> None:
        assert self.process.stdout is not None
        while line := await self.process.stdout.readline():
            self.lines.append(line.decode(errors="replace"))

    async def stop(self) -> int:
        """SIGTERM, as Ctrl-C: the server drains settlement and exits; its exit status."""
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.process.wait(), START_S)
        finally:
            await self.kill()
        return self.process.returncode or 0

    async def kill(self) -> None:
        """SIGKILL: no clean-up of any kind, as a power cut for the process."""
        if self.process.returncode is None:
            self.process.kill()
        await self.process.wait()
        await self._reader


async def start(command: ServerCommand) -> ServerProcess:
    process = await asyncio.create_subprocess_exec(
        *command.argv(),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env=command.env(),
    )
    assert process.stdout is not None
    lines: list[str] = []
    try:
        while not (lines and lines[-1].startswith("listening")):
            line = await asyncio.wait_for(process.stdout.readline(), START_S)
            if not line:
                raise ServerExitedError("the server exited early:\n" + "".join(lines))
            lines.append(line.decode(errors="replace"))
    except BaseException:
        if process.returncode is None:
            process.kill()
        await process.wait()
        raise
    return ServerProcess(process, lines)


@contextlib.asynccontextmanager
async def running(command: ServerCommand) -> AsyncIterator[ServerProcess]:
    """A started server, killed on the way out if it is still running."""
    server = await start(command)
    try:
        yield server
    finally:
        await server.kill()
