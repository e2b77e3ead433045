"""Throughput of DvP settlement on PostgreSQL: seeded trades settled in batches, checked after.

Run as `python -m bench.settlement [--database-url URL] [--trades 20000] [--batches 1,100,1000]
[--seed 1] [--statements]`.

1. Create a scratch database `cerx_bench_<pid>` on the server named by `--database-url` (else
   `$CERX_DATABASE_URL`, else the local server), migrate it with `Database.open`, and drop it at
   the end, after a failure too.
2. Open the market: a regulator, `OWNERS` participants owning the `PROJECTS` of one methodology,
   `SELLERS` and `BUYERS` traders. For each batch size generate a seeded stream of `--trades`
   trades (at most `SINGLE_CAP` for batch size 1, which commits once per trade) between
   `LIVE_ORDERS` live orders per side, each filled about `MEAN_FILLS` times before a new order
   takes its place, as a matching engine's fills arrive. Issue what the sellers will deliver (and
   a spare), transfer it to them, and have the buyers deposit what they will pay (and a spare).
3. Per batch size, with order ids of its own so that each measurement starts clean: lock each
   sell order's tonnes and each buy order's cash, exactly what its trades take (untimed); then
   settle the stream in batches of that size, timing only the `Ledger.settle` calls.
4. Check: settling a settled batch again reports all of it already settled and changes nothing;
   every account holds exactly the tonnes and cash its trades imply, so every lock is used up; the
   audit (`Ledger.check()`) is clean.

`--statements` also times each SQL statement of the timed settles (asyncpg's query logger, which
adds a little to the timed runs) and prints where the time went. Exits 1 if a check fails. Money
(fen) and quantities (t) are integers throughout; floats appear only in timing output.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import itertools
import os
import random
import re
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

import asyncpg
from asyncpg.connection import LoggedQuery
from asyncpg.pool import PoolConnectionProxy

from bench.matching import Log, machine, say
from settlement.audit import AuditError, AuditReport
from settlement.database import DATABASE_URL_VARIABLE, Database
from settlement.dvp import fees
from settlement.ledger import Ledger
from settlement.values import (
    EXTERNAL_ACCOUNT_ID,
    FEE_ACCOUNT_ID,
    ByQuantity,
    Methodology,
    Project,
    Role,
    TradeToSettle,
)

LOCAL_SERVER_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_TRADES = 20_000
DEFAULT_BATCHES = (1, 100, 1_000)
SINGLE_CAP = 2_000  # batch size 1 pays a commit per trade: more trades only make the run longer
GOAL_BATCH, GOAL_RATE = 1_000, 20_000  # trades/s wanted at this batch size on a 2-core machine

METHODOLOGY = "PV01"
PROJECTS = (("P0001", 2023), ("P0002", 2024), ("P0003", 2025))  # code, vintage
OWNERS = 2
SELLERS = 16
BUYERS = 16
LIVE_ORDERS = 64  # per side
MEAN_FILLS = 20  # trades per order, uniform in 1..2 * MEAN_FILLS - 1
PRICE_FEN = (4_000, 6_000)
QUANTITY_T = (1, 20)
FEE_BP = 5  # each side
SPARE_T = 1_000  # each seller keeps this many free tonnes, so its final position is not zero
SPARE_FEN = 1_000_000  # likewise each buyer's available cash
PROGRESS_STEPS = 10
PROGRESS_MIN = 1_000  # fewer items than this report once, when done

Position = dict[tuple[int, str], int]  # (account, state or bucket) -> tonnes or fen, never 0
_BUCKETS = frozenset({"available", "locked"})


# -- the market and its trades -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Market:
    regulator: int
    owners: tuple[int, ...]
    sellers: tuple[int, ...]
    buyers: tuple[int, ...]


@dataclass(slots=True)
class Order:
    order_id: int
    account_id: int
    fills_left: int
    amount: int = 0  # tonnes a sell order delivers, or fen a buy order pays with its fees


@dataclass(slots=True)
class Stream:
    batch_size: int
    trades: list[TradeToSettle]
    sells: list[Order]  # each with at least one trade
    buys: list[Order]


class _Side:
    """The live orders of one side; an order filled for the last time is replaced at once."""

    def __init__(self, rng: random.Random, accounts: Sequence[int], ids: Iterator[int]) -> None:
        self._rng = rng
        self._accounts = accounts
        self._ids = ids
        self.orders: list[Order] = []
        self._live = [self._new() for _ in range(LIVE_ORDERS)]

    def _new(self) -> Order:
        fills = self._rng.randint(1, 2 * MEAN_FILLS - 1)
        order = Order(next(self._ids), self._rng.choice(self._accounts), fills)
        self.orders.append(order)
        return order

    def pick(self) -> Order:
        index = self._rng.randrange(len(self._live))
        order = self._live[index]
        order.fills_left -= 1
        if not order.fills_left:
            self._live[index] = self._new()
        return order


def generate(
    seed: int,
    batch_size: int,
    count: int,
    market: Market,
    trade_ids: Iterator[int],
    order_ids: Iterator[int],
) -> Stream:
    """`count` trades for the measurement at `batch_size`, the same for the same arguments."""
    rng = random.Random(f"bench.settlement/{seed}/{batch_size}")
    sells = _Side(rng, market.sellers, order_ids)
    buys = _Side(rng, market.buyers, order_ids)
    trades: list[TradeToSettle] = []
    for _ in range(count):
        sell, buy = sells.pick(), buys.pick()
        trade = TradeToSettle(
            trade_id=next(trade_ids),
            buy_order_id=buy.order_id,
            sell_order_id=sell.order_id,
            buyer_id=buy.account_id,
            seller_id=sell.account_id,
            price_fen=rng.randint(*PRICE_FEN),
            quantity_t=rng.randint(*QUANTITY_T),
            buyer_fee_bp=FEE_BP,
            seller_fee_bp=FEE_BP,
        )
        buyer_fee, _ = fees(trade)
        sell.amount += trade.quantity_t
        buy.amount += trade.price_fen * trade.quantity_t + buyer_fee
        trades.append(trade)
    return Stream(
        batch_size,
        trades,
        [order for order in sells.orders if order.amount],
        [order for order in buys.orders if order.amount],
    )


def settle_positions(expected: Counter[tuple[int, str]], trades: Sequence[TradeToSettle]) -> None:
    """Move `expected` tonnes and cash as the trades settle, their locks being used up exactly."""
    for trade in trades:
        buyer_fee, seller_fee = fees(trade)
        notional = trade.price_fen * trade.quantity_t
        expected[trade.seller_id, "free"] -= trade.quantity_t
        expected[trade.buyer_id, "free"] += trade.quantity_t
        expected[trade.buyer_id, "available"] -= notional + buyer_fee
        expected[trade.seller_id, "available"] += notional - seller_fee
        expected[FEE_ACCOUNT_ID, "available"] += buyer_fee + seller_fee


# -- progress ----------------------------------------------------------------------------------


class Progress:
    """Report every tenth of a long task as it passes, with the rate so far."""

    def __init__(self, log: Log, label: str, total: int, unit: str) -> None:
        self._log = log
        self._label = label
        self._total = total
        self._unit = unit
        self._done = 0
        self._step = 0
        self._started = time.perf_counter()

    def advance(self, count: int = 1, elapsed_s: float | None = None) -> None:
        """Count `count` more items done; `elapsed_s` overrides the wall clock in the rate."""
        self._done += count
        step = self._done * PROGRESS_STEPS // self._total
        if step == self._step or (self._total < PROGRESS_MIN and self._done < self._total):
            return
        self._step = step
        seconds = time.perf_counter() - self._started if elapsed_s is None else elapsed_s
        rate = f"{self._done / seconds:,.0f}" if seconds > 0 else "-"
        self._log(
            f"  {self._label}: {self._done:,}/{self._total:,} {self._unit}"
            f" ({100 * self._done // self._total} %), {seconds:.1f} s, {rate} {self._unit}/s"
        )


# -- set-up --------------------------------------------------------------------------------------


async def open_market(ledger: Ledger) -> Market:
    async def account(name: str, role: Role) -> int:
        opened = await ledger.open_account(f"bench/account/{name}", name, [role])
        return opened.account_id

    regulator = await account("regulator", Role.REGULATOR)
    owners = [await account(f"owner-{n}", Role.PARTICIPANT) for n in range(OWNERS)]
    sellers = [await account(f"seller-{n}", Role.TRADER) for n in range(SELLERS)]
    buyers = [await account(f"buyer-{n}", Role.TRADER) for n in range(BUYERS)]
    return Market(regulator, tuple(owners), tuple(sellers), tuple(buyers))


async def stock(
    ledger: Ledger,
    market: Market,
    streams: Sequence[Stream],
    expected: Counter[tuple[int, str]],
    log: Log,
) -> None:
    """Issue, hand out and deposit what the streams will settle, and a spare for each trader."""
    delivers: Counter[int] = Counter()
    pays: Counter[int] = Counter()
    for stream in streams:
        for order in stream.sells:
            delivers[order.account_id] += order.amount
        for order in stream.buys:
            pays[order.account_id] += order.amount
    regulator = market.regulator
    await ledger.register_methodology(
        "bench/methodology", regulator, Methodology(METHODOLOGY, "Rooftop solar PV", "energy")
    )
    needed = sum(delivers.values()) + SPARE_T * len(market.sellers)
    per_project = -(-needed // len(PROJECTS))
    unassigned: Counter[int] = Counter()  # owner -> tonnes not yet handed to a seller
    for index, (code, vintage) in enumerate(PROJECTS):
        owner = market.owners[index % len(market.owners)]
        project = Project(code, owner, METHODOLOGY, "Shenzhen")
        await ledger.register_project(f"bench/project/{code}", regulator, project)
        await ledger.issue(
            f"bench/issue/{code}",
            regulator,
            code,
            per_project,
            dt.date(vintage, 1, 1),
            dt.date(vintage, 12, 31),
        )
        unassigned[owner] += per_project
        expected[owner, "free"] += per_project
    log(f"issued     {per_project * len(PROJECTS):,} t in {len(PROJECTS)} blocks")

    owners = iter(market.owners)
    owner = next(owners)
    transfers = 0
    for seller in market.sellers:
        wanted = delivers[seller] + SPARE_T
        while wanted:
            if not unassigned[owner]:
                owner = next(owners)
                continue
            part = min(wanted, unassigned[owner])
            transfers += 1
            await ledger.transfer(f"bench/transfer/{transfers}", owner, seller, ByQuantity(part))
            unassigned[owner] -= part
            wanted -= part
            expected[owner, "free"] -= part
            expected[seller, "free"] += part
    deposited = 0
    for buyer in market.buyers:
        amount = pays[buyer] + SPARE_FEN
        await ledger.deposit(f"bench/deposit/{buyer}", buyer, amount)
        expected[buyer, "available"] += amount
        expected[EXTERNAL_ACCOUNT_ID, "available"] -= amount
        deposited += amount
    log(
        f"stocked    {transfers} transfers to {len(market.sellers)} sellers"
        f" ({sum(delivers.values()) + SPARE_T * len(market.sellers):,} t),"
        f" {len(market.buyers)} deposits ({_yuan(deposited)} yuan)"
    )


async def lock_orders(ledger: Ledger, stream: Stream, log: Log) -> None:
    """Lock each order's tonnes or cash (untimed), as the exchange does when it accepts one."""
    progress = Progress(
        log, f"locks for batch {stream.batch_size:,}", len(stream.sells) + len(stream.buys), "locks"
    )
    for order in stream.sells:
        await ledger.lock_cers(order.order_id, order.account_id, order.amount)
        progress.advance()
    for order in stream.buys:
        await ledger.lock_cash(order.order_id, order.account_id, order.amount)
        progress.advance()


