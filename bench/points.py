"""Throughput of carbon-point distributions (and redemptions) in batches, on PostgreSQL.

Run as `python -m bench.points [--database-url URL] [--users 100000] [--batch 10000]
[--batches 30]`.

1. A scratch database (`cerx_bench_<pid>`, dropped at the end) on the server `--database-url`
   names (else `$CERX_DATABASE_URL`, else the local server).
2. An aggregator with a project, `--users` authorised users, a points rule, and enough tonnes
   converted to points for the whole run (untimed).
3. `--batches` distribution batches of `--batch` items each, every item one user's points (users
   drawn at random, seeded), one after another as an aggregator would send them; then as many
   redemption batches of a tenth of the size. Each phase is timed from its first batch to its
   last.
4. Check: each user's balance equals what the generator gave it less what it redeemed; the
   pool's identity holds; the ledger's audit is clean.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import random
import sys
import time
from collections import Counter
from collections.abc import Sequence

from bench.matching import say
from bench.settlement import LOCAL_SERVER_URL, scratch_database
from settlement.database import DATABASE_URL_VARIABLE, Database
from settlement.ledger import Ledger
from settlement.points import DECLARATION, Distribution, Redemption
from settlement.points_ledger import PointsLedger
from settlement.values import Methodology, Project, Role

GOAL = 100_000  # distributions a second at batch 10,000 on this 2-core machine
ON = dt.date(2026, 1, 1)
POINTS_PER_T = 1_000


async def run(server_url: str, users: int, batch: int, batches: int) -> int:
    async with scratch_database(server_url, say) as url:
        database = await Database.open(url, min_size=1, max_size=4)
        try:
            return await _measure(Ledger(database), users, batch, batches)
        finally:
            await database.close()


async def _measure(ledger: Ledger, users: int, batch: int, batches: int) -> int:
    points = PointsLedger(ledger)
    regulator = (await ledger.open_account("b/r", "regulator", [Role.REGULATOR])).account_id
    operator = (await ledger.open_account("b/o", "operator", [Role.OPERATOR])).account_id
    aggregator = (
        await ledger.open_account("b/a", "aggregator", [Role.AGGREGATOR, Role.PARTICIPANT])
    ).account_id
    await points.register_aggregator("b/reg", regulator, aggregator, DECLARATION)
    await ledger.register_methodology("b/m", regulator, Methodology("BIKE", "Cycling", "transport"))
    await ledger.register_project("b/p", regulator, Project("P1", aggregator, "BIKE", "Nanshan"))
    rng = random.Random(7)
    give = [[rng.randint(1, 20) for _ in range(batch)] for _ in range(batches)]
    needed_t = -(-sum(map(sum, give)) // POINTS_PER_T)
    await ledger.issue("b/i", regulator, "P1", needed_t, dt.date(2025, 1, 1), dt.date(2025, 3, 31))
    rule = (await points.publish_rule("b/rule", regulator, POINTS_PER_T, ON)).version
    refs = [f"user-{n:07d}" for n in range(users)]
    for start in range(0, users, 50_000):
        await points.authorise(f"b/auth/{start}", aggregator, refs[start : start + 50_000], True)
    await points.issue("b/issue", operator, aggregator, "P1", needed_t, ON)
    async with ledger.database.pool.acquire() as conn:
        # as autovacuum would soon: a planner that thinks the aggregator has a hundred users
        # hashes all of them for each batch instead of looking each one up
        await conn.execute("ANALYZE point_users")
    issued = needed_t * POINTS_PER_T
    say(f"set-up     {users:,} users, {needed_t:,} t converted to {issued:,} points")

    held: Counter[str] = Counter()
    plans = []
    for amounts in give:
        items = [Distribution(refs[rng.randrange(users)], amount) for amount in amounts]
        for item in items:
            held[item.user_ref] += item.points
        plans.append(items)
    started = time.perf_counter()
    for number, items in enumerate(plans):
        await points.distribute(aggregator, f"d{number}", rule, items)
    distributed = time.perf_counter() - started
    rate = batches * batch / distributed
    say(
        f"distribute {batches * batch:>9,} items in {distributed:6.2f} s = {rate:>9,.0f}/s"
        f"  (batches of {batch:,}; goal {GOAL:,}/s: {'met' if rate >= GOAL else 'NOT met'})"
    )

    small = max(batch // 10, 1)
    references = iter(range(10**9))
    started = time.perf_counter()
    redeemed = 0
    for number in range(batches):
        redeemers = [ref for ref, points in held.items() if points]
        chosen = rng.sample(redeemers, min(small, len(redeemers)))
        items = [Redemption(ref, 1, f"m{next(references)}") for ref in chosen]
        for item in items:
            held[item.user_ref] -= 1
        await points.redeem(aggregator, f"r{number}", items)
        redeemed += len(items)
    redeeming = time.perf_counter() - started
    say(f"redeem     {redeemed:>9,} items in {redeeming:6.2f} s = {redeemed / redeeming:>9,.0f}/s")

    problems = []
    for ref in rng.sample(list(held), min(500, len(held))):
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
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    return asyncio.run(run(args.database_url, args.users, args.batch, args.batches))


if __name__ == "__main__":
    sys.exit(main())
