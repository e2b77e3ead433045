"""What clients were told, checked against the journal: nothing acknowledged is lost, nothing is
doubled, and the exchange is exactly what its journal says.

The journal is replayed here, into fresh books, independently of the server. Then:

- every acknowledged order is in the journal under its id, and no client order id twice; every
  acknowledged cancel and amend is journaled (an ack follows the commit);
- every book message, trade print and fill a client heard is one the replay makes again, under
  the same number (nothing leaves the server before it is durable);
- the books the server serves now (levels, sequence number, checksum) equal the replay's — asked
  while no load runs, so that both describe the same journal;
- every trade of the replay is settled exactly once, and the ledger's audit holds;
- every acknowledged surrender, retirement and certificate application is in the ledger as told.

Each check returns the problems it found, as lines for people; none means it holds. The crash
test (`tests/exchange/test_crash.py`) and the load and crash runners (`load.run`, `load.crash`)
share them.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import msgspec

from exchange.client import connect
from exchange.engine import Engine
from exchange.instruments import listed
from exchange.journal import Entry, Journal, read
from exchange.ledger_feed import BatchBuilder
from exchange.market_data import BookDelta, BookSnapshot, MarketData, TradePrint
from matching import Amend, Cancel, Event, NewOrder, Trade
from settlement.database import Database
from settlement.ledger import Ledger

SETTLE_DEADLINE_S = 60.0
SHOWN = 5  # examples quoted per problem


class Heard(msgspec.Struct):
    """What clients were told: what they were promised and what they saw. Merged across
    clients, sessions and restarts; sent between processes as msgpack."""

    orders: dict[tuple[int, str], int] = {}  # (account, cl_ord_id) → order id acknowledged
    cancels: set[int] = set()  # order ids whose cancel was acknowledged
    amends: dict[int, int] = {}  # order id → amends acknowledged
    fills: set[int] = set()  # trade ids in execution reports
    book: dict[tuple[str, int], int] = {}  # (channel, seq) → checksum, of every book message
    prints: dict[tuple[str, int], int] = {}  # (channel, seq) → trade id, of every trade print
    surrenders: dict[int, int] = {}  # surrender id → tonnes
    retirements: dict[int, int] = {}  # retirement id → tonnes
    applications: dict[int, tuple[int, ...]] = {}  # application id → its retirements
    problems: list[str] = []  # what a client caught itself: a number going back, say
    resyncs: int = 0  # fresh snapshots asked for after a gap in a book's numbers

    def merge(self, other: Heard) -> None:
        self.orders.update(other.orders)
        self.cancels |= other.cancels
        for order_id, count in other.amends.items():
            self.amends[order_id] = self.amends.get(order_id, 0) + count
        self.fills |= other.fills
        for name, mine, theirs in (
            ("book message", self.book, other.book),
            ("trade print", self.prints, other.prints),
        ):
            for key, value in theirs.items():
                if mine.setdefault(key, value) != value:
                    self.problems.append(f"two clients heard {name} {key} differently")
        self.surrenders.update(other.surrenders)
        self.retirements.update(other.retirements)
        self.applications.update(other.applications)
        self.problems.extend(other.problems)
        self.resyncs += other.resyncs


encode_heard = msgspec.msgpack.Encoder().encode
decode_heard = msgspec.msgpack.Decoder(Heard).decode


@dataclass
class Replay:
    """The journal replayed into fresh books here, with the market data it makes again."""

    entries: list[Entry]
    snapshots: dict[str, BookSnapshot]  # each book as a new subscriber would get it now
    book: dict[tuple[str, int], int]  # (channel, seq) → checksum of every book message
    prints: dict[tuple[str, int], int]  # (channel, seq) → trade id of every trade print
    trades: list[int]  # exchange-wide trade ids, in order

    @property
    def channels(self) -> list[str]:
        return sorted(self.snapshots)


_market_message = msgspec.json.Decoder(BookSnapshot | BookDelta | TradePrint).decode


async def replay(database: Database) -> Replay:
    """Replay the whole journal into books of the instruments the database lists."""
    async with database.pool.acquire() as conn:
        instruments = await listed(conn)
    engine = Engine(instruments, Journal(database.pool), BatchBuilder())
    market_data = MarketData(engine.books, engine.instruments)
    book: dict[tuple[str, int], int] = {}
    prints: dict[tuple[str, int], int] = {}
    trades: list[int] = []
    snapshots: dict[str, BookSnapshot] = {}

    def record(data: bytes) -> None:
        message = _market_message(data)
        if isinstance(message, TradePrint):
            prints[message.channel, message.seq] = message.trade_id
            return
        book[message.channel, message.seq] = message.checksum
        if isinstance(message, BookSnapshot):
            snapshots[message.channel] = message

    def publish(entry: Entry, events: list[Event]) -> None:
        market_data.publish(entry, events)
        instrument = engine.instruments[entry.symbol]
        trades.extend(instrument.trade_id(e.trade_id) for e in events if isinstance(e, Trade))

    channels = [f"{kind}:{i.symbol}" for i in instruments for kind in ("book", "trades")]
    for channel in channels:
        market_data.subscribe(channel, 0, record)
    engine.listeners.append(publish)
    entries = [entry async for entry in read(database.pool, 0)]
    for entry in entries:
        engine.replay(entry)
    for channel in channels:
        if channel.startswith("book:"):
            market_data.subscribe(channel, 0, record)  # again: the snapshot of the replayed book
    return Replay(entries, snapshots, book, prints, trades)


def journaled_orders(entries: list[Entry]) -> tuple[dict[tuple[int, str], int], list[str]]:
    """(account, client order id) → order id of every new order; and a problem for each client
    order id journaled more than once."""
    orders = [
        ((e.command.account_id, e.cl_ord_id), e.command.order_id)
        for e in entries
        if isinstance(e.command, NewOrder) and e.cl_ord_id is not None
    ]
    twice = [key for key, count in Counter(key for key, _ in orders).items() if count > 1]
    problems = [f"client order ids journaled more than once: {twice[:SHOWN]}"] if twice else []
    return dict(orders), problems


def check_heard(replayed: Replay, heard: Heard) -> list[str]:
    """Everything the clients were told is what the journal says."""
    orders, problems = journaled_orders(replayed.entries)
    lost = [(key, order) for key, order in heard.orders.items() if orders.get(key) != order]
    if lost:
        problems.append(f"{len(lost)} acknowledged orders not in the journal: {lost[:SHOWN]}")
    cancels = {e.command.order_id for e in replayed.entries if isinstance(e.command, Cancel)}
    if missing := sorted(heard.cancels - cancels):
        problems.append(f"{len(missing)} acknowledged cancels not journaled: {missing[:SHOWN]}")
    amends = Counter(e.command.order_id for e in replayed.entries if isinstance(e.command, Amend))
    short = [(order_id, n) for order_id, n in heard.amends.items() if amends[order_id] < n]
    if short:
        problems.append(f"{len(short)} acknowledged amends not journaled: {short[:SHOWN]}")
    if unknown := sorted(heard.fills - set(replayed.trades)):
        problems.append(f"{len(unknown)} fills the journal does not make: {unknown[:SHOWN]}")
    for name, told, made in (
        ("book messages", heard.book, replayed.book),
        ("trade prints", heard.prints, replayed.prints),
    ):
        unbacked = [(key, value) for key, value in told.items() if made.get(key) != value]
        if unbacked:
            problems.append(
                f"{len(unbacked)} {name} the journal does not make again: {unbacked[:SHOWN]}"
            )
    return problems + [f"a client saw: {problem}" for problem in heard.problems]


async def check_served(url: str, replayed: Replay) -> list[str]:
    """The books the server at `url` (its WebSocket address) serves equal the replay's. Ask
    only while nothing trades."""
    async with connect(url) as client:
        await client.subscribe(*replayed.channels)  # the snapshots arrive before the reply
        served = {m.channel: m for m in client.received() if isinstance(m, BookSnapshot)}
    return [
        f"{channel}: served {served.get(channel)}, the journal makes {snapshot}"
        for channel, snapshot in replayed.snapshots.items()
        if served.get(channel) != snapshot
    ]


async def check_ledger(
    database: Database, replayed: Replay, deadline_s: float = SETTLE_DEADLINE_S
) -> list[str]:
    """Every trade of the journal is settled exactly once (waiting up to `deadline_s` for the
    settlement worker), and the ledger's audit holds."""
    expected = sorted(replayed.trades)
    problems = []
    if len(set(expected)) != len(expected):
        problems.append("the journal makes a trade id twice")
    deadline = time.monotonic() + deadline_s
    while True:
        rows = await database.pool.fetch("SELECT trade_id FROM settled_trades ORDER BY trade_id")
        settled = [row[0] for row in rows]
        if settled == expected or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.05)
    if settled != expected:
        doubled = [t for t, n in Counter(settled).items() if n > 1]
        unsettled = sorted(set(expected) - set(settled))
        stray = sorted(set(settled) - set(expected))
        problems.append(
            f"settled trades differ from the journal's after {deadline_s:g} s: {len(unsettled)}"
            f" unsettled {unsettled[:SHOWN]}, {len(stray)} not in the journal {stray[:SHOWN]},"
            f" {len(doubled)} twice"
        )
    report = await Ledger(database).audit()
    problems += [f"audit: {problem}" for problem in report.problems[:20]]
    return problems


