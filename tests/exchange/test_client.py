"""The client's own behaviour. Against the real server: a client keeps at most `buffer` pushed
messages, counts what it dropped, and a mirror reading it notices the gap and resyncs. Against a
scripted peer speaking the protocol's contract for what this server does not send yet:
heartbeats are absorbed, balances delivered, unknown kinds skipped, and an amend is sent as the
contract says."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import msgspec
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from exchange.book_mirror import BookMirror
from exchange.client import Balance, connect
from exchange.market_data import checksum
from exchange.service import Exchange
from matching import Side
from tests.exchange.conftest import Market, make_key
from tests.exchange.market import SYMBOL


async def test_a_client_that_reads_too_little_drops_the_oldest_and_a_mirror_resyncs(
    exchange: Exchange, server: TestServer, market: Market
) -> None:
    (_, seller), _ = market
    key = await make_key(exchange, seller)
    url = server.make_url("/ws")
    async with connect(url, buffer=2) as watcher, connect(url, key.key_id, key.secret) as trader:
        mirror = BookMirror()
        await mirror.follow(watcher, SYMBOL)
        for message in watcher.received():
            await mirror.apply(message)
        for n in range(4):
            await trader.new_order(SYMBOL, f"d{n}", Side.SELL, 1, 5_200 + n)
        await watcher.ping()
        assert watcher.dropped == 2  # four deltas, two kept: the last two
        for message in watcher.received():
            await mirror.apply(message)
        await watcher.ping()
        for message in watcher.received():  # the fresh snapshot
            await mirror.apply(message)
        book = mirror.books[f"book:{SYMBOL}"]
        assert mirror.resyncs == 1 and book.checksum() == checksum(exchange.engine.books[SYMBOL])
        assert await trader.cancel_all(SYMBOL) == 4


@pytest.fixture
async def peer() -> AsyncIterator[tuple[TestServer, list[dict[str, Any]]]]:
    """A WebSocket peer that answers every request with its `order_id` (or "pong"), after a
    heartbeat, a balance and a message of a kind no client knows; and the requests it got."""
    heard: list[dict[str, Any]] = []

    async def session(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for message in ws:
            body = msgspec.json.decode(message.data)
            heard.append(body)
            await ws.send_bytes(b'{"type": "heartbeat", "ts_ns": 1764064801000000000}')
            await ws.send_bytes(b'{"type": "balance", "available_fen": 9712345, "free_t": 1990}')
            await ws.send_bytes(b'{"type": "news", "text": "a kind this client does not know"}')
            result = {"order_id": body["args"]["order_id"]} if body["op"] == "amend" else "pong"
            reply = {"req_id": body["req_id"], "ok": True, "result": result}
            await ws.send_bytes(msgspec.json.encode(reply))
        return ws

    app = web.Application()
    app.router.add_get("/ws", session)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield server, heard
    await server.close()


async def test_heartbeats_are_absorbed_balances_delivered_and_unknown_kinds_skipped(
    peer: tuple[TestServer, list[dict[str, Any]]], caplog: pytest.LogCaptureFixture
) -> None:
    server, _ = peer
    async with connect(server.make_url("/ws")) as client:
        client.last_heard = 0.0
        with caplog.at_level(logging.WARNING, logger="exchange.client"):
            await client.ping()
        assert client.last_heard > 0.0
        assert client.received() == [Balance(available_fen=9_712_345, free_t=1_990)]
        assert "cannot read" in caplog.text and "news" in caplog.text


async def test_an_amend_is_sent_as_the_contract_says(
    peer: tuple[TestServer, list[dict[str, Any]]],
) -> None:
    server, heard = peer
    async with connect(server.make_url("/ws")) as client:
        assert await client.amend(SYMBOL, 6, order_id=42) == 42
        assert await client.amend(SYMBOL, 8, 5_010, order_id=43) == 43
    assert [(r["op"], r["args"]) for r in heard] == [
        ("amend", {"symbol": SYMBOL, "order_id": 42, "quantity": 6}),
        ("amend", {"symbol": SYMBOL, "order_id": 43, "quantity": 8, "price": 5_010}),
    ]
