"""People for the console's tests: an account given a login, and a browser-like HTTP client
signed in as it (cookie jar, the sign-in form and its token, the session's CSRF token)."""

from __future__ import annotations

import itertools
import re
from typing import Any

import aiohttp
import msgspec
from aiohttp.test_utils import TestServer

from exchange import logins
from exchange.service import Exchange

PASSWORD = "a long enough password"
_names = itertools.count(1)
FORM_TOKEN = re.compile(r'name="form_token" value="([^"]+)"')
CSRF = re.compile(r'<meta name="csrf-token" content="([^"]+)">')


async def give_login(exchange: Exchange, account_id: int) -> str:
    async with exchange.database.pool.acquire() as conn:
        return await logins.set_password(
            conn, account_id, f"p{next(_names)}-{account_id}", PASSWORD
        )


def browser_http() -> aiohttp.ClientSession:
    # a browser keeps cookies of 127.0.0.1 too; aiohttp's jar needs telling
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


async def form_token(http: aiohttp.ClientSession, server: TestServer, path: str) -> str:
    async with http.get(server.make_url(path)) as response:
        assert response.status == 200
        found = FORM_TOKEN.search(await response.text())
    assert found is not None
    return found.group(1)


async def sign_in(
    http: aiohttp.ClientSession, server: TestServer, login: str, password: str = PASSWORD
) -> aiohttp.ClientResponse:
    token = await form_token(http, server, "/console/login")
    form = {"login": login, "password": password, "form_token": token, "next": "/console/"}
    async with http.post(
        server.make_url("/console/login"), data=form, allow_redirects=False
    ) as response:
        await response.read()
        return response


async def csrf_of(http: aiohttp.ClientSession, server: TestServer) -> str:
    async with http.get(server.make_url("/console/")) as response:
        found = CSRF.search(await response.text())
    assert found is not None, "not signed in"
    return found.group(1)


async def api(
    http: aiohttp.ClientSession,
    server: TestServer,
    method: str,
    path: str,
    body: object = None,
    **headers: str,
) -> tuple[int, Any]:
    data = None if body is None else msgspec.json.encode(body)
    async with http.request(method, server.make_url(path), data=data, headers=headers) as response:
        return response.status, msgspec.json.decode(await response.read())
