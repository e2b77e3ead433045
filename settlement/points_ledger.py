"""The points ledger's front door: each write one transaction under an idempotency key.

A distribution or redemption batch is keyed by the aggregator's own batch id
(`points/<aggregator>/<batch id>`), so resending a batch after a timeout applies it once, and a
different batch under a used id is refused (`IDEMPOTENCY_KEY_REUSED`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from settlement import points
from settlement.connection import Connection
from settlement.ledger import Ledger
from settlement.points import BatchDone, Distribution, PointIssuance, PointsRule, Pool, Redemption
from settlement.values import ByBlocks


class PointsLedger:
    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self._pool = ledger.database.pool

    async def register_aggregator(
        self, key: str, regulator_id: int, account_id: int, declaration: str
    ) -> int:
        async def action(conn: Connection, txn_id: int) -> int:
            await points.register_aggregator(conn, txn_id, regulator_id, account_id, declaration)
            return account_id

        return await self.ledger.keyed(
            "register_aggregator", key, (regulator_id, account_id, declaration), int, action
        )

    async def authorise(
        self, key: str, aggregator_id: int, user_refs: Sequence[str], granted: bool
    ) -> int:
        refs = tuple(user_refs)
        return await self.ledger.keyed(
            "authorise_aggregator",
            key,
            (aggregator_id, refs, granted),
            int,
            lambda conn, txn: points.authorise(conn, txn, aggregator_id, refs, granted),
        )

    async def publish_rule(
        self, key: str, regulator_id: int, points_per_t: int, effective_from: dt.date
    ) -> PointsRule:
        return await self.ledger.keyed(
            "publish_points_rule",
            key,
            (regulator_id, points_per_t, effective_from),
            PointsRule,
            lambda conn, txn: points.publish_rule(
                conn, txn, regulator_id, points_per_t, effective_from
            ),
        )

    async def issue(
        self,
        key: str,
        operator_id: int,
        aggregator_id: int,
        project: str,
        quantity_t: int,
        on: dt.date,
        take: ByBlocks | None = None,
    ) -> PointIssuance:
        """Convert tonnes into points; `take` names them block by block (see `points.issue`),
        outside the request a repeat must match."""
        return await self.ledger.keyed(
            "issue_points",
            key,
            (operator_id, aggregator_id, project, quantity_t),
            PointIssuance,
            lambda conn, txn: points.issue(
                conn, txn, operator_id, aggregator_id, project, quantity_t, on, take
            ),
        )

    async def distribute(
        self,
        aggregator_id: int,
        batch_id: str,
        rule_version: int,
        items: Sequence[Distribution],
    ) -> BatchDone:
        return await self.ledger.keyed(
            "distribute_points",
            f"points/{aggregator_id}/{batch_id}",
            (rule_version, items),
            BatchDone,
            lambda conn, txn: points.distribute(conn, txn, aggregator_id, rule_version, items),
        )

    async def redeem(
        self, aggregator_id: int, batch_id: str, items: Sequence[Redemption]
    ) -> BatchDone:
        return await self.ledger.keyed(
            "redeem_points",
            f"points/{aggregator_id}/{batch_id}",
            (items,),
            BatchDone,
            lambda conn, txn: points.redeem(conn, txn, aggregator_id, items),
        )

    async def pools(self, aggregator_id: int | None = None) -> list[Pool]:
        async with self._pool.acquire() as conn:
            return await points.pools(conn, aggregator_id)

    async def balance(self, aggregator_id: int, user_ref: str) -> int:
        async with self._pool.acquire() as conn:
            return await points.balance(conn, aggregator_id, user_ref)

    async def rule_in_effect(self, on: dt.date) -> PointsRule:
        async with self._pool.acquire() as conn:
            return await points.rule_in_effect(conn, on)
