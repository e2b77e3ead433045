"""Carbon points over a real server: the regulator registers an aggregator and the rule, the
operator converts the aggregator's tonnes, the aggregator authorises users, distributes and has
redemptions cancelled in batches that apply once; points cannot be transferred; roles hold; the
public sees monthly aggregates."""

from __future__ import annotations

import datetime as dt
import itertools

from exchange.rest_offsets import today
from exchange.service import Exchange
from settlement.points import DECLARATION
from settlement.values import Role
from tests.exchange.conftest import Market, make_key
from tests.exchange.rest_client import Rest, Staff, fresh_key
from tests.exchange.test_rest_offsets import ok, refused

_codes = itertools.count(1)


async def test_points_from_conversion_to_redemption(
    exchange: Exchange, rest: Rest, team: Staff, market: Market
) -> None:
    n = next(_codes)
    tag = fresh_key()
    aggregator = (
        await exchange.ledger.open_account(tag, f"agg-{tag}", [Role.AGGREGATOR, Role.PARTICIPANT])
    ).account_id
    key = await make_key(exchange, aggregator)
    body = {"account_id": aggregator, "declaration": "not the declaration"}
    assert refused(await rest.post("/api/v1/regulator/aggregators", body, team.regulator)) == (
        400,
        "DECLARATION_REQUIRED",
    )
    body["declaration"] = DECLARATION
    ok(await rest.post("/api/v1/regulator/aggregators", body, team.regulator))
    methodology = {"code": f"PM{n}", "name": "Cycling", "sector": "transport"}
    ok(await rest.post("/api/v1/regulator/methodologies", methodology, team.regulator))
    project = {
        "code": f"PP{n}",
        "owner_id": aggregator,
        "methodology": f"PM{n}",
        "region": "Nanshan",
    }
    ok(await rest.post("/api/v1/regulator/projects", project, team.regulator))
    issuance = {
        "project": f"PP{n}",
        "quantity_t": 100,
        "period": {"start": "2025-01-01", "end": "2025-03-31"},
    }
    ok(await rest.post("/api/v1/regulator/issuances", issuance, team.regulator))
    rule = {"points_per_t": 1_000, "effective_from": str(today() - dt.timedelta(days=1))}
    version = ok(await rest.post("/api/v1/regulator/points-rules", rule, team.regulator))["version"]
    converted = ok(
        await rest.post(
            "/api/v1/operator/points-issuances",
            {"aggregator_id": aggregator, "project": f"PP{n}", "quantity_t": 10},
            team.operator,
        )
    )
    assert converted["points"] == 10_000
    risk = exchange.engine.risk
    assert risk is not None and risk.free_t(aggregator) == 90  # converted tonnes cannot be offered

    users = [f"h{i:04d}" for i in range(1_000)]
    changed = ok(
        await rest.post(
            "/api/v1/aggregator/authorisations", {"user_refs": users, "granted": True}, key
        )
    )
    assert changed == {"changed": 1_000}
    batch = {"batch_id": "d-1", "rule_version": version, "items": [[u, 7] for u in users]}
    first = ok(await rest.post("/api/v1/aggregator/distributions", batch, key))
    assert first == {"items": 1_000, "points": 7_000}
    assert ok(await rest.post("/api/v1/aggregator/distributions", batch, key)) == first
    redemption = {"batch_id": "r-1", "items": [["h0001", 5, "order-1"], ["h0002", 7, "order-2"]]}
    assert ok(await rest.post("/api/v1/aggregator/redemptions", redemption, key))["points"] == 12
    too_much = {"batch_id": "r-2", "items": [["h0003", 8, "order-3"]]}
    assert refused(await rest.post("/api/v1/aggregator/redemptions", too_much, key)) == (
        409,
        "REDEMPTION_EXCEEDS_BALANCE",
    )
    assert ok(await rest.get("/api/v1/aggregator/users/h0001/points", key)) == {
        "user_ref": "h0001",
        "points": 2,
    }
    (pool,) = ok(await rest.get("/api/v1/aggregator/pools", key))
    assert (pool["issued"], pool["undistributed"], pool["held_by_users"], pool["cancelled"]) == (
        10_000,
        3_000,
        6_988,
        12,
    )

    # points never move between users; other roles cannot act as an aggregator
    move = {"from": "h0001", "to": "h0002", "points": 1}
    assert refused(await rest.post("/api/v1/points/transfers", move, key)) == (
        403,
        "POINTS_NOT_TRANSFERABLE",
    )
    (_, trader), _ = market
    trader_key = await make_key(exchange, trader)
    assert refused(await rest.post("/api/v1/aggregator/distributions", batch, trader_key)) == (
        403,
        "AUTH_FORBIDDEN",
    )
    monthly = ok(await rest.get("/api/v1/public/points"))
    mine = [m for m in monthly if m["aggregator_id"] == aggregator]
    assert sum(m["issued"] for m in mine) == 10_000
    assert sum(m["distributed"] for m in mine) == 7_000
    assert sum(m["cancelled"] for m in mine) == 12
    async with rest.http.get(rest.server.make_url("/disclosure")) as response:
        page = await response.text()
    assert "碳积分 · Carbon points" in page and f"<td>{aggregator}</td>" in page
