"""Cash in fen: a double-entry journal and the balances projected from it.

Each account has two buckets, available and locked (reserved for buy orders), whose balance rows
are created with the account, so moving money only ever updates rows. Every movement is a
set of journal lines summing to zero; deposits and withdrawals balance against the external
account, whose balance is minus all the money inside the ledger.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import NamedTuple

import asyncpg

from settlement.connection import Connection
from settlement.errors import ErrorCode, LedgerError
from settlement.values import EXTERNAL_ACCOUNT_ID, CashBalance, CashBucket

AVAILABLE = CashBucket.AVAILABLE.value
LOCKED = CashBucket.LOCKED.value


class Line(NamedTuple):
    account_id: int
    bucket: str
    amount_fen: int
    order_id: int | None = None


async def post(conn: Connection, txn_id: int, lines: Sequence[Line]) -> None:
    """Journal `lines` (which must balance) and move the balances with them."""
    lines = [line for line in lines if line.amount_fen]
    if sum(line.amount_fen for line in lines) != 0:
        raise AssertionError(f"unbalanced cash lines {lines!r}")
    if not lines:
        return
    await conn.execute(
        "INSERT INTO cash_entries (txn_id, account_id, bucket, amount_fen, order_id)"
        " SELECT $1, * FROM unnest($2::bigint[], $3::text[], $4::bigint[], $5::bigint[])",
        txn_id,
        [line.account_id for line in lines],
        [line.bucket for line in lines],
        [line.amount_fen for line in lines],
        [line.order_id for line in lines],
    )
    deltas: defaultdict[tuple[int, str], int] = defaultdict(int)
    for line in lines:
        deltas[line.account_id, line.bucket] += line.amount_fen
    keys = sorted(deltas)
    try:
        updated = await conn.execute(
            "UPDATE cash_balances c SET balance_fen = c.balance_fen + d.delta"
            " FROM unnest($1::bigint[], $2::text[], $3::bigint[]) AS d(account_id, bucket, delta)"
            " WHERE c.account_id = d.account_id AND c.bucket = d.bucket",
            [key[0] for key in keys],
            [key[1] for key in keys],
            [deltas[key] for key in keys],
        )
    except asyncpg.CheckViolationError:
        # Callers check first and say which account; this is the database refusing regardless.
        raise LedgerError(ErrorCode.INSUFFICIENT_CASH, "a balance would go negative") from None
    if updated != f"UPDATE {len(keys)}":
        raise AssertionError(f"cash balance rows missing for {keys!r}: {updated}")


async def balance(conn: Connection, account_id: int) -> CashBalance:
    rows = await conn.fetch(
        "SELECT bucket, balance_fen FROM cash_balances WHERE account_id = $1", account_id
    )
    by_bucket = {row["bucket"]: row["balance_fen"] for row in rows}
    return CashBalance(account_id, by_bucket.get(AVAILABLE, 0), by_bucket.get(LOCKED, 0))


async def require_available(conn: Connection, account_id: int, amount_fen: int) -> None:
    available = (await balance(conn, account_id)).available_fen
    if available < amount_fen:
        raise LedgerError(
            ErrorCode.INSUFFICIENT_CASH,
            f"account {account_id} has {available} fen available, {amount_fen} needed",
        )


def require_positive(amount_fen: int) -> None:
    if amount_fen <= 0:
        raise LedgerError(ErrorCode.AMOUNT_MUST_BE_POSITIVE, f"amount {amount_fen} fen")


async def deposit(conn: Connection, txn_id: int, account_id: int, amount_fen: int) -> None:
    await post(
        conn,
        txn_id,
        [
            Line(EXTERNAL_ACCOUNT_ID, AVAILABLE, -amount_fen),
            Line(account_id, AVAILABLE, amount_fen),
        ],
    )


async def withdraw(conn: Connection, txn_id: int, account_id: int, amount_fen: int) -> None:
    await require_available(conn, account_id, amount_fen)
    await post(
        conn,
        txn_id,
        [
            Line(account_id, AVAILABLE, -amount_fen),
            Line(EXTERNAL_ACCOUNT_ID, AVAILABLE, amount_fen),
        ],
    )


async def lock(
    conn: Connection, txn_id: int, order_id: int, account_id: int, amount_fen: int
) -> None:
    """Reserve `amount_fen` of the account's available cash for a buy order."""
    await require_available(conn, account_id, amount_fen)
    await conn.execute(
        "INSERT INTO cash_locks (order_id, account_id, amount_fen, remaining_fen, txn_id)"
        " VALUES ($1, $2, $3, $3, $4)",
        order_id,
        account_id,
        amount_fen,
        txn_id,
    )
    await post(
        conn,
        txn_id,
        [
            Line(account_id, AVAILABLE, -amount_fen, order_id),
            Line(account_id, LOCKED, amount_fen, order_id),
        ],
    )


async def release(conn: Connection, txn_id: int, order_id: int) -> int:
    """Return what is left of an order's cash reservation; how much (0 if nothing was left)."""
    row = await conn.fetchrow(
        "UPDATE cash_locks SET remaining_fen = 0 FROM"
        " (SELECT remaining_fen AS before FROM cash_locks WHERE order_id = $1 FOR UPDATE) AS old"
        " WHERE order_id = $1 RETURNING account_id, old.before",
        order_id,
    )
    if row is None or not row["before"]:
        return 0
    account_id, amount_fen = row["account_id"], row["before"]
    await post(
        conn,
        txn_id,
        [
            Line(account_id, LOCKED, -amount_fen, order_id),
            Line(account_id, AVAILABLE, amount_fen, order_id),
        ],
    )
    return int(amount_fen)
