"""The exchange's stream applied to the ledger in batches: order locks, trades, releases.

The exchange reserves in memory as orders arrive and hands the ledger what followed, in order:
new orders to lock, trades to settle, finished orders to release. One batch is one transaction
with a fixed number of set-based statements, whatever its size. Every part is idempotent — a lock
by order id, a trade by trade id, a release finds nothing the second time — so after a crash the
exchange replays its journal and hands the same batches again without harm.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import asyncpg
import msgspec

from settlement import dvp
from settlement.accounts import lock_accounts, require_role
from settlement.adjusts import OrderAdjust, adjust_many
from settlement.cash import AVAILABLE, LOCKED, Line, post
from settlement.connection import Connection
from settlement.errors import ErrorCode, LedgerError
from settlement.holdings import FREE, apply, free_runs_by_account, order_runs
from settlement.serials import Place, Run, plan
from settlement.values import (
    ANY_CER,
    HOLDER_ROLES,
    BlockInfo,
    CerFilter,
    SerialRange,
    TradeToSettle,
)


class OrderLock(msgspec.Struct, frozen=True):
    """What a new order reserves: tonnes to sell (`quantity_t`) or cash to buy (`amount_fen`)."""

    order_id: int
    account_id: int
    quantity_t: int = 0
    amount_fen: int = 0
    only: CerFilter = ANY_CER


class Batch(msgspec.Struct, frozen=True):
    locks: tuple[OrderLock, ...] = ()
    trades: tuple[TradeToSettle, ...] = ()
    releases: tuple[int, ...] = ()
    adjusts: tuple[OrderAdjust, ...] = ()  # applied after the locks, before the trades

    def __len__(self) -> int:
        return len(self.locks) + len(self.trades) + len(self.releases) + len(self.adjusts)


class BatchReport(msgspec.Struct, frozen=True):
    locked: tuple[int, ...]
    already_locked: tuple[int, ...]
    settled: tuple[int, ...]
    already_settled: tuple[int, ...]
    released: tuple[int, ...]
    adjusted: tuple[int, ...] = ()


def _check(lock: OrderLock) -> None:
    if lock.order_id <= 0:
        raise LedgerError(ErrorCode.MALFORMED_ID, f"order id {lock.order_id}")
    if (lock.quantity_t > 0) == (lock.amount_fen > 0) or min(lock.quantity_t, lock.amount_fen) < 0:
        raise LedgerError(
            ErrorCode.QUANTITY_MUST_BE_POSITIVE,
            f"order {lock.order_id}: lock either tonnes or fen, a positive amount of one",
        )


async def _new_locks(conn: Connection, txn_id: int, locks: Sequence[OrderLock]) -> set[int]:
    """Record the locks; the order ids not locked before."""
    sells = [lock for lock in locks if lock.quantity_t]
    buys = [lock for lock in locks if lock.amount_fen]
    new: list[asyncpg.Record] = []
    if sells:  # each statement only when it has rows: a round trip saved is latency saved
        new += await conn.fetch(
            "INSERT INTO cer_locks (order_id, account_id, quantity_t, txn_id)"
            " SELECT *, $4 FROM unnest($1::bigint[], $2::bigint[], $3::bigint[])"
            " ON CONFLICT DO NOTHING RETURNING order_id",
            [lock.order_id for lock in sells],
            [lock.account_id for lock in sells],
            [lock.quantity_t for lock in sells],
            txn_id,
        )
    if buys:
        new += await conn.fetch(
            "INSERT INTO cash_locks (order_id, account_id, amount_fen, remaining_fen, txn_id)"
            " SELECT o, a, f, f, $4 FROM unnest($1::bigint[], $2::bigint[], $3::bigint[])"
            " AS v(o, a, f) ON CONFLICT DO NOTHING RETURNING order_id",
            [lock.order_id for lock in buys],
            [lock.account_id for lock in buys],
            [lock.amount_fen for lock in buys],
            txn_id,
        )
    return {row[0] for row in new}


async def lock_many(conn: Connection, txn_id: int, locks: Sequence[OrderLock]) -> tuple[int, ...]:
    """Lock what each new order reserves, in the given order, oldest vintage first for tonnes
    (as a single lock would); orders locked before are left alone. Returns the ids locked now."""
    locked, lines = await _lock_many(conn, txn_id, locks)
    await post(conn, txn_id, lines)
    return locked


async def _lock_many(
    conn: Connection, txn_id: int, locks: Sequence[OrderLock]
) -> tuple[tuple[int, ...], list[Line]]:
    """`lock_many` but for its cash lines, which the caller posts."""
    for lock in locks:
        _check(lock)
    new_ids = await _new_locks(conn, txn_id, locks)
    fresh = [lock for lock in locks if lock.order_id in new_ids]
    if not fresh:
        return (), []
    roles = await lock_accounts(conn, {lock.account_id for lock in fresh})
    for lock in fresh:
        require_role(roles, lock.account_id, HOLDER_ROLES, "trade")
    sells = [lock for lock in fresh if lock.quantity_t]
    available = await _free_runs_for(conn, sells)
    used: dict[Run, int] = defaultdict(int)
    pieces: dict[Run, list[tuple[SerialRange, Place]]] = {}
    for lock in sells:
        wanted = lock.quantity_t
        target = Place(lock.account_id, "locked", lock.order_id)
        for run, info in available.get(lock.account_id, ()):
            if not wanted:
                break
            left = run.last - run.first + 1 - used[run]
            if not left or not lock.only.admits(info):
                continue
            size = min(left, wanted)
            first = run.first + used[run]
            pieces.setdefault(run, []).append(
                (SerialRange(run.block_id, first, first + size - 1), target)
            )
            used[run] += size
            wanted -= size
        if wanted:
            raise LedgerError(
                ErrorCode.INSUFFICIENT_HOLDINGS,
                f"order {lock.order_id}: account {lock.account_id} holds fewer than"
                f" {lock.quantity_t} free tonnes that qualify",
            )
    await apply(conn, txn_id, plan(pieces))
    lines: list[Line] = []
    for lock in fresh:
        if lock.amount_fen:
            lines += (
                Line(lock.account_id, AVAILABLE, -lock.amount_fen, lock.order_id),
                Line(lock.account_id, LOCKED, lock.amount_fen, lock.order_id),
            )
    return tuple(lock.order_id for lock in fresh), lines


async def _free_runs_for(
    conn: Connection, sells: Sequence[OrderLock]
) -> dict[int, list[tuple[Run, BlockInfo]]]:
    """The free runs the sell locks may take, per account, oldest vintage first. An account's
    locks under one filter need at most as many of the first runs it admits as they sell
    tonnes; under several filters one lock may take what another's alone admits, so all."""
    needed: dict[int, tuple[CerFilter, int]] = {}
    mixed: set[int] = set()
    for lock in sells:
        only, tonnes = needed.get(lock.account_id, (lock.only, 0))
        if only != lock.only:
            mixed.add(lock.account_id)
        needed[lock.account_id] = (only, tonnes + lock.quantity_t)
    by_filter: dict[CerFilter, list[int]] = defaultdict(list)
    for account_id in sorted(needed.keys() - mixed):
        by_filter[needed[account_id][0]].append(account_id)
    available = await free_runs_by_account(conn, sorted(mixed)) if mixed else {}
    for only, accounts in by_filter.items():
        limits = [needed[account_id][1] for account_id in accounts]
        available |= await free_runs_by_account(conn, accounts, limits, only)
    return available


