"""Snapshots of the exchange's state, so a start replays only the journal after the newest.

A snapshot at journal entry S holds everything the replay of entries 1..S would rebuild: the
books, the engine's live orders (with what each has reserved) and client order ids, the execution
reports' memory of live orders, what the trading schedule has done, and market data's channel
numbers, bars and day statistics. It is taken in the engine's
apply loop right after entry S (so it describes exactly 1..S), and written only once the ledger has
applied everything entries up to S decided: a start from it then has nothing before S to hand the
ledger. Snapshots never replace the journal, which stays whole as the record of every input.
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


class ClientOrder(msgspec.Struct, frozen=True, array_like=True):
    account_id: int
    cl_ord_id: str
    symbol: str
    command: NewOrder


class ExchangeSnapshot(msgspec.Struct, frozen=True):
    seq: int
    last_order_id: int
    books: dict[str, BookSnapshot]
    orders: list[LiveOrder]
    client_orders: list[ClientOrder]
    sessions: dict[str, dict[str, int]]  # symbol -> schedule command tag -> last ts
    market: MarketState | None = None


class _Encoded(msgspec.Struct, frozen=True):
    """`ExchangeSnapshot` with its client orders already encoded: the same fields in the same
    order, so the same bytes."""

    seq: int
    last_order_id: int
    books: dict[str, BookSnapshot]
    orders: list[LiveOrder]
    client_orders: msgspec.Raw
    sessions: dict[str, dict[str, int]]
    market: MarketState | None = None


_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder(ExchangeSnapshot).decode
CHUNK = 5_000  # client orders encoded at a time (about 3 ms), the loop serving between chunks


async def encode(snapshot: ExchangeSnapshot) -> bytes:
    """`snapshot` in msgpack, its client orders (every order's id for good, so most of the body)
    encoded a chunk at a time: at once they held the loop for 85 ms at 150,000 orders."""
    clients = snapshot.client_orders
    items = []
    for start in range(0, len(clients), CHUNK):
        items.append(_array_items(_encode(clients[start : start + CHUNK])))
        await asyncio.sleep(0)
    raw = msgspec.Raw(_array_header(len(clients)) + b"".join(items))
    fields = msgspec.structs.asdict(snapshot) | {"client_orders": raw}
    return _encode(_Encoded(**fields))


def _array_header(size: int) -> bytes:
    if size < 16:
        return bytes((0x90 | size,))
    if size < 65_536:
        return b"\xdc" + size.to_bytes(2)
    return b"\xdd" + size.to_bytes(4)


def _array_items(encoded: bytes) -> bytes:
    """A msgpack array's elements, without the array's header."""
    first = encoded[0]
    return encoded[1 if first >> 4 == 0x9 else 3 if first == 0xDC else 5 :]


async def save(pool: asyncpg.Pool, snapshot: ExchangeSnapshot) -> None:
    await pool.execute(
        "INSERT INTO exchange_snapshots (seq, body) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        snapshot.seq,
        await encode(snapshot),
    )


async def latest(pool: asyncpg.Pool) -> ExchangeSnapshot | None:
    body = await pool.fetchval("SELECT body FROM exchange_snapshots ORDER BY seq DESC LIMIT 1")
    return None if body is None else _decode(body)


class Snapshots:
    """Takes a snapshot every `every` entries and writes it once the ledger has caught up.

    `capture` builds the snapshot (synchronously, between two entries); `decided` and `applied`
    count the ledger feed's items handed over and applied, in the same order.
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        capture: Callable[[], ExchangeSnapshot],
        decided: Callable[[], int],
        applied: Callable[[], int],
        every: int = EVERY_ENTRIES,
    ) -> None:
        self._pool = pool
        self._capture = capture
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
                    await self.write_ready()
                except (OSError, asyncpg.PostgresError):
                    log.warning("a snapshot could not be written; trying again", exc_info=True)

    async def write_ready(self) -> None:
        """Write the newest snapshot whose ledger effects are all applied; drop older ones."""
        applied = self._applied()
        ready = [snapshot for mark, snapshot in self._waiting if mark <= applied]
        if not ready:
            return
        self._waiting = [(mark, s) for mark, s in self._waiting if mark > applied]
        await save(self._pool, ready[-1])
        self.written += 1
        log.info("snapshot at journal entry %d written", ready[-1].seq)
