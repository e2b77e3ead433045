"""The sequencer on the real journal and ledger: orders reserve, trade and settle; a repeated
client order id is answered, not doubled; a refusal journals nothing; and replaying the journal
into fresh books yields the same events, the same books and, through the ledger, the same risk."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator

import msgspec
import pytest

from exchange.engine import Engine, OrderRequest
from exchange.errors import ExchangeError
from exchange.journal import Journal, last_seq, read
from exchange.ledger_feed import BatchBuilder
from exchange.recovery import recover
from exchange.risk import RiskView
from matching import Amended, Event, OrderType, RejectCode, Side, TimeInForce, Trade
from settlement.database import Database
from settlement.ledger import Ledger
from tests.exchange.market import INSTRUMENT, SYMBOL, accounts, order


class Exchange:
    """An engine wired to a journal and a ledger on the module's database."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self.ledger = Ledger(database)
        self.feed = BatchBuilder()
        self.journal = Journal(database.pool)
        self.engine = Engine([INSTRUMENT], self.journal, self.feed)

    async def start(self) -> int:
        replayed = await recover(self.engine, self.database.pool, self.ledger, self.feed)
        self.journal.start()
        return replayed

    async def settle(self) -> None:
        for batch in self.feed.take():
            await self.ledger.apply(batch)

    async def loaded_risk(self) -> RiskView:
        async with self.database.pool.acquire() as conn:
            return await RiskView.load(conn)


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    database = await Database.open(database_url, min_size=2, max_size=6)
    try:
        yield database
        await Ledger(database).check()
    finally:
        database.pool.terminate()  # a journal writer left running must not hold the close up


async def test_a_trade_reserves_settles_and_keeps_the_risk_view_true(
    database: Database,
) -> None:
    exchange = Exchange(database)
    (owner, trader), (buyer, _) = await accounts(exchange.ledger, "a")
    await exchange.start()
    await exchange.engine.new_order(trader, order("s1", Side.SELL, 200, 5_010))
    # only the 300 t of vintage 2025 qualify for this instrument, not the trader's 2024 ones
    with pytest.raises(ExchangeError) as refused:
        await exchange.engine.new_order(trader, order("s2", Side.SELL, 101, 5_020))
    assert refused.value.code == "INSUFFICIENT_HOLDINGS"
    _, events = await exchange.engine.new_order(buyer, order("b1", Side.BUY, 150, 5_010))
    trades = [e for e in events if isinstance(e, Trade)]
    assert [(t.price_fen, t.quantity_t) for t in trades] == [(5_010, 150)]
    await exchange.settle()
    held = await exchange.ledger.holdings(buyer)
    assert sum(h.quantity_t for h in held) == 150 and {h.vintage for h in held} == {2025}
    notional = 5_010 * 150
    fee = (notional * 5 + 5_000) // 10_000  # half up, in integers
    balance = await exchange.ledger.balance(buyer)
    assert balance.available_fen == 5_000_000 - notional - fee and balance.locked_fen == 0
    assert msgspec.to_builtins(await _risk(exchange, [owner, trader, buyer])) == (
        msgspec.to_builtins(_view(exchange.engine.risk, [owner, trader, buyer]))
    )
    await exchange.journal.close()


async def test_a_client_order_id_is_never_doubled(database: Database) -> None:
    exchange = Exchange(database)
    _, (buyer, _) = await accounts(exchange.ledger, "c")
    await exchange.start()
    first, events = await exchange.engine.new_order(buyer, order("x1", Side.BUY, 10, 4_900))
    assert events
    again, repeat_events = await exchange.engine.new_order(buyer, order("x1", Side.BUY, 10, 4_900))
    assert (again, repeat_events) == (first, [])
    with pytest.raises(ExchangeError) as refused:
        await exchange.engine.new_order(buyer, order("x1", Side.BUY, 11, 4_900))
    assert refused.value.code == "DUPLICATE_CL_ORD_ID"
    await exchange.journal.close()


