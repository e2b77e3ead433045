"""Hostile callers against a real server, each refused with its code and counted in /metrics:
unsigned, forged, replayed, stale and tampered requests on every signed route; header values no
client would send; one account reaching for another's orders, tonnes, retirements and
applications; a trader on every staff route; frames and bodies over their limits; text no
column can hold; paths no route has; floods of connections, orders and REST requests. Every test
reads /metrics before and after, and checks that the refusals it saw moved
`cerx_requests_total{op, outcome}` (or `cerx_connection_closes_total{reason}`,
`cerx_connection_refusals_total{reason}`) by exactly as many. docs/security.md lists them."""

from __future__ import annotations

import asyncio
import io
import itertools
import time
from collections.abc import Mapping
from typing import Any

import aiohttp
import msgspec
import pytest
from aiohttp.test_utils import TestServer

from exchange.auth import HttpRequest, sign_request
from exchange.client import Refused
from exchange.client import connect as client_connect
from exchange.endpoint import MAX_BODY, PUBLIC, SIGNED, Route
from exchange.keys import ApiKey
from exchange.limits import Limits
from exchange.rest import ROUTES
from exchange.server import ADMISSION_KEY, MAX_FRAME, build_app
from exchange.service import Exchange
from matching import Side
from settlement.database import Database
from settlement.values import Role
from tests.exchange.conftest import Market, make_key, open_exchange
from tests.exchange.figures import count
from tests.exchange.market import SYMBOL, order
from tests.exchange.rest_client import Rest, Staff, fresh_key
from tests.exchange.test_rest_offsets import holder
from tests.exchange.test_rest_registration import REPORTS, account, methodology, pool
from tests.exchange.test_server import Client, connect

SIGNED_ROUTES = [route for route in ROUTES if route.access != PUBLIC]
STAFF_ROUTES = [route for route in ROUTES if route.access not in (PUBLIC, SIGNED)]
_nonces = itertools.count(1)
_years = itertools.count(2080)

Scrape = dict[str, float]


async def scrape(http: aiohttp.ClientSession, server: TestServer) -> Scrape:
    async with http.get(server.make_url("/metrics")) as response:
        assert response.status == 200
        text = await response.text()
    return {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line and not line.startswith("#")
    }


def served(op: str, outcome: str) -> str:
    return f'cerx_requests_total{{op="{op}",outcome="{outcome}"}}'


def closed(reason: str) -> str:
    return f'cerx_connection_closes_total{{reason="{reason}"}}'


def assert_moved(before: Scrape, after: Scrape, expected: Mapping[str, int]) -> None:
    """Each series moved by exactly its count; the refusals are counted for the figures."""
    moved = {name: after.get(name, 0) - before.get(name, 0) for name in expected}
    assert moved == expected
    count("security: refusals checked, each counted in /metrics", sum(expected.values()))


def path_of(route: Route, account_id: int) -> str:
    return route.path.format(
        symbol=SYMBOL,
        account_id=account_id,
        application_id=1,
        year=2030,
        certificate_id="CN-2030-000001",
        label_id=1,
        user_ref="u-1",
    )


def elsewhere(path: str) -> str:
    """Another request target than `path`: a signature for it is not one for `path`."""
    return path + "?" if "?" not in path else path + "&"


def headers_for(
    key: ApiKey,
    method: str,
    path_qs: str,
    body: bytes = b"",
    *,
    ts_ms: int | None = None,
    nonce: str | None = None,
    secret: bytes | None = None,
) -> dict[str, str]:
    """Signature headers as a client makes them, each part open to being made wrong."""
    ts = time.time_ns() // 1_000_000 if ts_ms is None else ts_ms
    nonce = f"security-{next(_nonces)}-{time.time_ns()}" if nonce is None else nonce
    request = HttpRequest(method, path_qs, body)
    signature = sign_request(
        key.secret if secret is None else secret, ts, nonce, key.key_id, request
    )
    return {
        "X-CERX-Key": key.key_id,
        "X-CERX-Timestamp": str(ts),
        "X-CERX-Nonce": nonce,
        "X-CERX-Signature": signature,
        "Idempotency-Key": fresh_key(),
    }


async def send(
    rest: Rest, route: Route, path: str, headers: dict[str, str], body: bytes | None = None
) -> tuple[int, str]:
    """The status and refusal code of `route` called with exactly these headers and body."""
    if body is None:
        body = b"{}" if route.method == "POST" else b""
    status, reply = await rest.send(route.method, path, body, None, headers)
    assert reply["ok"] is False, (route.name, reply)
    return status, reply["error"]["code"]


async def keys_by_access(
    exchange: Exchange, rest: Rest, team: Staff, trader: int
) -> dict[Any, ApiKey]:
    """A key of an account each route admits: the right role, or any signed account."""
    entity, _ = await holder(exchange, rest, team, Role.COMPLIANCE_ENTITY)
    found: dict[Any, ApiKey] = {
        Role.OPERATOR: team.operator,
        Role.REGULATOR: team.regulator,
        Role.COMPLIANCE_ENTITY: await make_key(exchange, entity),
        SIGNED: await make_key(exchange, trader),
    }
    for role in {route.access for route in STAFF_ROUTES} - found.keys():
        tag = f"sec{next(_nonces)}-{time.time_ns()}"
        account = await exchange.ledger.open_account(tag, f"{tag}-{role}", [role])
        found[role] = await make_key(exchange, account.account_id)
    return found


