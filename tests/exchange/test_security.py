"""Hostile callers against a real server, each refused with its code and counted in /metrics:
unsigned, forged, replayed, stale and tampered requests on every signed route; header values no
client would send; one account reaching for another's orders, tonnes, retirements and
applications; a trader on every staff route; frames and bodies over their limits; floods of
connections and of orders. Every test reads /metrics before and after, and checks that the
refusals it saw moved `cerx_requests_total{op, outcome}` (or `cerx_connection_closes_total
{reason}`) by exactly as many."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Mapping
from typing import Any

import aiohttp
import msgspec
from aiohttp.test_utils import TestServer

from exchange.auth import HttpRequest, sign_request
from exchange.endpoint import PUBLIC, SIGNED, Route
from exchange.keys import ApiKey
from exchange.rest import ROUTES
from exchange.service import Exchange
from settlement.values import Role
from tests.exchange.conftest import Market, make_key
from tests.exchange.figures import count
from tests.exchange.market import SYMBOL
from tests.exchange.rest_client import Rest, Staff, fresh_key
from tests.exchange.test_rest_offsets import holder
from tests.exchange.test_server import connect

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