# -- timing --------------------------------------------------------------------------------------


_WRITE = re.compile(r"\s*(INSERT INTO|UPDATE|DELETE FROM)\s+(\w+)", re.IGNORECASE)
_READ = re.compile(r"\s*SELECT\b.*?\bFROM\s+(\w+)", re.IGNORECASE | re.DOTALL)
_ROW_LOCK = re.compile(r"\bFOR (NO KEY UPDATE|UPDATE|KEY SHARE|SHARE)\b", re.IGNORECASE)


def statement_label(query: str) -> str:
    """A short name for a statement: its verb and table, so repeats of it add up.

    >>> statement_label("UPDATE cash_locks SET remaining_fen = 0")
    'UPDATE cash_locks'
    >>> statement_label("SELECT a FROM accounts WHERE a = 1 FOR NO KEY UPDATE")
    'SELECT accounts FOR NO KEY UPDATE'
    """
    if match := _WRITE.match(query):
        return f"{match[1].split()[0].upper()} {match[2]}"
    if "RESET ALL" in query:
        return "pool reset on release"
    if match := _READ.match(query):
        lock = _ROW_LOCK.search(query)
        return f"SELECT {match[1]}" + (f" FOR {lock[1].upper()}" if lock else "")
    return " ".join(query.split()).rstrip(";")[:40]