# -- signatures ----------------------------------------------------------------------------------


async def test_every_signed_route_refuses_unsigned_forged_and_stale_requests(
    exchange: Exchange, server: TestServer, rest: Rest, market: Market, team: Staff
) -> None:
    (_, trader), _ = market
    keys = await keys_by_access(exchange, rest, team, trader)
    stranger = await make_key(exchange, trader)
    now_ms = time.time_ns() // 1_000_000
    expected: dict[str, int] = {}
    before = await scrape(rest.http, server)
    for route in SIGNED_ROUTES:
        key, path = keys[route.access], path_of(route, trader)
        body = b"{}" if route.method == "POST" else b""
        cases = [
            ({}, "AUTH_REQUIRED"),
            (headers_for(key, route.method, path, body) | {"X-CERX-Signature": "0" * 64}, None),
            (headers_for(key, route.method, elsewhere(path), body), None),
            (headers_for(key, route.method, path, body, secret=stranger.secret), None),
            (headers_for(key, route.method, path, body, ts_ms=now_ms - 6_000), "STALE"),
            (headers_for(key, route.method, path, body, ts_ms=now_ms + 6_000), "STALE"),
            (headers_for(key, route.method, path, body) | {"X-CERX-Key": "k-nosuch"}, "UNKNOWN"),
        ]
        for headers, kind in cases:
            code = {
                None: "AUTH_BAD_SIGNATURE",
                "STALE": "AUTH_STALE_TIMESTAMP",
                "UNKNOWN": "AUTH_UNKNOWN_KEY",
            }.get(kind, kind)
            assert code is not None
            assert await send(rest, route, path, headers, body) == (401, code), route.name
            expected[served(route.name, code)] = expected.get(served(route.name, code), 0) + 1
    assert_moved(before, await scrape(rest.http, server), expected)


