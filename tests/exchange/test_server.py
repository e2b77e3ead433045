"""The WebSocket endpoint end to end: a real server on loopback, real WebSocket clients, the
real journal and ledger. Login is signed and not replayable; orders trade and both owners hear
their fills; bad frames get error replies and the session lives; other accounts' orders are out
of reach; an oversized frame closes the session with 1009."""

from __future__ import annotations

import asyncio
import itertools
import socket
import time
import zlib
from typing import Any

import aiohttp
import msgspec
import pytest
from aiohttp.test_utils import TestServer

from exchange import keys
from exchange.auth import sign
from exchange.limits import Limits
from exchange.server import MAX_FRAME, SESSIONS_KEY, build_app
from exchange.service import Exchange
from matching import Side
from settlement.batches import OrderLock
from settlement.database import Database
from tests.exchange.conftest import Market, make_key
from tests.exchange.market import INSTRUMENT, SYMBOL, order

_nonces = itertools.count(10_000_000)


class Client:
    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.ids = itertools.count(1)
        self.reports: list[dict[str, Any]] = []
        self.pushed: list[dict[str, Any]] = []  # everything else the server sent unasked

    async def call(self, op: str, **args: object) -> dict[str, Any]:
        req_id = next(self.ids)
        await self.ws.send_str(
            msgspec.json.encode({"op": op, "req_id": req_id, "args": args}).decode()
        )
        return await self.reply(req_id)

    async def reply(self, req_id: object) -> dict[str, Any]:
        while True:
            message = await self.ws.receive(timeout=10)
            assert message.type in (aiohttp.WSMsgType.BINARY, aiohttp.WSMsgType.TEXT), message
            body: dict[str, Any] = msgspec.json.decode(message.data)
            if body.get("type") == "execution":
                self.reports.append(body)
            elif "type" in body:
                self.pushed.append(body)
            elif body.get("req_id") == req_id:
                return body

    async def login(self, key: keys.ApiKey, **override: object) -> dict[str, Any]:
        ts, nonce = time.time_ns() // 1_000_000, f"nonce-{next(_nonces)}"
        args: dict[str, object] = {
            "api_key": key.key_id,
            "timestamp_ms": ts,
            "nonce": nonce,
            "signature": sign(key.secret, ts, nonce, key.key_id),
        }
        args.update(override)
        return await self.call("login", **args)


async def connect(server: TestServer, session: aiohttp.ClientSession) -> Client:
    return Client(await session.ws_connect(server.make_url("/ws")))


async def test_login_is_signed_fresh_and_not_replayable(
    exchange: Exchange, server: TestServer, market: Market
) -> None:
    (_, trader), _ = market
    key = await make_key(exchange, trader)
    async with aiohttp.ClientSession() as http:
        client = await connect(server, http)
        early = await client.call("cancel_all", symbol=SYMBOL)
        assert early["error"]["code"] == "AUTH_REQUIRED"
        assert (await client.login(key, signature="0" * 64))["error"]["code"] == (
            "AUTH_BAD_SIGNATURE"
        )
        stale_ts = time.time_ns() // 1_000_000 - 60_000
        stale = await client.login(
            key,
            timestamp_ms=stale_ts,
            nonce="nonce-stale1",
            signature=sign(key.secret, stale_ts, "nonce-stale1", key.key_id),
        )
        assert stale["error"]["code"] == "AUTH_STALE_TIMESTAMP"
        unknown = await client.login(keys.ApiKey("k-nosuch", trader, key.secret))
        assert unknown["error"]["code"] == "AUTH_UNKNOWN_KEY"
        ts = time.time_ns() // 1_000_000
        signed = {
            "timestamp_ms": ts,
            "nonce": "nonce-once-1",
            "signature": sign(key.secret, ts, "nonce-once-1", key.key_id),
        }
        assert (await client.login(key, **signed)) == {
            "req_id": 5,
            "ok": True,
            "result": {"account_id": trader},
        }
        replayed = await (await connect(server, http)).login(key, **signed)
        assert replayed["error"]["code"] == "AUTH_NONCE_REUSED"