@dataclass(eq=False, slots=True)  # hashable by identity: asyncpg keeps its loggers in a set
class StatementClock:
    """Time per statement, from asyncpg's query logger, while `on`."""

    on: bool = False
    ns: Counter[str] = field(default_factory=Counter)
    calls: Counter[str] = field(default_factory=Counter)

    def __call__(self, record: LoggedQuery) -> None:
        if self.on:
            label = statement_label(record.query)
            self.ns[label] += round(record.elapsed * 1e9)
            self.calls[label] += 1


async def watch_statements(database: Database, clock: StatementClock) -> None:
    """Log the statements of every connection the pool lends (it lends the last returned first,
    but a pool may open more under load)."""
    pool = database.pool
    held: list[PoolConnectionProxy[asyncpg.Record]] = []
    try:
        for _ in range(pool.get_max_size()):
            held.append(await pool.acquire())
        for conn in held:
            conn.add_query_logger(clock)
    finally:
        for conn in held:
            await pool.release(conn)


@dataclass(slots=True)
class Measurement:
    batch_size: int
    trades: int
    batch_ns: list[int]
    statements: StatementClock | None = None

    @property
    def total_ns(self) -> int:
        return sum(self.batch_ns)

    @property
    def rate(self) -> int:
        """Trades per second, rounded down."""
        return self.trades * 1_000_000_000 // max(self.total_ns, 1)


