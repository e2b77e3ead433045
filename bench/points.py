"""Throughput of carbon-point distributions (and redemptions) in batches, on PostgreSQL.

Run as `python -m bench.points [--database-url URL] [--users 100000] [--batch 10000]
[--batches 30] [--statements]`.

1. A scratch database (`cerx_bench_<pid>`, dropped at the end) on the server `--database-url`
   names (else `$CERX_DATABASE_URL`, else the local server).
2. An aggregator with a project, `--users` authorised users, a points rule, and enough tonnes
   converted to points for the whole run; every batch of both phases drawn (users at random,
   seeded) before the clock starts. All untimed.
3. `--batches` distribution batches of `--batch` items each, every item one user's points, one
   after another as an aggregator would send them. Before each, the floor: the same items
   written by a bare INSERT (no index, no lookup, no balance) into a scratch table in one durable
   transaction, sent the way the ledger sends them — the least any way of recording a batch
   costs on this server, measured beside each batch so that both see the same load. Then as
   many redemption batches of a tenth of the size. Each batch is timed on its own: a phase's rate
   is its items over the sum of its batch times, with the min and median batch beside it.
4. Check: each user's balance equals what the generator gave it less what it redeemed; the
   pool's identity holds; the ledger's audit is clean.

The machine is shared, so the load average is printed before and after the timed phases; a run
under load is slower throughout, which the ratio to the floor shows. `--statements` also times
each SQL statement of the timed batches (asyncpg's query logger, which adds a little to them).
Exits 1 if a check fails.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import random
import statistics
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass

from bench.matching import Log, machine, say
from bench.settlement import (
    LOCAL_SERVER_URL,
    StatementClock,
    scratch_database,
    watch_statements,
)
from settlement.arrays import bigint_array, text_array
from settlement.database import DATABASE_URL_VARIABLE, Database
from settlement.ledger import Ledger
from settlement.points import DECLARATION, Distribution, Redemption
from settlement.points_ledger import PointsLedger
from settlement.values import Methodology, Project, Role

GOAL = 100_000  # distributions a second at batch 10,000 on this 2-core machine
ON = dt.date(2026, 1, 1)
POINTS_PER_T = 1_000


@dataclass(frozen=True, slots=True)
class Phase:
    """The time of each batch of a phase."""

    items: int
    batch_s: list[float]

    @property
    def seconds(self) -> float:
        return sum(self.batch_s)

    @property
    def rate(self) -> float:
        return self.items / self.seconds

    def summary(self) -> str:
        median_s = statistics.median(self.batch_s)
        per_batch = self.items / len(self.batch_s)
        return (
            f"batch min {min(self.batch_s) * 1e3:.1f} ms, median {median_s * 1e3:.1f} ms"
            f" ({per_batch / median_s:,.0f}/s at the median)"
        )


@dataclass(frozen=True, slots=True)
class Plan:
    """Every batch of the run, drawn before any is timed, and what each user holds at the end."""

    distributions: list[list[Distribution]]
    redemptions: list[list[Redemption]]
    held: Counter[str]


async def run(
    server_url: str, users: int, batch: int, batches: int, statements: bool = False
) -> int:
    say(f"machine    {machine()}")
    async with scratch_database(server_url, say) as url:
        database = await Database.open(url, min_size=1, max_size=4)
        try:
            return await _measure(Ledger(database), users, batch, batches, statements)
        finally:
            await database.close()


async def _measure(ledger: Ledger, users: int, batch: int, batches: int, statements: bool) -> int:
    points = PointsLedger(ledger)
    regulator = (await ledger.open_account("b/r", "regulator", [Role.REGULATOR])).account_id
    operator = (await ledger.open_account("b/o", "operator", [Role.OPERATOR])).account_id
    aggregator = (
        await ledger.open_account("b/a", "aggregator", [Role.AGGREGATOR, Role.PARTICIPANT])
    ).account_id
    await points.register_aggregator("b/reg", regulator, aggregator, DECLARATION)
    await ledger.register_methodology("b/m", regulator, Methodology("BIKE", "Cycling", "transport"))
    await ledger.register_project("b/p", regulator, Project("P1", aggregator, "BIKE", "Nanshan"))
    refs = [f"user-{n:07d}" for n in range(users)]
    plan = _plan(refs, batch, batches)
    given = sum(item.points for items in plan.distributions for item in items)
    needed_t = -(-given // POINTS_PER_T)
    await ledger.issue("b/i", regulator, "P1", needed_t, dt.date(2025, 1, 1), dt.date(2025, 3, 31))
    rule = (await points.publish_rule("b/rule", regulator, POINTS_PER_T, ON)).version
    for start in range(0, users, 50_000):
        await points.authorise(f"b/auth/{start}", aggregator, refs[start : start + 50_000], True)
    await points.issue("b/issue", operator, aggregator, "P1", needed_t, ON)
    async with ledger.database.pool.acquire() as conn:
        # the statistics autovacuum would soon gather about the aggregator's users
        await conn.execute("ANALYZE point_users")
        await conn.execute("CREATE TABLE bench_floor (user_ref text, points bigint)")
    issued = needed_t * POINTS_PER_T
    say(f"set-up     {users:,} users, {needed_t:,} t converted to {issued:,} points")

    clock = StatementClock() if statements else None
    if clock is not None:
        await watch_statements(ledger.database, clock)
        clock.on = True
    say(f"load       {_load()} before the timed phases")
    floor_s: list[float] = []
    distribute_s: list[float] = []
    for number, items in enumerate(plan.distributions):
        floor_s.append(await _timed(_floor(ledger.database, items)))
        distribute_s.append(await _timed(points.distribute(aggregator, f"d{number}", rule, items)))
    redeem_s = [
        await _timed(points.redeem(aggregator, f"r{number}", redeemed))
        for number, redeemed in enumerate(plan.redemptions)
    ]
    say(f"load       {_load()} after")
    if clock is not None:
        await asyncio.sleep(0)  # the logger's last callbacks are scheduled, not yet run
        clock.on = False
    _report(
        Phase(batches * batch, distribute_s),
        Phase(batches * batch, floor_s),
        Phase(sum(map(len, plan.redemptions)), redeem_s),
        batch,
    )
    if clock is not None:
        _print_statements(clock)
    return await _check(ledger, points, aggregator, plan.held)


def _plan(refs: Sequence[str], batch: int, batches: int) -> Plan:
    rng = random.Random(7)
    give = [[rng.randint(1, 20) for _ in range(batch)] for _ in range(batches)]
    held: Counter[str] = Counter()
    distributions = []
    for amounts in give:
        items = [Distribution(refs[rng.randrange(len(refs))], amount) for amount in amounts]
        for item in items:
            held[item.user_ref] += item.points
        distributions.append(items)
    small = max(batch // 10, 1)
    references = iter(range(10**9))
    redemptions = []
    for _ in range(batches):
        redeemers = [ref for ref, points in held.items() if points]
        chosen = rng.sample(redeemers, min(small, len(redeemers)))
        redeemed = [Redemption(ref, 1, f"m{next(references)}") for ref in chosen]
        for ref in chosen:
            held[ref] -= 1
        redemptions.append(redeemed)
    return Plan(distributions, redemptions, held)


async def _timed(action: Awaitable[object]) -> float:
    """Seconds `action` takes; a coroutine does nothing before it is awaited."""
    started = time.perf_counter()
    await action
    return time.perf_counter() - started


async def _floor(database: Database, items: Sequence[Distribution]) -> None:
    """The batch's items written with nothing else: no lookup, no balance, no index."""
    refs = text_array([item.user_ref for item in items])
    amounts = bigint_array([item.points for item in items])
    async with database.pool.acquire() as conn, conn.transaction():
        await conn.execute(
            "INSERT INTO bench_floor SELECT * FROM unnest($1::text::text[], $2::text::bigint[])",
            refs,
            amounts,
        )