async def test_orders_trade_and_both_owners_hear_their_fills(
    exchange: Exchange, server: TestServer, market: Market
) -> None:
    (_, seller), (buyer, _) = market
    async with aiohttp.ClientSession() as http:
        sell_client, buy_client = await connect(server, http), await connect(server, http)
        await sell_client.login(await make_key(exchange, seller))
        await buy_client.login(await make_key(exchange, buyer))
        placed = await sell_client.call(
            "new_order", symbol=SYMBOL, cl_ord_id="s-1", side="sell", quantity=30, price=5_005
        )
        assert placed["ok"], placed
        bought = await buy_client.call(
            "new_order", symbol=SYMBOL, cl_ord_id="b-1", side="buy", quantity=10, price=5_010
        )
        assert bought["ok"], bought
        fill = buy_client.reports[-1]
        assert (fill["status"], fill["last_qty"], fill["last_price"], fill["cl_ord_id"]) == (
            "filled",
            10,
            5_005,
            "b-1",
        )
        await sell_client.call("ping")  # the seller's report was queued before this reply
        seller_fill = sell_client.reports[-1]
        assert (seller_fill["status"], seller_fill["cum_qty"], seller_fill["leaves_qty"]) == (
            "partially_filled",
            10,
            20,
        )
        for report in sell_client.reports + buy_client.reports:
            assert report["quantity"] == report["cum_qty"] + report["leaves_qty"] or (
                report["status"] == "cancelled"
            )
        # the buyer cannot touch the seller's order
        theirs = await buy_client.call(
            "cancel", symbol=SYMBOL, order_id=placed["result"]["order_id"]
        )
        assert theirs["error"]["code"] == "ORDER_MUST_BELONG_TO_ACCOUNT"
        mine = await sell_client.call("cancel", symbol=SYMBOL, cl_ord_id="s-1")
        assert mine["ok"] and sell_client.reports[-1]["status"] == "cancelled"
    await exchange.settler.drain()
    held = await exchange.ledger.holdings(buyer)
    assert sum(h.quantity_t for h in held) == 10
    # each fill was followed by the account's balance, as the ledger now has it
    buyer_balance = [m for m in buy_client.pushed if m["type"] == "balance"][-1]
    ledger_balance = await exchange.ledger.balance(buyer)
    assert buyer_balance == {
        "type": "balance",
        "available_fen": ledger_balance.available_fen,
        "free_t": 10,
    }


async def test_a_quiet_session_hears_heartbeats(exchange: Exchange, server: TestServer) -> None:
    async with aiohttp.ClientSession() as http:
        ws = await http.ws_connect(server.make_url("/ws"))
        first = msgspec.json.decode((await ws.receive(timeout=10)).data)
        second = msgspec.json.decode((await ws.receive(timeout=10)).data)
        assert first["type"] == second["type"] == "heartbeat"
        assert second["ts_ns"] > first["ts_ns"]
        await ws.close()


async def test_bad_frames_are_answered_and_the_session_lives(
    exchange: Exchange, server: TestServer
) -> None:
    async with aiohttp.ClientSession() as http:
        client = await connect(server, http)
        await client.ws.send_str("{not json")
        assert (await client.reply(None))["error"]["code"] == "MALFORMED_JSON"
        await client.ws.send_str('{"op": "fly", "req_id": "x"}')
        assert (await client.reply("x"))["error"]["code"] == "UNKNOWN_OP"
        assert (await client.call("ping"))["result"] == "pong"
        await client.ws.send_str("x" * (MAX_FRAME + 1))
        closed = await client.ws.receive(timeout=10)
        assert closed.type is aiohttp.WSMsgType.CLOSE and closed.data == 1009


