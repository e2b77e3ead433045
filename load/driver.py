"""The runners' side of the swarm (`load.swarm`): start it on a cast, send it a command and
wait for its answer, pass its progress lines on, and stop it — killed on the way out whatever
happened, so none is left."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import tempfile
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from load.cast import CAST_VARIABLE
from load.provision import Counts
from load.report import SwarmReport, decode_report

START_S = 60.0
ANSWER_S = 120.0


class SwarmError(Exception):
    """The swarm exited, or did not answer in time."""


class Swarm:
    def __init__(
        self, process: asyncio.subprocess.Process, folder: Path, say: Callable[[str], None]
    ) -> None:
        self.process = process
        self.folder = folder
        self.say = say
        self.output: list[str] = []  # what it printed other than answers and progress
        self._answers: asyncio.Queue[str] = asyncio.Queue()
        self._reader = asyncio.create_task(self._read())
        self._reports = 0

    async def _read(self) -> None:
        assert self.process.stdout is not None
        while raw := await self.process.stdout.readline():
            line = raw.decode(errors="replace").rstrip("\n")
            if line.startswith("progress"):
                self.say(line)
            elif line.split(" ", 1)[0] in ("ready", "paused", "resumed", "reported", "stopped"):
                await self._answers.put(line)
            else:
                self.output.append(line)
        await self._answers.put("")  # the end: nothing more will come

    async def answer(self, timeout_s: float = ANSWER_S) -> str:
        try:
            line = await asyncio.wait_for(self._answers.get(), timeout_s)
        except TimeoutError:
            raise SwarmError(f"the swarm did not answer within {timeout_s:g} s") from None
        if not line:
            tail = "\n".join(self.output[-40:])
            raise SwarmError(f"the swarm exited ({self.process.returncode}):\n{tail}")
        return line

    async def command(self, line: str) -> str:
        assert self.process.stdin is not None
        self.process.stdin.write(line.encode() + b"\n")
        await self.process.stdin.drain()
        return await self.answer()

    async def pause(self) -> bool:
        """Whether every user stopped between two actions."""
        return await self.command("pause") == "paused"

    async def resume(self) -> None:
        await self.command("resume")

    async def report(self) -> SwarmReport:
        return await self._reported("report")

    async def stop(self) -> SwarmReport:
        report = await self._reported("stop")
        await asyncio.wait_for(self.process.wait(), START_S)
        return report

    async def _reported(self, command: str) -> SwarmReport:
        self._reports += 1
        path = self.folder / f"report-{self._reports}.msgpack"
        await self.command(f"{command} {path}")
        return decode_report(path.read_bytes())

    async def kill(self) -> None:
        if self.process.returncode is None:
            self.process.kill()
        await self.process.wait()
        await self._reader


@contextlib.asynccontextmanager
async def swarm(
    cast_path: Path, counts: Counts, say: Callable[[str], None], every_s: float = 2.0
) -> AsyncIterator[Swarm]:
    """A started swarm of `counts` users on the cast at `cast_path`."""
    with tempfile.TemporaryDirectory(prefix="cerx-swarm-") as folder:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "load.swarm",
            "--traders",
            str(counts.traders),
            "--readers",
            str(counts.readers),
            "--compliance",
            str(counts.compliance),
            "--retirees",
            str(counts.retirees),
            "--every",
            str(every_s),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env=os.environ | {CAST_VARIABLE: str(cast_path)},
        )
        running = Swarm(process, Path(folder), say)
        try:
            await running.answer(START_S)  # ready
            yield running
        finally:
            await running.kill()
