"""The exchange end to end through its own client (`exchange.client`): a real server on
loopback, the real journal and ledger. A session among several accounts ends with the execution
reports, the ledger and the REST reads agreeing; another account's order is out of reach; a book
mirror that loses a message, disconnects and reconnects carries on by sequence number and ends
with the server's book; pipelined requests are answered in the order they were sent.

Each test leaves the book empty: the module's tests share a journal, replayed at each start."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack

import pytest
from aiohttp.test_utils import TestServer

from exchange.book_mirror import BookMirror
from exchange.client import Client, ConnectionClosedError, Push, Refused, connect
from exchange.market_data import BookDelta, TradePrint, checksum
from exchange.reports import ExecutionReport
from exchange.server import MAX_FRAME
from exchange.service import Exchange
from matching import Side, TimeInForce
from settlement.dvp import fees
from settlement.values import TradeToSettle
from tests.exchange.conftest import Market, make_key
from tests.exchange.market import INSTRUMENT, SYMBOL

_tags = itertools.count(1)


@pytest.fixture
async def stack() -> AsyncIterator[AsyncExitStack]:
    async with AsyncExitStack() as stack:
        yield stack


async def trader(
    stack: AsyncExitStack, server: TestServer, exchange: Exchange, account_id: int
) -> Client:
    key = await make_key(exchange, account_id)
    return await stack.enter_async_context(connect(server.make_url("/ws"), key.key_id, key.secret))


def reports(messages: list[Push]) -> list[ExecutionReport]:
    return [m for m in messages if isinstance(m, ExecutionReport)]


async def position(exchange: Exchange, account_id: int) -> tuple[int, int, int]:
    """(tonnes of the instrument's CERs held, cash available, cash locked) in the ledger."""
    held = await exchange.ledger.holdings(account_id)
    tonnes = sum(h.quantity_t for h in held if h.vintage == 2025)
    cash = await exchange.ledger.balance(account_id)
    return tonnes, cash.available_fen, cash.locked_fen


async def test_a_session_among_four_accounts_agrees_with_the_ledger(
    exchange: Exchange, server: TestServer, market: Market, stack: AsyncExitStack
) -> None:
    (owner, seller), (buyer0, buyer1) = market
    accounts = (owner, seller, buyer0, buyer1)
    before = {a: await position(exchange, a) for a in accounts}
    o, s, b0, b1 = [await trader(stack, server, exchange, a) for a in accounts]
    s1 = await s.new_order(SYMBOL, "s1", Side.SELL, 30, 5_005)
    await s.new_order(SYMBOL, "s2", Side.SELL, 20, 5_010)
    await o.new_order(SYMBOL, "o1", Side.SELL, 10, 5_008)
    await b0.new_order(SYMBOL, "b0-1", Side.BUY, 10, 5_010)  # 10 at 5,005 from s1
    # 20 at 5,005 (s1 done), 10 at 5,008 (o1 done), 5 at 5,010 (s2 partly)
    await b1.new_order(SYMBOL, "b1-1", Side.BUY, 35, 5_010)
    resting = await b0.new_order(SYMBOL, "b0-2", Side.BUY, 5, 4_995)
    assert await s.cancel(SYMBOL, cl_ord_id="s2") > s1
    assert await b0.cancel(SYMBOL, order_id=resting) == resting
    await b1.new_order(SYMBOL, "b1-2", Side.BUY, 3, 5_000, tif=TimeInForce.IOC)  # nothing left
    heard = {}
    for account, client in zip(accounts, (o, s, b0, b1), strict=True):
        await client.ping()  # every report of the session was sent before this reply
        heard[account] = reports(client.received())
    book = exchange.engine.books[SYMBOL]
    assert book.depth(Side.BUY, 10) == book.depth(Side.SELL, 10) == []

    for report in itertools.chain.from_iterable(heard.values()):
        cancelled = report.quantity - report.cum_qty - report.leaves_qty
        assert cancelled == 0 or report.status == "cancelled", report
    assert [(r.cl_ord_id, r.status, r.cum_qty, r.leaves_qty) for r in heard[seller]] == [
        ("s1", "new", 0, 30),
        ("s2", "new", 0, 20),
        ("s1", "partially_filled", 10, 20),
        ("s1", "filled", 30, 0),
        ("s2", "partially_filled", 5, 15),
        ("s2", "cancelled", 5, 0),
    ]
    assert [r.status for r in heard[buyer1]] == ["new"] + ["partially_filled"] * 2 + [
        "filled",
        "new",
        "cancelled",
    ]
    fills = [(a, r) for a, rs in heard.items() for r in rs if r.last_qty]
    trades: dict[int, dict[Side, tuple[int, ExecutionReport]]] = {}
    for account, report in fills:
        side = Side.BUY if account in (buyer0, buyer1) else Side.SELL
        assert report.trade_id is not None
        trades.setdefault(report.trade_id, {})[side] = (account, report)
    assert len(trades) == 4 and all(len(sides) == 2 for sides in trades.values())
    expected = {a: [0, 0] for a in accounts}  # tonnes and cash moved by the trades
    for trade_id, sides in trades.items():
        (buyer, bought), (seller_id, sold) = sides[Side.BUY], sides[Side.SELL]
        assert (bought.last_qty, bought.last_price) == (sold.last_qty, sold.last_price)
        assert bought.last_price is not None
        trade = TradeToSettle(
            trade_id,
            bought.order_id or 0,
            sold.order_id or 0,
            buyer,
            seller_id,
            bought.last_price,
            bought.last_qty,
            INSTRUMENT.buyer_fee_bp,
            INSTRUMENT.seller_fee_bp,
        )
        buyer_fee, seller_fee = fees(trade)
        notional = trade.price_fen * trade.quantity_t
        expected[buyer][0] += trade.quantity_t
        expected[buyer][1] -= notional + buyer_fee
        expected[seller_id][0] -= trade.quantity_t
        expected[seller_id][1] += notional - seller_fee

    await exchange.settler.drain()
    for account, client in zip(accounts, (o, s, b0, b1), strict=True):
        tonnes, available, locked = await position(exchange, account)
        assert locked == 0
        assert (tonnes - before[account][0], available - before[account][1]) == tuple(
            expected[account]
        ), account
        over_rest = await client.rest_get("/api/v1/account")
        assert over_rest["ledger"]["available_fen"] == available
        assert over_rest["tradable_fen"] == available
        held = (await client.rest_get("/api/v1/holdings"))["holdings"]
        assert sum(h["quantity_t"] for h in held if h["vintage"] == 2025) == tonnes
    async with exchange.database.pool.acquire() as conn:
        settled = await conn.fetch(
            "SELECT trade_id FROM settled_trades WHERE trade_id = ANY($1::bigint[])", list(trades)
        )
    assert len(settled) == len(trades)


async def test_another_accounts_order_is_out_of_reach(
    exchange: Exchange, server: TestServer, market: Market, stack: AsyncExitStack
) -> None:
    (_, seller), (buyer, _) = market
    mine, theirs = (
        await trader(stack, server, exchange, seller),
        await trader(stack, server, exchange, buyer),
    )
    order_id = await mine.new_order(SYMBOL, "reach-1", Side.SELL, 5, 5_300)
    attempts = [
        theirs.cancel(SYMBOL, order_id=order_id),
        theirs.cancel(SYMBOL, cl_ord_id="reach-1"),  # client order ids are per account
        theirs.cancel_all(SYMBOL),
    ]
    codes = []
    for attempt in attempts:
        with pytest.raises(Refused) as refused:
            await attempt
        codes.append(refused.value.code)
    assert codes == ["ORDER_MUST_BELONG_TO_ACCOUNT", "ORDER_MUST_EXIST", "ORDER_MUST_EXIST"]
    survivor = exchange.engine.books[SYMBOL].order(order_id)
    assert survivor is not None and survivor.leaves_t == 5
    await mine.ping()
    assert [r.status for r in reports(mine.received())] == ["new"]
    assert await mine.cancel(SYMBOL, order_id=order_id) == order_id


async def test_a_book_mirror_resyncs_after_a_gap_and_a_reconnect(
    exchange: Exchange, server: TestServer, market: Market, stack: AsyncExitStack
) -> None:
    (_, seller), (buyer, _) = market
    s, b = (
        await trader(stack, server, exchange, seller),
        await trader(stack, server, exchange, buyer),
    )
    book, channel = exchange.engine.books[SYMBOL], f"book:{SYMBOL}"
    mirror = BookMirror()
    tag = f"m{next(_tags)}"
    n = itertools.count()

    async def trade_a_little() -> None:
        for price in (5_020, 5_021, 5_022):
            await s.new_order(SYMBOL, f"{tag}s{next(n)}", Side.SELL, 4, price)
        await b.new_order(SYMBOL, f"{tag}b{next(n)}", Side.BUY, 6, 5_021)
        await b.new_order(SYMBOL, f"{tag}b{next(n)}", Side.BUY, 2, 4_980 + next(n))

    async def catch_up(watcher: Client, skip_one_delta: bool = False) -> None:
        """Apply what the watcher was sent so far (a ping is the barrier), twice if the first
        pass asked for a fresh snapshot."""
        for _ in range(2):
            await watcher.ping()
            for message in watcher.received():
                if skip_one_delta and isinstance(message, BookDelta):
                    skip_one_delta = False
                    continue
                await mirror.apply(message)

    def agrees() -> bool:
        mirrored = mirror.books[channel]
        return (
            mirrored.depth(Side.BUY) == book.depth(Side.BUY, 1_000)
            and mirrored.depth(Side.SELL) == book.depth(Side.SELL, 1_000)
            and mirrored.checksum() == checksum(book)
        )

    async with connect(server.make_url("/ws")) as watcher:
        await mirror.follow(watcher, SYMBOL)
        await trade_a_little()
        await catch_up(watcher, skip_one_delta=True)
        assert mirror.resyncs == 1 and agrees()
        await trade_a_little()
        await catch_up(watcher)
        assert mirror.resyncs == 1 and agrees()
        seen = mirror.books[channel].seq
    await trade_a_little()  # while the watcher is away
    async with connect(server.make_url("/ws")) as watcher:
        await mirror.follow(watcher)
        await catch_up(watcher)
        assert mirror.books[channel].seq > seen and agrees()
        await trade_a_little()
        await catch_up(watcher)
        assert mirror.resyncs == 1 and agrees()
    await s.cancel_all(SYMBOL)
    await b.cancel_all(SYMBOL)


async def test_a_trade_print_carries_the_id_the_fills_and_the_ledger_use(
    exchange: Exchange, server: TestServer, market: Market, stack: AsyncExitStack
) -> None:
    (_, seller), (buyer, _) = market
    s, b = (
        await trader(stack, server, exchange, seller),
        await trader(stack, server, exchange, buyer),
    )
    watcher = await stack.enter_async_context(connect(server.make_url("/ws")))
    await watcher.subscribe(f"trades:{SYMBOL}")
    tag = f"t{next(_tags)}"
    await s.new_order(SYMBOL, f"{tag}s", Side.SELL, 2, 5_100)
    await b.new_order(SYMBOL, f"{tag}b", Side.BUY, 2, 5_100)
    await s.ping()
    await watcher.ping()
    (sold,) = [r for r in reports(s.received()) if r.trade_id is not None]
    (bought,) = [r for r in reports(b.received()) if r.trade_id is not None]
    (printed,) = [m for m in watcher.received() if isinstance(m, TradePrint)]
    assert printed.trade_id == sold.trade_id == bought.trade_id
    assert (printed.price, printed.quantity, printed.aggressor) == (5_100, 2, Side.BUY)
    await exchange.settler.drain()
    async with exchange.database.pool.acquire() as conn:
        settled = await conn.fetchval(
            "SELECT buyer_id FROM settled_trades WHERE trade_id = $1", printed.trade_id
        )
    assert settled == buyer


async def test_pipelined_requests_are_answered_in_the_order_sent(
    exchange: Exchange, server: TestServer, market: Market, stack: AsyncExitStack
) -> None:
    _, (buyer, _) = market
    client = await trader(stack, server, exchange, buyer)
    tag = f"p{next(_tags)}"
    answered: list[int] = []

    async def request(n: int) -> int:
        # every third request cancels the order placed two before it
        if n % 3 == 2:
            result = await client.cancel(SYMBOL, cl_ord_id=f"{tag}-{n - 2}")
        else:
            result = await client.new_order(SYMBOL, f"{tag}-{n}", Side.BUY, 1, 4_600 + n)
        answered.append(n)
        return result

    results = await asyncio.gather(*(request(n) for n in range(300)))
    assert answered == list(range(300))
    placed = [order_id for n, order_id in enumerate(results) if n % 3 != 2]
    assert placed == sorted(placed) and len(set(placed)) == len(placed)
    assert [results[n] for n in range(2, 300, 3)] == [results[n - 2] for n in range(2, 300, 3)]
    assert await client.cancel_all(SYMBOL) == 100


async def test_a_closed_connection_fails_what_is_waiting_with_its_close_code(
    server: TestServer,
) -> None:
    async with connect(server.make_url("/ws")) as client:
        with pytest.raises(ConnectionClosedError) as closed:
            await client.request("ping", {"padding": "x" * MAX_FRAME})
        assert closed.value.code == 1009 and client.closed
        with pytest.raises(ConnectionClosedError):
            await client.ping()
        assert [message async for message in client.messages()] == []
