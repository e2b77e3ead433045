"""The audit: proof that nothing was created, lost or counted twice.

- Tonnes: every block is partitioned by its runs into exactly 1..N (no gap, no serial in two
  places), and replaying the append-only serial entries from the first issuance rebuilds the runs
  exactly. Nothing ever leaves an end state.
- Cash: every transaction's lines sum to zero; each balance equals the sum of its lines; no
  balance but the external account's is negative; locked cash equals what the open cash locks
  still hold.
- Locks and trades: locked runs belong to the account that took the lock; each settlement
  transaction delivered exactly the tonnes its trades name.
- References: every history row names a transaction, account and block that exist (the history
  tables carry no foreign keys, see the first migration).
"""

from __future__ import annotations

from collections import Counter

import msgspec
from sortedcontainers import SortedDict

from settlement import points_audit
from settlement.connection import Connection
from settlement.values import EXTERNAL_ACCOUNT_ID, TERMINAL_STATES

Place = tuple[int, str, int | None]


class AuditReport(msgspec.Struct):
    blocks: int
    issued_t: int
    tonnes_by_state: dict[str, int]
    cash_inside_fen: int
    serial_entries: int
    cash_entries: int
    settled_trades: int
    problems: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems


class AuditError(Exception):
    def __init__(self, report: AuditReport) -> None:
        super().__init__("ledger audit failed:\n  " + "\n  ".join(report.problems[:20]))
        self.report = report


_PARTITION = """
SELECT block_id, quantity_t, count(h.first_serial) AS runs,
       coalesce(sum(last_serial - first_serial + 1), 0) AS held,
       coalesce(max(last_serial), 0) AS top,
       count(*) FILTER (WHERE h.first_serial <> coalesce(h.prev, 0) + 1) AS breaks
FROM blocks b LEFT JOIN (
    SELECT block_id, first_serial, last_serial,
           lag(last_serial) OVER (PARTITION BY block_id ORDER BY first_serial) AS prev
    FROM holdings) h USING (block_id)
GROUP BY block_id, quantity_t
HAVING coalesce(sum(last_serial - first_serial + 1), 0) <> quantity_t
    OR coalesce(max(last_serial), 0) <> quantity_t
    OR count(*) FILTER (WHERE h.first_serial <> coalesce(h.prev, 0) + 1) > 0
LIMIT 20
"""

_ORPHANS = """
SELECT 'settled_trades', trade_id, 'transaction', txn_id FROM settled_trades
    WHERE txn_id NOT IN (SELECT txn_id FROM ledger_txns)
UNION ALL SELECT 'settled_trades', trade_id, 'account', buyer_id FROM settled_trades
    WHERE buyer_id NOT IN (SELECT account_id FROM accounts)
UNION ALL SELECT 'settled_trades', trade_id, 'account', seller_id FROM settled_trades
    WHERE seller_id NOT IN (SELECT account_id FROM accounts)
UNION ALL SELECT 'serial_entries', entry_id, 'transaction', txn_id FROM serial_entries
    WHERE txn_id NOT IN (SELECT txn_id FROM ledger_txns)
UNION ALL SELECT 'serial_entries', entry_id, 'block', NULL FROM serial_entries
    WHERE block_id NOT IN (SELECT block_id FROM blocks)
UNION ALL SELECT 'cash_entries', entry_id, 'transaction', txn_id FROM cash_entries
    WHERE txn_id NOT IN (SELECT txn_id FROM ledger_txns)
UNION ALL SELECT 'cash_entries', entry_id, 'account', account_id FROM cash_entries
    WHERE account_id NOT IN (SELECT account_id FROM accounts)
LIMIT 20
"""

_CASH_TXNS = """
SELECT txn_id, sum(amount_fen) FROM cash_entries GROUP BY txn_id
HAVING sum(amount_fen) <> 0 LIMIT 20
"""

_CASH_BALANCES = """
SELECT coalesce(b.account_id, e.account_id), coalesce(b.bucket, e.bucket), b.balance_fen, e.total
FROM cash_balances b FULL JOIN (
    SELECT account_id, bucket, sum(amount_fen) AS total FROM cash_entries GROUP BY 1, 2) e
  ON b.account_id = e.account_id AND b.bucket = e.bucket
WHERE coalesce(b.balance_fen, 0) <> coalesce(e.total, 0)
   OR (b.balance_fen < 0 AND b.account_id <> $1)
LIMIT 20
"""

_CASH_LOCKS = """
SELECT coalesce(b.account_id, l.account_id), b.balance_fen, l.remaining
FROM (SELECT account_id, balance_fen FROM cash_balances WHERE bucket = 'locked') b
FULL JOIN (SELECT account_id, sum(remaining_fen) AS remaining FROM cash_locks GROUP BY 1) l
  ON b.account_id = l.account_id
WHERE coalesce(b.balance_fen, 0) <> coalesce(l.remaining, 0)
LIMIT 20
"""

_CER_LOCKS = """
SELECT h.block_id, h.first_serial, h.account_id, h.order_id, c.account_id
FROM holdings h LEFT JOIN cer_locks c USING (order_id)
WHERE h.state = 'locked' AND c.account_id IS DISTINCT FROM h.account_id
LIMIT 20
"""

_SETTLEMENTS = """
SELECT t.txn_id, t.traded, coalesce(d.delivered, 0)
FROM (SELECT txn_id, sum(quantity_t) AS traded FROM settled_trades GROUP BY 1) t
LEFT JOIN (SELECT txn_id, sum(last_serial - first_serial + 1) AS delivered FROM serial_entries
           WHERE from_state = 'locked' AND to_state = 'free' AND from_account <> to_account
           GROUP BY 1) d USING (txn_id)
WHERE t.traded <> coalesce(d.delivered, 0)
LIMIT 20
"""


