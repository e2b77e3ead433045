"""An amended order's reservation, grown or trimmed to what its new quantity and price need.

A grown sell lock takes more of the account's free tonnes that qualify, oldest vintage first, as
the order's first lock did; a trimmed one gives back tonnes from the end of the delivery order
(newest vintage first), so what the order still delivers is what it would have delivered. Cash is
one sum either way. Each adjustment is applied once, by its id; a second time it is reported and
left alone.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import msgspec

from settlement.accounts import lock_accounts, require_role
from settlement.cash import AVAILABLE, LOCKED, Line
from settlement.connection import Connection
from settlement.errors import ErrorCode, LedgerError
from settlement.holdings import FREE, apply, free_runs_by_account, order_runs
from settlement.serials import Place, Run, plan
from settlement.values import ANY_CER, HOLDER_ROLES, CerFilter, SerialRange


class OrderAdjust(msgspec.Struct, frozen=True):
    """Change an order's lock by `quantity_t` tonnes or `amount_fen` fen (one of them, signed)."""

    adjust_id: int
    order_id: int
    account_id: int
    quantity_t: int = 0
    amount_fen: int = 0
    only: CerFilter = ANY_CER


def _check(adjust: OrderAdjust) -> None:
    if adjust.adjust_id <= 0 or adjust.order_id <= 0:
        raise LedgerError(ErrorCode.MALFORMED_ID, f"adjustment {adjust.adjust_id}")
    if (adjust.quantity_t == 0) == (adjust.amount_fen == 0):
        raise LedgerError(
            ErrorCode.QUANTITY_MUST_BE_POSITIVE,
            f"adjustment {adjust.adjust_id}: change either tonnes or fen, by a non-zero amount",
        )


async def adjust_many(
    conn: Connection, txn_id: int, adjusts: Sequence[OrderAdjust]
) -> tuple[tuple[int, ...], list[Line]]:
    """Apply the adjustments not applied before, in the given order; their ids, and the cash
    lines for the caller to post with the rest of its transaction's."""
    for adjust in adjusts:
        _check(adjust)
    if not adjusts:
        return (), []
    rows = await conn.fetch(
        "INSERT INTO order_adjusts"
        " (adjust_id, order_id, account_id, quantity_t, amount_fen, txn_id)"
        " SELECT *, $6 FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[],"
        " $5::bigint[]) ON CONFLICT DO NOTHING RETURNING adjust_id",
        [a.adjust_id for a in adjusts],
        [a.order_id for a in adjusts],
        [a.account_id for a in adjusts],
        [a.quantity_t for a in adjusts],
        [a.amount_fen for a in adjusts],
        txn_id,
    )
    new_ids = {row[0] for row in rows}
    fresh = [a for a in adjusts if a.adjust_id in new_ids]
    if not fresh:
        return (), []
    roles = await lock_accounts(conn, {a.account_id for a in fresh})
    for adjust in fresh:
        require_role(roles, adjust.account_id, HOLDER_ROLES, "trade")
    lines = await _adjust_cash(conn, [a for a in fresh if a.amount_fen])
    await _adjust_tonnes(conn, txn_id, [a for a in fresh if a.quantity_t])
    return tuple(a.adjust_id for a in fresh), lines


async def _adjust_cash(conn: Connection, adjusts: list[OrderAdjust]) -> list[Line]:
    if not adjusts:
        return []
    deltas: defaultdict[int, int] = defaultdict(int)
    for adjust in adjusts:
        deltas[adjust.order_id] += adjust.amount_fen
    ids = sorted(deltas)
    rows = await conn.fetch(
        "UPDATE cash_locks c SET amount_fen = c.amount_fen + d.delta,"
        " remaining_fen = c.remaining_fen + d.delta"
        " FROM unnest($1::bigint[], $2::bigint[]) AS d(order_id, delta)"
        " WHERE c.order_id = d.order_id AND c.remaining_fen + d.delta >= 0"
        " AND c.amount_fen + d.delta > 0 RETURNING c.order_id",
        ids,
        [deltas[order_id] for order_id in ids],
    )
    if len(rows) != len(ids):
        missing = sorted(set(ids) - {row[0] for row in rows})
        raise LedgerError(
            ErrorCode.LOCK_INSUFFICIENT,
            f"orders {missing}: no cash lock, less left than the trim, or a trim to nothing"
            " (release the order instead)",
        )
    lines: list[Line] = []
    for adjust in adjusts:
        lines += (
            Line(adjust.account_id, AVAILABLE, -adjust.amount_fen, adjust.order_id),
            Line(adjust.account_id, LOCKED, adjust.amount_fen, adjust.order_id),
        )
    return lines


