"""`cerx serve --demo` as a user runs it: a real process on a free loopback port, a real
WebSocket client, SIGTERM to stop; started again, the resting order is still in the book, and
the demo's keys (traders, operator, regulator) are the same and work."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import msgspec
import pytest

from bench.exchange import free_port
from exchange.auth import HttpRequest, sign, sign_request
from load.process import ServerCommand, ServerProcess, running
from settlement.database import Database
from settlement.ledger import Ledger


@pytest.fixture
async def port() -> AsyncIterator[int]:
    yield free_port()


async def call(ws: aiohttp.ClientWebSocketResponse, op: str, req_id: int, **args: Any) -> Any:
    await ws.send_bytes(msgspec.json.encode({"op": op, "req_id": req_id, "args": args}))
    while True:
        message = await ws.receive(timeout=10)
        assert message.type is aiohttp.WSMsgType.BINARY, message
        body = msgspec.json.decode(message.data)
        if body.get("req_id") == req_id:
            return body


async def login(ws: aiohttp.ClientWebSocketResponse, key_id: str, secret: bytes) -> Any:
    ts, nonce = time.time_ns() // 1_000_000, f"nonce-{time.time_ns()}"
    return await call(
        ws,
        "login",
        1,
        api_key=key_id,
        timestamp_ms=ts,
        nonce=nonce,
        signature=sign(secret, ts, nonce, key_id),
    )


def key(server: ServerProcess, trader: str) -> tuple[str, bytes]:
    demo_key = server.keys[trader]
    return demo_key.key_id, bytes.fromhex(demo_key.secret_hex)


async def test_serve_demo_trades_and_recovers_after_a_restart(database_url: str, port: int) -> None:
    async with running(ServerCommand(port, database_url)) as server:
        async with aiohttp.ClientSession() as http:
            alice = await http.ws_connect(server.url)
            carol = await http.ws_connect(server.url)
            assert (await login(alice, *key(server, "alice")))["ok"]
            assert (await login(carol, *key(server, "carol")))["ok"]
            sell = await call(
                alice,
                "new_order",
                2,
                symbol="SZCER-P0001",
                cl_ord_id="a1",
                side="sell",
                quantity=10,
                price=4_800,
            )
            assert sell["ok"], sell
            buy = await call(
                carol,
                "new_order",
                2,
                symbol="SZCER-P0001",
                cl_ord_id="c1",
                side="buy",
                quantity=4,
                price=4_800,
            )
            assert buy["ok"], buy
        assert await server.stop() == 0
        assert "stopped" in server.output

    async with running(ServerCommand(port, database_url)) as again:
        assert again.keys == server.keys
        assert {"alice", "bob", "carol", "operator", "regulator"} <= again.keys.keys()
        async with aiohttp.ClientSession() as http:
            carol = await http.ws_connect(again.url)
            assert (await login(carol, *key(again, "carol")))["ok"]
            rest = await call(
                carol,
                "new_order",
                2,
                symbol="SZCER-P0001",
                cl_ord_id="c2",
                side="buy",
                quantity=6,
                price=4_800,
                tif="ioc",
            )
            assert rest["ok"], rest  # IOC: it fills only against the recovered sell, checked below
        moved = await deposit(again, again.keys["carol"].account_id, 100)
        assert moved["ok"] and moved["result"]["amount_fen"] == 100, moved
        assert await again.stop() == 0
    database = await Database.open(database_url, min_size=1, max_size=2)
    try:
        ledger = Ledger(database)
        await ledger.check()
        carol_id = again.keys["carol"].account_id
        assert sum(h.quantity_t for h in await ledger.holdings(carol_id)) == 10
    finally:
        await database.close()


async def deposit(server: ServerProcess, account_id: int, amount_fen: int) -> Any:
    """A deposit by the demo operator over REST."""
    key_id, secret = key(server, "operator")
    path = "/api/v1/operator/deposits"
    body = msgspec.json.encode({"account_id": account_id, "amount_fen": amount_fen})
    ts, nonce = time.time_ns() // 1_000_000, f"nonce-{time.time_ns()}"
    headers = {
        "X-CERX-Key": key_id,
        "X-CERX-Timestamp": str(ts),
        "X-CERX-Nonce": nonce,
        "X-CERX-Signature": sign_request(
            secret, ts, nonce, key_id, HttpRequest("POST", path, body)
        ),
        "Idempotency-Key": f"cli-{ts}",
    }
    base = server.url.replace("ws://", "http://").removesuffix("/ws")
    async with (
        aiohttp.ClientSession() as http,
        http.post(base + path, data=body, headers=headers) as r,
    ):
        return await r.json()
