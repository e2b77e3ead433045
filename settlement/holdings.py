"""Holdings as serial runs: reading them, choosing tonnes, and applying moves.

Tonnes are chosen oldest vintage first, then by block and serial, unless the holder names the
ranges. Callers hold the write lock of every account whose runs they read here.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import asyncpg

from settlement.connection import Connection
from settlement.errors import ErrorCode, LedgerError
from settlement.serials import Place, Plan, Run, containing, cut, disjoint, merged, take
from settlement.values import (
    ANY_CER,
    BlockInfo,
    ByBlocks,
    ByQuantity,
    ByRanges,
    CerFilter,
    Holding,
    Selection,
    SerialRange,
    TonneState,
)

FREE = TonneState.FREE.value
LOCKED = TonneState.LOCKED.value

_RUNS = (
    "SELECT h.block_id, h.first_serial, h.last_serial, h.account_id, h.state, h.order_id"
    " FROM holdings h JOIN blocks b USING (block_id) JOIN projects p ON p.code = b.project"
)
_ORDER = " ORDER BY b.vintage, h.block_id, h.first_serial"


def _runs(rows: Sequence[asyncpg.Record]) -> list[Run]:
    return [Run(row[0], row[1], row[2], Place(row[3], row[4], row[5])) for row in rows]


async def free_runs(
    conn: Connection,
    account_id: int,
    only: CerFilter = ANY_CER,
    blocks: Sequence[str] = (),
) -> list[Run]:
    """The account's free runs passing `only` (and in `blocks`, if given), in the order tonnes
    are taken."""
    rows = await conn.fetch(
        _RUNS + " WHERE h.account_id = $1 AND h.state = 'free'"
        " AND (cardinality($2::int[]) = 0 OR b.vintage = ANY($2::int[]))"
        " AND (cardinality($3::text[]) = 0 OR p.methodology = ANY($3::text[]))"
        " AND (cardinality($4::text[]) = 0 OR b.project = ANY($4::text[]))"
        " AND (cardinality($5::text[]) = 0 OR h.block_id = ANY($5::text[]))" + _ORDER,
        account_id,
        list(only.vintages),
        list(only.methodologies),
        list(only.projects),
        list(blocks),
    )
    return _runs(rows)


async def order_runs(conn: Connection, order_ids: Sequence[int]) -> list[Run]:
    """The runs locked to any of `order_ids`, in the order they are delivered."""
    rows = await conn.fetch(
        _RUNS + " WHERE h.order_id = ANY($1::bigint[])" + _ORDER, list(order_ids)
    )
    return _runs(rows)


async def free_runs_by_account(
    conn: Connection,
    account_ids: Sequence[int],
    at_most: Sequence[int | None] | None = None,
    only: CerFilter = ANY_CER,
) -> dict[int, list[tuple[Run, BlockInfo]]]:
    """Each account's free runs that `only` admits, with what a CER filter checks, oldest
    vintage first: only the first `at_most[i]` of account `account_ids[i]`'s (all of them where
    it is None).

    Holdings fragment as tonnes change hands a few at a time, so an active trader may hold
    thousands of runs; a batch selling n tonnes of an account under one filter needs at most the
    first n runs it admits (each holds a tonne or more), and fetching all of them made every
    batch cost what the account had ever traded."""
    rows = await conn.fetch(
        "SELECT r.* FROM unnest($1::bigint[], $2::bigint[]) AS need(account_id, runs)"
        " CROSS JOIN LATERAL (SELECT h.block_id, h.first_serial, h.last_serial, h.account_id,"
        "  b.vintage, p.methodology, b.project FROM holdings h JOIN blocks b USING (block_id)"
        "  JOIN projects p ON p.code = b.project"
        "  WHERE h.account_id = need.account_id AND h.state = 'free'"
        "  AND (cardinality($3::int[]) = 0 OR b.vintage = ANY($3::int[]))"
        "  AND (cardinality($4::text[]) = 0 OR p.methodology = ANY($4::text[]))"
        "  AND (cardinality($5::text[]) = 0 OR b.project = ANY($5::text[]))"
        "  ORDER BY b.vintage, h.block_id, h.first_serial LIMIT need.runs) AS r",
        list(account_ids),
        list(at_most) if at_most is not None else [None] * len(account_ids),
        list(only.vintages),
        list(only.methodologies),
        list(only.projects),
    )
    runs: dict[int, list[tuple[Run, BlockInfo]]] = defaultdict(list)
    for row in rows:
        run = Run(row[0], row[1], row[2], Place(row[3], FREE, None))
        runs[row[3]].append((run, BlockInfo(row[4], row[5], row[6])))
    return runs


def check_ranges(ranges: Sequence[SerialRange]) -> None:
    if not ranges:
        raise LedgerError(ErrorCode.MALFORMED_RANGE, "name at least one serial range")
    for item in ranges:
        if not 1 <= item.first <= item.last:
            raise LedgerError(
                ErrorCode.MALFORMED_RANGE,
                f"{item.block_id} {item.first}..{item.last}: serials run 1.. and first <= last",
            )
    if not disjoint(ranges):
        raise LedgerError(ErrorCode.MALFORMED_RANGE, "the named ranges overlap")


async def select(
    conn: Connection, account_id: int, selection: Selection
) -> dict[Run, list[SerialRange]]:
    """The account's free tonnes that `selection` names, per run; refused if it holds fewer."""
    if isinstance(selection, ByQuantity):
        if selection.quantity_t <= 0:
            raise LedgerError(
                ErrorCode.QUANTITY_MUST_BE_POSITIVE, f"quantity {selection.quantity_t} t"
            )
        chosen = take(await free_runs(conn, account_id, selection.only), selection.quantity_t)
        if chosen is None:
            raise LedgerError(
                ErrorCode.INSUFFICIENT_HOLDINGS,
                f"account {account_id} holds fewer than {selection.quantity_t} free tonnes"
                " that qualify",
            )
        return chosen
    if isinstance(selection, ByBlocks):
        return await _select_blocks(conn, account_id, selection)
    if isinstance(selection, ByRanges):
        check_ranges(selection.ranges)
        blocks = sorted({item.block_id for item in selection.ranges})
        runs = await free_runs(conn, account_id, blocks=blocks)
        pieces = cut(runs, selection.ranges)  # a range may span touching runs
        found = containing(runs, [piece for piece, _ in pieces])
        held = {piece for found_pieces in found.values() for piece in found_pieces}
        for piece, item in pieces:
            if piece not in held:
                raise LedgerError(
                    ErrorCode.RANGE_NOT_HELD,
                    f"account {account_id} does not hold {item.block_id}"
                    f" {item.first}..{item.last} free",
                )
        return found
    raise LedgerError(
        ErrorCode.SELECTION_MUST_BE_QUANTITY_OR_RANGES, "select by quantity or by ranges"
    )