async def check_offsets(database: Database, heard: Heard) -> list[str]:
    """Every acknowledged surrender, retirement and application is in the ledger as told."""
    problems = []
    for name, sql, told in (
        ("surrenders", "SELECT surrender_id, quantity_t FROM surrenders", heard.surrenders),
        ("retirements", "SELECT retirement_id, quantity_t FROM retirements", heard.retirements),
    ):
        kept = {row[0]: row[1] for row in await database.pool.fetch(sql)}
        wrong = [(i, t, kept.get(i)) for i, t in told.items() if kept.get(i) != t]
        if wrong:
            problems.append(f"{len(wrong)} acknowledged {name} not as told: {wrong[:SHOWN]}")
    rows = await database.pool.fetch(
        "SELECT application_id, retirement_ids FROM certificate_applications"
    )
    applied = {row[0]: tuple(row[1]) for row in rows}
    wrong_applications = [
        (i, ids) for i, ids in heard.applications.items() if applied.get(i) != tuple(ids)
    ]
    if wrong_applications:
        problems.append(
            f"{len(wrong_applications)} acknowledged applications not as told:"
            f" {wrong_applications[:SHOWN]}"
        )
    return problems


async def check_everything(
    ws_url: str, database_url: str, heard: Heard, say: Callable[[str], None]
) -> list[tuple[str, list[str]]]:
    """Every check against the server at `ws_url` and its database, which must not be trading
    meanwhile; each check's name and problems."""
    database = await Database.open(database_url, min_size=1, max_size=2)
    try:
        started = time.perf_counter()
        replayed = await replay(database)
        say(
            f"replayed   {len(replayed.entries):,} journal entries, {len(replayed.trades):,}"
            f" trades, in {time.perf_counter() - started:.1f} s"
        )
        return [
            ("what clients were told is journaled, once", check_heard(replayed, heard)),
            ("the served books equal the journal's", await check_served(ws_url, replayed)),
            ("each trade settled once; the audit holds", await check_ledger(database, replayed)),
            ("surrenders, retirements, applications", await check_offsets(database, heard)),
        ]
    finally:
        await database.close()
