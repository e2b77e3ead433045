"""Carbon points on the real ledger: registration with the declaration, conversion of tonnes at
the rule in effect, batches of distributions and redemptions that apply once and all or nothing,
no way for points to move between users, and an audit that accounts for every point."""

from __future__ import annotations

import datetime as dt
import itertools
import random

import pytest

from settlement.errors import ErrorCode, LedgerError
from settlement.ledger import Ledger
from settlement.points import DECLARATION, Distribution, Redemption
from settlement.points_ledger import PointsLedger
from settlement.values import ByQuantity, Methodology, Project, Role, TonneState
from tests.settlement import builders
from tests.settlement.conftest import unique
from tests.settlement.refusals import refused

_batches = itertools.count(1)
# The points rule is one for the whole platform: each scheme publishes a version of its own, on a
# later day than the last, and issues on that day.
_days = itertools.count(0, 10)


class Scheme:
    """A regulator, an operator, an aggregator owning a project with 1,000 t issued, a points
    rule of 100 points a tonne, and authorised users u0..u9."""

    regulator: int
    operator: int
    aggregator: int
    project: str
    points: PointsLedger
    rule: int
    on: dt.date

    @classmethod
    async def create(cls, ledger: Ledger, users: int = 10) -> Scheme:
        scheme = cls()
        scheme.points = PointsLedger(ledger)
        scheme.regulator = (await builders.regulator(ledger)).account_id
        scheme.operator = (await builders.account(ledger, Role.OPERATOR)).account_id
        scheme.aggregator = (
            await builders.account(ledger, Role.AGGREGATOR, Role.PARTICIPANT)
        ).account_id
        await scheme.points.register_aggregator(
            unique("agg"), scheme.regulator, scheme.aggregator, DECLARATION
        )
        code = builders.code("M")
        await ledger.register_methodology(
            unique("m"), scheme.regulator, Methodology(code, "Cycling", "transport")
        )
        scheme.project = builders.code("P")
        await ledger.register_project(
            unique("p"),
            scheme.regulator,
            Project(scheme.project, scheme.aggregator, code, "Nanshan"),
        )
        await builders.issue(ledger, scheme.regulator, scheme.project, 1_000)
        scheme.on = dt.date(2026, 1, 1) + dt.timedelta(days=next(_days))
        scheme.rule = (
            await scheme.points.publish_rule(unique("rule"), scheme.regulator, 100, scheme.on)
        ).version
        if users:
            refs = [f"u{n}" for n in range(users)]
            await scheme.points.authorise(unique("auth"), scheme.aggregator, refs, True)
        return scheme

    async def distribute(self, *items: tuple[str, int], batch: str | None = None) -> int:
        done = await self.points.distribute(
            self.aggregator,
            batch or f"d{next(_batches)}",
            self.rule,
            [Distribution(ref, points) for ref, points in items],
        )
        return done.points


async def test_tonnes_convert_to_points_at_the_rule_in_effect(ledger: Ledger) -> None:
    scheme = await Scheme.create(ledger)
    issued = await scheme.points.issue(
        unique("i"), scheme.operator, scheme.aggregator, scheme.project, 30, scheme.on
    )
    assert (issued.quantity_t, issued.points, issued.rule_version) == (30, 3_000, scheme.rule)
    states = {h.state: h.quantity_t for h in await ledger.holdings(scheme.aggregator)}
    assert states == {TonneState.FREE: 970, TonneState.CONVERTED: 30}
    (pool,) = await scheme.points.pools(scheme.aggregator)
    assert (pool.issued, pool.undistributed, pool.held_by_users, pool.cancelled) == (3_000,) * 2 + (
        0,
        0,
    )
    # converted tonnes never move again; only the operator issues; only the aggregator's project
    trader = (await builders.account(ledger, Role.TRADER)).account_id
    with pytest.raises(LedgerError) as moved:
        await ledger.transfer(unique("t"), scheme.aggregator, trader, ByQuantity(971))
    assert moved.value.code is ErrorCode.INSUFFICIENT_HOLDINGS
    await refused(
        ErrorCode.ROLE_NOT_ALLOWED,
        scheme.points.issue(
            unique("i"), scheme.regulator, scheme.aggregator, scheme.project, 1, scheme.on
        ),
    )
    other = await Scheme.create(ledger, users=0)
    await refused(
        ErrorCode.PROJECT_NOT_AGGREGATORS,
        scheme.points.issue(
            unique("i"), scheme.operator, scheme.aggregator, other.project, 1, scheme.on
        ),
    )
    await refused(
        ErrorCode.INSUFFICIENT_HOLDINGS,
        scheme.points.issue(
            unique("i"), scheme.operator, scheme.aggregator, scheme.project, 971, scheme.on
        ),
    )
    await refused(
        ErrorCode.NO_POINTS_RULE,
        scheme.points.issue(
            unique("i"), scheme.operator, scheme.aggregator, scheme.project, 1, dt.date(2000, 1, 1)
        ),
    )


