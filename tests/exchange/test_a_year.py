"""One scripted year of the platform beyond trading, through the running service over REST: a
methodology applied for, reviewed by drawn experts and registered; a data-aggregation platform
registered; its project applied for, reviewed (with the verifier the regulator commissioned),
registered and issued; points issued against its tonnes, distributed to thousands of users,
partly redeemed and cancelled; a low-carbon scenario labelled under its sector's specification;
and the disclosure showing all of it. The ledger's and the registration's audits run after."""

from __future__ import annotations

import datetime as dt

import aiohttp
from aiohttp.test_utils import TestServer

from exchange.rest_offsets import today
from exchange.service import Exchange
from settlement.points import DECLARATION
from settlement.values import Role
from tests.exchange.rest_client import Rest, Staff, fresh_key
from tests.exchange.test_rest_offsets import ok
from tests.exchange.test_rest_registration import account, pool, reviewed

USERS = 3_000


async def test_a_year_of_the_platform(
    exchange: Exchange, server: TestServer, rest: Rest, team: Staff
) -> None:
    tag = fresh_key().replace("-", "").upper()[-6:]
    sector = f"transport-{tag}"
    experts = await pool(exchange, rest, team, sector, 3)

    # January: a cycling methodology is applied for, reviewed and registered
    aggregator, agg_key = await account(
        exchange, Role.AGGREGATOR, Role.PARTICIPANT, name=f"骑行平台-{tag}"
    )
    methodology = {
        "code": f"YM{tag}",
        "name": "Shared cycling",
        "sector": sector,
        "text": "基准情景 Baseline\n减排情景 Project",
        "notes": "编制说明",
    }
    applied = ok(await rest.post("/api/v1/applications/methodologies", methodology, agg_key))
    await reviewed(rest, experts, team.regulator, "regulator", applied["application_id"])
    path = f"/api/v1/regulator/applications/{applied['application_id']}/registration"
    ok(await rest.post(path, {}, team.regulator))

    # February: the platform signs the declaration and is registered as an aggregator
    body = {"account_id": aggregator, "declaration": DECLARATION}
    ok(await rest.post("/api/v1/regulator/aggregators", body, team.regulator))

    # March to June: its project is applied for, reviewed with the commissioned verifier,
    # registered and issued
    project = {
        "code": f"YP{tag}",
        "methodology": f"YM{tag}",
        "region": "Nanshan",
        "period": {"start": "2025-01-01", "end": "2025-06-30"},
        "claimed_t": 400,
    }
    applied = ok(await rest.post("/api/v1/applications/projects", project, agg_key))
    a = applied["application_id"]
    review = {"panel_size": 2, "verifier": "深圳某核证机构"}
    started = ok(
        await rest.post(f"/api/v1/regulator/applications/{a}/review", review, team.regulator)
    )
    for expert in started["draw"]["drawn"]:
        opinion = {"approve": True, "text": "数据可核"}
        ok(await rest.post(f"/api/v1/expert/reviews/{a}/opinion", opinion, experts[expert]))
    ok(
        await rest.post(
            f"/api/v1/regulator/applications/{a}/decision", {"approve": True}, team.regulator
        )
    )
    ok(await rest.post(f"/api/v1/regulator/applications/{a}/registration", {}, team.regulator))
    issuance = {"project": f"YP{tag}", "quantity_t": 400, "period": project["period"]}
    block = ok(await rest.post("/api/v1/regulator/issuances", issuance, team.regulator))
    assert block["issued_to"] == aggregator

    # July: points at 1,000 a tonne; 50 t converted; thousands of users paid and some redeem
    rule = {"points_per_t": 1_000, "effective_from": str(today() - dt.timedelta(days=1))}
    version = ok(await rest.post("/api/v1/regulator/points-rules", rule, team.regulator))["version"]
    issued = ok(
        await rest.post(
            "/api/v1/operator/points-issuances",
            {"aggregator_id": aggregator, "project": f"YP{tag}", "quantity_t": 50},
            team.operator,
        )
    )
    assert issued["points"] == 50_000
    users = [f"rider-{n:05d}" for n in range(USERS)]
    authorised = {"user_refs": users, "granted": True}
    assert ok(await rest.post("/api/v1/aggregator/authorisations", authorised, agg_key)) == {
        "changed": USERS
    }
    batch = {"batch_id": "july", "rule_version": version, "items": [[u, 12] for u in users]}
    assert (
        ok(await rest.post("/api/v1/aggregator/distributions", batch, agg_key))["points"] == 36_000
    )
    redeemed = {"batch_id": "july-mall", "items": [[u, 10, f"o-{u}"] for u in users[:500]]}
    assert (
        ok(await rest.post("/api/v1/aggregator/redemptions", redeemed, agg_key))["points"] == 5_000
    )
    (points_pool,) = ok(await rest.get("/api/v1/aggregator/pools", agg_key))
    assert (
        points_pool["undistributed"],
        points_pool["held_by_users"],
        points_pool["cancelled"],
    ) == (
        14_000,
        31_000,
        5_000,
    )

    # September: the sector's specification, then a scenario labelled under it
    authority, authority_key = await account(exchange, Role.SECTOR_AUTHORITY)
    spec = {"sector": sector, "title": "低碳出行场景评价规范", "text": "评价内容与方法"}
    spec_applied = ok(
        await rest.post("/api/v1/applications/scenario-specifications", spec, authority_key)
    )
    await reviewed(rest, experts, team.regulator, "regulator", spec_applied["application_id"])
    path = f"/api/v1/regulator/applications/{spec_applied['application_id']}/registration"
    ok(await rest.post(path, {}, team.regulator))
    station, station_key = await account(exchange, Role.SCENARIO_OPERATOR, name=f"绿色驿站-{tag}")
    scenario = {"name": "骑行驿站", "sector": sector, "place": "南山区", "description": "低碳出行"}
    applied = ok(await rest.post("/api/v1/applications/scenarios", scenario, station_key))
    await reviewed(rest, experts, authority_key, "sector-authority", applied["application_id"])
    validity = {"valid_from": str(today() - dt.timedelta(days=1)), "valid_until": "2099-12-31"}
    path = f"/api/v1/regulator/applications/{applied['application_id']}/registration"
    label = ok(await rest.post(path, validity, team.regulator))["registered_as"]

    # December: the disclosure shows all of it
    public = ok(await rest.get("/api/v1/public/disclosure"))
    assert f"YM{tag}" in {m["code"] for m in public["methodologies"]}
    assert {p["code"]: p["issued_t"] for p in public["projects"]}[f"YP{tag}"] == 400
    assert label in {s["label_id"] for s in public["scenarios"]}
    monthly = [
        m for m in ok(await rest.get("/api/v1/public/points")) if m["aggregator_id"] == aggregator
    ]
    assert sum(m["distributed"] for m in monthly) == 36_000
    assert sum(m["cancelled"] for m in monthly) == 5_000
    async with aiohttp.ClientSession() as http, http.get(server.make_url("/disclosure")) as page:
        text = await page.text()
    assert f"YP{tag}" in text and label in text and "碳积分 · Carbon points" in text
    del authority, station