async def audit(conn: Connection) -> AuditReport:
    """Check every invariant in one repeatable-read snapshot; the report lists what failed."""
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        problems: list[str] = []
        for row in await conn.fetch(_PARTITION):
            problems.append(
                f"block {row['block_id']}: {row['held']} t in {row['runs']} runs reaching"
                f" {row['top']} with {row['breaks']} gaps or overlaps, issued {row['quantity_t']}"
            )
        for table, row_id, what, ref in await conn.fetch(_ORPHANS):
            problems.append(f"{table} row {row_id} names {what} {ref or '?'}, which does not exist")
        for txn_id, total in await conn.fetch(_CASH_TXNS):
            problems.append(f"cash transaction {txn_id} does not balance: {total} fen")
        for account_id, bucket, balance, total in await conn.fetch(
            _CASH_BALANCES, EXTERNAL_ACCOUNT_ID
        ):
            problems.append(f"cash {account_id}/{bucket}: balance {balance}, journal {total}")
        for account_id, locked, remaining in await conn.fetch(_CASH_LOCKS):
            problems.append(
                f"cash locked of {account_id}: {locked} fen, open locks hold {remaining}"
            )
        for block_id, first, holder, order_id, locker in await conn.fetch(_CER_LOCKS):
            problems.append(
                f"{block_id} from {first}: locked to order {order_id} of account {locker},"
                f" held by {holder}"
            )
        for txn_id, traded, delivered in await conn.fetch(_SETTLEMENTS):
            problems.append(f"settlement {txn_id}: trades {traded} t, delivered {delivered} t")
        problems += await _replay(conn)
        problems += await points_audit.problems(conn)
        totals = await conn.fetchrow(
            "SELECT (SELECT count(*) FROM blocks),"
            " (SELECT coalesce(sum(quantity_t), 0)::bigint FROM blocks),"
            " (SELECT count(*) FROM serial_entries), (SELECT count(*) FROM cash_entries),"
            " (SELECT count(*) FROM settled_trades),"
            " (SELECT coalesce(-sum(balance_fen), 0)::bigint FROM cash_balances"
            "  WHERE account_id = $1)",
            EXTERNAL_ACCOUNT_ID,
        )
        assert totals is not None
        by_state = await conn.fetch(
            "SELECT state, sum(last_serial - first_serial + 1)::bigint FROM holdings GROUP BY state"
        )
    return AuditReport(
        blocks=totals[0],
        issued_t=totals[1],
        tonnes_by_state={row[0]: row[1] for row in by_state},
        cash_inside_fen=totals[5],
        serial_entries=totals[2],
        cash_entries=totals[3],
        settled_trades=totals[4],
        problems=problems,
    )


async def check(conn: Connection) -> AuditReport:
    """`audit`, raising `AuditError` unless every invariant holds."""
    report = await audit(conn)
    if not report.ok:
        raise AuditError(report)
    return report


async def _replay(conn: Connection) -> list[str]:
    """Rebuild the runs from the serial entries and compare them with the holdings table."""
    problems: list[str] = []
    blocks: dict[str, SortedDict] = {}  # block -> first -> (last, place)
    async with conn.transaction():
        cursor = conn.cursor(
            "SELECT entry_id, block_id, first_serial, last_serial, from_account, from_state,"
            " from_order, to_account, to_state, to_order FROM serial_entries ORDER BY entry_id",
            prefetch=10_000,
        )
        async for row in cursor:
            entry, block_id, first, last = row[0], row[1], row[2], row[3]
            source: Place | None = None if row[4] is None else (row[4], row[5], row[6])
            target: Place = (row[7], row[8], row[9])
            runs = blocks.setdefault(block_id, SortedDict())
            error = _apply(runs, first, last, source, target)
            if error:
                problems.append(f"serial entry {entry} ({block_id} {first}..{last}): {error}")
                if len(problems) >= 20:
                    return problems
    actual: Counter[tuple[str, int, int, int, str, int | None]] = Counter()
    for row in await conn.fetch(
        "SELECT block_id, first_serial, last_serial, account_id, state, order_id FROM holdings"
    ):
        actual[(row[0], row[1], row[2], row[3], row[4], row[5])] += 1
    rebuilt: Counter[tuple[str, int, int, int, str, int | None]] = Counter()
    for block_id, runs in blocks.items():
        for first, (last, place) in runs.items():
            rebuilt[(block_id, first, last, *place)] += 1
    for run in sorted((actual - rebuilt).keys())[:10]:
        problems.append(f"holdings run {run} is not what the entries build")
    for run in sorted((rebuilt - actual).keys())[:10]:
        problems.append(f"the entries build run {run}, missing from holdings")
    return problems


def _apply(runs: SortedDict, first: int, last: int, source: Place | None, target: Place) -> str:
    if source is None:
        if runs:
            return "issued into a block that already has serials"
        runs[first] = (last, target)
        return ""
    index = runs.bisect_right(first) - 1
    if index < 0:
        return "moves serials nobody holds"
    start, (end, place) = runs.peekitem(index)
    if end < last:
        return f"crosses the run {start}..{end}"
    if place != source:
        return f"says it moves from {source}, the serials are at {place}"
    if place[1] in TERMINAL_STATES:
        return f"moves serials out of the end state {place[1]}"
    del runs[start]
    if start < first:
        runs[start] = (first - 1, place)
    runs[first] = (last, target)
    if last < end:
        runs[last + 1] = (end, place)
    return ""
