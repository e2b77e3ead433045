"""Offsets, retirement and disclosure through the running exchange, over a real server: the
regulator publishes rules and records emissions; a compliance entity previews and surrenders; a
holder retires; tonnes in sell orders cannot be finished, and finished tonnes cannot be sold;
every refusal has its code and status; the public reads the rules and the disclosure."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

import pytest

from exchange.errors import ExchangeError
from exchange.rest_offsets import today
from exchange.service import Exchange
from matching import Side
from settlement.values import Role
from tests.exchange.conftest import make_key, new_instrument
from tests.exchange.market import order
from tests.exchange.rest_client import Rest, Staff, fresh_key

_years = itertools.count(2060)
_codes = itertools.count(1)


def refused(got: tuple[int, Any]) -> tuple[int, str]:
    status, body = got
    assert body["ok"] is False, body
    return status, body["error"]["code"]


def ok(got: tuple[int, Any]) -> Any:
    status, body = got
    assert status == 200 and body["ok"], body
    return body["result"]


def rules(year: int, **more: Any) -> dict[str, Any]:
    on = today()
    return {
        "year": year,
        "effective_from": str(on - dt.timedelta(days=30)),
        "window_opens": str(on - dt.timedelta(days=1)),
        "window_closes": str(on + dt.timedelta(days=1)),
        "total_cap_t": 1_000,
        "entity_cap_bp": 1_000,
        "vintages": [2025],
    } | more


async def holder(exchange: Exchange, rest: Rest, team: Staff, *roles: Role) -> tuple[int, str]:
    """An account (with `roles` and participant) issued 2024 and 2025 CERs of its own project
    through the exchange, so its risk view knows them; the account and the project."""
    tag, n = fresh_key(), next(_codes)
    account = await exchange.ledger.open_account(tag, f"h-{tag}", [Role.PARTICIPANT, *roles])
    methodology = {"code": f"OM{n}", "name": "Rooftop PV", "sector": "energy"}
    ok(await rest.post("/api/v1/regulator/methodologies", methodology, team.regulator))
    project = {
        "code": f"OP{n}",
        "owner_id": account.account_id,
        "methodology": f"OM{n}",
        "region": "Futian",
    }
    ok(await rest.post("/api/v1/regulator/projects", project, team.regulator))
    for year in (2024, 2025):
        issuance = {
            "project": f"OP{n}",
            "quantity_t": 500,
            "period": {"start": f"{year}-01-01", "end": f"{year}-03-31"},
        }
        ok(await rest.post("/api/v1/regulator/issuances", issuance, team.regulator))
    return account.account_id, f"OP{n}"


async def test_a_compliance_entity_previews_and_surrenders_within_its_cap(
    exchange: Exchange, rest: Rest, team: Staff
) -> None:
    year = next(_years)
    published = ok(await rest.post("/api/v1/regulator/offset-rules", rules(year), team.regulator))
    assert published["version"] == 1
    entity, project = await holder(exchange, rest, team, Role.COMPLIANCE_ENTITY)
    emissions = {"year": year, "account_id": entity, "emissions_t": 2_000}
    ok(await rest.post("/api/v1/regulator/verified-emissions", emissions, team.regulator))
    key = await make_key(exchange, entity)

    preview = ok(await rest.get(f"/api/v1/offsets/{year}/preview", key))
    assert preview["position"]["may_surrender_t"] == 200  # 10% of 2,000 t
    eligible = {b["block_id"]: b["eligible"] for b in preview["blocks"]}
    assert eligible == {f"SZCER-{project}-2024-1": False, f"SZCER-{project}-2025-1": True}

    # 150 t of 2025 are in a sell order: only 350 t may be surrendered, and not those
    instrument = await new_instrument(exchange)
    await exchange.engine.new_order(entity, order("o1", Side.SELL, 150, 5_100, instrument.symbol))
    path = f"/api/v1/offsets/{year}/surrenders"
    done = ok(await rest.post(path, {"quantity_t": 120}, key, idempotency_key := fresh_key()))
    assert done["quantity_t"] == 120
    assert {r["block_id"] for r in done["ranges"]} == {f"SZCER-{project}-2025-1"}
    # a repeat is the same surrender
    again = ok(await rest.post(path, {"quantity_t": 120}, key, idempotency_key))
    assert again == done
    assert refused(await rest.post(path, {"quantity_t": 81}, key)) == (409, "ENTITY_CAP_EXCEEDED")
    # the 2024 tonnes are out of scope by name; the tonnes in the sell order are not free
    out = {"ranges": [{"block_id": f"SZCER-{project}-2024-1", "first": 1, "last": 1}]}
    assert refused(await rest.post(path, out, key)) == (400, "OUT_OF_SCOPE")
    risk = exchange.engine.risk
    assert risk is not None
    free_2025 = risk.free_by_block(entity)[f"SZCER-{project}-2025-1"]
    assert free_2025 == 500 - 150 - 120
    too_many = {"quantity_t": 10}
    await exchange.offsets.record_emissions(fresh_key(), team.regulator_id, year, entity, 10**6)
    ok(await rest.post(path, too_many, key))
    assert risk.free_by_block(entity)[f"SZCER-{project}-2025-1"] == free_2025 - 10
    assert refused(await rest.post(path, {"quantity_t": free_2025}, key)) == (
        409,
        "INSUFFICIENT_HOLDINGS",
    )
    # the sell order still trades: what the surrender took was never in it
    buyer, _ = await holder(exchange, rest, team)
    await exchange.deposit(fresh_key(), buyer, 10_000_000)
    _, events = await exchange.engine.new_order(
        buyer, order("b1", Side.BUY, 150, 5_100, instrument.symbol)
    )
    assert sum(getattr(e, "quantity_t", 0) for e in events if type(e).__name__ == "Trade") == 150
    await exchange.settler.drain()
    position = ok(await rest.get(f"/api/v1/offsets/{year}/position", key))
    assert (position["surrendered_t"], position["rules_version"]) == (130, 1)
    listed = ok(await rest.get("/api/v1/offsets/surrenders", key))
    assert [s["quantity_t"] for s in listed] == [120, 10]


async def test_surrender_refusals_by_role_window_and_rules(
    exchange: Exchange, rest: Rest, team: Staff
) -> None:
    year = next(_years)
    entity, _ = await holder(exchange, rest, team, Role.COMPLIANCE_ENTITY)
    key = await make_key(exchange, entity)
    path = f"/api/v1/offsets/{year}/surrenders"
    assert refused(await rest.post(path, {"quantity_t": 1}, key)) == (404, "NO_OFFSET_RULES")
    closed = rules(year, window_closes=str(today() - dt.timedelta(days=1)))
    ok(await rest.post("/api/v1/regulator/offset-rules", closed, team.regulator))
    emissions = {"year": year, "account_id": entity, "emissions_t": 100}
    ok(await rest.post("/api/v1/regulator/verified-emissions", emissions, team.regulator))
    assert refused(await rest.post(path, {"quantity_t": 1}, key)) == (
        409,
        "OUTSIDE_SURRENDER_WINDOW",
    )
    for body in ({}, {"quantity_t": 1, "ranges": []}, {"quantity_t": 0}, {"ranges": []}):
        assert refused(await rest.post(path, body, key)) == (400, "INVALID_ARGS"), body
    trader, _ = await holder(exchange, rest, team)
    trader_key = await make_key(exchange, trader)
    assert refused(await rest.post(path, {"quantity_t": 1}, trader_key)) == (403, "AUTH_FORBIDDEN")
    assert refused(await rest.post("/api/v1/regulator/offset-rules", rules(year), trader_key)) == (
        403,
        "AUTH_FORBIDDEN",
    )
    bad = rules(year, entity_cap_bp=20_000)
    assert refused(await rest.post("/api/v1/regulator/offset-rules", bad, team.regulator)) == (
        400,
        "INVALID_ARGS",
    )
    not_entity = {"year": year, "account_id": trader, "emissions_t": 5}
    assert refused(
        await rest.post("/api/v1/regulator/verified-emissions", not_entity, team.regulator)
    ) == (400, "NOT_A_COMPLIANCE_ENTITY")
    # the free tonnes the refusals tried to take are all still free to trade
    risk = exchange.engine.risk
    assert risk is not None and risk.free_t(entity) == 1_000


async def test_a_holder_retires_and_the_public_sees_it(
    exchange: Exchange, rest: Rest, team: Staff
) -> None:
    holder_id, project = await holder(exchange, rest, team)
    key = await make_key(exchange, holder_id)
    body = {"quantity_t": 30, "beneficiary": "某公司", "purpose": "2025 年度碳中和"}
    retired = ok(await rest.post("/api/v1/retirements", body, key))
    assert (retired["quantity_t"], retired["beneficiary"]) == (30, "某公司")
    assert retired["ranges"] == [{"block_id": f"SZCER-{project}-2024-1", "first": 1, "last": 30}]
    assert [r["retirement_id"] for r in ok(await rest.get("/api/v1/retirements", key))] == [
        retired["retirement_id"]
    ]
    risk = exchange.engine.risk
    assert risk is not None and risk.free_t(holder_id) == 970
    named = {
        "ranges": [{"block_id": f"SZCER-{project}-2024-1", "first": 1, "last": 1}],
        "beneficiary": "b",
        "purpose": "p",
    }
    assert refused(await rest.post("/api/v1/retirements", named, key)) == (409, "RANGE_NOT_HELD")
    assert risk.free_t(holder_id) == 970  # put back after the ledger refused
    blank = body | {"beneficiary": ""}
    assert refused(await rest.post("/api/v1/retirements", blank, key)) == (400, "INVALID_ARGS")
    # a range that ends before it starts, of a block held or of none: refused, not failed
    for block in (f"SZCER-{project}-2025-1", "SZCER-NOWHERE-2025-1"):
        backwards = named | {"ranges": [{"block_id": block, "first": 9, "last": 3}]}
        assert refused(await rest.post("/api/v1/retirements", backwards, key)) == (
            400,
            "INVALID_ARGS",
        )
    assert risk.free_t(holder_id) == 970

    public = ok(await rest.get("/api/v1/public/disclosure"))
    flows = {(f["vintage"], f["methodology"]): f for f in public["flows"]}
    methodology = (await exchange.ledger.project(project)).methodology
    assert flows[2024, methodology]["retired_t"] == 30
    assert flows[2025, methodology]["issued_t"] == 500
    assert isinstance(ok(await rest.get("/api/v1/public/offset-rules")), list)


async def test_finished_tonnes_cannot_be_offered(
    exchange: Exchange, rest: Rest, team: Staff
) -> None:
    holder_id, _ = await holder(exchange, rest, team)
    key = await make_key(exchange, holder_id)
    body = {"quantity_t": 1_000, "beneficiary": "b", "purpose": "p"}
    ok(await rest.post("/api/v1/retirements", body, key))
    instrument = await new_instrument(exchange)
    with pytest.raises(ExchangeError) as refusal:
        await exchange.engine.new_order(
            holder_id, order("x", Side.SELL, 1, 5_000, instrument.symbol)
        )
    assert refusal.value.code == "INSUFFICIENT_HOLDINGS"