async def test_registration_needs_the_declaration_and_the_role(ledger: Ledger) -> None:
    scheme = await Scheme.create(ledger, users=0)
    candidate = (await builders.account(ledger, Role.AGGREGATOR)).account_id
    await refused(
        ErrorCode.DECLARATION_REQUIRED,
        scheme.points.register_aggregator(unique("a"), scheme.regulator, candidate, "I promise"),
    )
    trader = (await builders.account(ledger, Role.TRADER)).account_id
    await refused(
        ErrorCode.ROLE_NOT_ALLOWED,
        scheme.points.register_aggregator(unique("a"), scheme.regulator, trader, DECLARATION),
    )
    await refused(
        ErrorCode.AGGREGATOR_EXISTS,
        scheme.points.register_aggregator(
            unique("a"), scheme.regulator, scheme.aggregator, DECLARATION
        ),
    )
    await refused(
        ErrorCode.AGGREGATOR_NOT_REGISTERED,
        scheme.points.authorise(unique("a"), candidate, ["x"], True),
    )


async def test_batches_apply_once_and_all_or_nothing(ledger: Ledger) -> None:
    scheme = await Scheme.create(ledger)
    await scheme.points.issue(
        unique("i"), scheme.operator, scheme.aggregator, scheme.project, 10, scheme.on
    )
    assert await scheme.distribute(("u0", 300), ("u1", 200), ("u0", 50), batch="b1") == 550
    assert await scheme.distribute(("u0", 300), ("u1", 200), ("u0", 50), batch="b1") == 550
    assert await scheme.points.balance(scheme.aggregator, "u0") == 350
    await refused(ErrorCode.IDEMPOTENCY_KEY_REUSED, scheme.distribute(("u2", 1), batch="b1"))
    await scheme.points.authorise(unique("a"), scheme.aggregator, ["u9"], False)
    cases = (
        (ErrorCode.POINT_USER_NOT_FOUND, [("u1", 1), ("stranger", 1)]),
        (ErrorCode.POINT_USER_NOT_FOUND, [("stranger", 1)]),
        (ErrorCode.POINT_USER_NOT_AUTHORISED, [("u1", 1), ("u9", 1)]),
        (ErrorCode.INSUFFICIENT_POINTS, [("u1", 400), ("u2", 51)]),
        (ErrorCode.POINTS_BATCH_INVALID, [("u1", 0)]),
        (ErrorCode.POINTS_BATCH_INVALID, []),
    )
    for code, items in cases:
        await refused(code, scheme.distribute(*items))
    (pool,) = await scheme.points.pools(scheme.aggregator)
    assert (pool.undistributed, pool.held_by_users) == (450, 550)

    redeem = scheme.points.redeem
    done = await redeem(scheme.aggregator, "r1", [Redemption("u0", 100, "mall-1")])
    assert done.points == 100
    refusals = (
        (
            ErrorCode.REDEMPTION_EXCEEDS_BALANCE,
            [Redemption("u1", 150, "m2"), Redemption("u1", 51, "m3")],
        ),
        (ErrorCode.REDEMPTION_REFERENCE_REUSED, [Redemption("u1", 1, "mall-1")]),
        (ErrorCode.POINTS_BATCH_INVALID, [Redemption("u1", 1, "m4"), Redemption("u1", 1, "m4")]),
        (ErrorCode.POINT_USER_NOT_FOUND, [Redemption("nobody", 1, "m5")]),
    )
    for code, redemptions in refusals:
        await refused(code, redeem(scheme.aggregator, f"r{next(_batches)}", redemptions))
    assert await scheme.points.balance(scheme.aggregator, "u1") == 200
    # a revoked authorisation stops new points, not the redemption of points held
    await scheme.distribute(("u2", 10))
    await scheme.points.authorise(unique("a"), scheme.aggregator, ["u2"], False)
    await redeem(scheme.aggregator, "r-revoked", [Redemption("u2", 10, "mall-9")])
    (pool,) = await scheme.points.pools(scheme.aggregator)
    assert (pool.issued, pool.undistributed, pool.held_by_users, pool.cancelled) == (
        1_000,
        440,
        450,
        110,
    )