async def test_a_caller_that_stops_waiting_does_not_stop_its_entry(database: Database) -> None:
    exchange = Exchange(database)
    _, (buyer, _) = await accounts(exchange.ledger, "g")
    await exchange.start()
    book = exchange.engine.books[SYMBOL]
    resting = sum(q for _, q, _ in book.depth(Side.BUY, 1_000))  # earlier tests' orders too
    waiting = asyncio.create_task(exchange.engine.new_order(buyer, order("g1", Side.BUY, 1, 4_900)))
    await asyncio.sleep(0)  # sequenced and on its way to the journal
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    # the entry was journaled and is applied all the same; the engine carries on
    order_id, events = await asyncio.wait_for(
        exchange.engine.new_order(buyer, order("g2", Side.BUY, 1, 4_900)), 10
    )
    assert events and exchange.engine.order_id_for(buyer, "g1") == order_id - 1
    assert sum(q for _, q, _ in book.depth(Side.BUY, 1_000)) == resting + 2
    await exchange.journal.close()


async def test_a_refused_order_journals_nothing(database: Database) -> None:
    exchange = Exchange(database)
    _, (buyer, _) = await accounts(exchange.ledger, "r")
    await exchange.start()
    async with database.pool.acquire() as conn:
        before = await last_seq(conn)
    with pytest.raises(ExchangeError) as refused:
        await exchange.engine.new_order(buyer, order("big", Side.BUY, 10_000, 5_000))
    assert refused.value.code == "INSUFFICIENT_CASH"
    with pytest.raises(ExchangeError) as unknown:
        await exchange.engine.new_order(buyer, OrderRequest("NOPE", "z", Side.BUY, 1, 5_000))
    assert unknown.value.code == "UNKNOWN_INSTRUMENT"
    await exchange.journal.close()
    async with database.pool.acquire() as conn:
        assert await last_seq(conn) == before
    assert exchange.engine.risk is not None
    assert exchange.engine.risk.available_fen(buyer) == 5_000_000


async def test_an_amend_holds_what_it_needs_and_gives_back_what_it_does_not(
    database: Database,
) -> None:
    exchange = Exchange(database)
    (_, trader), (buyer, _) = await accounts(exchange.ledger, "m")
    await exchange.start()
    engine, risk = exchange.engine, exchange.engine.risk
    assert risk is not None
    # priced away from what earlier tests left in the book
    buy, _ = await engine.new_order(buyer, order("mb", Side.BUY, 100, 4_600))
    sell, _ = await engine.new_order(trader, order("ms", Side.SELL, 100, 5_400))
    cash, free = risk.available_fen(buyer), risk.free_by_block(trader)
    # a higher price needs more cash; a larger sell more tonnes
    await engine.amend(buyer, SYMBOL, buy, 100, 4_610)
    assert risk.available_fen(buyer) == cash - 1_000 - 1  # 10 fen a tonne more, and its fee
    await engine.amend(trader, SYMBOL, sell, 250)
    assert sum(risk.free_by_block(trader).values()) == sum(free.values()) - 150
    # beyond what the account has: refused, nothing held, nothing journaled
    async with database.pool.acquire() as conn:
        before = await last_seq(conn)
    for account, order_id, quantity in ((buyer, buy, 100_000), (trader, sell, 301)):
        with pytest.raises(ExchangeError) as refused:
            await engine.amend(account, SYMBOL, order_id, quantity)
        assert refused.value.code in ("INSUFFICIENT_CASH", "INSUFFICIENT_HOLDINGS")
    async with database.pool.acquire() as conn:
        assert await last_seq(conn) == before
    # smaller terms give back at once, in the risk view and, once settled, in the ledger
    await engine.amend(buyer, SYMBOL, buy, 10, 4_590)
    await engine.amend(trader, SYMBOL, sell, 20)
    await exchange.settle()
    everyone = [trader, buyer]
    assert msgspec.to_builtins(await _risk(exchange, everyone)) == msgspec.to_builtins(
        _view(risk, everyone)
    )
    locked = await exchange.ledger.balance(buyer)
    assert locked.locked_fen == 4_590 * 10 + 23 + 10  # notional, fee rounded up, a fen a tonne
    # another account's order, or an unknown one, is the book's refusal and holds nothing
    events = await engine.amend(trader, SYMBOL, buy, 500, 4_600)
    assert [getattr(e, "code", None) for e in events] == [RejectCode.ORDER_MUST_BELONG_TO_ACCOUNT]
    assert risk.available_fen(trader) == (await exchange.ledger.balance(trader)).available_fen
    await exchange.journal.close()