async def _select_blocks(
    conn: Connection, account_id: int, selection: ByBlocks
) -> dict[Run, list[SerialRange]]:
    blocks = [block for block, _ in selection.quantities]
    if not blocks or len(set(blocks)) != len(blocks):
        raise LedgerError(ErrorCode.MALFORMED_RANGE, "name each block once, at least one")
    runs = await free_runs(conn, account_id, blocks=blocks)
    chosen: dict[Run, list[SerialRange]] = {}
    for block, tonnes in selection.quantities:
        if tonnes <= 0:
            raise LedgerError(ErrorCode.QUANTITY_MUST_BE_POSITIVE, f"{tonnes} t of {block}")
        taken = take((run for run in runs if run.block_id == block), tonnes)
        if taken is None:
            raise LedgerError(
                ErrorCode.INSUFFICIENT_HOLDINGS,
                f"account {account_id} holds fewer than {tonnes} free tonnes of {block}",
            )
        chosen.update(taken)
    return chosen


async def apply(conn: Connection, txn_id: int, plan: Plan) -> None:
    """Write a plan: delete the runs it cuts, insert the pieces, record the moves."""
    if not (plan.deleted or plan.inserted or plan.moves):
        return  # nothing moves: no statement need run
    await conn.execute(
        "DELETE FROM holdings WHERE (block_id, first_serial) IN"
        " (SELECT * FROM unnest($1::text[], $2::bigint[]))",
        [key[0] for key in plan.deleted],
        [key[1] for key in plan.deleted],
    )
    inserted = plan.inserted
    await conn.execute(
        "INSERT INTO holdings (block_id, first_serial, last_serial, account_id, state, order_id)"
        " SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[], $5::text[],"
        " $6::bigint[])",
        [run.block_id for run in inserted],
        [run.first for run in inserted],
        [run.last for run in inserted],
        [run.place.account_id for run in inserted],
        [run.place.state for run in inserted],
        [run.place.order_id for run in inserted],
    )
    moves = plan.moves
    await conn.execute(
        "INSERT INTO serial_entries (txn_id, block_id, first_serial, last_serial, from_account,"
        " from_state, from_order, to_account, to_state, to_order)"
        " SELECT $1, * FROM unnest($2::text[], $3::bigint[], $4::bigint[], $5::bigint[],"
        " $6::text[], $7::bigint[], $8::bigint[], $9::text[], $10::bigint[])",
        txn_id,
        [move.block_id for move in moves],
        [move.first for move in moves],
        [move.last for move in moves],
        [move.source.account_id for move in moves],
        [move.source.state for move in moves],
        [move.source.order_id for move in moves],
        [move.target.account_id for move in moves],
        [move.target.state for move in moves],
        [move.target.order_id for move in moves],
    )


def moved_ranges(plan: Plan) -> tuple[SerialRange, ...]:
    return tuple(merged(SerialRange(m.block_id, m.first, m.last) for m in plan.moves))


async def list_holdings(conn: Connection, account_id: int) -> list[Holding]:
    """Everything the account holds or held to the end, touching runs joined for reading."""
    rows = await conn.fetch(
        "SELECT h.block_id, h.first_serial, h.last_serial, h.state, h.order_id, b.project,"
        " p.methodology, b.vintage"
        " FROM holdings h JOIN blocks b USING (block_id) JOIN projects p ON p.code = b.project"
        " WHERE h.account_id = $1 ORDER BY h.state, b.vintage, h.block_id, h.first_serial",
        account_id,
    )
    out: list[Holding] = []
    for row in rows:
        block_id, first, last, state, order_id = row[0], row[1], row[2], row[3], row[4]
        prev = out[-1] if out else None
        if (
            prev is not None
            and (prev.block_id, prev.state, prev.order_id) == (block_id, state, order_id)
            and prev.last + 1 == first
        ):
            out[-1] = Holding(
                block_id,
                prev.first,
                last,
                last - prev.first + 1,
                prev.state,
                order_id,
                prev.project,
                prev.methodology,
                prev.vintage,
            )
        else:
            out.append(
                Holding(
                    block_id,
                    first,
                    last,
                    last - first + 1,
                    TonneState(state),
                    order_id,
                    row[5],
                    row[6],
                    row[7],
                )
            )
    return out