async def release_many(conn: Connection, txn_id: int, order_ids: Sequence[int]) -> tuple[int, ...]:
    """Free what is still locked to each order; the orders that had something left."""
    released, lines = await _release_many(conn, txn_id, order_ids)
    await post(conn, txn_id, lines)
    return released


async def _release_many(
    conn: Connection, txn_id: int, order_ids: Sequence[int]
) -> tuple[tuple[int, ...], list[Line]]:
    """`release_many` but for its cash lines, which the caller posts."""
    ids = sorted(set(order_ids))
    if not ids:
        return (), []
    owners = await conn.fetch(
        "SELECT account_id FROM cer_locks WHERE order_id = ANY($1::bigint[])"
        " UNION SELECT account_id FROM cash_locks WHERE order_id = ANY($1::bigint[])",
        ids,
    )
    await lock_accounts(conn, [row[0] for row in owners])
    runs = await order_runs(conn, ids)
    pieces = {
        run: [
            (
                SerialRange(run.block_id, run.first, run.last),
                Place(run.place.account_id, FREE, None),
            )
        ]
        for run in runs
    }
    await apply(conn, txn_id, plan(pieces))
    cash_left = await conn.fetch(
        "UPDATE cash_locks c SET remaining_fen = 0 FROM"
        " (SELECT order_id, remaining_fen FROM cash_locks"
        "  WHERE order_id = ANY($1::bigint[]) AND remaining_fen > 0 FOR UPDATE) AS old"
        " WHERE c.order_id = old.order_id RETURNING c.order_id, c.account_id, old.remaining_fen",
        ids,
    )
    lines: list[Line] = []
    for order_id, account_id, amount in cash_left:
        lines += (
            Line(account_id, LOCKED, -amount, order_id),
            Line(account_id, AVAILABLE, amount, order_id),
        )
    released = {run.place.order_id for run in runs} | {row[0] for row in cash_left}
    return tuple(sorted(order_id for order_id in released if order_id is not None)), lines


async def apply_batch(conn: Connection, txn_id: int, batch: Batch) -> BatchReport:
    """Locks, then adjustments, then trades, then releases, in one transaction (the caller's).

    Tonnes move step by step: a lock takes only tonnes free before the batch (or freed by an
    earlier batch). Cash moves are posted once for the whole batch, so a balance need only be
    non-negative after the batch's net change: a buy's cash lock may use cash that a release or a
    sale later in the same batch returns, as it did on the exchange, where the release or the sale
    came first. An adjustment taken before trades that preceded it gives the same result: a
    growth only adds to the lock, and a trim gives back from the end of the delivery order what
    those trades, taking from its start, leave. Every part is still idempotent (locks by order
    id, adjustments by id, trades by trade id, a release finds nothing the second time), and the
    batch's cash lines still sum to zero."""
    locked, lock_lines = await _lock_many(conn, txn_id, batch.locks)
    adjusted, adjust_lines = await adjust_many(conn, txn_id, batch.adjusts)
    settled, trade_lines = await dvp.settle_unposted(conn, txn_id, batch.trades)
    released, release_lines = await _release_many(conn, txn_id, batch.releases)
    await post(conn, txn_id, lock_lines + adjust_lines + trade_lines + release_lines)
    fresh = set(locked)
    return BatchReport(
        locked,
        tuple(lock.order_id for lock in batch.locks if lock.order_id not in fresh),
        settled.settled,
        settled.already_settled,
        released,
        adjusted,
    )
