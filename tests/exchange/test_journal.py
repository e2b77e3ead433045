"""The input journal: entries are durable when their future resolves, come back in order and
intact, are written in groups under load, and a failed write fails its waiters only; an entry
that cannot be encoded fails alone."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest

from exchange.journal import Entry, Journal, JournalError, last_seq, read
from matching import Amend, Cancel, EndOfDay, NewOrder, Side, TimeInForce


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=3)
    await pool.execute("TRUNCATE journal")
    yield pool
    await pool.close()


def new_order(seq: int) -> Entry:
    command = NewOrder(
        ts_ns=1_700_000_000_000_000_000 + seq,
        order_id=seq,
        account_id=100 + seq % 3,
        side=Side.BUY if seq % 2 else Side.SELL,
        quantity_t=seq % 7 + 1,
        price_fen=5_000 + seq,
        tif=TimeInForce.DAY,
    )
    return Entry(seq, "SZCER-2025", command, f"c-{seq}", 0, (5_000 + seq) * (seq % 7 + 1))


async def test_entries_come_back_in_order_and_intact(pool: asyncpg.Pool) -> None:
    entries = [
        new_order(1),
        Entry(2, "SZCER-2025", Cancel(ts_ns=5, order_id=1, account_id=101)),
        Entry(3, "SZCER-2024", Amend(ts_ns=6, order_id=9, account_id=101, quantity_t=3)),
        Entry(4, "SZCER-2024", EndOfDay(ts_ns=7)),
    ]
    journal = Journal(pool)
    journal.start()
    await asyncio.gather(*(journal.append(entry) for entry in entries))
    await journal.close()
    assert [entry async for entry in read(pool, 0)] == entries
    assert [entry async for entry in read(pool, 2)] == entries[2:]
    async with pool.acquire() as conn:
        assert await last_seq(conn) == 4


async def test_appends_under_load_are_written_in_groups(pool: asyncpg.Pool) -> None:
    groups: list[int] = []
    journal = Journal(pool, on_commit=lambda size, _seconds: groups.append(size))
    journal.start()
    waits = [journal.append(new_order(seq)) for seq in range(1, 2_001)]
    await asyncio.gather(*waits)
    await journal.close()
    assert sum(groups) == 2_000
    # all 2,000 were queued before the writer first ran: one group, or two if it woke early
    assert len(groups) <= 2
    read_back = [entry.seq async for entry in read(pool, 0, page=300)]
    assert read_back == list(range(1, 2_001))


async def test_a_failed_write_fails_its_waiters_and_the_journal_goes_on(
    pool: asyncpg.Pool,
) -> None:
    journal = Journal(pool)
    journal.start()
    await journal.append(new_order(1))
    duplicate = journal.append(new_order(1))  # the same seq: the COPY is refused
    with pytest.raises(JournalError):
        await duplicate
    await journal.append(new_order(2))
    await journal.close()
    assert [entry.seq async for entry in read(pool, 0)] == [1, 2]


async def test_a_journal_whose_connection_died_writes_on_a_new_one(
    pool: asyncpg.Pool, database_url: str
) -> None:
    # as after a PostgreSQL restart: the server ended the session the writer was using
    journal = Journal(pool)
    journal.start()
    await journal.append(new_order(1))
    admin = await asyncpg.connect(database_url)
    try:
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    finally:
        await admin.close()
    with pytest.raises(JournalError):
        await journal.append(new_order(2))  # on the dead connection
    await journal.append(new_order(3))
    await journal.close()
    assert [entry.seq async for entry in read(pool, 0)] == [1, 3]


async def test_an_entry_that_cannot_be_encoded_fails_alone(pool: asyncpg.Pool) -> None:
    journal = Journal(pool)
    journal.start()
    # queued together, so before the fix they shared one COPY and one failure
    before = journal.append(new_order(1))
    unwritable = journal.append(
        Entry(2, "SZCER-2025", Cancel(ts_ns=8, order_id=2**70, account_id=1))
    )
    after = journal.append(new_order(3))
    with pytest.raises(JournalError, match="cannot be encoded"):
        await unwritable
    await asyncio.gather(before, after)
    await journal.close()
    assert [entry.seq async for entry in read(pool, 0)] == [1, 3]
