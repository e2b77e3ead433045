"""The regulator's REST writes over a real server: methodologies, projects and issuance through
the ledger with its codes (Art. 9, Art. 22); an issuance is known to the running exchange at
once, so its owner can offer the tonnes; a repeat issues nothing."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from exchange.service import Exchange
from matching import Accepted, Side
from settlement.values import Role
from tests.exchange.conftest import new_instrument
from tests.exchange.market import order
from tests.exchange.rest_client import Rest, Staff, fresh_key

_codes = itertools.count(1)


def refused(got: tuple[int, Any]) -> tuple[int, str]:
    status, body = got
    assert body["ok"] is False, body
    return status, body["error"]["code"]


async def registered(rest: Rest, team: Staff, owner_id: int, **project: Any) -> str:
    """A new methodology and a project of `owner_id` on it; the project's code."""
    n = next(_codes)
    methodology = {"code": f"RM{n}", "name": "Rooftop PV", "sector": "energy"}
    status, body = await rest.post("/api/v1/regulator/methodologies", methodology, team.regulator)
    assert (status, body["result"]) == (200, methodology)
    code = f"RP{n}"
    new = {"code": code, "owner_id": owner_id, "methodology": f"RM{n}", "region": "Futian"}
    status, body = await rest.post("/api/v1/regulator/projects", new | project, team.regulator)
    assert status == 200, body
    return code


async def participant(exchange: Exchange) -> int:
    tag = fresh_key()
    account = await exchange.ledger.open_account(tag, f"owner-{tag}", [Role.PARTICIPANT])
    return account.account_id


async def test_an_issuance_can_be_offered_at_once_and_a_repeat_issues_nothing(
    exchange: Exchange, rest: Rest, team: Staff
) -> None:
    owner = await participant(exchange)
    project = await registered(rest, team, owner)
    symbol = (await new_instrument(exchange)).symbol  # takes 2025 CERs
    issuance = {
        "project": project,
        "quantity_t": 800,
        "period": {"start": "2025-01-01", "end": "2025-03-31"},
    }
    key = fresh_key()
    status, issued = await rest.post("/api/v1/regulator/issuances", issuance, team.regulator, key)
    assert status == 200, issued
    block = issued["result"]
    assert (block["block_id"], block["vintage"], block["issued_to"]) == (
        f"SZCER-{project}-2025-1",
        2025,
        owner,
    )
    assert await rest.post("/api/v1/regulator/issuances", issuance, team.regulator, key) == (
        200,
        issued,
    )
    risk = exchange.engine.risk
    assert risk is not None
    assert risk.free_by_block(owner) == {block["block_id"]: 800}  # credited once
    assert sum(h.quantity_t for h in await exchange.ledger.holdings(owner)) == 800

    _, events = await exchange.engine.new_order(owner, order("o1", Side.SELL, 800, 5_000, symbol))
    assert [type(e) for e in events][:1] == [Accepted]
    assert risk.free_by_block(owner) == {}


async def test_the_registry_refuses_with_the_ledgers_codes(
    exchange: Exchange, rest: Rest, team: Staff
) -> None:
    owner = await participant(exchange)
    schemes = [{"scheme": "CCER", "first_year": 2024, "last_year": 2024}]
    project = await registered(rest, team, owner, other_schemes=schemes)
    regulator = team.regulator
    methodology = {"code": "RMDUP", "name": "PV", "sector": "energy"}
    assert (await rest.post("/api/v1/regulator/methodologies", methodology, regulator))[0] == 200
    got = await rest.post("/api/v1/regulator/methodologies", methodology, regulator)
    assert refused(got) == (409, "METHODOLOGY_EXISTS")

    new = {"code": "RPNEW", "owner_id": owner, "methodology": "NOSUCH", "region": "Futian"}
    got = await rest.post("/api/v1/regulator/projects", new, regulator)
    assert refused(got) == (404, "METHODOLOGY_NOT_REGISTERED")
    got = await rest.post(
        "/api/v1/regulator/projects",
        new | {"methodology": "RMDUP", "owner_id": team.operator_id},
        regulator,
    )
    assert refused(got) == (409, "ROLE_NOT_ALLOWED")  # only a participant owns a project

    path = "/api/v1/regulator/issuances"
    vintage_2024 = {"start": "2024-01-01", "end": "2024-06-30"}
    for issuance, expected in [
        (
            {"project": project, "quantity_t": 10, "period": vintage_2024},
            (409, "PROJECT_REGISTERED_UNDER_OTHER_SCHEME"),
        ),
        (
            {"project": "NOSUCH", "quantity_t": 10, "period": vintage_2024},
            (404, "PROJECT_NOT_FOUND"),
        ),
        (
            {
                "project": project,
                "quantity_t": 10,
                "period": {"start": "2025-06-01", "end": "2026-01-31"},
            },
            (400, "MALFORMED_PERIOD"),
        ),
    ]:
        assert refused(await rest.post(path, issuance, regulator)) == expected, issuance
    assert await exchange.ledger.holdings(owner) == []


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("methodologies", {"code": "lower", "name": "PV", "sector": "energy"}),
        ("methodologies", {"code": "RMX", "name": "", "sector": "energy"}),
        ("methodologies", {"code": "RMX", "name": "PV"}),
        ("projects", {"code": "RPX", "owner_id": 0, "methodology": "RM1", "region": "X"}),
        (
            "projects",
            {
                "code": "RPX",
                "owner_id": 7,
                "methodology": "RM1",
                "region": "X",
                "other_schemes": [{"scheme": "REC", "first_year": 2024, "last_year": 2024}],
            },
        ),
        (
            "issuances",
            {
                "project": "RP1",
                "quantity_t": 0,
                "period": {"start": "2025-01-01", "end": "2025-01-02"},
            },
        ),
        (
            "issuances",
            {
                "project": "RP1",
                "quantity_t": 2.5,
                "period": {"start": "2025-01-01", "end": "2025-01-02"},
            },
        ),
        (
            "issuances",
            {
                "project": "RP1",
                "quantity_t": 5,
                "period": {"start": "2025-13-01", "end": "2025-01-02"},
            },
        ),
        ("issuances", {"project": "RP1", "quantity_t": 5, "period": "2025"}),
    ],
)
async def test_a_bad_registry_body_is_refused_as_invalid(
    rest: Rest, team: Staff, path: str, body: dict[str, Any]
) -> None:
    got = await rest.post(f"/api/v1/regulator/{path}", body, team.regulator)
    assert refused(got) == (400, "INVALID_ARGS")