async def measure(
    ledger: Ledger, stream: Stream, statements: StatementClock | None, log: Log
) -> tuple[Measurement, list[str]]:
    """Settle the stream in batches, timing each `Ledger.settle`; the timings and any problems."""
    size = stream.batch_size
    trades = stream.trades
    settle = ledger.settle
    clock = time.perf_counter_ns
    batch_ns: list[int] = []
    timed_ns = 0
    problems: list[str] = []
    progress = Progress(log, f"settling at batch {size:,}", len(trades), "trades")
    if statements is not None:
        statements.on = True
    for start in range(0, len(trades), size):
        batch = trades[start : start + size]
        started = clock()
        report = await settle(batch)
        took = clock() - started
        batch_ns.append(took)
        timed_ns += took
        wanted = tuple(trade.trade_id for trade in batch)
        if report.settled != wanted or report.already_settled or report.txn_id is None:
            problems.append(
                f"batch {size} from trade {wanted[0]}: settled {len(report.settled)} of"
                f" {len(wanted)}, {len(report.already_settled)} already settled"
            )
        progress.advance(len(batch), elapsed_s=timed_ns / 1e9)
    if statements is not None:
        await asyncio.sleep(0)  # the logger's last callbacks are scheduled, not yet run
        statements.on = False
    return Measurement(size, len(trades), batch_ns, statements), problems


# -- checks --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Snapshot:
    positions: Position
    rows: dict[str, int]  # table -> row count


_COUNTED = (
    "ledger_txns",
    "txn_results",
    "settled_trades",
    "serial_entries",
    "cash_entries",
    "holdings",
    "cash_locks",
    "cer_locks",
)


async def snapshot(database: Database) -> Snapshot:
    """Every account's tonnes by state and cash by bucket, and the row count of each table."""
    async with database.pool.acquire() as conn:
        tonnes = await conn.fetch(
            "SELECT account_id, state, sum(last_serial - first_serial + 1)::bigint FROM holdings"
            " GROUP BY 1, 2"
        )
        cash = await conn.fetch(
            "SELECT account_id, bucket, balance_fen FROM cash_balances WHERE balance_fen <> 0"
        )
        counts = await conn.fetchrow(
            "SELECT " + ", ".join(f"(SELECT count(*) FROM {table})" for table in _COUNTED)
        )
    assert counts is not None
    positions: Position = {(row[0], row[1]): row[2] for row in (*tonnes, *cash)}
    return Snapshot(positions, dict(zip(_COUNTED, counts, strict=True)))


def differences(expected: Position, actual: Position, limit: int = 10) -> list[str]:
    out = []
    for key in sorted(expected.keys() | actual.keys()):
        if expected.get(key, 0) != actual.get(key, 0):
            out.append(
                f"account {key[0]} {key[1]}: expected {expected.get(key, 0):,},"
                f" ledger has {actual.get(key, 0):,}"
            )
    return out[:limit]


