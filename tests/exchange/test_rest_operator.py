"""The operator's REST writes over a real server: each refused to other roles and without an
idempotency key; listings that trade at once and are never listed twice; book commands with what
the book did (and its refusal codes); accounts and API keys; deposits and withdrawals that the
risk view follows; a repeat under the same key returns the first result and changes nothing."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from exchange.keys import ApiKey
from exchange.rest import ROUTES
from exchange.service import Exchange
from exchange.sessions import TradingHours
from matching import Side, Trade
from settlement.values import Role
from tests.exchange.conftest import Market, make_key, new_instrument
from tests.exchange.market import SYMBOL, order
from tests.exchange.rest_client import Rest, Staff, fresh_key

_numbers = itertools.count(500)


def listing(**more: Any) -> dict[str, Any]:
    number = next(_numbers)
    body = {
        "instrument_id": number,
        "symbol": f"L{number}",
        "reference_price_fen": 5_000,
        "eligible": {"vintages": [2025]},
        "buyer_fee_bp": 5,
        "seller_fee_bp": 5,
    }
    return body | more


def refused(got: tuple[int, Any]) -> tuple[int, str]:
    status, body = got
    assert body["ok"] is False, body
    return status, body["error"]["code"]


def path_of(template: str, account_id: int) -> str:
    return template.format(
        symbol=SYMBOL,
        account_id=account_id,
        application_id=1,
        year=2030,
        user_ref="u1",
        label_id="SZLCS-2030-000001",
    )


async def test_every_staff_route_refuses_every_other_role(
    exchange: Exchange, rest: Rest, market: Market, team: Staff
) -> None:
    (_, trader), _ = market
    trader_key = await make_key(exchange, trader)
    others = {
        Role.OPERATOR: (trader_key, team.regulator),
        Role.REGULATOR: (trader_key, team.operator),
        Role.COMPLIANCE_ENTITY: (trader_key, team.operator),
        Role.AGGREGATOR: (trader_key, team.regulator),
        Role.PARTICIPANT: (trader_key, team.regulator),
        Role.SCENARIO_OPERATOR: (trader_key, team.regulator),
        Role.SECTOR_AUTHORITY: (trader_key, team.regulator),
        Role.EXPERT: (trader_key, team.regulator),
    }
    checked = 0
    for route in ROUTES:
        for key in others.get(route.access, ()):
            got = await rest.send(route.method, path_of(route.path, trader), {}, key, {})
            assert refused(got) == (403, "AUTH_FORBIDDEN"), route.name
            checked += 1
    # the operator's, the regulator's, and those of compliance entities, aggregators,
    # participants, scenario operators, sector authorities and experts
    assert checked == 2 * (11 + 16 + 4 + 5 + 2 + 1 + 6 + 2)


async def test_a_write_needs_a_well_formed_idempotency_key(rest: Rest, team: Staff) -> None:
    body = {"account_id": team.operator_id, "amount_fen": 1}
    for header in (None, "", "x" * 65, "has space", "slash/ed"):
        headers = {} if header is None else {"Idempotency-Key": header}
        got = await rest.post("/api/v1/operator/deposits", body, team.operator, None, **headers)
        assert refused(got) == (400, "IDEMPOTENCY_KEY_REQUIRED"), header


async def test_a_listing_trades_at_once_and_is_listed_once(
    exchange: Exchange, rest: Rest, market: Market, team: Staff
) -> None:
    (_, seller), (buyer, _) = market
    body, key = listing(), fresh_key()
    symbol = body["symbol"]
    status, first = await rest.post("/api/v1/operator/instruments", body, team.operator, key)
    assert status == 200, first
    assert first["result"]["symbol"] == symbol
    assert first["result"]["only"] == {"vintages": [2025], "methodologies": [], "projects": []}
    _, instruments = await rest.get("/api/v1/instruments")
    assert symbol in {i["symbol"] for i in instruments["result"]}

    engine = exchange.engine
    await engine.new_order(seller, order("s1", Side.SELL, 5, 5_000, symbol))
    _, events = await engine.new_order(buyer, order("b1", Side.BUY, 5, 5_000, symbol))
    assert [(e.price_fen, e.quantity_t) for e in events if isinstance(e, Trade)] == [(5_000, 5)]

    again = await rest.post("/api/v1/operator/instruments", body, team.operator, key)
    assert again == (200, first)
    async with exchange.database.pool.acquire() as conn:
        assert (
            await conn.fetchval("SELECT count(*) FROM instruments WHERE symbol = $1", symbol) == 1
        )
    for duplicate in (
        body | {"instrument_id": next(_numbers)},  # the symbol
        body | {"symbol": "OTHER-SYMBOL"},  # the number
        listing(symbol=SYMBOL),  # an instrument the exchange was opened with
    ):
        got = await rest.post("/api/v1/operator/instruments", duplicate, team.operator)
        assert refused(got) == (409, "INSTRUMENT_EXISTS"), duplicate
    other = listing()
    got = await rest.post("/api/v1/operator/instruments", other, team.operator, key)
    assert refused(got) == (409, "IDEMPOTENCY_KEY_REUSED")
    assert other["symbol"] not in engine.instruments


async def test_a_listing_with_trading_hours_joins_the_schedule(
    exchange: Exchange, rest: Rest, team: Staff
) -> None:
    hours = {"auction_start": "09:15:00", "open": "09:25:00", "close": "15:00:00"}
    body = listing() | {"hours": hours}
    status, listed = await rest.post("/api/v1/operator/instruments", body, team.operator)
    assert status == 200, listed
    symbol = body["symbol"]
    assert exchange.sessions.hours[symbol] == TradingHours()
    # the schedule now moves the book to the phase the local time says: never left open at night
    await exchange.sessions.tick()
    expected = exchange.sessions.next_step(symbol, exchange.engine.now_ns())
    assert expected == ()


@pytest.mark.parametrize(
    "change",
    [
        {"reference_price_fen": 5_000.5},
        {"reference_price_fen": 5_000.0},
        {"reference_price_fen": "5000"},
        {"reference_price_fen": 0},
        {"reference_price_fen": 10**30},
        {"band_bp": 10_000},
        {"buyer_fee_bp": 1_001},
        {"min_quantity_t": 10, "max_quantity_t": 5},  # the book's rules refuse it
        {"lot_t": 2},  # min quantity 1 is not a whole lot
        {"instrument_id": 2**23},
        {"symbol": "lower-case"},
        {"eligible": {"vintages": [1999]}},
        {"eligible": {"vintage": [2025]}},
        {"close_rule": "midpoint"},
        {"colour": "green"},
        {"hours": {"open": "25:00:00"}},
    ],
)
async def test_a_bad_listing_is_refused_as_invalid(
    exchange: Exchange, rest: Rest, team: Staff, change: dict[str, Any]
) -> None:
    body = listing() | change
    got = await rest.post("/api/v1/operator/instruments", body, team.operator)
    assert refused(got) == (400, "INVALID_ARGS")
    assert body["symbol"] not in exchange.engine.instruments


async def test_book_commands_answer_with_what_the_book_did(
    exchange: Exchange, rest: Rest, market: Market, team: Staff
) -> None:
    (_, seller), (buyer, _) = market
    symbol = (await new_instrument(exchange)).symbol
    book = f"/api/v1/operator/instruments/{symbol}"
    engine, risk = exchange.engine, exchange.engine.risk
    assert risk is not None
    free = risk.free_by_block(seller)
    await engine.new_order(seller, order("s1", Side.SELL, 5, 5_000, symbol))

    key = fresh_key()
    status, halted = await rest.post(f"{book}/halt", {"cancel_resting": True}, team.operator, key)
    assert status == 200, halted
    assert halted["result"]["status"] == "halted"
    cancelled = [e for e in halted["result"]["events"] if e["type"] == "cancelled"]
    assert [(e["account_id"], e["reason"]) for e in cancelled] == [(seller, "halt")]
    assert risk.free_by_block(seller) == free  # the cancelled sell's tonnes are back
    again = await rest.post(f"{book}/halt", {"cancel_resting": True}, team.operator, key)
    assert again == (200, halted)  # the first halt's answer; not halted twice
    got = await rest.post(f"{book}/halt", {}, team.operator)
    assert refused(got) == (409, "BOOK_MUST_NOT_BE_HALTED")

    status, resumed = await rest.post(f"{book}/resume", None, team.operator)
    assert (status, resumed["result"]["status"]) == (200, "open")
    assert refused(await rest.post(f"{book}/resume", None, team.operator)) == (
        409,
        "BOOK_MUST_BE_HALTED",
    )
    assert refused(await rest.post(f"{book}/auction/uncross", None, team.operator)) == (
        409,
        "BOOK_MUST_BE_IN_AUCTION",
    )

    status, auction = await rest.post(f"{book}/auction/start", None, team.operator)
    assert (status, auction["result"]["status"]) == (200, "auction")
    await engine.new_order(seller, order("s2", Side.SELL, 5, 4_990, symbol))
    await engine.new_order(buyer, order("b2", Side.BUY, 5, 5_000, symbol))
    status, uncrossed = await rest.post(f"{book}/auction/uncross", {}, team.operator)
    assert (status, uncrossed["result"]["status"]) == (200, "open")
    (result,) = [e for e in uncrossed["result"]["events"] if e["type"] == "uncrossed"]
    assert (result["price_fen"], result["quantity_t"]) == (5_000, 5)

    status, closed = await rest.post(f"{book}/end-of-day", None, team.operator)
    assert status == 200
    (session,) = [e for e in closed["result"]["events"] if e["type"] == "session_closed"]
    assert (session["close_price_fen"], session["volume_t"]) == (5_000, 5)
    assert closed["result"]["reference_price_fen"] == 5_000


async def test_book_commands_for_unknown_or_malformed_symbols_are_refused(
    rest: Rest, team: Staff
) -> None:
    book = "/api/v1/operator/instruments"
    assert refused(await rest.post(f"{book}/NOSUCH/halt", {}, team.operator)) == (
        404,
        "UNKNOWN_INSTRUMENT",
    )
    assert refused(await rest.post(f"{book}/lower/resume", None, team.operator)) == (
        400,
        "INVALID_ARGS",
    )
    got = await rest.post(f"{book}/{SYMBOL}/halt", {"cancel": True}, team.operator)
    assert refused(got) == (400, "INVALID_ARGS")
    got = await rest.post(f"{book}/{SYMBOL}/resume", {"now": True}, team.operator)
    assert refused(got) == (400, "INVALID_ARGS")


async def test_accounts_and_their_keys(exchange: Exchange, rest: Rest, team: Staff) -> None:
    accounts = "/api/v1/operator/accounts"
    name, key = f"trader-{fresh_key()}", fresh_key()
    status, opened = await rest.post(
        accounts, {"name": name, "roles": ["trader"]}, team.operator, key
    )
    assert status == 200, opened
    account_id = opened["result"]["account_id"]
    assert opened["result"]["roles"] == ["trader"]
    again = await rest.post(accounts, {"name": name, "roles": ["trader"]}, team.operator, key)
    assert again == (status, opened)
    got = await rest.post(accounts, {"name": name, "roles": ["trader"]}, team.operator)
    assert refused(got) == (409, "ACCOUNT_NAME_TAKEN")
    for roles, expected in [
        (["regulator"], (403, "AUTH_FORBIDDEN")),
        (["trader", "operator"], (403, "AUTH_FORBIDDEN")),
        (["fees"], (403, "AUTH_FORBIDDEN")),
        ([], (400, "INVALID_ARGS")),
        (["banker"], (400, "INVALID_ARGS")),
    ]:
        got = await rest.post(accounts, {"name": f"n-{fresh_key()}", "roles": roles}, team.operator)
        assert refused(got) == expected, roles

    key = fresh_key()
    status, created = await rest.post(f"{accounts}/{account_id}/keys", None, team.operator, key)
    assert status == 200, created
    made = created["result"]
    api_key = ApiKey(made["key_id"], account_id, bytes.fromhex(made["secret_hex"]))
    status, account = await rest.get("/api/v1/account", api_key)
    assert (status, account["result"]["account_id"]) == (200, account_id)
    status, repeat = await rest.post(f"{accounts}/{account_id}/keys", None, team.operator, key)
    assert status == 200
    assert repeat["result"] == {
        "account_id": account_id,
        "key_id": made["key_id"],
        "secret_hex": None,
    }
    for target, expected in [
        (999_999_999, (404, "ACCOUNT_NOT_FOUND")),
        (team.regulator_id, (403, "AUTH_FORBIDDEN")),
        (2, (403, "AUTH_FORBIDDEN")),  # the fee account
    ]:
        got = await rest.post(f"{accounts}/{target}/keys", None, team.operator)
        assert refused(got) == expected, target
    got = await rest.post(f"{accounts}/abc/keys", None, team.operator)
    assert refused(got) == (400, "INVALID_ARGS")


async def test_a_deposit_is_credited_once_to_the_ledger_and_the_risk_view(
    exchange: Exchange, rest: Rest, market: Market, team: Staff
) -> None:
    _, (buyer, _) = market
    risk = exchange.engine.risk
    assert risk is not None
    ledger_before = await exchange.ledger.balance(buyer)
    risk_before = risk.available_fen(buyer)
    body, key = {"account_id": buyer, "amount_fen": 1_000_000}, fresh_key()
    status, first = await rest.post("/api/v1/operator/deposits", body, team.operator, key)
    assert status == 200, first
    assert first["result"]["amount_fen"] == 1_000_000
    for _ in range(2):
        assert await rest.post("/api/v1/operator/deposits", body, team.operator, key) == (
            200,
            first,
        )
    ledger_after = await exchange.ledger.balance(buyer)
    assert ledger_after.available_fen == ledger_before.available_fen + 1_000_000
    assert risk.available_fen(buyer) == risk_before + 1_000_000
    got = await rest.post("/api/v1/operator/deposits", body | {"amount_fen": 5}, team.operator, key)
    assert refused(got) == (409, "IDEMPOTENCY_KEY_REUSED")
    for target, expected in [
        (team.regulator_id, (409, "ROLE_NOT_ALLOWED")),
        (999_999_999, (404, "ACCOUNT_NOT_FOUND")),
    ]:
        got = await rest.post(
            "/api/v1/operator/deposits", body | {"account_id": target}, team.operator
        )
        assert refused(got) == expected, target
    assert risk.available_fen(buyer) == risk_before + 1_000_000


async def test_a_withdrawal_takes_only_cash_that_orders_have_not_reserved(
    exchange: Exchange, rest: Rest, market: Market, team: Staff
) -> None:
    _, (buyer, _) = market
    symbol = (await new_instrument(exchange)).symbol
    risk = exchange.engine.risk
    assert risk is not None
    await exchange.engine.new_order(buyer, order("b1", Side.BUY, 900, 5_000, symbol))
    await exchange.settler.drain()  # the order's cash lock is in the ledger too
    available = risk.available_fen(buyer)
    before = await exchange.ledger.balance(buyer)
    assert 0 < available == before.available_fen < 1_000_000

    path = "/api/v1/operator/withdrawals"
    beyond = {"account_id": buyer, "amount_fen": available + 1}
    assert refused(await rest.post(path, beyond, team.operator)) == (409, "INSUFFICIENT_CASH")
    assert risk.available_fen(buyer) == available
    assert await exchange.ledger.balance(buyer) == before

    body, key = {"account_id": buyer, "amount_fen": available}, fresh_key()
    status, first = await rest.post(path, body, team.operator, key)
    assert status == 200, first
    assert await rest.post(path, body, team.operator, key) == (200, first)
    assert risk.available_fen(buyer) == 0
    after = await exchange.ledger.balance(buyer)
    assert (after.available_fen, after.locked_fen) == (0, before.locked_fen)
    got = await rest.post(path, {"account_id": 999_999_999, "amount_fen": 1}, team.operator)
    assert refused(got) == (404, "ACCOUNT_NOT_FOUND")


@pytest.mark.parametrize(
    "body",
    [
        {"account_id": 1, "amount_fen": 0},
        {"account_id": 1, "amount_fen": -5},
        {"account_id": 1, "amount_fen": 1.5},
        {"account_id": 1, "amount_fen": "100"},
        {"account_id": 1, "amount_fen": 10**16},
        {"account_id": 1, "amount_fen": True},
        {"amount_fen": 100},
        {"account_id": 1, "amount_fen": 100, "memo": "x"},
    ],
)
async def test_bad_cash_bodies_are_refused_as_invalid(
    rest: Rest, team: Staff, body: dict[str, Any]
) -> None:
    for path in ("/api/v1/operator/deposits", "/api/v1/operator/withdrawals"):
        assert refused(await rest.post(path, body, team.operator)) == (400, "INVALID_ARGS")


async def test_junk_bodies_are_refused_never_served_or_failed(rest: Rest, team: Staff) -> None:
    keys = {Role.OPERATOR: team.operator, Role.REGULATOR: team.regulator}
    junk = [b"null", b"[]", b"{", b"\xff\xfe", b'{"a": 1}', b"1e999", b'"text"', b"{}" * 3]
    for route in ROUTES:
        key = keys.get(route.access)
        if key is None or route.method != "POST":
            continue
        # unknown things and a system account: whatever passes decoding changes nothing
        path = route.path.format(symbol="NOSUCH", account_id=1, application_id=10**12)
        for body in junk:
            status, reply = await rest.post(path, body, key)
            assert 400 <= status < 500 and reply["ok"] is False, (route.name, body, reply)