async def test_a_replayed_request_is_refused_and_changes_nothing(
    exchange: Exchange, server: TestServer, rest: Rest, market: Market, team: Staff
) -> None:
    _, (buyer, _) = market
    deposits = next(r for r in ROUTES if r.path == "/api/v1/operator/deposits")
    account = next(r for r in ROUTES if r.path == "/api/v1/account")
    body = b'{"account_id": %d, "amount_fen": 700}' % buyer
    before_fen = (await exchange.ledger.balance(buyer)).available_fen
    before = await scrape(rest.http, server)
    once = headers_for(team.operator, "POST", deposits.path, body)
    assert (await rest.send("POST", deposits.path, body, None, once))[0] == 200
    assert await send(rest, deposits, deposits.path, once, body) == (401, "AUTH_NONCE_REUSED")
    # the same nonce on another request of the same key, signed afresh, is spent too
    again = headers_for(
        team.operator,
        "POST",
        deposits.path,
        body.replace(b"700", b"800"),
        nonce=once["X-CERX-Nonce"],
    )
    assert await send(rest, deposits, deposits.path, again, body.replace(b"700", b"800")) == (
        401,
        "AUTH_NONCE_REUSED",
    )
    key = await make_key(exchange, buyer)
    read = headers_for(key, "GET", account.path)
    assert (await rest.send("GET", account.path, b"", None, read))[0] == 200
    assert await send(rest, account, account.path, read) == (401, "AUTH_NONCE_REUSED")
    # inside the window either side of the server's clock a request passes
    for skew_ms in (-4_000, 4_000):
        headers = headers_for(key, "GET", account.path, ts_ms=time.time_ns() // 1_000_000 + skew_ms)
        assert (await rest.send("GET", account.path, b"", None, headers))[0] == 200
    assert_moved(
        before,
        await scrape(rest.http, server),
        {
            served(deposits.name, "AUTH_NONCE_REUSED"): 2,
            served(account.name, "AUTH_NONCE_REUSED"): 1,
        },
    )
    assert (await exchange.ledger.balance(buyer)).available_fen == before_fen + 700


async def test_a_body_changed_after_signing_is_refused_on_every_write(
    exchange: Exchange, server: TestServer, rest: Rest, market: Market, team: Staff
) -> None:
    (_, trader), (buyer, _) = market
    keys = await keys_by_access(exchange, rest, team, trader)
    signed_body = b'{"account_id": %d, "amount_fen": 1}' % buyer
    sent_body = b'{"account_id": %d, "amount_fen": 1000000}' % buyer
    expected = {}
    before = await scrape(rest.http, server)
    before_fen = (await exchange.ledger.balance(buyer)).available_fen
    for route in (r for r in SIGNED_ROUTES if r.method == "POST"):
        path = path_of(route, trader)
        headers = headers_for(keys[route.access], "POST", path, signed_body)
        assert await send(rest, route, path, headers, sent_body) == (401, "AUTH_BAD_SIGNATURE")
        expected[served(route.name, "AUTH_BAD_SIGNATURE")] = 1
    assert_moved(before, await scrape(rest.http, server), expected)
    assert (await exchange.ledger.balance(buyer)).available_fen == before_fen


async def raw_http(server: TestServer, head: bytes) -> tuple[int, dict[str, Any]]:
    """A request written byte for byte, as no HTTP client library would send it."""
    reader, writer = await asyncio.open_connection(server.host, server.port)
    try:
        writer.write(head)
        await writer.drain()
        response = await reader.read()
    finally:
        writer.close()
    status_line, _, rest = response.partition(b"\r\n")
    _, _, body = rest.partition(b"\r\n\r\n")
    return int(status_line.split()[1]), msgspec.json.decode(body)


async def test_header_values_and_bodies_no_client_sends_are_refused_not_failed(
    exchange: Exchange, server: TestServer, rest: Rest, market: Market, team: Staff
) -> None:
    """Each header here was a 500 or INTERNAL_ERROR (an exception in the server) before: a
    signature with non-ASCII characters, a timestamp of Unicode digits, a key id that is not UTF-8
    or holds NUL. A body nested far deeper than the decoder could recurse is refused at its first
    wrong level."""
    _, (buyer, _) = market
    key = await make_key(exchange, buyer)
    account = "/api/v1/account"
    cases = [
        ("X-CERX-Signature", "é".encode() * 64, "AUTH_BAD_SIGNATURE"),
        ("X-CERX-Timestamp", "²".encode(), "AUTH_STALE_TIMESTAMP"),
        ("X-CERX-Timestamp", "١٧٠٠".encode(), "AUTH_STALE_TIMESTAMP"),  # Arabic-Indic digits
        ("X-CERX-Key", b"\xff\xfe", "AUTH_UNKNOWN_KEY"),
        ("X-CERX-Key", "k-é".encode(), "AUTH_UNKNOWN_KEY"),
    ]
    expected: dict[str, int] = {}
    before = await scrape(rest.http, server)
    for name, value, code in cases:
        lines = [f"GET {account} HTTP/1.1".encode(), b"Host: cerx", b"Connection: close"]
        for header, text in headers_for(key, "GET", account).items():
            lines.append(header.encode() + b": " + (value if header == name else text.encode()))
        status, reply = await raw_http(server, b"\r\n".join(lines) + b"\r\n\r\n")
        assert (status, reply["error"]["code"]) == (401, code), (name, value)
        expected[served(f"GET {account}", code)] = (
            expected.get(served(f"GET {account}", code), 0) + 1
        )
    deposits = "/api/v1/operator/deposits"
    deep = b'{"account_id": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    headers = headers_for(team.operator, "POST", deposits, deep)
    status, reply = await rest.send("POST", deposits, deep, None, headers)
    assert (status, reply["error"]["code"]) == (400, "INVALID_ARGS")
    expected[served(f"POST {deposits}", "INVALID_ARGS")] = 1
    async with aiohttp.ClientSession() as http:
        client = await connect(server, http)
        assert (await client.login(key, api_key="k-\u0000"))["error"]["code"] == "AUTH_UNKNOWN_KEY"
    expected[served("login", "AUTH_UNKNOWN_KEY")] = 1
    assert_moved(before, await scrape(rest.http, server), expected)


# -- one account reaching for another's ---------------------------------------------------------


async def test_one_account_cannot_cancel_or_amend_anothers_orders_over_the_websocket(
    exchange: Exchange, server: TestServer, market: Market
) -> None:
    (_, seller), (buyer, _) = market
    async with aiohttp.ClientSession() as http:
        owner, other = await connect(server, http), await connect(server, http)
        await owner.login(await make_key(exchange, seller))
        await other.login(await make_key(exchange, buyer))
        placed = await owner.call(
            "new_order", symbol=SYMBOL, cl_ord_id="own-1", side="sell", quantity=5, price=5_300
        )
        order_id = placed["result"]["order_id"]
        attempts = [
            ("cancel", {"order_id": order_id}, "ORDER_MUST_BELONG_TO_ACCOUNT"),
            ("cancel", {"cl_ord_id": "own-1"}, "ORDER_MUST_EXIST"),  # client ids are per account
            ("amend", {"order_id": order_id, "quantity": 1}, "ORDER_MUST_BELONG_TO_ACCOUNT"),
            # growing it would need tonnes the caller lacks: the ownership check comes first
            ("amend", {"order_id": order_id, "quantity": 900}, "ORDER_MUST_BELONG_TO_ACCOUNT"),
            ("amend", {"cl_ord_id": "own-1", "quantity": 1}, "ORDER_MUST_EXIST"),
            ("cancel_all", {}, "ORDER_MUST_EXIST"),
        ]
        expected: dict[str, int] = {}
        before = await scrape(http, server)
        for op, args, code in attempts:
            reply = await other.call(op, symbol=SYMBOL, **args)
            assert reply["error"]["code"] == code, (op, args, reply)
            expected[served(op, code)] = expected.get(served(op, code), 0) + 1
        assert_moved(before, await scrape(http, server), expected)
        resting = exchange.engine.books[SYMBOL].order(order_id)
        assert resting is not None and (resting.leaves_t, resting.price_fen) == (5, 5_300)
        assert (await owner.call("cancel", symbol=SYMBOL, order_id=order_id))["ok"]


async def test_rest_reads_are_the_callers_own_and_cannot_name_another_account(
    exchange: Exchange, server: TestServer, rest: Rest, market: Market
) -> None:
    (_, seller), (buyer, _) = market
    order_id, _ = await exchange.engine.new_order(seller, order("peek-1", Side.SELL, 3, 5_400))
    key = await make_key(exchange, buyer)
    before = await scrape(rest.http, server)
    expected: dict[str, int] = {}
    for path in ("/api/v1/account", "/api/v1/holdings", "/api/v1/orders"):
        status, reply = await rest.get(path, key)
        assert status == 200, reply
        result = reply["result"]
        if path == "/api/v1/orders":
            assert order_id not in {o["order_id"] for o in result}
        else:
            assert result["account_id"] == buyer
        expected[served(f"GET {path}", "ok")] = 1
    # a query naming the other account is refused, not ignored into the caller's own data
    for path in ("/api/v1/account", "/api/v1/holdings", "/api/v1/orders", "/api/v1/trades"):
        status, reply = await rest.get(f"{path}?account_id={seller}", key)
        assert (status, reply["error"]["code"]) == (400, "INVALID_ARGS"), path
        name = served(f"GET {path}", "INVALID_ARGS")
        expected[name] = expected.get(name, 0) + 1
    assert_moved(before, await scrape(rest.http, server), expected)
    await exchange.engine.cancel(seller, SYMBOL, order_id)


async def test_one_account_cannot_finish_or_claim_anothers_tonnes_and_retirements(
    exchange: Exchange, server: TestServer, rest: Rest, market: Market, team: Staff
) -> None:
    (owner, trader), _ = market
    theirs = next(h for h in await exchange.ledger.holdings(owner) if h.state == "free")
    serials = {"block_id": theirs.block_id, "first": theirs.first, "last": theirs.first + 4}
    mine, _ = await holder(exchange, rest, team, Role.TRADER)
    mine_key, trader_key = await make_key(exchange, mine), await make_key(exchange, trader)
    stranger, _ = await holder(exchange, rest, team, Role.TRADER)
    stranger_key = await make_key(exchange, stranger)
    retire = {"beneficiary": "某公司", "purpose": "碳中和"}
    retired = await rest.post("/api/v1/retirements", retire | {"quantity_t": 10}, mine_key)
    retirement_id = retired[1]["result"]["retirement_id"]
    application = {
        "beneficiary": "某公司",
        "subject_kind": "event",
        "subject": "年会",
        "emissions_t": 10,
        "purpose": "碳中和",
        "retirement_ids": [retirement_id],
    }
    applied = await rest.post("/api/v1/certificate-applications", application, mine_key)
    application_id = applied[1]["result"]["application_id"]
    before = await scrape(rest.http, server)
    held = (await exchange.ledger.balance(owner), await exchange.ledger.holdings(owner))
    attempts = [
        # serials of a block the caller holds none of: the risk view refuses
        (
            "POST /api/v1/retirements",
            (await rest.post("/api/v1/retirements", retire | {"ranges": [serials]}, stranger_key)),
            (409, "INSUFFICIENT_HOLDINGS"),
        ),
        # serials of a block the caller holds other serials of: the ledger refuses
        (
            "POST /api/v1/retirements",
            (await rest.post("/api/v1/retirements", retire | {"ranges": [serials]}, trader_key)),
            (409, "RANGE_NOT_HELD"),
        ),
        (
            "POST /api/v1/certificate-applications",
            await rest.post("/api/v1/certificate-applications", application, stranger_key),
            (404, "RETIREMENT_NOT_FOUND"),
        ),
    ]
    expected: dict[str, int] = {}
    for name, (status, reply), refusal in attempts:
        assert (status, reply["error"]["code"]) == refusal, name
        expected[served(name, refusal[1])] = expected.get(served(name, refusal[1]), 0) + 1
    for path, found in (
        ("/api/v1/retirements", "retirement_id"),
        ("/api/v1/certificate-applications", "application_id"),
    ):
        status, reply = await rest.get(path, stranger_key)
        assert status == 200 and reply["ok"], reply
        assert {retirement_id, application_id}.isdisjoint(r[found] for r in reply["result"])
        expected[served(f"GET {path}", "ok")] = 1
    assert_moved(before, await scrape(rest.http, server), expected)
    assert (await exchange.ledger.balance(owner), await exchange.ledger.holdings(owner)) == held


async def test_one_account_cannot_see_resubmit_or_review_anothers_applications(
    exchange: Exchange, server: TestServer, rest: Rest, team: Staff
) -> None:
    sector = f"sec-{fresh_key()}"
    experts = await pool(exchange, rest, team, sector, 3)
    _, key = await account(exchange, Role.PARTICIPANT)
    _, stranger = await account(exchange, Role.PARTICIPANT)
    applied = await rest.post("/api/v1/applications/methodologies", methodology(sector), key)
    a = applied[1]["result"]["application_id"]
    started = await rest.post(
        f"/api/v1/regulator/applications/{a}/review", {"panel_size": 2}, team.regulator
    )
    drawn = set(started[1]["result"]["draw"]["drawn"])
    left_out = experts[next(e for e in experts if e not in drawn)]
    opinion = {"approve": True, "text": "sound"}
    attempts = [
        ("GET", f"/api/v1/applications/{a}", None, stranger, (404, "APPLICATION_NOT_FOUND")),
        (
            "POST",
            "/api/v1/applications/methodologies",
            methodology(sector) | {"resubmits": a},
            stranger,
            (404, "APPLICATION_NOT_FOUND"),
        ),
        (
            "POST",
            f"/api/v1/applications/{a}/reports",
            {"reports": REPORTS},
            stranger,
            (404, "APPLICATION_NOT_FOUND"),
        ),
        (
            "POST",
            f"/api/v1/expert/reviews/{a}/opinion",
            opinion,
            left_out,
            (403, "NOT_DRAWN"),
        ),
    ]
    expected: dict[str, int] = {}
    before = await scrape(rest.http, server)
    for method, path, body, caller, refusal in attempts:
        if method == "GET":
            status, reply = await rest.get(path, caller)
        else:
            status, reply = await rest.post(path, body, caller)
        assert (status, reply["error"]["code"]) == refusal, path
        route = next(r for r in ROUTES if r.method == method and _matches(r.path, path))
        expected[served(route.name, refusal[1])] = 1
    assert_moved(before, await scrape(rest.http, server), expected)


def _matches(pattern: str, path: str) -> bool:
    """Whether `path` is an instance of the route `pattern` (`{name}` matches one segment)."""
    wanted, parts = pattern.split("/"), path.split("/")
    return len(wanted) == len(parts) and all(
        w == p or w.startswith("{") for w, p in zip(wanted, parts, strict=True)
    )


# -- roles ---------------------------------------------------------------------------------------


async def test_no_account_reaches_a_staff_route_without_its_role(
    exchange: Exchange, server: TestServer, rest: Rest, market: Market, team: Staff
) -> None:
    """A trader on every operator, regulator, aggregator, expert, sector-authority and applicant
    route, and every staff role on every other role's: 403 AUTH_FORBIDDEN, nothing done."""
    (_, trader), _ = market
    keys = await keys_by_access(exchange, rest, team, trader)
    roles = {access: await exchange.roles(key.account_id) for access, key in keys.items()}
    expected: dict[str, int] = {}
    before = await scrape(rest.http, server)
    for route in STAFF_ROUTES:
        path = path_of(route, trader)
        body = b"{}" if route.method == "POST" else b""
        outsiders = [access for access in keys if route.access not in roles[access]]
        assert SIGNED in outsiders, route.name  # the trader is refused everywhere
        for access in outsiders:
            headers = headers_for(keys[access], route.method, path, body)
            assert await send(rest, route, path, headers, body) == (403, "AUTH_FORBIDDEN"), (
                route.name,
                access,
            )
        expected[served(route.name, "AUTH_FORBIDDEN")] = len(outsiders)
    assert_moved(before, await scrape(rest.http, server), expected)


# -- sizes ---------------------------------------------------------------------------------------


async def send_large(
    rest: Rest, route: Route, path: str, headers: dict[str, str], body: bytes
) -> tuple[int, str]:
    """As `send`, streaming the body (aiohttp warns of a large body sent as bytes)."""
    url = rest.server.make_url(path)
    async with rest.http.request(
        route.method, url, data=io.BytesIO(body), headers=headers
    ) as response:
        reply = msgspec.json.decode(await response.read())
    assert reply["ok"] is False, (route.name, reply)
    return response.status, reply["error"]["code"]


async def test_a_body_past_the_limit_is_refused_413_on_every_route(
    exchange: Exchange, server: TestServer, rest: Rest, market: Market, team: Staff
) -> None:
    """Signed or not, before its signature is checked: the body is read first, and no further
    than the limit. One byte less is read and judged as any body."""
    (_, trader), _ = market
    keys = await keys_by_access(exchange, rest, team, trader)
    too_large = b" " * MAX_BODY + b"{}"
    expected: dict[str, int] = {}
    before = await scrape(rest.http, server)
    for route in ROUTES:
        path = path_of(route, trader)
        assert await send_large(rest, route, path, {}, too_large) == (413, "BODY_TOO_LARGE")
        count_as = served(route.name, "BODY_TOO_LARGE")
        expected[count_as] = 1
        if route.access != PUBLIC:
            headers = headers_for(keys[route.access], route.method, path, too_large)
            refused = await send_large(rest, route, path, headers, too_large)
            assert refused == (413, "BODY_TOO_LARGE")
            expected[count_as] = 2
    deposits = "/api/v1/operator/deposits"
    at_limit = b'{"account_id": %d, "amount_fen": 0}' % trader
    at_limit += b" " * (MAX_BODY - len(at_limit))
    status, reply = await rest.post(deposits, at_limit, team.operator)
    assert (status, reply["error"]["code"]) == (400, "INVALID_ARGS"), reply  # amount_fen >= 1
    expected[served(f"POST {deposits}", "INVALID_ARGS")] = 1
    assert_moved(before, await scrape(rest.http, server), expected)


async def test_a_frame_past_the_limit_closes_its_session_1009_and_is_counted(
    exchange: Exchange, server: TestServer, market: Market
) -> None:
    (_, trader), _ = market
    key = await make_key(exchange, trader)
    async with aiohttp.ClientSession() as http:
        before = await scrape(http, server)
        bystander = await connect(server, http)
        await bystander.login(key)
        for binary in (False, True):
            client = await connect(server, http)
            await client.login(key)
            frame = b'{"op": "ping", "req_id": 1}' + b" " * MAX_FRAME
            await (client.ws.send_bytes(frame) if binary else client.ws.send_str(frame.decode()))
            closing = await client.ws.receive(timeout=10)
            assert (closing.type, closing.data) == (aiohttp.WSMsgType.CLOSE, 1009)
            await client.ws.close()
        assert (await bystander.call("ping"))["result"] == "pong"
        assert_moved(before, await scrape(http, server), {closed("frame_too_big"): 2})


# -- floods --------------------------------------------------------------------------------------

FLOOD_CAPS = Limits(sessions_per_address=3, sessions_total=5)
UPGRADE = {
    "Connection": "Upgrade",
    "Upgrade": "websocket",
    "Sec-WebSocket-Version": "13",
    "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
}


def refused_for(cap: str) -> str:
    return f'cerx_connection_refusals_total{{reason="{cap}"}}'


async def refused_upgrade(http: aiohttp.ClientSession, server: TestServer) -> dict[str, Any]:
    """A WebSocket upgrade the caps refuse, as the bytes of its answer show it."""
    async with http.get(server.make_url("/ws"), headers=UPGRADE) as response:
        assert response.status == 429, response.status
        assert response.headers["Retry-After"] == "1"
        reply: dict[str, Any] = msgspec.json.decode(await response.read())
    assert reply["ok"] is False
    return reply["error"]


async def admitted(http: aiohttp.ClientSession, server: TestServer) -> tuple[Any, int]:
    """A session, once the server has counted out one that just closed (the client hears the
    close before the server has finished with it): the session, and the refusals on the way."""
    refusals = 0
    for _ in range(100):
        try:
            return await connect(server, http), refusals
        except aiohttp.WSServerHandshakeError as error:
            assert error.status == 429
            refusals += 1
            await asyncio.sleep(0.02)
    raise AssertionError("no session was admitted again")


async def test_a_flood_of_connections_is_refused_past_the_caps_and_the_open_sessions_serve_on(
    database: Database, market: Market
) -> None:
    (_, seller), _ = market
    exchange = await open_exchange(database, FLOOD_CAPS)
    server = TestServer(build_app(exchange), host="127.0.0.1")
    await server.start_server()
    admission = server.app[ADMISSION_KEY]
    elsewhere = aiohttp.TCPConnector(local_addr=("127.0.0.2", 0))  # another client's address
    try:
        async with (
            aiohttp.ClientSession() as http,
            aiohttp.ClientSession(connector=elsewhere) as far,
        ):
            before = await scrape(http, server)
            key = await make_key(exchange, seller)
            here = [await connect(server, http) for _ in range(3)]
            await here[0].login(key)
            # the address has its three: a flood of upgrades from it is refused, every one
            flood = await asyncio.gather(
                *(connect(server, http) for _ in range(40)), return_exceptions=True
            )
            assert {(type(f), getattr(f, "status", None)) for f in flood} == {
                (aiohttp.WSServerHandshakeError, 429)
            }
            error = await refused_upgrade(http, server)
            assert (error["code"], error["retry_after_ms"]) == ("TOO_MANY_SESSIONS", 1_000)
            assert "this address" in error["msg"]
            with pytest.raises(Refused) as refused:
                async with client_connect(server.make_url("/ws"), http=http):
                    pass
            assert (refused.value.code, refused.value.retry_after_ms) == (
                "TOO_MANY_SESSIONS",
                1_000,
            )
            # another address opens the two the total has left, then is refused too
            there = [await connect(server, far) for _ in range(2)]
            error = await refused_upgrade(far, server)
            assert error["code"] == "TOO_MANY_SESSIONS" and "the exchange" in error["msg"]
            admission.check_invariants()
            # the sessions open serve on: the logged-in one trades, the others answer
            placed = await here[0].call(
                "new_order",
                symbol=SYMBOL,
                cl_ord_id="flood-1",
                side="sell",
                quantity=2,
                price=5_400,
            )
            assert placed["ok"], placed
            assert (await here[0].call("cancel", symbol=SYMBOL, cl_ord_id="flood-1"))["ok"]
            for client in [*here[1:], *there]:
                assert (await client.call("ping"))["result"] == "pong"
            # one closes, and its place is taken again
            await here.pop().ws.close()
            again, waited = await admitted(http, server)
            assert (await again.call("ping"))["result"] == "pong"
            admission.check_invariants()
            assert_moved(
                before,
                await scrape(http, server),
                {refused_for("per_address"): 40 + 2 + waited, refused_for("total"): 1},
            )
            for client in [*here, *there, again]:
                await client.ws.close()
    finally:
        await server.close()
        await exchange.close()


async def pipelined(client: Client, frames: list[tuple[str, dict[str, object]]]) -> list[Any]:
    """Send every frame at once, then read their replies, in whatever order they come (a
    refusal decided before the journal may overtake the orders before it): as a flood arrives."""
    ids = [next(client.ids) for _ in frames]
    for req_id, (op, args) in zip(ids, frames, strict=True):
        await client.ws.send_bytes(msgspec.json.encode({"op": op, "req_id": req_id, "args": args}))
    replies: dict[int, Any] = {}
    while len(replies) < len(ids):
        message = await client.ws.receive(timeout=10)
        assert message.type is aiohttp.WSMsgType.BINARY, message
        body = msgspec.json.decode(message.data)
        if "type" not in body:
            replies[body["req_id"]] = body
    return [replies[req_id] for req_id in ids]


def bids(tag: str, n: int) -> list[tuple[str, dict[str, object]]]:
    """`n` small buys resting far under the market, each with its own client order id."""
    return [
        (
            "new_order",
            {"symbol": SYMBOL, "cl_ord_id": f"{tag}-{i}", "side": "buy", "quantity": 1}
            | {"price": 4_600, "post_only": True},
        )
        for i in range(n)
    ]


FLOODS = {
    # one session past its bucket; and one account past its own over two sessions
    "session": (Limits(session_per_second=20, session_burst=20), 1),
    "account": (Limits(account_per_second=20, account_burst=20), 2),
}


@pytest.mark.parametrize("bucket", sorted(FLOODS))
async def test_a_flood_of_orders_is_refused_rate_limited_and_slows_no_one_else(
    database: Database, market: Market, bucket: str
) -> None:
    limits, sessions = FLOODS[bucket]
    (_, seller), (buyer, _) = market
    exchange = await open_exchange(database, limits)
    server = TestServer(build_app(exchange), host="127.0.0.1")
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as http:
            flooders = [await connect(server, http) for _ in range(sessions)]
            flooder_key = await make_key(exchange, buyer)
            for flooder in flooders:
                await flooder.login(flooder_key)
            bystander = await connect(server, http)
            await bystander.login(await make_key(exchange, seller))
            before = await scrape(http, server)
            started = time.monotonic()
            flood = asyncio.gather(
                *(
                    pipelined(f, bids(f"{bucket}-{n}", 200 // sessions))
                    for n, f in enumerate(flooders)
                )
            )
            waits = []  # the bystander's round trips while the flood is served
            while not flood.done():
                sent = time.monotonic()
                assert (await bystander.call("ping"))["result"] == "pong"
                waits.append(time.monotonic() - sent)
                await asyncio.sleep(1 / 20)  # within a bucket of its own at 20 a second
            replies = [reply for replies in await flood for reply in replies]
            elapsed_s = time.monotonic() - started
            refused = [r["error"] for r in replies if not r["ok"]]
            assert {e["code"] for e in refused} == {"RATE_LIMITED"}
            assert all(1 <= e["retry_after_ms"] <= 1_000 // 20 for e in refused)
            placed = len(replies) - len(refused)
            # the burst (a session's login took a token of it), and what the bucket gained while
            # the flood was read
            assert 20 - 1 <= placed <= 20 + int(20 * elapsed_s) + 1, (placed, elapsed_s)
            assert max(waits) < 1.0, waits  # the bystander's bucket and session are its own
            assert_moved(
                before,
                await scrape(http, server),
                {
                    served("new_order", "RATE_LIMITED"): len(refused),
                    served("new_order", "ok"): placed,
                    served("ping", "ok"): len(waits),
                },
            )
            # the flooding sessions are open, and trade again once the window has passed (a
            # token each: they may share one bucket)
            await asyncio.sleep(max(e["retry_after_ms"] for e in refused) / 1_000 * sessions)
            for n, flooder in enumerate(flooders):
                op, args = bids(f"{bucket}-again-{n}", 1)[0]
                again = await flooder.call(op, **args)
                assert again["ok"], again
            assert (await flooders[0].call("cancel_all", symbol=SYMBOL))["ok"]
    finally:
        await server.close()
        await exchange.close()


async def test_a_flood_of_rest_requests_is_refused_429_per_account_and_slows_no_one_else(
    database: Database, market: Market
) -> None:
    (_, seller), (buyer, _) = market
    exchange = await open_exchange(database, Limits(account_per_second=10, account_burst=10))
    server = TestServer(build_app(exchange), host="127.0.0.1")
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as http:
            rest = Rest(server, http)
            flooder, bystander = await make_key(exchange, buyer), await make_key(exchange, seller)
            before = await scrape(http, server)
            started = time.monotonic()
            flood = await asyncio.gather(
                *(rest.get("/api/v1/orders", flooder) for _ in range(60)),
                *(rest.get("/api/v1/orders", bystander) for _ in range(5)),
            )
            elapsed_s = time.monotonic() - started
            theirs, others = flood[:60], flood[60:]
            refused = [body["error"] for status, body in theirs if status != 200]
            assert {e["code"] for e in refused} == {"RATE_LIMITED"}
            assert {status for status, _ in theirs} == {200, 429}
            assert all(1 <= e["retry_after_ms"] <= 100 for e in refused)
            placed = len(theirs) - len(refused)
            assert 10 <= placed <= 10 + int(10 * elapsed_s) + 1, (placed, elapsed_s)
            assert {status for status, _ in others} == {200}
            assert_moved(
                before,
                await scrape(http, server),
                {
                    served("GET /api/v1/orders", "RATE_LIMITED"): len(refused),
                    served("GET /api/v1/orders", "ok"): placed + len(others),
                },
            )
            await asyncio.sleep(max(e["retry_after_ms"] for e in refused) / 1_000)
            assert (await rest.get("/api/v1/orders", flooder))[0] == 200
    finally:
        await server.close()
        await exchange.close()


async def test_a_path_or_method_no_route_has_is_refused_in_json_and_counted(
    server: TestServer, rest: Rest
) -> None:
    """Under /api/, as every route refuses: not aiohttp's plain-text 404 and 405, which a client
    parsing JSON would choke on and /metrics would not count."""
    probes = [
        ("GET", "/api/v1/nosuch"),
        ("GET", "/api/v1/public/certificates/"),
        ("DELETE", "/api/v1/account"),
        ("POST", "/api/v1/account"),
        ("PUT", "/api/v1/operator/deposits"),
        ("GET", "/api/v1/operator/deposits"),
        ("GET", "/api/v1/instruments/extra"),
        ("PATCH", "/api/"),
    ]
    before = await scrape(rest.http, server)
    for method, path in probes:
        status, reply = await rest.send(method, path, b"", None, {})
        assert (status, reply["error"]["code"]) == (404, "NO_SUCH_ROUTE"), (method, path)
    assert_moved(before, await scrape(rest.http, server), {served("no route", "NO_SUCH_ROUTE"): 8})


async def test_text_a_column_cannot_hold_or_a_line_break_after_an_id_is_refused_not_failed(
    exchange: Exchange, server: TestServer, rest: Rest, market: Market, team: Staff
) -> None:
    """A NUL in a methodology's sector was a 500 (schemathesis found it: PostgreSQL stores no
    NUL, and any text reaching it failed so), as was any text the ledger's own routes took
    unchecked; and an id matched its pattern with a line break after it, since Python's `$`
    matches before a final one. Both are refused INVALID_ARGS as they are decoded."""
    (_, trader), _ = market
    keys = await keys_by_access(exchange, rest, team, trader)
    aggregator = keys[Role.AGGREGATOR]
    methodology = {"code": "NUL1", "name": "PV", "sector": "energy"}
    cases: list[tuple[str, str, object, ApiKey]] = [
        (
            "POST",
            "/api/v1/regulator/methodologies",
            methodology | {"sector": "en\0ergy"},
            team.regulator,
        ),
        (
            "POST",
            "/api/v1/regulator/methodologies",
            methodology | {"code": "NUL1\n"},
            team.regulator,
        ),
        ("POST", "/api/v1/operator/accounts", {"name": "a\0b", "roles": ["trader"]}, team.operator),
        (
            "POST",
            "/api/v1/aggregator/authorisations",
            {"user_refs": ["u\0"], "granted": True},
            aggregator,
        ),
        ("GET", "/api/v1/aggregator/users/u%00x/points", None, aggregator),
        ("GET", f"/api/v1/trades?symbol={SYMBOL}%0A", None, keys[SIGNED]),
    ]
    expected: dict[str, int] = {}
    before = await scrape(rest.http, server)
    for method, path, body, key in cases:
        if method == "GET":
            status, reply = await rest.get(path, key)
        else:
            status, reply = await rest.post(path, body, key)
        assert (status, reply["error"]["code"]) == (400, "INVALID_ARGS"), (path, reply)
        route = next(
            r for r in ROUTES if r.method == method and _matches(r.path, path.split("?")[0])
        )
        expected[served(route.name, "INVALID_ARGS")] = (
            expected.get(served(route.name, "INVALID_ARGS"), 0) + 1
        )
    async with aiohttp.ClientSession() as http:
        client = await connect(server, http)
        await client.login(keys[SIGNED])
        reply = await client.call(
            "new_order", symbol=SYMBOL, cl_ord_id="c-1\n", side="buy", quantity=1, price=4_600
        )
        assert reply["error"]["code"] == "INVALID_ARGS", reply
    expected[served("?", "INVALID_ARGS")] = 1  # a frame that does not decode has no op
    assert_moved(before, await scrape(rest.http, server), expected)
