"""Delivery versus payment: a batch of trades settled in one transaction, each exactly once.

For each trade the seller's tonnes locked to the sell order go to the buyer, the buyer's cash
locked to the buy order pays the seller, and each side's fee goes to the exchange fee account.
A trade id settles once: the batch records its trades first (`ON CONFLICT DO NOTHING`), settles
only the ones that were new, and reports the rest as already settled — after checking that they
are the same trades, since one id with two contents means the caller has lost track.

Everything is set-based: a fixed number of statements per batch whatever its size.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from matching.rules import round_half_up
from settlement.accounts import lock_accounts, require_role
from settlement.cash import AVAILABLE, LOCKED, Line, post
from settlement.connection import Connection
from settlement.errors import ErrorCode, LedgerError
from settlement.holdings import FREE, apply, order_runs
from settlement.serials import Place, Run, plan
from settlement.values import (
    FEE_ACCOUNT_ID,
    HOLDER_ROLES,
    SerialRange,
    SettlementReport,
    TradeToSettle,
)

BASIS_POINTS = 10_000
MAX_FEE_BP = 1_000  # 10 %: anything above is a mistake in the instrument's set-up

_STORED = (
    "trade_id, buy_order_id, sell_order_id, buyer_id, seller_id, price_fen, quantity_t,"
    " buyer_fee_fen, seller_fee_fen"
)


def fees(trade: TradeToSettle) -> tuple[int, int]:
    """Buyer's and seller's fee in fen: notional × rate, rounded half-up to the fen."""
    notional = trade.price_fen * trade.quantity_t
    return (
        round_half_up(notional * trade.buyer_fee_bp, BASIS_POINTS),
        round_half_up(notional * trade.seller_fee_bp, BASIS_POINTS),
    )


def _row(trade: TradeToSettle) -> tuple[int, ...]:
    return (
        trade.trade_id,
        trade.buy_order_id,
        trade.sell_order_id,
        trade.buyer_id,
        trade.seller_id,
        trade.price_fen,
        trade.quantity_t,
        *fees(trade),
    )


def _check(trade: TradeToSettle) -> None:
    what = f"trade {trade.trade_id}"
    if min(trade.trade_id, trade.buy_order_id, trade.sell_order_id) <= 0:
        raise LedgerError(ErrorCode.MALFORMED_ID, f"{what}: ids are positive")
    if trade.buyer_id == trade.seller_id:
        raise LedgerError(ErrorCode.SAME_ACCOUNT, f"{what}: buyer and seller are one account")
    if trade.price_fen <= 0:
        raise LedgerError(ErrorCode.PRICE_MUST_BE_POSITIVE, f"{what}: price {trade.price_fen}")
    if trade.quantity_t <= 0:
        raise LedgerError(
            ErrorCode.QUANTITY_MUST_BE_POSITIVE, f"{what}: quantity {trade.quantity_t}"
        )
    for rate in (trade.buyer_fee_bp, trade.seller_fee_bp):
        if not 0 <= rate <= MAX_FEE_BP:
            raise LedgerError(
                ErrorCode.FEE_RATE_OUT_OF_RANGE, f"{what}: fee {rate} bp, not 0..{MAX_FEE_BP}"
            )


def _unique(trades: Sequence[TradeToSettle]) -> list[TradeToSettle]:
    by_id: dict[int, TradeToSettle] = {}
    for trade in trades:
        _check(trade)
        seen = by_id.setdefault(trade.trade_id, trade)
        if seen != trade:
            raise LedgerError(
                ErrorCode.TRADE_CONFLICT, f"trade {trade.trade_id} appears twice, differently"
            )
    return sorted(by_id.values(), key=lambda trade: trade.trade_id)


async def _record(conn: Connection, txn_id: int, trades: list[TradeToSettle]) -> set[int]:
    """Record the trades; the ids that were new. Known ids must match what was recorded."""
    rows = [_row(trade) for trade in trades]
    columns = list(zip(*rows, strict=True))
    new = await conn.fetch(
        f"INSERT INTO settled_trades (txn_id, {_STORED}) SELECT $1, * FROM unnest("
        "$2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[], $7::bigint[],"
        " $8::bigint[], $9::bigint[], $10::bigint[]) ON CONFLICT (trade_id) DO NOTHING"
        " RETURNING trade_id",
        txn_id,
        *[list(column) for column in columns],
    )
    new_ids = {row[0] for row in new}
    known = [row for row in rows if row[0] not in new_ids]
    if known:
        stored = await conn.fetch(
            f"SELECT {_STORED} FROM settled_trades WHERE trade_id = ANY($1::bigint[])",
            [row[0] for row in known],
        )
        by_id = {row[0]: tuple(row) for row in stored}
        for row in known:
            if by_id[row[0]] != row:
                raise LedgerError(
                    ErrorCode.TRADE_CONFLICT,
                    f"trade {row[0]} was settled with different terms",
                )
    return new_ids


class _Delivery:
    """The runs locked to each sell order, consumed from the front as trades deliver them."""

    def __init__(self, runs: list[Run]) -> None:
        self._queues: dict[int, list[Run]] = {}
        for run in runs:
            assert run.place.order_id is not None
            self._queues.setdefault(run.place.order_id, []).append(run)
        self._position: dict[int, tuple[int, int]] = {}  # order -> (run index, serials used)
        self.pieces: dict[Run, list[tuple[SerialRange, Place]]] = {}

    def deliver(self, trade: TradeToSettle) -> None:
        queue = self._queues.get(trade.sell_order_id, [])
        index, used = self._position.get(trade.sell_order_id, (0, 0))
        target = Place(trade.buyer_id, FREE, None)
        wanted = trade.quantity_t
        while wanted:
            if index == len(queue):
                raise LedgerError(
                    ErrorCode.LOCK_INSUFFICIENT,
                    f"trade {trade.trade_id}: sell order {trade.sell_order_id} has fewer than"
                    f" {trade.quantity_t} tonnes locked",
                )
            run = queue[index]
            if run.place.account_id != trade.seller_id:
                raise LedgerError(
                    ErrorCode.LOCK_INSUFFICIENT,
                    f"trade {trade.trade_id}: sell order {trade.sell_order_id} locks tonnes of"
                    f" account {run.place.account_id}, not of seller {trade.seller_id}",
                )
            first = run.first + used
            size = min(run.last - first + 1, wanted)
            pieces = self.pieces.setdefault(run, [])
            if pieces and pieces[-1][1] == target and pieces[-1][0].last + 1 == first:
                # the same buyer again on the next serials: one run, one entry, not two
                pieces[-1] = (
                    SerialRange(run.block_id, pieces[-1][0].first, first + size - 1),
                    target,
                )
            else:
                pieces.append((SerialRange(run.block_id, first, first + size - 1), target))
            wanted -= size
            used += size
            if first + size > run.last:
                index, used = index + 1, 0
        self._position[trade.sell_order_id] = (index, used)


async def _cash_locks(conn: Connection, order_ids: list[int]) -> dict[int, list[int]]:
    rows = await conn.fetch(
        "SELECT order_id, account_id, remaining_fen FROM cash_locks"
        " WHERE order_id = ANY($1::bigint[]) FOR UPDATE",
        order_ids,
    )
    return {row[0]: [row[1], row[2]] for row in rows}


async def settle(
    conn: Connection, txn_id: int, trades: Sequence[TradeToSettle]
) -> SettlementReport:
    report, lines = await settle_unposted(conn, txn_id, trades)
    await post(conn, txn_id, lines)
    return report


async def settle_unposted(
    conn: Connection, txn_id: int, trades: Sequence[TradeToSettle]
) -> tuple[SettlementReport, list[Line]]:
    """`settle` but for its cash lines, which the caller posts (with others of the same
    transaction, so that only each balance's net change must keep it non-negative)."""
    batch = _unique(trades)
    if not batch:
        return SettlementReport((), (), None), []
    # Lock before recording: an unknown account is refused by name, not by a foreign key.
    roles = await lock_accounts(conn, {t.buyer_id for t in batch} | {t.seller_id for t in batch})
    new_ids = await _record(conn, txn_id, batch)
    fresh = [trade for trade in batch if trade.trade_id in new_ids]
    repeated = tuple(trade.trade_id for trade in batch if trade.trade_id not in new_ids)
    if not fresh:
        return SettlementReport((), repeated, None), []
    for trade in fresh:
        require_role(roles, trade.buyer_id, HOLDER_ROLES, "buy")
    delivery = _Delivery(await order_runs(conn, sorted({t.sell_order_id for t in fresh})))
    locks = await _cash_locks(conn, sorted({t.buy_order_id for t in fresh}))
    # One journal line per account, bucket and order for the whole batch, not three per trade:
    # settled_trades keeps each trade's own price, quantity and fees.
    amounts: defaultdict[tuple[int, str, int | None], int] = defaultdict(int)
    for trade in fresh:
        delivery.deliver(trade)
        buyer_fee, seller_fee = fees(trade)
        notional = trade.price_fen * trade.quantity_t
        lock = locks.get(trade.buy_order_id)
        if lock is None or lock[0] != trade.buyer_id or lock[1] < notional + buyer_fee:
            raise LedgerError(
                ErrorCode.LOCK_INSUFFICIENT,
                f"trade {trade.trade_id}: buy order {trade.buy_order_id} of account"
                f" {trade.buyer_id} has less than {notional + buyer_fee} fen locked",
            )
        lock[1] -= notional + buyer_fee
        amounts[trade.buyer_id, LOCKED, trade.buy_order_id] -= notional + buyer_fee
        amounts[trade.seller_id, AVAILABLE, trade.sell_order_id] += notional - seller_fee
        amounts[FEE_ACCOUNT_ID, AVAILABLE, None] += buyer_fee + seller_fee
    await apply(conn, txn_id, plan(delivery.pieces))
    lines = [
        Line(account, bucket, amount, order) for (account, bucket, order), amount in amounts.items()
    ]
    await conn.execute(
        "UPDATE cash_locks SET remaining_fen = v.remaining FROM"
        " unnest($1::bigint[], $2::bigint[]) AS v(order_id, remaining)"
        " WHERE cash_locks.order_id = v.order_id",
        list(locks),
        [lock[1] for lock in locks.values()],
    )
    return SettlementReport(tuple(t.trade_id for t in fresh), repeated, txn_id), lines
