"""Snapshots of the exchange's state, so a start replays only the journal after the newest.

A snapshot at journal entry S holds everything the replay of entries 1..S would rebuild: the
books, the engine's live orders (with what each has reserved) and client order ids, the execution
reports' memory of live orders, what the trading schedule has done, and market data's channel
numbers, bars and day statistics. It is taken in the engine's
apply loop right after entry S (so it describes exactly 1..S), and written only once the ledger has
applied everything entries up to S decided: a start from it then has nothing before S to hand the
ledger. Snapshots never replace the journal, which stays whole as the record of every input.

Client order ids are kept for good, so they would soon be most of every snapshot, and capturing
and encoding all of them held the loop for 150 ms at 300,000 orders. They are kept instead in a
list only ever appended to: a snapshot records how many it holds, and the table
`exchange_client_orders` stores each once, in rows appended by the snapshot after them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import asyncpg
import msgspec

from exchange.journal import Entry
from exchange.market_data import MarketState
from matching import BookSnapshot, Event, NewOrder, Side

log = logging.getLogger(__name__)

EVERY_ENTRIES = 100_000


class LiveOrder(msgspec.Struct, frozen=True, array_like=True):
    """A resting order as the engine and the reports know it."""

    order_id: int
    symbol: str
    account_id: int
    side: Side
    quantity_t: int
    leaves_t: int
    price_fen: int | None
    reserved: int  # tonnes for a sell, fen for a buy
    cl_ord_id: str | None
    cum_t: int


class ClientOrder(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """A new order's client order id, kept for good so that it is never used twice."""

    account_id: int
    cl_ord_id: str
    symbol: str
    command: NewOrder


class ExchangeSnapshot(msgspec.Struct, frozen=True):
    seq: int
    last_order_id: int
    books: dict[str, BookSnapshot]
    orders: list[LiveOrder]
    client_orders: int  # how many of the engine's client orders (in journal order) it holds
    sessions: dict[str, dict[str, int]]  # symbol -> schedule command tag -> last ts
    market: MarketState | None = None


_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder(ExchangeSnapshot).decode
_decode_clients = msgspec.msgpack.Decoder(list[ClientOrder]).decode
CHUNK = 1_000  # client orders a row of exchange_client_orders holds (about 0.4 ms to encode)
# between two rows a background write pauses: a snapshot is not urgent, and 100 rows at once
# (100,000 orders) held the database and the loop long enough to show in the ack p99
PAUSE_S = 0.01


async def save(
    pool: asyncpg.Pool, snapshot: ExchangeSnapshot, clients: list[ClientOrder], pause_s: float = 0.0
) -> None:
    """Write `snapshot` with the first `snapshot.client_orders` of `clients`.

    Client order ids are remembered for good, so they soon outweigh the rest of the state: they
    are stored once, in rows of `CHUNK` appended after the ones earlier snapshots stored (the
    list is only ever appended to), `pause_s` apart, the loop serving between them."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("LOCK TABLE exchange_client_orders IN EXCLUSIVE MODE")
        stored = await conn.fetchval(
            "SELECT coalesce(max(first_index + size), 0) FROM exchange_client_orders"
        )
        for first in range(stored, snapshot.client_orders, CHUNK):
            rows = clients[first : min(first + CHUNK, snapshot.client_orders)]
            await conn.execute(
                "INSERT INTO exchange_client_orders (first_index, size, body) VALUES ($1, $2, $3)",
                first,
                len(rows),
                _encode(rows),
            )
            if pause_s:
                await asyncio.sleep(pause_s)
        await conn.execute(
            "INSERT INTO exchange_snapshots (seq, body) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            snapshot.seq,
            _encode(snapshot),
        )


async def latest(pool: asyncpg.Pool) -> tuple[ExchangeSnapshot, list[ClientOrder]] | None:
    """The newest snapshot and its client orders, or None."""
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read"):
        body = await conn.fetchval("SELECT body FROM exchange_snapshots ORDER BY seq DESC LIMIT 1")
        if body is None:
            return None
        snapshot = _decode(body)
        clients: list[ClientOrder] = []
        rows = await conn.fetch(
            "SELECT first_index, size, body FROM exchange_client_orders"
            " WHERE first_index < $1 ORDER BY first_index",
            snapshot.client_orders,
        )
    for row in rows:
        part = _decode_clients(row["body"])
        if row["first_index"] != len(clients) or len(part) != row["size"]:
            raise RuntimeError(f"the snapshots' client orders break at {len(clients):,}")
        clients.extend(part)
    if len(clients) != snapshot.client_orders:
        raise RuntimeError(
            f"the snapshot at journal entry {snapshot.seq:,} holds {snapshot.client_orders:,}"
            f" client orders; {len(clients):,} are stored"
        )
    return snapshot, clients


class Snapshots:
    """Takes a snapshot every `every` entries and writes it once the ledger has caught up.

    `capture` builds the snapshot (synchronously, between two entries); `client_orders` is the
    engine's list of them; `decided` and `applied` count the ledger feed's items handed over and
    applied, in the same order.
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        capture: Callable[[], ExchangeSnapshot],
        client_orders: Callable[[], list[ClientOrder]],
        decided: Callable[[], int],
        applied: Callable[[], int],
        every: int = EVERY_ENTRIES,
    ) -> None:
        self._pool = pool
        self._capture = capture
        self._client_orders = client_orders
        self._decided = decided
        self._applied = applied
        self._every = every
        self._since = 0
        self._waiting: list[tuple[int, ExchangeSnapshot]] = []  # (items to be applied, snapshot)
        self._task: asyncio.Task[None] | None = None
        self.written = 0

    def observe(self, entry: Entry, events: list[Event]) -> None:
        """An engine listener, after each live entry."""
        self._since += 1
        if self._since >= self._every:
            self.take()

    def take(self) -> None:
        """Capture the state as it stands after the last applied entry."""
        self._since = 0
        self._waiting.append((self._decided(), self._capture()))

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="snapshots")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            if self._waiting:
                try:
                    await self.write_ready(PAUSE_S)
                except (OSError, asyncpg.PostgresError):
                    log.warning("a snapshot could not be written; trying again", exc_info=True)

    async def write_ready(self, pause_s: float = 0.0) -> None:
        """Write the newest snapshot whose ledger effects are all applied; drop older ones."""
        applied = self._applied()
        ready = [snapshot for mark, snapshot in self._waiting if mark <= applied]
        if not ready:
            return
        self._waiting = [(mark, s) for mark, s in self._waiting if mark > applied]
        await save(self._pool, ready[-1], self._client_orders(), pause_s)
        self.written += 1
        log.info("snapshot at journal entry %d written", ready[-1].seq)
