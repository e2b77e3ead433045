"""Array literals: what the server reads back is exactly what was sent, and what is not an
integer is refused by the cast, never stored."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Sequence
from typing import TypeAlias

import asyncpg
import pytest

from settlement.arrays import bigint_array, text_array

Conn: TypeAlias = "asyncpg.Connection[asyncpg.Record]"

PLAIN = ["", " ", " x ", "a,b", "{x}", "NULL", "null", "é中文", "tab\there", "x" * 64]
ESCAPED = ['"', "\\", '\\"', 'say "hi"', "C:\\"]


@pytest.fixture
async def conn(database_url: str) -> AsyncIterator[Conn]:
    conn = await asyncpg.connect(database_url)
    try:
        yield conn
    finally:
        await conn.close()


async def test_text_round_trips_with_and_without_escapes(conn: Conn) -> None:
    for values in (PLAIN, PLAIN + ESCAPED, []):
        assert await conn.fetchval("SELECT $1::text::text[]", text_array(values)) == values


async def test_random_strings_round_trip(conn: Conn) -> None:
    rng = random.Random(5)
    alphabet = [chr(code) for code in range(1, 128)] + ["é", "中", "\u2028", "🙂"]
    values = ["".join(rng.choices(alphabet, k=rng.randint(0, 12))) for _ in range(2_000)]
    assert await conn.fetchval("SELECT $1::text::text[]", text_array(values)) == values


async def test_bigints_round_trip_and_non_integers_are_refused(conn: Conn) -> None:
    values = [0, 1, -1, 2**63 - 1, -(2**63)]
    assert await conn.fetchval("SELECT $1::text::bigint[]", bigint_array(values)) == values
    wrongs: list[Sequence[int]] = [[2**63], [True], [1.5]]  # type: ignore[list-item]
    for wrong in wrongs:
        with pytest.raises(asyncpg.DataError):
            await conn.fetchval("SELECT $1::text::bigint[]", bigint_array(wrong))
