"""kill -9 in the middle of trading, then a restart: nothing acknowledged is lost, and the
restarted exchange is exactly what its journal says.

A real `cerx serve --demo` process on a fresh database. The demo's three traders, two sessions
each with several requests in flight, place and cancel crossing orders on both instruments while
a watcher mirrors both books. At a seeded number of acknowledgements the server gets SIGKILL —
requests on the wire, journal writes and settlement batches under way — and is started again.
Then the restarted server is checked against a replay of its journal made here, in the test:

- every acknowledged order and cancel is in the journal (an ack follows the commit), once;
- every book message and every fill the clients heard before the kill is one the replay makes
  again, with the same number and checksum (nothing leaves the server before it is durable);
- the restarted server's book snapshots (levels, sequence number, checksum) equal the replay's;
- every trade of the replay is settled in the ledger exactly once, and the ledger's audit holds;
- the watcher reconnects and its mirror carries on from the number it last saw.

Three rounds of trade, kill, restart; then a clean stop. A second test re-sends, after the
kill, every order sent before it: each acknowledged one gets its first id back, and no client
order id is ever journaled twice.

The checks are `load.verify`'s, which the load and crash campaigns (`load/`) share.
"""

from __future__ import annotations

import asyncio
import itertools
import random
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field

import pytest

from bench.exchange import free_port
from exchange.book_mirror import BookMirror
from exchange.client import Client, ConnectionClosedError, Refused, connect
from exchange.demo import TRADERS
from exchange.market_data import BookDelta, BookSnapshot
from exchange.reports import ExecutionReport
from load.process import UNLIMITED, ServerCommand, ServerProcess, running
from load.verify import Heard, check_heard, check_ledger, check_served, journaled_orders, replay
from matching import Side, TimeInForce
from settlement.database import Database
from settlement.ledger import Ledger

SEED = 20_251_125
ROUNDS = 3
WINDOW = 4  # requests each session keeps in flight
REFERENCE = {"SZCER-2025": 5_000, "SZCER-P0001": 4_800}  # the demo's reference prices
# what a random workload is told no to, and nothing else
EXPECTED_REFUSALS = {"INSUFFICIENT_HOLDINGS", "INSUFFICIENT_CASH", "ORDER_MUST_EXIST"}
DEADLINE_S = 30


@dataclass
class Tally:
    """What the workload was told no to, and how many acknowledgements it had."""

    refusals: Counter[str] = field(default_factory=Counter)
    acks: int = 0


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    database = await Database.open(database_url, min_size=1, max_size=4)
    try:
        yield database
    finally:
        await database.close()


# -- the workload ----------------------------------------------------------------------------


class Trader:
    """One session of a demo trader. Until the server dies it keeps WINDOW requests in flight,
    orders and cancels at random, and sells again at once whatever one of its buys bought, as
    a trader flipping a position would: what it sells may exist only through trades not yet
    settled."""

    def __init__(
        self,
        client: Client,
        name: str,
        rng: random.Random,
        heard: Heard,
        tally: Tally,
        acked: Callable[[], None],
    ) -> None:
        assert client.account_id is not None
        self.client, self.account_id = client, client.account_id
        self.name, self.rng, self.heard, self.tally, self.acked = name, rng, heard, tally, acked
        self.live: list[tuple[str, str, int]] = []  # symbol, cl_ord_id, id: maybe resting
        self.sides: dict[int, Side] = {}  # this session's orders
        self.numbers = itertools.count()

    async def run(self) -> None:
        await asyncio.gather(self.flip(), *(self.work() for _ in range(WINDOW)))

    async def work(self) -> None:
        rng = self.rng
        while await self.attempt(
            self.cancel()
            if self.live and rng.random() < 0.3
            else self.place(
                rng.choice(list(REFERENCE)), rng.choice((Side.BUY, Side.SELL)), rng.randint(1, 8)
            )
        ):
            pass

    async def flip(self) -> None:
        async for message in self.client.messages():
            if isinstance(message, ExecutionReport) and message.trade_id is not None:
                self.heard.fills.add(message.trade_id)
                if message.order_id is not None and self.sides.get(message.order_id) is Side.BUY:
                    await self.attempt(self.place(message.symbol, Side.SELL, message.last_qty))

    async def attempt(self, request: Awaitable[None]) -> bool:
        """Whether the connection lives on."""
        try:
            await request
        except Refused as refused:
            self.tally.refusals[refused.code] += 1
            return True
        except ConnectionClosedError:
            return False
        self.tally.acks += 1
        self.acked()
        return True

    async def place(self, symbol: str, side: Side, quantity: int) -> None:
        cl_ord_id = f"{self.name}-{next(self.numbers)}"
        tif = TimeInForce.IOC if self.rng.random() < 0.15 else TimeInForce.GTC
        price = REFERENCE[symbol] + self.rng.randint(-8, 8)
        order_id = await self.client.new_order(symbol, cl_ord_id, side, quantity, price, tif=tif)
        self.heard.orders[self.account_id, cl_ord_id] = order_id
        self.sides[order_id] = side
        self.live.append((symbol, cl_ord_id, order_id))

    async def cancel(self) -> None:
        symbol, cl_ord_id, order_id = self.live.pop(self.rng.randrange(len(self.live)))
        if self.rng.random() < 0.5:
            self.heard.cancels.add(await self.client.cancel(symbol, cl_ord_id=cl_ord_id))
        else:
            self.heard.cancels.add(await self.client.cancel(symbol, order_id=order_id))


async def watch(watcher: Client, mirror: BookMirror, heard: Heard) -> None:
    async for message in watcher.messages():
        if isinstance(message, BookDelta | BookSnapshot):
            heard.book[message.channel, message.seq] = message.checksum
        await mirror.apply(message)