async def test_cancel_all_cancels_only_the_callers_orders(
    exchange: Exchange, server: TestServer, market: Market
) -> None:
    (_, seller), (buyer, _) = market
    async with aiohttp.ClientSession() as http:
        mine, theirs = await connect(server, http), await connect(server, http)
        await mine.login(await make_key(exchange, buyer))
        await theirs.login(await make_key(exchange, seller))
        for n, price in enumerate((4_990, 4_991)):
            placed = await mine.call(
                "new_order", symbol=SYMBOL, cl_ord_id=f"m{n}", side="buy", quantity=2, price=price
            )
            assert placed["ok"], placed
        other = await theirs.call(
            "new_order", symbol=SYMBOL, cl_ord_id="t0", side="sell", quantity=2, price=5_050
        )
        assert other["ok"], other
        assert (await mine.call("cancel_all", symbol=SYMBOL))["result"] == {"cancelled": 2}
        again = await mine.call("cancel_all", symbol=SYMBOL)
        assert again["error"]["code"] == "ORDER_MUST_EXIST"
        assert (await theirs.call("cancel", symbol=SYMBOL, cl_ord_id="t0"))["ok"]


async def test_an_amend_reprices_an_order_and_is_refused_for_anothers(
    exchange: Exchange, server: TestServer, market: Market
) -> None:
    (_, seller), (buyer, _) = market
    async with aiohttp.ClientSession() as http:
        mine, theirs = await connect(server, http), await connect(server, http)
        await mine.login(await make_key(exchange, buyer))
        await theirs.login(await make_key(exchange, seller))
        placed = await mine.call(
            "new_order", symbol=SYMBOL, cl_ord_id="a1", side="buy", quantity=4, price=4_900
        )
        order_id = placed["result"]["order_id"]
        stolen = await theirs.call("amend", symbol=SYMBOL, order_id=order_id, quantity=1)
        assert stolen["error"]["code"] == "ORDER_MUST_BELONG_TO_ACCOUNT"
        moved = await mine.call("amend", symbol=SYMBOL, cl_ord_id="a1", quantity=6, price=4_910)
        assert moved == {"req_id": moved["req_id"], "ok": True, "result": {"order_id": order_id}}
        assert [(r["status"], r["quantity"], r["leaves_qty"]) for r in mine.reports][-1] == (
            "amended",
            6,
            6,
        )
        too_much = await mine.call("amend", symbol=SYMBOL, order_id=order_id, quantity=10**6)
        assert too_much["error"]["code"] == "INSUFFICIENT_CASH"
        assert (await mine.call("cancel", symbol=SYMBOL, order_id=order_id))["ok"]


async def scrape(http: aiohttp.ClientSession, server: TestServer) -> dict[str, float]:
    async with http.get(server.make_url("/metrics")) as response:
        assert response.status == 200
        text = await response.text()
    return {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line and not line.startswith("#")
    }


async def test_metrics_count_requests_events_and_the_journal(
    exchange: Exchange, server: TestServer, market: Market
) -> None:
    _, (buyer, _) = market
    band_rejects = 'cerx_book_events_total{kind="PRICE_MUST_BE_WITHIN_BAND"}'
    async with aiohttp.ClientSession() as http:
        before = await scrape(http, server)  # recovery replayed the module's earlier tests
        client = await connect(server, http)
        await client.login(await make_key(exchange, buyer))
        for n, price in enumerate((4_000, 4_001)):  # both outside the band [4,500, 5,500]
            await client.call(
                "new_order",
                symbol=SYMBOL,
                cl_ord_id=f"m-{n}",
                side="buy",
                quantity=1,
                price=price,
            )
        await client.ws.send_str("{")
        await client.reply(None)
        after = await scrape(http, server)
    assert after['cerx_requests_total{op="login",outcome="ok"}'] == 1
    assert after['cerx_requests_total{op="new_order",outcome="PRICE_MUST_BE_WITHIN_BAND"}'] == 2
    assert after['cerx_requests_total{op="?",outcome="MALFORMED_JSON"}'] == 1
    assert after[band_rejects] - before.get(band_rejects, 0) == 2
    assert after["cerx_match_seconds_count"] - before["cerx_match_seconds_count"] == 2
    assert after["cerx_journal_group_entries_sum"] - before["cerx_journal_group_entries_sum"] == 2
    assert after["cerx_connections"] == 1


