"""REST reads over a real server: instruments for anyone; the caller's account and holdings for
a signed request only, refused with 401 and a code when unsigned, forged or replayed."""

from __future__ import annotations

import itertools
import time

import aiohttp
from aiohttp.test_utils import TestServer

from exchange.auth import sign
from exchange.keys import ApiKey
from exchange.service import Exchange
from tests.exchange.conftest import Market, make_key
from tests.exchange.market import SYMBOL

_nonces = itertools.count(1)


def signed(key: ApiKey, **override: str) -> dict[str, str]:
    ts, nonce = str(time.time_ns() // 1_000_000), f"rest-nonce-{next(_nonces)}"
    headers = {
        "X-CERX-Key": key.key_id,
        "X-CERX-Timestamp": ts,
        "X-CERX-Nonce": nonce,
        "X-CERX-Signature": sign(key.secret, int(ts), nonce, key.key_id),
    }
    return headers | override


async def test_instruments_are_public(server: TestServer) -> None:
    async with (
        aiohttp.ClientSession() as http,
        http.get(server.make_url("/api/v1/instruments")) as response,
    ):
        assert response.status == 200
        body = await response.json()
    (listed,) = body["result"]
    assert (listed["symbol"], listed["tick_fen"], listed["band_fen"]) == (SYMBOL, 1, [4_500, 5_500])
    assert listed["eligible"]["vintages"] == [2025] and listed["status"] == "open"


async def test_the_account_and_holdings_of_the_signed_caller(
    exchange: Exchange, server: TestServer, market: Market
) -> None:
    (_, seller), _ = market
    key = await make_key(exchange, seller)
    async with aiohttp.ClientSession() as http:
        async with http.get(server.make_url("/api/v1/account"), headers=signed(key)) as response:
            assert response.status == 200
            account = (await response.json())["result"]
        async with http.get(server.make_url("/api/v1/holdings"), headers=signed(key)) as response:
            holdings = (await response.json())["result"]
    assert account["account_id"] == seller and account["ledger"]["locked_fen"] == 0
    assert account["tradable_fen"] == account["ledger"]["available_fen"]
    assert holdings["account_id"] == seller
    assert sum(h["quantity_t"] for h in holdings["holdings"]) == 1_300
    assert {h["vintage"] for h in holdings["holdings"]} == {2024, 2025}


async def test_unsigned_forged_and_replayed_requests_are_refused(
    exchange: Exchange, server: TestServer, market: Market
) -> None:
    (_, seller), _ = market
    key = await make_key(exchange, seller)
    url = server.make_url("/api/v1/account")
    once = signed(key)
    cases = [
        ({}, "AUTH_REQUIRED"),
        (signed(key, **{"X-CERX-Signature": "0" * 64}), "AUTH_BAD_SIGNATURE"),
        (signed(key, **{"X-CERX-Timestamp": "soon"}), "AUTH_STALE_TIMESTAMP"),
        (signed(key, **{"X-CERX-Key": "k-nosuch"}), "AUTH_UNKNOWN_KEY"),
        (once, None),
        (once, "AUTH_NONCE_REUSED"),
    ]
    async with aiohttp.ClientSession() as http:
        for headers, code in cases:
            async with http.get(url, headers=headers) as response:
                body = await response.json()
            if code is None:
                assert response.status == 200 and body["ok"]
            else:
                assert (response.status, body["error"]["code"]) == (401, code)
