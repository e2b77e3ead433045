"""The console over real HTTP and WebSocket on loopback, as a browser speaks it: sign-in and
its cookie, CSRF on every write, role checks on pages and routes, sign-out, language, and the
WebSocket signing in only pages of this origin. Each refusal shows its stable code."""

from __future__ import annotations

import re
from importlib import resources

import aiohttp
import msgspec
import pytest
from aiohttp.test_utils import TestServer

from exchange import server as exchange_server
from exchange.console.catalogue import JS_KEYS, MESSAGES
from exchange.console.signin import SIGN_INS_PER_MINUTE
from exchange.console.staff import FORMS
from exchange.service import Exchange
from matching import Side, TradingStatus
from offsets.certificate import SubjectKind
from registration.values import (
    Kind,
    MethodologyContent,
    ProjectContent,
    ScenarioContent,
    SpecificationContent,
    State,
)
from settlement.values import Role, TonneState
from tests.console.people import (
    PASSWORD,
    api,
    browser_http,
    csrf_of,
    form_token,
    give_login,
    sign_in,
)
from tests.exchange.conftest import Market
from tests.exchange.market import SYMBOL
from tests.exchange.rest_client import Staff
from tests.exchange.test_security import scrape, served

HALT = f"/api/v1/operator/instruments/{SYMBOL}/halt"
RESUME = f"/api/v1/operator/instruments/{SYMBOL}/resume"


async def test_signing_in_sets_a_strict_http_only_cookie_and_the_page_knows_the_person(
    exchange: Exchange, server: TestServer, market: Market
) -> None:
    (_, trader), _ = market
    login = await give_login(exchange, trader)
    async with browser_http() as http:
        response = await sign_in(http, server, login)
        assert response.status == 303 and response.headers["Location"] == "/console/"
        cookie = response.cookies["cerx_session"]
        assert cookie["httponly"] and cookie["samesite"] == "Strict" and cookie["path"] == "/"
        async with http.get(server.make_url("/console/trader")) as page:
            text = await page.text()
        assert page.status == 200
        assert page.headers["Content-Security-Policy"].startswith("default-src 'self'")
        name = (await exchange.ledger.account(trader)).name
        assert name in text and 'name="csrf-token"' in text
        status, body = await api(http, server, "GET", "/api/v1/account")
        assert status == 200 and body["result"]["account_id"] == trader


async def test_a_wrong_password_and_a_sign_in_form_without_its_token_are_refused(
    exchange: Exchange, server: TestServer, market: Market
) -> None:
    (_, trader), _ = market
    login = await give_login(exchange, trader)
    async with browser_http() as http:
        wrong = await sign_in(http, server, login, "not the password")
        assert wrong.status == 401 and "cerx_session" not in wrong.cookies
        async with http.post(
            server.make_url("/console/login"),
            data={"login": login, "password": PASSWORD},  # no form token
            allow_redirects=False,
        ) as response:
            text = await response.text()
        assert response.status == 403 and "AUTH_CSRF_TOKEN_INVALID" in text
        assert "cerx_session" not in response.cookies
        status, body = await api(http, server, "GET", "/api/v1/account")
        assert (status, body["error"]["code"]) == (401, "AUTH_REQUIRED")


async def test_a_write_without_the_sessions_csrf_token_is_refused_and_changes_nothing(
    exchange: Exchange, server: TestServer, team: Staff
) -> None:
    login = await give_login(exchange, team.operator_id)
    async with browser_http() as http:
        await sign_in(http, server, login)
        before = await scrape(http, server)
        for headers in ({}, {"X-CSRF-Token": "forged"}):
            status, body = await api(
                http, server, "POST", HALT, {}, **headers, **{"Idempotency-Key": "h1"}
            )
            assert (status, body["error"]["code"]) == (403, "AUTH_CSRF_TOKEN_INVALID")
        assert exchange.engine.books[SYMBOL].status is TradingStatus.OPEN
        after = await scrape(http, server)
        series = served(
            "POST /api/v1/operator/instruments/{symbol}/halt", "AUTH_CSRF_TOKEN_INVALID"
        )
        assert after[series] - before.get(series, 0) == 2

        csrf = await csrf_of(http, server)
        for path, key in ((HALT, "h2"), (RESUME, "r2")):
            status, body = await api(
                http, server, "POST", path, {}, **{"X-CSRF-Token": csrf, "Idempotency-Key": key}
            )
            assert status == 200, body
        assert exchange.engine.books[SYMBOL].status is TradingStatus.OPEN