async def settle_again(ledger: Ledger, database: Database, stream: Stream) -> tuple[str, list[str]]:
    """Settle the stream's first batch a second time: nothing may change."""
    batch = stream.trades[: stream.batch_size]
    before = await snapshot(database)
    report = await ledger.settle(batch)
    after = await snapshot(database)
    problems = []
    ids = tuple(trade.trade_id for trade in batch)
    if report.settled or report.already_settled != ids or report.txn_id is not None:
        problems.append(
            f"settling {len(ids)} settled trades again settled {len(report.settled)}, reported"
            f" {len(report.already_settled)} already settled, txn {report.txn_id}"
        )
    problems += differences(before.positions, after.positions)
    for table, count in before.rows.items():
        if after.rows[table] != count:
            problems.append(f"settling again changed {table}: {count:,} -> {after.rows[table]:,}")
    tonnes = sum(v for (_, kind), v in after.positions.items() if kind not in _BUCKETS)
    summary = (
        f"{len(report.already_settled):,} trades of batch {stream.batch_size:,} (ids {ids[0]}.."
        f"{ids[-1]}) all already settled; {tonnes:,} t and {len(after.positions)} positions,"
        f" {sum(after.rows.values()):,} rows unchanged"
    )
    return summary, problems


# -- the run -------------------------------------------------------------------------------------


@dataclass(slots=True)
class Report:
    seed: int
    measurements: list[Measurement]
    again: str
    audit: AuditReport | None
    unconserved: list[str]  # positions that differ from what the trades imply
    problems: list[str]  # everything else that failed

    @property
    def ok(self) -> bool:
        return (
            not self.problems and not self.unconserved and self.audit is not None and self.audit.ok
        )


@asynccontextmanager
async def scratch_database(server_url: str, log: Log) -> AsyncIterator[str]:
    """A new empty database on the server, dropped on the way out whatever happened; its URL."""
    name = f"cerx_bench_{os.getpid()}"
    await _admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await _admin(server_url, f'CREATE DATABASE "{name}"')
    log(f"database   {name} created on {_redacted(server_url)}")
    try:
        yield urlunsplit(urlsplit(server_url)._replace(path=f"/{name}"))
    finally:
        await _admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        log(f"database   {name} dropped")