async def test_the_settlement_lag_metric_follows_the_feed(
    exchange: Exchange, server: TestServer, market: Market
) -> None:
    _, (buyer, _) = market
    await exchange.settler.drain()
    lag, netted = "cerx_settlement_lag_items", "cerx_settlement_netted_items_total"
    async with aiohttp.ClientSession() as http:
        assert (await scrape(http, server))[lag] == 0
        exchange.feed.lock(OrderLock(987_654_321, buyer, amount_fen=100))
        assert (await scrape(http, server))[lag] == 1  # not woken yet: nothing applied
        exchange.settler.wake()
        await exchange.settler.drain()
        before = await scrape(http, server)
        assert before[lag] == 0
        # an order locked and released before settlement takes its lock is netted away and
        # never lags; one whose lock the ledger has must be released there
        exchange.feed.lock(OrderLock(987_654_322, buyer, amount_fen=100))
        exchange.feed.release(987_654_322, buyer, tonnes_back=0)
        exchange.feed.release(987_654_321, buyer, tonnes_back=0)
        after = await scrape(http, server)
        assert (after[lag], after[netted] - before[netted]) == (1, 2)
        exchange.settler.wake()
        await exchange.settler.drain()
        assert (await scrape(http, server))[lag] == 0


async def test_market_data_snapshot_then_numbered_deltas_that_checksum(
    exchange: Exchange, server: TestServer, market: Market
) -> None:
    (_, seller), (buyer, _) = market
    async with aiohttp.ClientSession() as http:
        watcher = await connect(server, http)
        await watcher.ws.send_str(
            '{"op": "subscribe", "req_id": 1, "args": {"channels": '
            f'["book:{SYMBOL}", "trades:{SYMBOL}"]}}}}'
        )
        messages = [msgspec.json.decode((await watcher.ws.receive(timeout=10)).data)]
        while messages[-1].get("req_id") != 1:
            messages.append(msgspec.json.decode((await watcher.ws.receive(timeout=10)).data))
        snapshot = messages[0]
        assert snapshot["type"] == "book_snapshot"
        book = {("buy", p): q for p, q, _ in snapshot["bids"]}
        book |= {("sell", p): q for p, q, _ in snapshot["asks"]}
        seq = snapshot["seq"]
        trader, other = await connect(server, http), await connect(server, http)
        await trader.login(await make_key(exchange, seller))
        await other.login(await make_key(exchange, buyer))
        for n in range(3):
            await trader.call(
                "new_order",
                symbol=SYMBOL,
                cl_ord_id=f"md{n}",
                side="sell",
                quantity=5,
                price=5_020 + n,
            )
        await other.call(
            "new_order", symbol=SYMBOL, cl_ord_id="mdb", side="buy", quantity=7, price=5_021
        )
        deltas, prints = 0, []
        while deltas < 4 or len(prints) < 2:
            body = msgspec.json.decode((await watcher.ws.receive(timeout=10)).data)
            if body["type"] == "trade":
                prints.append(body)
                continue
            assert body["type"] == "book" and body["seq"] == seq + 1, (body, seq)
            seq = body["seq"]
            deltas += 1
            for side, price, quantity, _ in body["changes"]:
                if quantity:
                    book[side, price] = quantity
                else:
                    book.pop((side, price), None)
            assert body["checksum"] == _checksum(book)
        assert [(t["price"], t["quantity"]) for t in prints] == [(5_020, 5), (5_021, 2)]
        assert prints[1]["seq"] == prints[0]["seq"] + 1
        bad = await watcher.call("subscribe", channels=["book:NOPE"])
        assert bad["error"]["code"] == "UNKNOWN_CHANNEL"