async def _adjust_tonnes(conn: Connection, txn_id: int, adjusts: list[OrderAdjust]) -> None:
    if not adjusts:
        return
    # the growths land before the trims are planned: an order grown and then trimmed in one
    # batch gives back from what it holds after growing
    await apply(conn, txn_id, plan(await _grow(conn, [a for a in adjusts if a.quantity_t > 0])))
    await apply(conn, txn_id, plan(await _trim(conn, [a for a in adjusts if a.quantity_t < 0])))
    deltas: defaultdict[int, int] = defaultdict(int)
    for adjust in adjusts:
        deltas[adjust.order_id] += adjust.quantity_t
    ids = sorted(deltas)
    updated = await conn.fetch(
        "UPDATE cer_locks c SET quantity_t = c.quantity_t + d.delta"
        " FROM unnest($1::bigint[], $2::bigint[]) AS d(order_id, delta)"
        " WHERE c.order_id = d.order_id AND c.quantity_t + d.delta > 0 RETURNING c.order_id",
        ids,
        [deltas[order_id] for order_id in ids],
    )
    if len(updated) != len(ids):
        missing = sorted(set(ids) - {row[0] for row in updated})
        raise LedgerError(
            ErrorCode.LOCK_INSUFFICIENT,
            f"orders {missing}: a trim to nothing (release the order instead)",
        )


Pieces = dict[Run, list[tuple[SerialRange, Place]]]


async def _grow(conn: Connection, adjusts: list[OrderAdjust]) -> Pieces:
    pieces: Pieces = {}
    free = await free_runs_by_account(conn, sorted({a.account_id for a in adjusts}))
    used: defaultdict[Run, int] = defaultdict(int)  # taken from the start of a free run
    for adjust in adjusts:
        wanted = adjust.quantity_t
        target = Place(adjust.account_id, "locked", adjust.order_id)
        for run, info in free.get(adjust.account_id, ()):
            left = run.last - run.first + 1 - used[run]
            if not left or not adjust.only.admits(info):
                continue
            size = min(left, wanted)
            first = run.first + used[run]
            pieces.setdefault(run, []).append(
                (SerialRange(run.block_id, first, first + size - 1), target)
            )
            used[run] += size
            wanted -= size
            if not wanted:
                break
        if wanted:
            raise LedgerError(
                ErrorCode.INSUFFICIENT_HOLDINGS,
                f"order {adjust.order_id}: account {adjust.account_id} holds fewer than"
                f" {adjust.quantity_t} more free tonnes that qualify",
            )
    return pieces


async def _trim(conn: Connection, adjusts: list[OrderAdjust]) -> Pieces:
    pieces: Pieces = {}
    locked: defaultdict[int, list[Run]] = defaultdict(list)
    for run in await order_runs(conn, sorted({a.order_id for a in adjusts})):
        if run.place.order_id is not None:
            locked[run.place.order_id].append(run)
    cut: defaultdict[Run, int] = defaultdict(int)  # given back from the end of a locked run
    for adjust in adjusts:
        wanted = -adjust.quantity_t
        target = Place(adjust.account_id, FREE, None)
        for run in reversed(locked[adjust.order_id]):
            size = min(run.last - run.first + 1 - cut[run], wanted)
            if not size:
                continue
            last = run.last - cut[run]
            pieces.setdefault(run, []).append(
                (SerialRange(run.block_id, last - size + 1, last), target)
            )
            cut[run] += size
            wanted -= size
            if not wanted:
                break
        if wanted:
            raise LedgerError(
                ErrorCode.LOCK_INSUFFICIENT,
                f"order {adjust.order_id}: fewer than {-adjust.quantity_t} tonnes locked to trim",
            )
    return pieces
