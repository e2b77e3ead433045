"""Reservations against an order id: tonnes for a sell order, cash for a buy order.

A lock moves tonnes from free to locked (tagged with the order) or cash from available to locked.
Settlement consumes them; release returns whatever is left.
"""

from __future__ import annotations

from settlement import cash
from settlement.accounts import lock_accounts, require_role
from settlement.connection import Connection
from settlement.errors import ErrorCode, LedgerError
from settlement.holdings import LOCKED, apply, moved_ranges, order_runs, select
from settlement.serials import Place, plan, to
from settlement.values import HOLDER_ROLES, ByQuantity, CerFilter, Moved, Released, SerialRange


def _check_order_id(order_id: int) -> None:
    if order_id <= 0:
        raise LedgerError(ErrorCode.MALFORMED_ID, f"order id {order_id}")


async def lock_cers(
    conn: Connection,
    txn_id: int,
    order_id: int,
    account_id: int,
    quantity_t: int,
    only: CerFilter,
) -> Moved:
    _check_order_id(order_id)
    require_role(await lock_accounts(conn, [account_id]), account_id, HOLDER_ROLES, "sell")
    pieces = await select(conn, account_id, ByQuantity(quantity_t, only))
    moving = plan(to(Place(account_id, LOCKED, order_id), pieces))
    inserted = await conn.fetchval(
        "INSERT INTO cer_locks (order_id, account_id, quantity_t, txn_id)"
        " VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING order_id",
        order_id,
        account_id,
        quantity_t,
        txn_id,
    )
    if inserted is None:
        raise LedgerError(ErrorCode.LOCK_EXISTS, f"order {order_id} already has a CER lock")
    await apply(conn, txn_id, moving)
    return Moved(txn_id, moved_ranges(moving), quantity_t)


async def lock_cash(
    conn: Connection, txn_id: int, order_id: int, account_id: int, amount_fen: int
) -> None:
    _check_order_id(order_id)
    cash.require_positive(amount_fen)
    require_role(await lock_accounts(conn, [account_id]), account_id, HOLDER_ROLES, "buy")
    if await conn.fetchval("SELECT 1 FROM cash_locks WHERE order_id = $1", order_id):
        raise LedgerError(ErrorCode.LOCK_EXISTS, f"order {order_id} already has a cash lock")
    await cash.lock(conn, txn_id, order_id, account_id, amount_fen)


async def release(conn: Connection, txn_id: int, order_id: int) -> Released:
    """Free what remains locked to `order_id`; releasing twice finds nothing the second time."""
    _check_order_id(order_id)
    owners = await conn.fetch(
        "SELECT account_id FROM cer_locks WHERE order_id = $1"
        " UNION SELECT account_id FROM cash_locks WHERE order_id = $1",
        order_id,
    )
    await lock_accounts(conn, [row["account_id"] for row in owners])
    runs = await order_runs(conn, [order_id])
    moving = plan(
        {
            run: [
                (
                    SerialRange(run.block_id, run.first, run.last),
                    Place(run.place.account_id, "free", None),
                )
            ]
            for run in runs
        }
    )
    await apply(conn, txn_id, moving)
    cash_fen = await cash.release(conn, txn_id, order_id)
    ranges = moved_ranges(moving)
    return Released(order_id, ranges, sum(r.quantity_t for r in ranges), cash_fen)