async def test_a_trader_can_open_no_staff_page_and_call_no_staff_route(
    exchange: Exchange, server: TestServer, market: Market
) -> None:
    (_, trader), _ = market
    async with browser_http() as http:
        await sign_in(http, server, await give_login(exchange, trader))
        for page in ("/console/regulator", "/console/operator"):
            async with http.get(server.make_url(page)) as response:
                text = await response.text()
            assert response.status == 403 and "AUTH_FORBIDDEN" in text, page
        csrf = await csrf_of(http, server)
        status, body = await api(
            http, server, "POST", HALT, {}, **{"X-CSRF-Token": csrf, "Idempotency-Key": "t1"}
        )
        assert (status, body["error"]["code"]) == (403, "AUTH_FORBIDDEN")
    assert exchange.engine.books[SYMBOL].status is TradingStatus.OPEN


async def test_a_page_for_people_signed_in_sends_others_to_sign_in_and_back(
    server: TestServer,
) -> None:
    async with browser_http() as http:
        async with http.get(server.make_url("/console/trader"), allow_redirects=False) as response:
            assert response.status == 303
            assert response.headers["Location"] == "/console/login?next=/console/trader"
        # after signing in, only a page of the console: never another site
        for target in ("//evil.example/", "https://evil.example/", "/console//evil.example"):
            token = await form_token(http, server, f"/console/login?next={target}")
            assert token
            async with http.get(server.make_url(f"/console/login?next={target}")) as page:
                assert 'name="next" value="/console/"' in await page.text()


async def test_signing_out_needs_the_token_and_ends_the_session_for_the_api_too(
    exchange: Exchange, server: TestServer, market: Market
) -> None:
    (_, trader), _ = market
    async with browser_http() as http:
        await sign_in(http, server, await give_login(exchange, trader))
        async with http.post(
            server.make_url("/console/logout"), data={"csrf_token": "forged"}
        ) as response:
            assert response.status == 403
        assert (await api(http, server, "GET", "/api/v1/account"))[0] == 200  # still signed in
        token = http.cookie_jar.filter_cookies(server.make_url("/"))["cerx_session"].value
        csrf = await csrf_of(http, server)
        async with http.post(
            server.make_url("/console/logout"), data={"csrf_token": csrf}, allow_redirects=False
        ) as response:
            assert response.status == 303 and response.headers["Location"] == "/console/login"
    async with browser_http() as http:  # the old cookie, kept by someone
        http.cookie_jar.update_cookies({"cerx_session": token}, server.make_url("/"))
        status, body = await api(http, server, "GET", "/api/v1/account")
        assert (status, body["error"]["code"]) == (401, "AUTH_SESSION_EXPIRED")


async def test_the_language_is_switched_remembered_and_guessed(server: TestServer) -> None:
    async with browser_http() as http:
        async with http.get(server.make_url("/console/market")) as page:
            assert "<title>行情 · CERX</title>" in await page.text()
        async with http.get(
            server.make_url("/console/lang/en?back=/console/market"), allow_redirects=False
        ) as response:
            assert response.status == 303 and response.headers["Location"] == "/console/market"
        async with http.get(server.make_url("/console/market")) as page:
            assert "<title>Market · CERX</title>" in await page.text()
    async with browser_http() as http:
        headers = {"Accept-Language": "en-GB,en;q=0.8"}
        async with http.get(server.make_url("/console/market"), headers=headers) as page:
            assert '<html lang="en">' in await page.text()


async def test_the_websocket_signs_in_a_page_of_this_origin_and_no_other(
    exchange: Exchange, server: TestServer, market: Market
) -> None:
    (_, seller), _ = market
    async with browser_http() as http:
        await sign_in(http, server, await give_login(exchange, seller))
        origin = f"http://127.0.0.1:{server.port}"
        cases = ((origin, True), ("http://evil.example", False), (None, False))
        for n, (sent_from, signed_in) in enumerate(cases):
            headers = {} if sent_from is None else {"Origin": sent_from}
            async with http.ws_connect(server.make_url("/ws"), headers=headers) as ws:
                args = {"symbol": SYMBOL, "cl_ord_id": f"web-{n}",
                        "side": "sell", "quantity": 1, "price": 5_000}  # fmt: skip
                await ws.send_str(msgspec.json.encode(
                    {"op": "new_order", "req_id": 1, "args": args}
                ).decode())  # fmt: skip
                reply = await _reply(ws, 1)
            if signed_in:
                assert reply["ok"] is True, reply
            else:
                assert reply["error"]["code"] == "AUTH_REQUIRED"
    open_orders = exchange.reports.open_orders(seller)  # the one order, and only it
    assert [o.side for o in open_orders] == [Side.SELL]


async def _reply(ws: aiohttp.ClientWebSocketResponse, req_id: int) -> dict[str, object]:
    while True:
        message = msgspec.json.decode((await ws.receive()).data)
        if message.get("req_id") == req_id:
            return message  # type: ignore[no-any-return]