async def test_replaying_the_journal_rebuilds_the_same_books_and_events(
    database: Database,
) -> None:
    live = Exchange(database)
    sellers, buyers = await accounts(live.ledger, "p")
    await live.start()
    seen: list[tuple[int, list[Event]]] = []
    live.engine.listeners.append(lambda entry, events: seen.append((entry.seq, events)))
    rng = random.Random(7)
    open_orders: list[tuple[int, int]] = []
    for n in range(300):
        roll = rng.random()
        try:
            if roll < 0.75:
                seller = rng.random() < 0.5
                account = rng.choice(sellers if seller else buyers)
                market = rng.random() < 0.1
                request = order(
                    f"o{n}",
                    Side.SELL if seller else Side.BUY,
                    rng.randint(1, 15),
                    None if market else 5_000 + rng.randint(-8, 8),
                    order_type=OrderType.MARKET if market else OrderType.LIMIT,
                    tif=TimeInForce.IOC if market else rng.choice(list(TimeInForce)[:2]),
                )
                order_id, _ = await live.engine.new_order(account, request)
                open_orders.append((account, order_id))
            elif roll < 0.88 and open_orders:
                book = live.engine.books[SYMBOL]
                open_orders = [(a, o) for a, o in open_orders if book.order(o) is not None]
                if not open_orders:
                    continue
                account, order_id = rng.choice(open_orders)
                quantity, price = rng.randint(1, 20), rng.choice([None, 5_000 + rng.randint(-8, 8)])
                await live.engine.amend(account, SYMBOL, order_id, quantity, price)
            elif open_orders:
                account, order_id = open_orders.pop(rng.randrange(len(open_orders)))
                await live.engine.cancel(account, SYMBOL, order_id)
        except ExchangeError:
            pass
        live.engine.check_invariants()
        if n % 40 == 0:
            await live.settle()
    await live.settle()
    await live.journal.close()
    assert any(isinstance(e, Trade) for _, events in seen for e in events)
    assert any(isinstance(e, Amended) for _, events in seen for e in events)

    recovered = Exchange(database)
    replayed = [
        (entry.seq, recovered.engine.replay(entry)) async for entry in read(database.pool, 0)
    ]
    # the journal also holds the module's earlier tests, which both engines replayed first
    assert replayed[len(replayed) - len(seen) :] == seen
    live_book, new_book = live.engine.books[SYMBOL], recovered.engine.books[SYMBOL]
    assert new_book.snapshot() == live_book.snapshot()
    for batch in recovered.feed.take():  # the ledger has all of it: nothing new
        report = await recovered.ledger.apply(batch)
        assert (report.locked, report.settled) == ((), ())
    everyone = sellers + buyers
    assert live.engine.risk is not None
    assert msgspec.to_builtins(await _risk(recovered, everyone)) == msgspec.to_builtins(
        _view(live.engine.risk, everyone)
    )


async def _risk(exchange: Exchange, accounts: list[int]) -> dict[str, object]:
    return _view(await exchange.loaded_risk(), accounts)


def _view(view: RiskView | None, accounts: list[int]) -> dict[str, object]:
    assert view is not None
    return {
        "cash": {a: view.available_fen(a) for a in accounts},
        "free": {a: view.free_by_block(a) for a in accounts},
    }