async def trade_until_killed(
    server: ServerProcess,
    round_: int,
    rng: random.Random,
    heard: Heard,
    tally: Tally,
    mirror: BookMirror,
) -> None:
    """Trade on each demo trader's two sessions; SIGKILL the server after a seeded number more
    acknowledgements, while requests are still in flight."""
    kill_at = tally.acks + rng.randint(100, 400)
    killing = asyncio.Event()

    def enough() -> None:
        if tally.acks >= kill_at:
            killing.set()

    async with AsyncExitStack() as stack:
        watcher = await stack.enter_async_context(connect(server.url))
        await mirror.follow(watcher, *REFERENCE)
        watching = asyncio.create_task(watch(watcher, mirror, heard))
        sessions = []
        for name in TRADERS:
            key = server.keys[name]
            secret = bytes.fromhex(key.secret_hex)
            for n in range(2):
                client = await stack.enter_async_context(connect(server.url, key.key_id, secret))
                tag = f"{name}{n}-r{round_}"
                rng_ = random.Random(f"{SEED}/{tag}")
                trader = Trader(client, tag, rng_, heard, tally, enough)
                sessions.append(trader.run())
        trading = asyncio.gather(*sessions)
        await asyncio.wait_for(killing.wait(), DEADLINE_S)
        await server.kill()
        await asyncio.wait_for(trading, DEADLINE_S)
        await asyncio.wait_for(watching, DEADLINE_S)
    # a refused settlement batch or an unexpected error is logged, and nothing else is
    assert "settlement stopped" not in server.output and "Traceback" not in server.output, (
        server.output
    )


# -- the checks ------------------------------------------------------------------------------


async def check_restarted(
    server: ServerProcess, database: Database, heard: Heard, mirror: BookMirror
) -> None:
    replayed = await replay(database)
    assert check_heard(replayed, heard) == []
    assert await check_served(server.url, replayed) == []
    assert await check_ledger(database, replayed, DEADLINE_S) == []

    last_seen = {channel: book.seq for channel, book in mirror.books.items()}
    async with connect(server.url) as watcher:
        await mirror.follow(watcher, *REFERENCE)
        for message in watcher.received():
            await mirror.apply(message)
    for channel, book in mirror.books.items():
        snapshot = replayed.snapshots[channel]
        assert book.synced and book.seq == snapshot.seq >= last_seen[channel]
        assert (book.depth(Side.BUY), book.depth(Side.SELL)) == (snapshot.bids, snapshot.asks)


# -- the tests ---------------------------------------------------------------------------------


@pytest.fixture
async def port() -> AsyncIterator[int]:
    yield free_port()


async def test_an_acknowledged_order_survives_a_kill_and_is_never_doubled(
    database: Database, database_url: str, port: int
) -> None:
    rng = random.Random(SEED)
    sent: dict[str, tuple[int, int]] = {}  # client order id → quantity, price
    acked: dict[str, int] = {}
    numbers = itertools.count()
    kill_at = rng.randint(20, 150)
    killing = asyncio.Event()
    async with running(ServerCommand(port, database_url, options=UNLIMITED)) as server:
        key = server.keys["carol"]
        secret = bytes.fromhex(key.secret_hex)
        async with connect(server.url, key.key_id, secret) as client:

            async def place() -> None:
                while True:
                    # passive buys, below every sell: each rests, so each is acknowledged
                    cl_ord_id = f"keep-{next(numbers)}"
                    sent[cl_ord_id] = (rng.randint(1, 3), rng.randint(4_400, 4_500))
                    try:
                        acked[cl_ord_id] = await client.new_order(
                            "SZCER-P0001", cl_ord_id, Side.BUY, *sent[cl_ord_id]
                        )
                    except ConnectionClosedError:
                        return
                    if len(acked) >= kill_at:
                        killing.set()

            placing = asyncio.gather(*(place() for _ in range(4 * WINDOW)))
            await asyncio.wait_for(killing.wait(), DEADLINE_S)
            await server.kill()
            await asyncio.wait_for(placing, DEADLINE_S)
    assert len(sent) > len(acked) >= kill_at

    async with running(ServerCommand(port, database_url, options=UNLIMITED)) as server:
        async with connect(server.url, key.key_id, secret) as client:
            again = await asyncio.gather(
                *(
                    client.new_order("SZCER-P0001", cl_ord_id, Side.BUY, quantity, price)
                    for cl_ord_id, (quantity, price) in sent.items()
                )
            )
        resent = dict(zip(sent, again, strict=True))
        assert {cl_ord_id: resent[cl_ord_id] for cl_ord_id in acked} == acked
        orders, doubled = journaled_orders((await replay(database)).entries)
        assert not doubled
        assert {cl: orders[key.account_id, cl] for cl in sent} == resent
        assert await server.stop() == 0
    await Ledger(database).check()


async def test_kill_9_mid_stream_then_restart_matches_the_journal(
    database: Database, database_url: str, port: int
) -> None:
    rng = random.Random(SEED)
    heard, tally, mirror = Heard(), Tally(), BookMirror()
    command = ServerCommand(port, database_url, options=UNLIMITED)
    for round_ in range(ROUNDS):
        async with running(command) as server:
            if round_:
                await check_restarted(server, database, heard, mirror)
            await trade_until_killed(server, round_, rng, heard, tally, mirror)
    async with running(command) as server:
        await check_restarted(server, database, heard, mirror)
        assert await server.stop() == 0
    await Ledger(database).check()
    assert heard.fills and heard.cancels and tally.acks >= ROUNDS * 100
    assert set(tally.refusals) <= EXPECTED_REFUSALS, tally.refusals
    assert mirror.resyncs == 0  # no gap and no mismatch while connected
