"""Registration over a real server: the regulator keeps the expert pool; applicants submit; the
regulator (or, for scenarios, the sector authority) draws the experts, who give their opinions
on what they were drawn for and nothing else; the decider decides; the regulator registers; the
public reads the methodologies, specifications, labels and the pool, and the disclosure shows
the scenario list and the pool. Every refusal has its code and status; junk never fails."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

import aiohttp
from aiohttp.test_utils import TestServer

from exchange.keys import ApiKey
from exchange.rest import ROUTES
from exchange.rest_offsets import today
from exchange.service import Exchange
from registration.experts import draw
from settlement.values import Role
from tests.exchange.conftest import make_key
from tests.exchange.rest_client import Rest, Staff, fresh_key
from tests.exchange.test_rest_offsets import ok, refused

_codes = itertools.count(1)
DIGEST = "0f" * 32
REPORTS = [
    {"kind": "validation", "issuer": "深圳某审定机构", "reference": "VAL-1", "sha256_hex": DIGEST},
    {
        "kind": "verification",
        "issuer": "深圳某核证机构",
        "reference": "VER-1",
        "sha256_hex": DIGEST,
    },
]


async def account(exchange: Exchange, *roles: Role, name: str | None = None) -> tuple[int, ApiKey]:
    tag = fresh_key()
    opened = await exchange.ledger.open_account(tag, name or f"reg-{tag}", roles)
    return opened.account_id, await make_key(exchange, opened.account_id)


async def pool(
    exchange: Exchange, rest: Rest, team: Staff, sector: str, count: int
) -> dict[int, ApiKey]:
    """`count` experts of `sector` added by the regulator over REST, with their keys."""
    experts = {}
    for _ in range(count):
        expert, key = await account(exchange, Role.EXPERT)
        body = {"account_id": expert, "organisation": f"org-{fresh_key()}", "fields": [sector]}
        added = ok(await rest.post("/api/v1/regulator/experts", body, team.regulator))
        assert added["active"] and added["fields"] == [sector]
        experts[expert] = key
    return experts


def methodology(sector: str) -> dict[str, Any]:
    return {
        "code": f"RM{next(_codes)}",
        "name": "Rooftop PV",
        "sector": sector,
        "text": "基准情景 Baseline\n减排情景 Project",
        "notes": "编制说明",
    }


async def reviewed(
    rest: Rest, experts: dict[int, ApiKey], decider: ApiKey, prefix: str, application_id: int
) -> Any:
    """Draw two experts, both approve, the decider approves."""
    base = f"/api/v1/{prefix}/applications/{application_id}"
    started = ok(await rest.post(f"{base}/review", {"panel_size": 2}, decider))
    for expert in started["draw"]["drawn"]:
        path = f"/api/v1/expert/reviews/{application_id}/opinion"
        ok(await rest.post(path, {"approve": True, "text": "sound"}, experts[expert]))
    return ok(await rest.post(f"{base}/decision", {"approve": True}, decider))


async def test_a_methodology_application_over_rest(
    exchange: Exchange, rest: Rest, team: Staff
) -> None:
    sector = f"energy-{fresh_key()}"
    experts = await pool(exchange, rest, team, sector, 3)
    developer, key = await account(exchange, Role.PARTICIPANT)
    trader, trader_key = await account(exchange, Role.TRADER, Role.COMPLIANCE_ENTITY)
    body = methodology(sector)
    applied = ok(await rest.post("/api/v1/applications/methodologies", body, key))
    a = applied["application_id"]
    assert (applied["state"], applied["version"], applied["kind"]) == (
        "submitted",
        1,
        "methodology",
    )
    queue = ok(
        await rest.get(
            "/api/v1/regulator/applications?kind=methodology&state=submitted", team.regulator
        )
    )
    assert a in {s["application_id"] for s in queue}
    assert refused(await rest.get(f"/api/v1/applications/{a}", trader_key)) == (
        404,
        "APPLICATION_NOT_FOUND",
    )

    base = f"/api/v1/regulator/applications/{a}"
    assert refused(await rest.post(f"{base}/decision", {"approve": True}, team.regulator)) == (
        409,
        "APPLICATION_MUST_BE_UNDER_REVIEW",
    )
    review_key = fresh_key()
    started = ok(await rest.post(f"{base}/review", {"panel_size": 2}, team.regulator, review_key))
    recorded = started["draw"]
    assert recorded["candidates"] == sorted(experts) and len(recorded["drawn"]) == 2
    # the draw replays from its recorded seed; a repeat of the request is the same draw
    assert list(draw(recorded["candidates"], 2, recorded["seed"])) == recorded["drawn"]
    again = ok(await rest.post(f"{base}/review", {"panel_size": 2}, team.regulator, review_key))
    assert again == started
    first, second = recorded["drawn"]
    [outsider] = [e for e in experts if e not in recorded["drawn"]]

    opinion = f"/api/v1/expert/reviews/{a}/opinion"
    assert refused(await rest.post(opinion, {"approve": True, "text": "x"}, experts[outsider])) == (
        403,
        "NOT_DRAWN",
    )
    assert ok(await rest.get("/api/v1/expert/reviews", experts[outsider])) == []
    assert refused(await rest.get(f"/api/v1/applications/{a}", experts[outsider]))[0] == 404
    given = ok(await rest.post(opinion, {"approve": True, "text": "可行"}, experts[first]))
    assert given["draw"] is None and [o["expert_id"] for o in given["opinions"]] == [first]
    assert refused(await rest.post(opinion, {"approve": False, "text": "x"}, experts[first])) == (
        409,
        "OPINION_ALREADY_GIVEN",
    )
    assert refused(await rest.post(f"{base}/decision", {"approve": True}, team.regulator)) == (
        409,
        "OPINIONS_PENDING",
    )
    ok(await rest.post(opinion, {"approve": True, "text": "同意"}, experts[second]))
    # the second expert sees its own opinion only
    [seen] = ok(await rest.get("/api/v1/expert/reviews", experts[second]))
    assert [o["expert_id"] for o in seen["opinions"]] == [second] and seen["draw"] is None
    assert refused(await rest.post(f"{base}/decision", {"approve": False}, team.regulator)) == (
        400,
        "REASON_REQUIRED",
    )
    ok(await rest.post(f"{base}/decision", {"approve": True}, team.regulator))
    registered = ok(await rest.post(f"{base}/registration", {}, team.regulator))
    assert (registered["state"], registered["registered_as"]) == ("registered", body["code"])

    [mine] = ok(await rest.get("/api/v1/applications", key))
    assert mine["draw"] is None and mine["opinions"] == []
    assert [h["action"] for h in mine["history"]] == [
        "submitted",
        "review_started",
        "approved",
        "registered",
    ]
    [full] = ok(await rest.get(f"/api/v1/applications/{a}", team.regulator))
    assert len(full["opinions"]) == 2 and full["draw"] == recorded
    listed = {m["code"]: m for m in ok(await rest.get("/api/v1/public/methodologies"))}
    assert listed[body["code"]]["text"] == body["text"]
    del trader, developer


async def test_a_project_application_over_rest_and_its_refusals(
    exchange: Exchange, rest: Rest, team: Staff
) -> None:
    sector = f"energy-{fresh_key()}"
    experts = await pool(exchange, rest, team, sector, 2)
    code = f"RM{next(_codes)}"
    ok(
        await rest.post(
            "/api/v1/regulator/methodologies",
            {"code": code, "name": "PV", "sector": sector},
            team.regulator,
        )
    )
    firm, key = await account(exchange, Role.PARTICIPANT)
    _, trader_key = await account(exchange, Role.TRADER)
    project = {
        "code": f"RP{next(_codes)}",
        "methodology": code,
        "region": "Futian",
        "period": {"start": "2025-01-01", "end": "2025-06-30"},
        "claimed_t": 600,
        "other_schemes": [{"scheme": "CCER", "first_year": 2021, "last_year": 2022}],
    }
    path = "/api/v1/applications/projects"
    assert refused(await rest.post(path, project, trader_key)) == (403, "AUTH_FORBIDDEN")
    unknown = project | {"methodology": "NOSUCH"}
    assert refused(await rest.post(path, unknown, key)) == (404, "METHODOLOGY_NOT_REGISTERED")
    elsewhere = project | {
        "other_schemes": [{"scheme": "GREEN_POWER", "first_year": 2025, "last_year": 2025}]
    }
    assert refused(await rest.post(path, elsewhere, key)) == (
        409,
        "PROJECT_REGISTERED_UNDER_OTHER_SCHEME",
    )
    for bad in (
        project | {"claimed_t": 0},
        project | {"reports": [REPORTS[0] | {"sha256_hex": "xyz"}]},
        project | {"period": {"start": "2025-01-01"}},
        project | {"extra": 1},
    ):
        assert refused(await rest.post(path, bad, key)) == (400, "INVALID_ARGS"), bad
    applied = ok(await rest.post(path, project, key))
    a = applied["application_id"]
    decided = await reviewed(rest, experts, team.regulator, "regulator", a)
    assert decided["state"] == "approved"
    registration = f"/api/v1/regulator/applications/{a}/registration"
    assert refused(await rest.post(registration, {}, team.regulator)) == (
        409,
        "THIRD_PARTY_REPORTS_REQUIRED",
    )
    reports = f"/api/v1/applications/{a}/reports"
    attached = ok(await rest.post(reports, {"reports": REPORTS}, key))
    assert [r["kind"] for r in attached["reports"]] == ["validation", "verification"]
    with_period = {"valid_from": "2026-01-01", "valid_until": "2026-12-31"}
    assert refused(await rest.post(registration, with_period, team.regulator)) == (
        400,
        "PERIOD_INVALID",
    )
    ok(await rest.post(registration, {}, team.regulator))
    # registered: the regulator issues it, and the owner holds it
    issuance = {
        "project": project["code"],
        "quantity_t": 600,
        "period": {"start": "2025-01-01", "end": "2025-06-30"},
    }
    block = ok(await rest.post("/api/v1/regulator/issuances", issuance, team.regulator))
    assert block["issued_to"] == firm
    assert refused(await rest.post(reports, {"reports": REPORTS}, key)) == (
        409,
        "APPLICATION_MUST_BE_OPEN",
    )


async def test_a_scenario_is_evaluated_by_its_sector_and_labelled_over_rest(
    exchange: Exchange, server: TestServer, rest: Rest, team: Staff
) -> None:
    sector = f"retail-{fresh_key()}"
    experts = await pool(exchange, rest, team, sector, 2)
    authority, authority_key = await account(exchange, Role.SECTOR_AUTHORITY)
    spec = {"sector": sector, "title": "低碳商超评价规范", "text": "评价内容与方法"}
    spec_applied = ok(
        await rest.post("/api/v1/applications/scenario-specifications", spec, authority_key)
    )
    await reviewed(rest, experts, team.regulator, "regulator", spec_applied["application_id"])
    spec_path = f"/api/v1/regulator/applications/{spec_applied['application_id']}/registration"
    ok(await rest.post(spec_path, {}, team.regulator))
    specs = ok(await rest.get("/api/v1/public/scenario-specifications"))
    assert {s["sector"]: s["in_force"] for s in specs}[sector] is True

    mall_name = f"深圳某商场-{fresh_key()}"
    mall, mall_key = await account(exchange, Role.SCENARIO_OPERATOR, name=mall_name)
    scenario = {"name": "绿色商超", "sector": sector, "place": "南山区", "description": "低碳零售"}
    applied = ok(await rest.post("/api/v1/applications/scenarios", scenario, mall_key))
    a = applied["application_id"]
    assert applied["decider_id"] == authority
    queue = ok(
        await rest.get("/api/v1/sector-authority/applications?state=submitted", authority_key)
    )
    assert [s["application_id"] for s in queue] == [a]
    assert refused(
        await rest.post(f"/api/v1/regulator/applications/{a}/review", {}, team.regulator)
    ) == (403, "NOT_THE_SECTOR_AUTHORITY")
    await reviewed(rest, experts, authority_key, "sector-authority", a)
    validity = {"valid_from": str(today() - dt.timedelta(days=1)), "valid_until": "2099-12-31"}
    registered = ok(
        await rest.post(
            f"/api/v1/regulator/applications/{a}/registration", validity, team.regulator
        )
    )
    label_id = registered["registered_as"]
    public = {s["label_id"]: s for s in ok(await rest.get("/api/v1/public/scenarios"))}
    assert public[label_id]["in_force"] and public[label_id]["operator"] == mall_name

    status = f"/api/v1/sector-authority/labels/{label_id}/status"
    suspended = ok(
        await rest.post(status, {"status": "suspended", "reason": "数据采集不配合"}, authority_key)
    )
    assert suspended["status"] == "suspended"
    assert refused(
        await rest.post(status, {"status": "suspended", "reason": "again"}, authority_key)
    ) == (
        409,
        "LABEL_MUST_BE_ACTIVE",
    )
    _, rival_key = await account(exchange, Role.SECTOR_AUTHORITY)
    assert refused(await rest.post(status, {"status": "withdrawn", "reason": "x"}, rival_key)) == (
        403,
        "NOT_THE_SECTOR_AUTHORITY",
    )
    assert refused(
        await rest.post(
            "/api/v1/sector-authority/labels/SZLCS-1999-000001/status",
            {"status": "withdrawn", "reason": "x"},
            authority_key,
        )
    ) == (404, "LABEL_NOT_FOUND")
    ok(await rest.post(status, {"status": "active", "reason": "已整改"}, authority_key))
    [label] = ok(await rest.get("/api/v1/sector-authority/labels", authority_key))
    assert [e["status"] for e in label["history"]] == ["active", "suspended", "active"]

    # the disclosure lists the scenario and the pool, as JSON and as a page
    disclosure = ok(await rest.get("/api/v1/public/disclosure"))
    assert label_id in {s["label_id"] for s in disclosure["scenarios"]}
    names = {(await exchange.ledger.account(e)).name for e in experts}
    assert names <= {x["name"] for x in disclosure["experts"]}
    assert names <= {x["name"] for x in ok(await rest.get("/api/v1/public/experts"))}
    async with aiohttp.ClientSession() as http, http.get(server.make_url("/disclosure")) as page:
        text = await page.text()
    assert label_id in text and mall_name in text and "Expert pool" in text
    del mall


async def test_the_pool_over_rest(exchange: Exchange, rest: Rest, team: Staff) -> None:
    expert, _ = await account(exchange, Role.EXPERT)
    trader, _ = await account(exchange, Role.TRADER)
    path = "/api/v1/regulator/experts"
    body = {"account_id": expert, "organisation": "深圳大学", "fields": ["energy"]}
    ok(await rest.post(path, body, team.regulator))
    assert refused(await rest.post(path, body, team.regulator)) == (409, "EXPERT_ALREADY_IN_POOL")
    assert refused(await rest.post(path, body | {"account_id": trader}, team.regulator)) == (
        409,
        "ROLE_NOT_ALLOWED",
    )
    assert refused(await rest.post(path, body | {"fields": []}, team.regulator)) == (
        400,
        "INVALID_ARGS",
    )
    removal = f"/api/v1/regulator/experts/{expert}/removal"
    removed = ok(await rest.post(removal, {"reason": "任期届满"}, team.regulator))
    assert removed["active"] is False
    assert refused(await rest.post(removal, {"reason": "again"}, team.regulator)) == (
        404,
        "EXPERT_NOT_IN_POOL",
    )
    everyone = ok(await rest.get(path, team.regulator))
    assert {e["account_id"]: e["active"] for e in everyone}[expert] is False


async def test_junk_to_every_registration_write_is_refused_never_failed(
    exchange: Exchange, rest: Rest, team: Staff
) -> None:
    keys: dict[Any, ApiKey] = {Role.REGULATOR: team.regulator}
    for role in (Role.PARTICIPANT, Role.SCENARIO_OPERATOR, Role.SECTOR_AUTHORITY, Role.EXPERT):
        keys[role] = (await account(exchange, role))[1]
    keys["signed"] = keys[Role.PARTICIPANT]
    junk = [b"null", b"[]", b"{", b"\xff\xfe", b'{"a": 1}', b"1e999", b'"text"', b"{}", b"{}" * 3]
    checked = 0
    for route in ROUTES:
        if route.method != "POST" or route.handler.__module__ != "exchange.rest_registration":
            continue
        path = route.path.format(application_id=10**12, account_id=1, label_id="NOSUCH")
        for body in junk:
            status, reply = await rest.post(path, body, keys[route.access])
            assert 400 <= status < 500 and reply["ok"] is False, (route.name, body, reply)
            checked += 1
    assert checked == len(junk) * 14
