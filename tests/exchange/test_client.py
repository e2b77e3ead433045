"""The client's own behaviour against the real server: a client keeps at most `buffer` pushed
messages, counts what it dropped, and a mirror reading it notices the gap and resyncs; heartbeats
are absorbed, balances delivered, and amends change the order as the protocol says."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp.test_utils import TestServer

from exchange.book_mirror import BookMirror
from exchange.client import Refused, connect
from exchange.market_data import checksum
from exchange.reports import BalanceUpdate
from exchange.service import Exchange
from matching import Side
from tests.exchange.conftest import Market, make_key
from tests.exchange.market import SYMBOL
from tests.exchange.rest_client import Staff


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


async def test_heartbeats_are_absorbed_and_balances_delivered(
    exchange: Exchange, server: TestServer, market: Market
) -> None:
    (_, seller), _ = market
    key = await make_key(exchange, seller)
    async with connect(server.make_url("/ws"), key.key_id, key.secret) as client:
        client.last_heard = 0.0
        async with asyncio.timeout(30):  # a quiet session hears one within a second or two
            while not client.last_heard:
                await asyncio.sleep(0.05)
        assert client.received() == []  # heartbeats are not handed to the reader
        order_id = await client.new_order(SYMBOL, "h1", Side.SELL, 3, 5_300)
        await client.ping()
        risk = exchange.engine.risk
        assert risk is not None
        balances = [m for m in client.received() if isinstance(m, BalanceUpdate)]
        assert balances[-1] == BalanceUpdate(risk.available_fen(seller), risk.free_t(seller))
        assert await client.amend(SYMBOL, 5, order_id=order_id) == order_id
        assert await client.amend(SYMBOL, 4, 5_310, cl_ord_id="h1") == order_id
        resting = exchange.engine.books[SYMBOL].order(order_id)
        assert resting is not None and (resting.quantity_t, resting.price_fen) == (4, 5_310)
        with pytest.raises(Refused) as refused:
            await client.amend(SYMBOL, 10**6, order_id=order_id)
        assert refused.value.code == "INSUFFICIENT_HOLDINGS"
        assert await client.cancel(SYMBOL, order_id=order_id) == order_id


async def test_signed_rest_writes_and_reads(
    exchange: Exchange, server: TestServer, market: Market, team: Staff
) -> None:
    (_, seller), _ = market
    url = server.make_url("/ws")
    operator = team.operator
    async with connect(url, operator.key_id, operator.secret) as client:
        body = {"account_id": seller, "amount_fen": 1_234}
        first = await client.rest_post("/api/v1/operator/deposits", body, "client-deposit-1")
        again = await client.rest_post("/api/v1/operator/deposits", body, "client-deposit-1")
        assert first == again and first["amount_fen"] == 1_234
        with pytest.raises(Refused) as refused:
            await client.rest_post("/api/v1/regulator/offset-rules", {"year": 2030})
        assert refused.value.code == "AUTH_FORBIDDEN"
    key = await make_key(exchange, seller)
    async with connect(url, key.key_id, key.secret) as client:
        account = await client.rest_get("/api/v1/account")
        assert (
            account["ledger"]["available_fen"]
            == (await exchange.ledger.balance(seller)).available_fen
        )