async def _admin(server_url: str, sql: str) -> None:
    conn = await asyncpg.connect(server_url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def _redacted(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@")))


async def run(
    server_url: str,
    trades: int,
    batches: Sequence[int],
    seed: int,
    statements: bool = False,
    log: Log = say,
) -> Report:
    """Set up, measure each batch size, check; log progress through `log`."""
    log(f"machine    {machine()}")
    async with scratch_database(server_url, log) as url:
        database = await Database.open(url)
        try:
            return await _run(database, trades, batches, seed, statements, log)
        finally:
            await database.close()


async def _run(
    database: Database,
    trades: int,
    batches: Sequence[int],
    seed: int,
    statements: bool,
    log: Log,
) -> Report:
    ledger = Ledger(database)
    started = time.perf_counter()
    market = await open_market(ledger)
    trade_ids, order_ids = itertools.count(1), itertools.count(1)
    streams = []
    for size in batches:
        count = min(trades, SINGLE_CAP) if size == 1 else trades
        stream = generate(seed, size, count, market, trade_ids, order_ids)
        streams.append(stream)
        capped = f" (capped at {SINGLE_CAP:,}: a commit per trade)" if count < trades else ""
        log(
            f"stream     batch {size:,}: {count:,} trades{capped}, {len(stream.sells):,} sell and"
            f" {len(stream.buys):,} buy orders, seed {seed}"
        )
    expected: Counter[tuple[int, str]] = Counter()
    await stock(ledger, market, streams, expected, log)
    log(f"set up     in {time.perf_counter() - started:.1f} s")

    measurements: list[Measurement] = []
    problems: list[str] = []
    for stream in streams:
        started = time.perf_counter()
        await lock_orders(ledger, stream, log)
        log(
            f"locked     {len(stream.sells) + len(stream.buys):,} orders for batch"
            f" {stream.batch_size:,} in {time.perf_counter() - started:.1f} s (untimed)"
        )
        clock = StatementClock() if statements else None
        if clock is not None:
            await watch_statements(database, clock)
        measured, found = await measure(ledger, stream, clock, log)
        measurements.append(measured)
        problems += found
        settle_positions(expected, stream.trades)

    largest = max(streams, key=lambda stream: stream.batch_size)
    again, found = await settle_again(ledger, database, largest)
    problems += found
    unconserved = differences(dict(expected), (await snapshot(database)).positions)
    try:
        audit: AuditReport | None = await ledger.check()
    except AuditError as error:
        audit = error.report
        problems += [f"audit: {problem}" for problem in audit.problems]
    return Report(seed, measurements, again, audit, unconserved, problems)


def print_report(report: Report, log: Log = say) -> None:
    log("")
    log(f"results    seed {report.seed}; only the Ledger.settle calls are timed")
    log("      batch     trades   batches   seconds    trades/s  mean ms/batch  max ms/batch")
    for m in report.measurements:
        mean_ms = m.total_ns / len(m.batch_ns) / 1e6
        log(
            f"  {m.batch_size:>9,} {m.trades:>10,} {len(m.batch_ns):>9,} {m.total_ns / 1e9:>9.3f}"
            f" {m.rate:>11,} {mean_ms:>14.3f} {max(m.batch_ns) / 1e6:>13.3f}"
        )
    for m in report.measurements:
        if m.batch_size == GOAL_BATCH:
            met = "met" if m.rate >= GOAL_RATE else "NOT met"
            log(f"goal       {GOAL_RATE:,} trades/s at batch {GOAL_BATCH:,}: {met} ({m.rate:,})")
    for m in report.measurements:
        if m.statements is not None:
            print_statements(m, log)
    log(f"again      {report.again}")
    audit = report.audit
    if audit is not None:
        states = ", ".join(f"{state} {t:,} t" for state, t in sorted(audit.tonnes_by_state.items()))
        log(
            f"audit      {audit.blocks} blocks, {audit.issued_t:,} t issued ({states});"
            f" {_yuan(audit.cash_inside_fen)} yuan inside; {audit.settled_trades:,} settled"
            f" trades, {audit.serial_entries:,} serial and {audit.cash_entries:,} cash entries:"
            f" {'clean' if audit.ok else f'{len(audit.problems)} problems'}"
        )
    if report.unconserved:
        log("conserved  NO: some accounts hold other than the trades imply")
    else:
        log(
            "conserved  every account's tonnes and cash are what issuance, transfers, deposits"
            " and the trades imply; every lock used up"
        )
    if report.ok:
        log("OK")
    else:
        log("FAILED")
        for problem in (report.unconserved + report.problems)[:20]:
            log(f"  {problem}")


def print_statements(m: Measurement, log: Log) -> None:
    assert m.statements is not None
    ns, calls = m.statements.ns, m.statements.calls
    total = m.total_ns
    log(
        f"statements at batch {m.batch_size:,}: {len(m.batch_ns):,} settles,"
        f" {total / 1e9:.3f} s timed (round trips as the client sees them)"
    )
    log("    statement                               calls    total ms    ms/call  share")
    for label, spent in ns.most_common():
        per_call_ms = spent / calls[label] / 1e6
        log(
            f"    {label:<38}{calls[label]:>8,}{spent / 1e6:>12.1f}{per_call_ms:>11.3f}"
            f"{100 * spent // max(total, 1):>6} %"
        )
    rest = total - sum(ns.values())
    log(f"    {'(outside statements: Python, pool)':<46}{rest / 1e6:>12.1f}{'':>11}")


def _yuan(fen: int) -> str:
    sign = "-" if fen < 0 else ""
    yuan, cents = divmod(abs(fen), 100)
    return f"{sign}{yuan:,}.{cents:02d}"


def _batch_sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r}: batch sizes are integers, comma-separated"
        ) from None
    if not sizes or sizes[0] < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: need batch sizes of at least 1")
    return tuple(sizes)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.settlement", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--database-url",
        default=os.environ.get(DATABASE_URL_VARIABLE) or LOCAL_SERVER_URL,
        help=f"server to create the scratch database on (default ${DATABASE_URL_VARIABLE},"
        f" else {LOCAL_SERVER_URL})",
    )
    parser.add_argument(
        "--trades", type=int, default=DEFAULT_TRADES, help="trades per batch size measured"
    )
    parser.add_argument(
        "--batches",
        type=_batch_sizes,
        default=DEFAULT_BATCHES,
        help="batch sizes to measure, comma-separated (default 1,100,1000)",
    )
    parser.add_argument("--seed", type=int, default=1, help="seed of the trade streams")
    parser.add_argument(
        "--statements", action="store_true", help="also time each SQL statement of the settles"
    )
    args = parser.parse_args(argv)
    if args.trades < 1:
        parser.error("need --trades >= 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    report = asyncio.run(
        run(args.database_url, args.trades, args.batches, args.seed, args.statements)
    )
    print_report(report)
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
