"""Start-up: bring the books, the ledger and the risk view back to where the journal says.

1. Restore the newest snapshot, if any (`exchange.snapshots`), then replay the journal after it
   into the engine's books, which also rebuilds the client-order-id memory and the sequence and
   order-id counters.
2. Hand the ledger everything the replay decided. It is idempotent — locks by order id, trades by
   trade id — so what it had already applied before the crash is reported and left alone.
3. Only then load the risk view from the ledger, and go live.
"""

from __future__ import annotations

from collections.abc import Callable

import asyncpg

from exchange.engine import Engine
from exchange.journal import read
from exchange.ledger_feed import BatchBuilder
from exchange.risk import RiskView
from exchange.snapshots import ClientOrder, ExchangeSnapshot, latest
from settlement.ledger import Ledger


async def recover(
    engine: Engine,
    pool: asyncpg.Pool,
    ledger: Ledger,
    feed: BatchBuilder,
    progress: Callable[[str], None] = lambda _line: None,
    restore: Callable[[ExchangeSnapshot, list[ClientOrder]], None] | None = None,
) -> int:
    """Recover and go live; the number of journal entries replayed. `restore` restores a
    snapshot into the engine and whatever else follows its events (the engine's own by default)."""
    stored = await latest(pool)
    after = 0
    if stored is not None:
        snapshot, client_orders = stored
        (restore or engine.restore)(snapshot, client_orders)
        after = snapshot.seq
        progress(f"restored the snapshot at journal entry {after:,}")
    replayed = 0
    async for entry in read(pool, after):
        engine.replay(entry)
        replayed += 1
        if replayed % 100_000 == 0:
            progress(f"replayed {replayed:,} journal entries")
    batches = feed.take()
    for number, batch in enumerate(batches, 1):
        await ledger.apply(batch)
        if number % 100 == 0:
            progress(f"ledger caught up with {number:,} of {len(batches):,} batches")
    async with pool.acquire() as conn:
        engine.go_live(await RiskView.load(conn))
    progress(f"recovered: {replayed:,} journal entries, {len(batches):,} ledger batches")
    return replayed