async def test_another_aggregators_users_are_out_of_reach(ledger: Ledger) -> None:
    mine, theirs = await Scheme.create(ledger), await Scheme.create(ledger)
    await theirs.points.issue(
        unique("i"), theirs.operator, theirs.aggregator, theirs.project, 1, theirs.on
    )
    await theirs.distribute(("u0", 50))
    # the same pseudonymous id under another aggregator is another user
    await refused(
        ErrorCode.REDEMPTION_EXCEEDS_BALANCE,
        mine.points.redeem(mine.aggregator, "x1", [Redemption("u0", 1, "steal")]),
    )
    assert await theirs.points.balance(theirs.aggregator, "u0") == 50


async def test_redemption_takes_the_oldest_rule_version_first(ledger: Ledger) -> None:
    scheme = await Scheme.create(ledger)
    await scheme.points.issue(
        unique("i"), scheme.operator, scheme.aggregator, scheme.project, 1, scheme.on
    )
    await scheme.distribute(("u0", 100))
    later = scheme.on + dt.timedelta(days=5)
    second = await scheme.points.publish_rule(unique("rule"), scheme.regulator, 120, later)
    await scheme.points.issue(
        unique("i"), scheme.operator, scheme.aggregator, scheme.project, 1, later
    )
    await scheme.points.distribute(
        scheme.aggregator, "v2", second.version, [Distribution("u0", 120)]
    )
    await scheme.points.redeem(scheme.aggregator, "both", [Redemption("u0", 150, "r-150")])
    pools = {p.rule_version: p for p in await scheme.points.pools(scheme.aggregator)}
    assert (pools[scheme.rule].cancelled, pools[second.version].cancelled) == (100, 50)
    assert await scheme.points.balance(scheme.aggregator, "u0") == 70
    await refused(
        ErrorCode.POINTS_RULE_INVALID,
        scheme.points.publish_rule(unique("rule"), scheme.regulator, 90, scheme.on),
    )


async def test_random_batches_match_a_simple_model(ledger: Ledger) -> None:
    scheme = await Scheme.create(ledger, users=8)
    await scheme.points.issue(
        unique("i"), scheme.operator, scheme.aggregator, scheme.project, 50, scheme.on
    )
    rng = random.Random(11)
    model = dict.fromkeys((f"u{n}" for n in range(8)), 0)
    pool = 5_000
    references = itertools.count()
    for step in range(40):
        items = [(f"u{rng.randrange(8)}", rng.randint(1, 60)) for _ in range(rng.randint(1, 6))]
        if rng.random() < 0.6:
            try:
                await scheme.distribute(*items)
            except LedgerError as error:
                assert (
                    error.code is ErrorCode.INSUFFICIENT_POINTS and sum(p for _, p in items) > pool
                )
                continue
            for ref, points in items:
                model[ref] += points
            pool -= sum(p for _, p in items)
        else:
            wanted: dict[str, int] = {}
            for ref, points in items:
                wanted[ref] = wanted.get(ref, 0) + points
            batch = [Redemption(ref, p, f"ref-{next(references)}") for ref, p in items]
            try:
                await scheme.points.redeem(scheme.aggregator, f"m{step}", batch)
            except LedgerError as error:
                assert error.code is ErrorCode.REDEMPTION_EXCEEDS_BALANCE
                assert any(model[ref] < p for ref, p in wanted.items())
                continue
            for ref, points in wanted.items():
                model[ref] -= points
    for ref, points in model.items():
        assert await scheme.points.balance(scheme.aggregator, ref) == points


async def test_the_audit_finds_a_point_out_of_place(ledger: Ledger) -> None:
    scheme = await Scheme.create(ledger)
    await scheme.points.issue(
        unique("i"), scheme.operator, scheme.aggregator, scheme.project, 1, scheme.on
    )
    await scheme.distribute(("u0", 10))
    async with ledger.database.pool.acquire() as conn:
        await conn.execute(
            "UPDATE point_users SET balances = array_replace(balances, 10, 11)"
            " WHERE aggregator_id = $1 AND user_ref = 'u0'",
            scheme.aggregator,
        )
        report = await ledger.audit()
        assert any("balance 11, entries 10" in problem for problem in report.problems)
        assert any("issued 100 <> undistributed 90 + held 11" in p for p in report.problems)
        await conn.execute(
            "UPDATE point_users SET balances = array_replace(balances, 11, 10)"
            " WHERE aggregator_id = $1 AND user_ref = 'u0'",
            scheme.aggregator,
        )
    assert (await ledger.audit()).ok
