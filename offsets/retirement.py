"""Voluntary retirement (Art. 26): any holder retires tonnes for good, naming a beneficiary and a
purpose, so that a neutrality certificate can later rest on them."""

from __future__ import annotations

import datetime as dt
import re

import msgspec

from offsets.certificate import TEXT
from offsets.errors import ErrorCode, OffsetError
from settlement import moves
from settlement.connection import Connection
from settlement.values import Selection, SerialRange, TonneState

MAX_TEXT = 200
_TEXT = re.compile(TEXT)


class Retired(msgspec.Struct, frozen=True):
    retirement_id: int
    account_id: int
    quantity_t: int
    ranges: tuple[SerialRange, ...]
    beneficiary: str
    purpose: str
    retired_at: dt.datetime
    claimed_by: int | None = None  # the certificate application resting on it


def check_text(name: str, value: str) -> str:
    """The text stripped, if a certificate could hold it: what a retirement or an application
    accepts must not fail the certificate's own rule when the regulator approves."""
    value = value.strip()
    if len(value) > MAX_TEXT or not _TEXT.match(value):
        raise OffsetError(
            ErrorCode.TEXT_INVALID,
            f"{name}: 1..{MAX_TEXT} characters, no control or bidirectional characters",
        )
    return value


async def retire(
    conn: Connection,
    txn_id: int,
    account_id: int,
    selection: Selection,
    beneficiary: str,
    purpose: str,
) -> Retired:
    beneficiary, purpose = check_text("beneficiary", beneficiary), check_text("purpose", purpose)
    moved = await moves.finish(conn, txn_id, account_id, TonneState.RETIRED, selection)
    row = await conn.fetchrow(
        "INSERT INTO retirements (txn_id, account_id, quantity_t, beneficiary, purpose)"
        " VALUES ($1, $2, $3, $4, $5) RETURNING retirement_id, retired_at",
        txn_id,
        account_id,
        moved.quantity_t,
        beneficiary,
        purpose,
    )
    assert row is not None  # an INSERT … RETURNING returns its row
    return Retired(row[0], account_id, moved.quantity_t, moved.ranges, beneficiary, purpose, row[1])


async def ranges_of(conn: Connection, txn_ids: list[int]) -> dict[int, tuple[SerialRange, ...]]:
    """The serial ranges each of these transactions moved to an end state."""
    rows = await conn.fetch(
        "SELECT txn_id, block_id, first_serial, last_serial FROM serial_entries"
        " WHERE txn_id = ANY($1::bigint[]) AND to_state IN ('retired', 'surrendered')"
        " ORDER BY txn_id, block_id, first_serial",
        txn_ids,
    )
    out: dict[int, list[SerialRange]] = {txn: [] for txn in txn_ids}
    for txn, block, first, last in rows:
        out[txn].append(SerialRange(block, first, last))
    return {txn: tuple(ranges) for txn, ranges in out.items()}


async def retirements_of(conn: Connection, account_id: int) -> list[Retired]:
    rows = await conn.fetch(
        "SELECT retirement_id, txn_id, quantity_t, beneficiary, purpose, retired_at, claimed_by"
        " FROM retirements WHERE account_id = $1 ORDER BY retirement_id",
        account_id,
    )
    ranges = await ranges_of(conn, [row["txn_id"] for row in rows])
    return [
        Retired(
            row["retirement_id"],
            account_id,
            row["quantity_t"],
            ranges[row["txn_id"]],
            row["beneficiary"],
            row["purpose"],
            row["retired_at"],
            row["claimed_by"],
        )
        for row in rows
    ]
