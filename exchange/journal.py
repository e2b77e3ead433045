"""The input journal: every command a book will apply, made durable before it is applied.

Group commit: appends queue up while the previous write is in flight, and the next write takes
them all in one COPY (one transaction, one flush). A commit costs about a millisecond here
whether it carries one row or hundreds, so under load the journal adds latency, not a ceiling.
`append` returns the future of the group the entry joined, which resolves once the group is
durable, or fails if its write failed (nothing that depended on it may then leave the process).
Entries appended one after another share their group's future until the writer takes the group,
so a caller can wait once per group rather than once per entry.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import AsyncIterator, Callable

import asyncpg
import msgspec
from asyncpg.pool import PoolConnectionProxy

from matching import Command
from settlement.connection import Connection

MAX_GROUP = 4_096  # entries per write; bounds one COPY's size and latency


class Entry(msgspec.Struct, frozen=True, array_like=True):
    """One input: its place in the journal, the book it is for, the command, and what the
    exchange reserved for it (tonnes or fen, for a new order; zero otherwise)."""

    seq: int
    symbol: str
    command: Command
    cl_ord_id: str | None = None
    reserved_t: int = 0
    reserved_fen: int = 0


_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder(Entry).decode
_Row = tuple[int, str, bytes]  # seq, symbol, the encoded entry


class Journal:
    """Appends entries in `seq` order with group commit; reads them back for recovery."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        on_commit: Callable[[int, float], None] | None = None,
    ) -> None:
        self._pool = pool
        # groups waiting to be written, oldest first: their rows and their future; the newest
        # takes appends until it is full or the writer takes it
        self._groups: deque[tuple[list[_Row], asyncio.Future[None]]] = deque()
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()  # nothing queued and no write in flight
        self._idle.set()
        self._writer: asyncio.Task[None] | None = None
        # told the group size and the seconds the write took, for metrics
        self._on_commit = on_commit

    def start(self) -> None:
        self._writer = asyncio.create_task(self._write_forever(), name="journal-writer")

    async def close(self) -> None:
        """Write what is queued, then stop."""
        if self._writer is None:
            return
        await self._idle.wait()
        self._writer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._writer
        self._writer = None

    def append(self, entry: Entry) -> asyncio.Future[None]:
        """Queue `entry` for the next write; the future of its group."""
        try:
            body = _encode(entry)
        except (OverflowError, TypeError) as error:
            # encoded here, not in the writer, so that an entry that cannot be written (an
            # integer past 64 bits) fails alone instead of the whole group it would have joined
            failed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            failed.set_exception(JournalError(f"entry {entry.seq} cannot be encoded: {error!r}"))
            return failed
        groups = self._groups
        if not groups or len(groups[-1][0]) >= MAX_GROUP:
            groups.append(([], asyncio.get_running_loop().create_future()))
            self._idle.clear()
            self._wake.set()
        rows, done = groups[-1]
        rows.append((entry.seq, entry.symbol, body))
        return done

    async def _write_forever(self) -> None:
        conn: PoolConnectionProxy | None = None
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                while self._groups:
                    rows, done = self._groups.popleft()
                    conn = await self._write(conn, rows, done)
                self._idle.set()
        finally:
            if conn is not None:
                await self._release(conn)

    async def _write(
        self,
        conn: PoolConnectionProxy | None,
        rows: list[_Row],
        done: asyncio.Future[None],
    ) -> PoolConnectionProxy | None:
        """Write one group and resolve its future; the connection to write the next group on
        (None: a fresh one from the pool)."""
        started = time.perf_counter()
        try:
            if conn is None:
                conn = await self._pool.acquire()
            await conn.copy_records_to_table(
                "journal", records=rows, columns=("seq", "symbol", "body")
            )
        except Exception as error:  # every waiter learns its entry is not durable
            if not done.done():
                done.set_exception(JournalError(f"journal write failed: {error!r}"))
            # the connection may be what failed (a database restart ends every session): the
            # next group is written on a fresh one, so the journal comes back with the database
            if conn is not None:
                await self._release(conn)
            return None
        if self._on_commit is not None:
            self._on_commit(len(rows), time.perf_counter() - started)
        if not done.done():
            done.set_result(None)
        return conn

    async def _release(self, conn: PoolConnectionProxy) -> None:
        with contextlib.suppress(Exception):  # a dead connection is dropped from the pool
            await self._pool.release(conn)


class JournalError(Exception):
    """An entry could not be made durable."""


async def last_seq(conn: Connection) -> int:
    return int(await conn.fetchval("SELECT coalesce(max(seq), 0) FROM journal"))


async def read(pool: asyncpg.Pool, after_seq: int, page: int = 10_000) -> AsyncIterator[Entry]:
    """The entries after `after_seq`, in order."""
    cursor = after_seq
    while True:
        rows = await pool.fetch(
            "SELECT body FROM journal WHERE seq > $1 ORDER BY seq LIMIT $2", cursor, page
        )
        for row in rows:
            entry = _decode(row[0])
            cursor = entry.seq
            yield entry
        if len(rows) < page:
            return