def _report(distribute: Phase, floor: Phase, redeem: Phase, batch: int) -> None:
    met = "met" if distribute.rate >= GOAL else "NOT met"
    say(
        f"distribute {distribute.items:>9,} items in {distribute.seconds:6.2f} s ="
        f" {distribute.rate:>9,.0f}/s  (batches of {batch:,}; goal {GOAL:,}/s: {met})"
    )
    say(f"           {distribute.summary()}")
    say(
        f"floor      {floor.items:>9,} items in {floor.seconds:6.2f} s = {floor.rate:>9,.0f}/s"
        "  (each batch's items by a bare INSERT, one durable commit)"
    )
    ratio = statistics.median(distribute.batch_s) / statistics.median(floor.batch_s)
    say(f"           {floor.summary()}; distribute / floor = {ratio:.1f}× (medians)")
    say(
        f"redeem     {redeem.items:>9,} items in {redeem.seconds:6.2f} s = {redeem.rate:>9,.0f}/s"
        f"  (batches of {redeem.items // len(redeem.batch_s):,})"
    )
    say(f"           {redeem.summary()}")


def _print_statements(clock: StatementClock, log: Log = say) -> None:
    total = sum(clock.ns.values())
    log("statements of the timed batches, as the client sees them (floor included):")
    log("    statement                               calls    total ms    ms/call  share")
    for label, spent in clock.ns.most_common():
        calls = clock.calls[label]
        log(
            f"    {label:<38}{calls:>8,}{spent / 1e6:>12.1f}{spent / calls / 1e6:>11.3f}"
            f"{100 * spent // max(total, 1):>6} %"
        )


async def _check(ledger: Ledger, points: PointsLedger, aggregator: int, held: Counter[str]) -> int:
    problems = []
    for ref in random.Random(8).sample(list(held), min(500, len(held))):
        if await points.balance(aggregator, ref) != held[ref]:
            problems.append(f"{ref}: balance differs from {held[ref]}")
    (pool,) = await points.pools(aggregator)
    if pool.issued != pool.undistributed + pool.held_by_users + pool.cancelled:
        problems.append(f"pool identity broken: {pool}")
    audit = await ledger.audit()
    problems += audit.problems
    for problem in problems:
        say(f"problem    {problem}")
    say("checks     " + ("OK: balances, pool identity, audit" if not problems else "FAILED"))
    return 1 if problems else 0


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"average {one:.2f} {five:.2f} {fifteen:.2f} (1, 5, 15 min)"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.points", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--database-url",
        default=os.environ.get(DATABASE_URL_VARIABLE, LOCAL_SERVER_URL),
        help=f"the PostgreSQL server (${DATABASE_URL_VARIABLE}, else {LOCAL_SERVER_URL})",
    )
    parser.add_argument("--users", type=int, default=100_000, help="users (100,000)")
    parser.add_argument("--batch", type=int, default=10_000, help="items a batch (10,000)")
    parser.add_argument("--batches", type=int, default=30, help="distribution batches (30)")
    parser.add_argument(
        "--statements", action="store_true", help="time each SQL statement of the timed batches"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    return asyncio.run(
        run(args.database_url, args.users, args.batch, args.batches, args.statements)
    )


if __name__ == "__main__":
    sys.exit(main())