def _checksum(book: dict[tuple[str, int], int]) -> int:
    bids = sorted(((p, q) for (s, p), q in book.items() if s == "buy"), reverse=True)[:10]
    asks = sorted((p, q) for (s, p), q in book.items() if s == "sell")[:10]
    text = ",".join(f"b:{p}:{q}" for p, q in bids) + "|" + ",".join(f"a:{p}:{q}" for p, q in asks)
    return zlib.crc32(text.encode())


async def test_a_flood_is_refused_with_when_to_retry(database: Database, market: Market) -> None:
    exchange = await Exchange.open(
        database, [INSTRUMENT], Limits(session_per_second=1, session_burst=5)
    )
    server = TestServer(build_app(exchange), host="127.0.0.1")
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as http:
            client = await connect(server, http)
            replies = [await client.call("ping") for _ in range(8)]
            refused = [r for r in replies if not r["ok"]]
            assert len(refused) >= 2, replies  # 5 in the bucket; a refill takes a second
            assert all(r["error"]["code"] == "RATE_LIMITED" for r in refused)
            assert all(1 <= r["error"]["retry_after_ms"] <= 1_000 for r in refused)
    finally:
        await server.close()
        await exchange.close()


async def test_a_session_that_cannot_keep_up_is_closed_with_1013(
    exchange: Exchange, server: TestServer, market: Market, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a subscriber that stops reading; past what the socket buffers on both sides and the
    # transport's high-water mark hold (all made small here, as on a congested link), eight
    # messages more close its session
    monkeypatch.setattr("exchange.server.SEND_QUEUE", 8)
    _, (buyer, _) = market
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4_096)
    sock.connect((server.host, server.port))
    reader, writer = await asyncio.open_connection(sock=sock, limit=4_096)
    writer.write(
        b"GET /ws HTTP/1.1\r\nHost: test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 101")
    (session,) = server.app[SESSIONS_KEY]
    transport = session.request.transport
    assert transport is not None
    transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4_096)
    transport.set_write_buffer_limits(high=4_096)
    subscribe = f'{{"op":"subscribe","req_id":1,"args":{{"channels":["book:{SYMBOL}"]}}}}'
    writer.write(masked_frame(subscribe.encode()))
    engine = exchange.engine
    async with aiohttp.ClientSession() as http:
        # each order and each cancel changes a level: a delta for the subscriber, who reads none
        for n in range(0, 10_000, 50):
            placed = await asyncio.gather(
                *(
                    engine.new_order(buyer, order(f"slow-{n + i}", Side.BUY, 1, 4_600 + i))
                    for i in range(50)
                )
            )
            await asyncio.gather(*(engine.cancel(buyer, SYMBOL, id) for id, _ in placed))
            if (await scrape(http, server))["cerx_slow_consumer_closes_total"]:
                break
        assert (await scrape(http, server))["cerx_slow_consumer_closes_total"] == 1
        assert n < 1_000
    # what it was sent before the close, then the close frame: 1013, try again later
    while True:
        head = await reader.readexactly(2)
        size = head[1] & 0x7F
        if size >= 126:
            size = int.from_bytes(await reader.readexactly(2 if size == 126 else 8))
        payload = await reader.readexactly(size)
        if head[0] & 0x0F == 0x8:
            assert int.from_bytes(payload[:2]) == 1013
            break
    writer.close()


def masked_frame(payload: bytes) -> bytes:
    """A client's final text frame, masked with the key 0 (which leaves the payload as it is)."""
    assert len(payload) < 126
    return bytes((0x81, 0x80 | len(payload))) + bytes(4) + payload