def test_every_message_the_console_shows_exists_in_both_languages() -> None:
    package = resources.files("exchange.console")
    used = set(JS_KEYS)
    for template in (package / "templates").iterdir():
        text = template.read_text()
        used |= set(re.findall(r"t\('([a-z_./]+)'\)", text))
        used |= set(re.findall(r"'((?:form|regulator|operator)\.[a-z_/]+)'", text))
    for script in (package / "static").iterdir():
        if script.name.endswith(".js"):
            used |= set(re.findall(r'CERX\.say\("([a-z_.]+)"\)', script.read_text()))
    used |= {f"status.{s.value}" for s in TradingStatus} | {f"side.{s.value}" for s in Side}
    used |= {f"tonne.{s.value}" for s in TonneState} | {f"subject.{k.value}" for k in SubjectKind}
    used |= {f"state.{state}" for state in ("submitted", "approved", "rejected")}
    used |= {f"operator.{a}" for a in ("halt", "resume", "auction/start", "auction/uncross")}
    used |= {field.label_key for fields in FORMS.values() for field in fields}
    for content in (MethodologyContent, ProjectContent, ScenarioContent, SpecificationContent):
        used |= {f"field.{name}" for name in content.__struct_fields__}
    used |= {f"kind.{kind.value}" for kind in Kind} | {f"regstate.{s.value}" for s in State}
    used |= {"opinion.true", "opinion.false"}
    assert len(used) > 200
    missing = sorted(key for key in used if key not in MESSAGES)
    assert missing == []
    assert all(zh.strip() and en.strip() for zh, en in MESSAGES.values())


async def test_signing_out_closes_the_pages_websocket(
    exchange: Exchange, server: TestServer, market: Market, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(exchange_server, "BROWSER_CHECK_S", 0.05)
    (_, trader), _ = market
    async with browser_http() as http:
        await sign_in(http, server, await give_login(exchange, trader))
        origin = {"Origin": f"http://127.0.0.1:{server.port}"}
        async with http.ws_connect(server.make_url("/ws"), headers=origin) as ws:
            csrf = await csrf_of(http, server)
            async with http.post(server.make_url("/console/logout"), data={"csrf_token": csrf}):
                pass
            while (message := await ws.receive(timeout=10)).type is not aiohttp.WSMsgType.CLOSE:
                pass  # heartbeats until the session's end is noticed
            assert message.data == aiohttp.WSCloseCode.POLICY_VIOLATION


async def test_odd_input_gets_a_page_with_its_code_never_a_failure(server: TestServer) -> None:
    async with browser_http() as http:
        async with http.get(server.make_url("/console/market/NO-SUCH")) as page:
            assert page.status == 404 and "UNKNOWN_INSTRUMENT" in await page.text()
        # a token no browser would send: refused, not a failure
        form = {"login": "x", "password": "y", "form_token": "é" * 43}
        async with http.post(server.make_url("/console/login"), data=form) as page:
            assert page.status == 403 and "AUTH_CSRF_TOKEN_INVALID" in await page.text()
        # a line break in where to go after signing in: the console's start instead
        async with http.get(
            server.make_url("/console/login?next=/console/x%0d%0aSet-Cookie:a=b")
        ) as page:
            assert 'name="next" value="/console/"' in await page.text()


async def test_a_bad_year_on_the_offsetting_page_is_refused_with_its_code(
    exchange: Exchange, server: TestServer
) -> None:
    entity = await exchange.ledger.open_account("http/ce", "http-ce", [Role.COMPLIANCE_ENTITY])
    async with browser_http() as http:
        await sign_in(http, server, await give_login(exchange, entity.account_id))
        for year in ("9999999999", "-5", "٢٠٢٥", "1999", "+2025"):
            async with http.get(
                server.make_url("/console/compliance"), params={"year": year}
            ) as page:
                assert page.status == 400 and "INVALID_ARGS" in await page.text(), year


async def test_an_address_may_try_to_sign_in_ten_times_a_minute(
    exchange: Exchange, server: TestServer, market: Market
) -> None:
    (_, trader), _ = market
    login = await give_login(exchange, trader)
    async with browser_http() as http:
        statuses = [
            (await sign_in(http, server, f"nobody-{n}", "wrong password")).status
            for n in range(SIGN_INS_PER_MINUTE)
        ]
        assert statuses == [401] * SIGN_INS_PER_MINUTE
        # the right password too, from here, for a minute: and the login is not locked by it
        assert (await sign_in(http, server, login)).status == 429
    async with exchange.database.pool.acquire() as conn:
        locked = await conn.fetchval(
            "SELECT locked_until FROM browser_logins WHERE login = $1", login
        )
    assert locked is None


async def test_a_sign_out_form_of_another_site_changes_nothing(server: TestServer) -> None:
    # no session cookie comes with another site's form
    async with (
        browser_http() as http,
        http.post(server.make_url("/console/logout"), data={}, allow_redirects=False) as response,
    ):
        assert response.status == 303
        assert "Set-Cookie" not in response.headers
