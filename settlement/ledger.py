"""The ledger's front door: each write one transaction, each with an idempotency key.

A write first records its transaction under its key. If the key is already there, the write does
nothing and returns what the first one returned (a different request under a used key is
refused). Two writers racing with one key queue on the key's unique index, so the second sees the
first's result. A refused write rolls back whole: nothing half-written, and the key stays unused.
Settlement is keyed by trade id instead (see `settlement.dvp`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Awaitable, Callable, Collection, Sequence
from typing import Any, TypeVar

import msgspec

from settlement import accounts, audit, batches, cash, dvp, holdings, locks, moves, registry
from settlement.audit import AuditReport
from settlement.batches import Batch, BatchReport
from settlement.connection import Connection
from settlement.database import Database
from settlement.errors import ErrorCode, LedgerError
from settlement.values import (
    ANY_CER,
    HOLDER_ROLES,
    Account,
    Block,
    CashBalance,
    CashMoved,
    CerFilter,
    Holding,
    Methodology,
    Moved,
    Project,
    Released,
    Role,
    Selection,
    SettlementReport,
    TonneState,
    TradeToSettle,
)

T = TypeVar("T")
MAX_KEY_LENGTH = 200


class Ledger:
    """The unified-platform ledger on one database."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self._pool = database.pool

    async def _write(
        self,
        kind: str,
        key: str,
        request: tuple[Any, ...],
        result_type: type[T],
        action: Callable[[Connection, int], Awaitable[T]],
        conflict: ErrorCode = ErrorCode.IDEMPOTENCY_KEY_REUSED,
    ) -> T:
        if not 0 < len(key) <= MAX_KEY_LENGTH:
            raise LedgerError(
                ErrorCode.MALFORMED_ID, f"an idempotency key is 1..{MAX_KEY_LENGTH} characters"
            )
        request_hash = hashlib.sha256(msgspec.json.encode((kind, *request))).digest()
        async with self._pool.acquire() as conn:
            async with conn.transaction():
                txn_id = await conn.fetchval(
                    "INSERT INTO ledger_txns (kind, idempotency_key, request_hash)"
                    " VALUES ($1, $2, $3) ON CONFLICT (idempotency_key) DO NOTHING"
                    " RETURNING txn_id",
                    kind,
                    key,
                    request_hash,
                )
                if txn_id is not None:
                    result = await action(conn, txn_id)
                    await conn.execute(
                        "INSERT INTO txn_results (txn_id, result) VALUES ($1, $2)",
                        txn_id,
                        msgspec.json.encode(result),
                    )
                    return result
            row = await conn.fetchrow(
                "SELECT t.kind, t.request_hash, r.result FROM ledger_txns t"
                " JOIN txn_results r USING (txn_id) WHERE t.idempotency_key = $1",
                key,
            )
        if row is None or row["request_hash"] != request_hash:
            raise LedgerError(conflict, f"key {key!r} was used for a different request")
        return msgspec.json.decode(row["result"], type=result_type)

    # -- accounts and cash ---------------------------------------------------------------------

    async def open_account(self, key: str, name: str, roles: Collection[Role]) -> Account:
        ordered = sorted(set(roles))
        return await self._write(
            "open_account",
            key,
            (name, ordered),
            Account,
            lambda conn, _txn: accounts.open_account(conn, name, ordered),
        )

    async def account(self, account_id: int) -> Account:
        async with self._pool.acquire() as conn:
            return await accounts.get_account(conn, account_id)

    async def deposit(self, key: str, account_id: int, amount_fen: int) -> CashMoved:
        async def action(conn: Connection, txn_id: int) -> CashMoved:
            cash.require_positive(amount_fen)
            roles = await accounts.lock_accounts(conn, [account_id])
            accounts.require_role(roles, account_id, HOLDER_ROLES, "hold cash")
            await cash.deposit(conn, txn_id, account_id, amount_fen)
            return CashMoved(txn_id, account_id, amount_fen, await cash.balance(conn, account_id))

        return await self._write("deposit", key, (account_id, amount_fen), CashMoved, action)

    async def withdraw(self, key: str, account_id: int, amount_fen: int) -> CashMoved:
        async def action(conn: Connection, txn_id: int) -> CashMoved:
            cash.require_positive(amount_fen)
            await accounts.lock_accounts(conn, [account_id])
            await cash.withdraw(conn, txn_id, account_id, amount_fen)
            return CashMoved(txn_id, account_id, amount_fen, await cash.balance(conn, account_id))

        return await self._write("withdraw", key, (account_id, amount_fen), CashMoved, action)

    async def balance(self, account_id: int) -> CashBalance:
        async with self._pool.acquire() as conn:
            await accounts.get_account(conn, account_id)
            return await cash.balance(conn, account_id)

    # -- registry and issuance -----------------------------------------------------------------

    async def register_methodology(
        self, key: str, actor_id: int, methodology: Methodology
    ) -> Methodology:
        return await self._write(
            "register_methodology",
            key,
            (actor_id, methodology),
            Methodology,
            lambda conn, txn: registry.register_methodology(conn, txn, actor_id, methodology),
        )

    async def register_project(self, key: str, actor_id: int, project: Project) -> Project:
        return await self._write(
            "register_project",
            key,
            (actor_id, project),
            Project,
            lambda conn, txn: registry.register_project(conn, txn, actor_id, project),
        )

    async def project(self, code: str) -> Project:
        async with self._pool.acquire() as conn:
            return await registry.get_project(conn, code)

    async def blocks_of(self, project_code: str) -> set[str]:
        """The ids of the blocks issued for a project."""
        async with self._pool.acquire() as conn:
            rows = await conn.fetch("SELECT block_id FROM blocks WHERE project = $1", project_code)
        return {row[0] for row in rows}

    async def issue(
        self,
        key: str,
        actor_id: int,
        project: str,
        quantity_t: int,
        period_start: dt.date,
        period_end: dt.date,
    ) -> Block:
        return await self._write(
            "issue",
            key,
            (actor_id, project, quantity_t, period_start, period_end),
            Block,
            lambda conn, txn: registry.issue(
                conn, txn, actor_id, project, quantity_t, period_start, period_end
            ),
        )

    # -- holdings ------------------------------------------------------------------------------

    async def transfer(
        self, key: str, source_id: int, target_id: int, selection: Selection
    ) -> Moved:
        return await self._write(
            "transfer",
            key,
            (source_id, target_id, selection),
            Moved,
            lambda conn, txn: moves.transfer(conn, txn, source_id, target_id, selection),
        )

    async def finish(
        self,
        key: str,
        account_id: int,
        state: TonneState,
        selection: Selection,
        actor_id: int | None = None,
    ) -> Moved:
        """Retire, surrender or cancel tonnes: they never move again."""
        return await self._write(
            "finish",
            key,
            (account_id, state, selection, actor_id),
            Moved,
            lambda conn, txn: moves.finish(conn, txn, account_id, state, selection, actor_id),
        )

    async def holdings(self, account_id: int) -> list[Holding]:
        async with self._pool.acquire() as conn:
            await accounts.get_account(conn, account_id)
            return await holdings.list_holdings(conn, account_id)

    # -- locks and settlement ------------------------------------------------------------------

    async def lock_cers(
        self, order_id: int, account_id: int, quantity_t: int, only: CerFilter = ANY_CER
    ) -> Moved:
        """Lock tonnes for a sell order; locking the same order again returns the same lock."""
        return await self._write(
            "lock_cers",
            f"lock-cers/{order_id}",
            (order_id, account_id, quantity_t, only),
            Moved,
            lambda conn, txn: locks.lock_cers(conn, txn, order_id, account_id, quantity_t, only),
            conflict=ErrorCode.LOCK_EXISTS,
        )

    async def lock_cash(self, order_id: int, account_id: int, amount_fen: int) -> CashMoved:
        """Reserve cash for a buy order; locking the same order again returns the same lock."""

        async def action(conn: Connection, txn_id: int) -> CashMoved:
            await locks.lock_cash(conn, txn_id, order_id, account_id, amount_fen)
            return CashMoved(txn_id, account_id, amount_fen, await cash.balance(conn, account_id))

        return await self._write(
            "lock_cash",
            f"lock-cash/{order_id}",
            (order_id, account_id, amount_fen),
            CashMoved,
            action,
            conflict=ErrorCode.LOCK_EXISTS,
        )

    async def release(self, order_id: int) -> Released:
        """Free what is still locked to an order (after a cancel, or its last fill)."""
        async with self._pool.acquire() as conn, conn.transaction():
            txn_id = await _open_txn(conn, "release")
            return await locks.release(conn, txn_id, order_id)

    async def settle(self, trades: Sequence[TradeToSettle]) -> SettlementReport:
        """Settle a batch in one transaction; trades settled before are reported, not redone."""
        async with self._pool.acquire() as conn:
            tr = conn.transaction()
            await tr.start()
            try:
                txn_id = await _open_txn(conn, "settle")
                report = await dvp.settle(conn, txn_id, trades)
            except BaseException:
                await tr.rollback()
                raise
            if report.txn_id is None:
                await tr.rollback()  # nothing new: leave no empty transaction behind
            else:
                await tr.commit()
            return report

    async def apply(self, batch: Batch) -> BatchReport:
        """Apply the exchange's locks, adjustments, trades and releases in one transaction; what
        was done before (locks by order id, adjustments by id, trades by trade id) is reported
        and left alone."""
        async with self._pool.acquire() as conn:
            tr = conn.transaction()
            await tr.start()
            try:
                txn_id = await _open_txn(conn, "exchange_batch")
                report = await batches.apply_batch(conn, txn_id, batch)
            except BaseException:
                await tr.rollback()
                raise
            if report.locked or report.adjusted or report.settled or report.released:
                await tr.commit()
            else:
                await tr.rollback()  # nothing new: leave no empty transaction behind
            return report

    # -- writes of other packages under a key --------------------------------------------------

    async def keyed(
        self,
        kind: str,
        key: str,
        request: tuple[Any, ...],
        result_type: type[T],
        action: Callable[[Connection, int], Awaitable[T]],
    ) -> T:
        """Run `action` in one transaction under an idempotency key, as the ledger's own writes
        run: a repeat of `request` returns the first result, another request under the key is
        refused (`IDEMPOTENCY_KEY_REUSED`), and a failed action leaves the key unused. One key
        space for every write, so a key names one action whatever package made it."""
        return await self._write(kind, key, request, result_type, action)

    async def recorded(self, key: str) -> bool:
        """Whether a write under `key` has committed: a repeat of it would change nothing."""
        async with self._pool.acquire() as conn:
            found = await conn.fetchval("SELECT 1 FROM ledger_txns WHERE idempotency_key = $1", key)
        return found is not None

    # -- audit ---------------------------------------------------------------------------------

    async def audit(self) -> AuditReport:
        async with self._pool.acquire() as conn:
            return await audit.audit(conn)

    async def check(self) -> AuditReport:
        async with self._pool.acquire() as conn:
            return await audit.check(conn)


async def _open_txn(conn: Connection, kind: str) -> int:
    return int(
        await conn.fetchval("INSERT INTO ledger_txns (kind) VALUES ($1) RETURNING txn_id", kind)
    )
