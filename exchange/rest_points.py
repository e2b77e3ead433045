"""REST for carbon points (Arts. 16-20): the regulator registers aggregators and publishes the
CER-to-points rule, the operator issues points against converted tonnes, an aggregator records
its users' authorisations and sends distribution and redemption batches, and the public reads
aggregates. Points are not money: there is no transfer between users, and asking for one is
refused (`POINTS_NOT_TRANSFERABLE`).

A batch is keyed by its own `batch_id` (resending it applies it once); its items are compact
arrays, `[user_ref, points]` or `[user_ref, points, reference]`, so ten thousand fit a request.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import msgspec

from exchange.endpoint import Call
from exchange.protocol import END
from exchange.rest_fields import LINES, PRINTABLE, Code, Id, Tonnes
from exchange.rest_offsets import today
from settlement.errors import ErrorCode, LedgerError
from settlement.points import BatchDone, Distribution, PointIssuance, PointsRule, Pool, Redemption
from settlement.points_ledger import PointsLedger
from settlement.values import ByBlocks, ByQuantity, Selection

UserRef = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=PRINTABLE)]
Points = Annotated[int, msgspec.Meta(ge=1, le=10**12)]
BatchId = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_.:-]{1,64}" + END)]
MAX_ITEMS = 50_000


class AggregatorBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    account_id: Id
    declaration: Annotated[str, msgspec.Meta(max_length=1_000, pattern=LINES)]


class RuleBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    points_per_t: Annotated[int, msgspec.Meta(ge=1, le=10**9)]
    effective_from: dt.date


class IssuanceBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    aggregator_id: Id
    project: Code
    quantity_t: Tonnes


class AuthorisationBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    user_refs: Annotated[list[UserRef], msgspec.Meta(min_length=1, max_length=MAX_ITEMS)]
    granted: bool


class DistributionBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    batch_id: BatchId
    rule_version: Annotated[int, msgspec.Meta(ge=1, le=10**6)]
    items: Annotated[list[tuple[UserRef, Points]], msgspec.Meta(min_length=1, max_length=MAX_ITEMS)]


class RedemptionBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    batch_id: BatchId
    items: Annotated[
        list[tuple[UserRef, Points, UserRef]], msgspec.Meta(min_length=1, max_length=MAX_ITEMS)
    ]


class UserPath(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    user_ref: UserRef


class Registered(msgspec.Struct, frozen=True):
    account_id: int


class Changed(msgspec.Struct, frozen=True):
    changed: int


class UserPoints(msgspec.Struct, frozen=True):
    user_ref: str
    points: int


class Monthly(msgspec.Struct, frozen=True):
    """One aggregator's points in one month (Asia/Shanghai): aggregates only."""

    aggregator_id: int
    month: str  # YYYY-MM
    issued: int
    distributed: int
    cancelled: int


class TransferBody(msgspec.Struct, frozen=True):
    """Whatever is sent: there is no transfer of points."""


def _points(call: Call) -> PointsLedger:
    return PointsLedger(call.exchange.ledger)


async def register_aggregator(call: Call, body: AggregatorBody) -> Registered:
    """Register an aggregator that signed the platform's declaration (Art. 20)."""
    await _points(call).register_aggregator(
        call.key, call.caller, body.account_id, body.declaration
    )
    return Registered(body.account_id)


async def publish_points_rule(call: Call, body: RuleBody) -> PointsRule:
    """Publish the next version of the CER-to-points rule (versions never change)."""
    return await _points(call).publish_rule(
        call.key, call.caller, body.points_per_t, body.effective_from
    )


async def issue_points(call: Call, body: IssuanceBody) -> PointIssuance:
    """Convert an aggregator project's tonnes into points at the rule in effect (Art. 16).
    The tonnes leave trading through the running exchange, as a surrender's do."""
    exchange, ledger = call.exchange, _points(call)
    blocks = await exchange.ledger.blocks_of(body.project)

    async def write(named: Selection) -> PointIssuance:
        take = named if isinstance(named, ByBlocks) else None
        return await ledger.issue(
            call.key, call.caller, body.aggregator_id, body.project, body.quantity_t, today(), take
        )

    return await exchange.take_out(
        call.key, body.aggregator_id, ByQuantity(body.quantity_t), write, blocks.__contains__
    )


async def authorise(call: Call, body: AuthorisationBody) -> Changed:
    """Record users' authorisation (or its revocation) of the calling aggregator."""
    changed = await _points(call).authorise(call.key, call.caller, body.user_refs, body.granted)
    return Changed(changed)


async def distribute(call: Call, body: DistributionBody) -> BatchDone:
    """Give users points from the pool of a rule version (Art. 17)."""
    items = [Distribution(ref, points) for ref, points in body.items]
    return await _points(call).distribute(call.caller, body.batch_id, body.rule_version, items)


async def redeem(call: Call, body: RedemptionBody) -> BatchDone:
    """Report users' redemptions in the mall; the platform cancels the points (Arts. 18-19)."""
    items = [Redemption(ref, points, reference) for ref, points, reference in body.items]
    return await _points(call).redeem(call.caller, body.batch_id, items)


async def pools(call: Call) -> list[Pool]:
    """The calling aggregator's points by rule version: issued, undistributed, held, cancelled."""
    return await _points(call).pools(call.caller)


async def user_points(call: Call, path: UserPath) -> UserPoints:
    """One of the calling aggregator's users' points."""
    return UserPoints(path.user_ref, await _points(call).balance(call.caller, path.user_ref))


async def transfer(call: Call, body: TransferBody) -> Changed:
    """Points never move between users, nor are they traded: always refused."""
    raise LedgerError(
        ErrorCode.POINTS_NOT_TRANSFERABLE,
        "carbon points cannot be transferred or traded; a user only redeems them",
    )


async def monthly(call: Call) -> list[Monthly]:
    """Points issued, distributed and cancelled by aggregator and month (Art. 27)."""
    async with call.exchange.database.pool.acquire() as conn:
        rows = await conn.fetch(MONTHLY_POINTS)
    return [Monthly(*row) for row in rows]


MONTHLY_POINTS = """
WITH moved AS (
    SELECT u.aggregator_id, t.created_at, x.points
    FROM point_entries e JOIN ledger_txns t USING (txn_id),
         unnest(e.user_ids, e.points) AS x(user_id, points)
    JOIN point_users u ON u.user_id = x.user_id
), monthly AS (
    SELECT i.aggregator_id, to_char(t.created_at AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM') AS month,
           i.points AS issued, 0 AS distributed, 0 AS cancelled
    FROM point_issuances i JOIN ledger_txns t USING (txn_id)
    UNION ALL
    SELECT aggregator_id, to_char(created_at AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM'),
           0, greatest(points, 0), greatest(-points, 0)
    FROM moved
)
SELECT aggregator_id, month, sum(issued)::bigint, sum(distributed)::bigint,
       sum(cancelled)::bigint
FROM monthly GROUP BY 1, 2 ORDER BY 1, 2
"""
