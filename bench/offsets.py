"""Throughput of surrenders and retirements on PostgreSQL, with many at once.

Run as `python -m bench.offsets [--database-url URL] [--entities 32] [--each 20]
[--concurrency 16]`.

1. A scratch database (`cerx_bench_<pid>`, dropped at the end) on the server `--database-url`
   names (else `$CERX_DATABASE_URL`, else the local server).
2. A regulator, a participant with a project issued enough 2025 CERs, `--entities` compliance
   entities each given `2 × --each` tonnes and verified emissions large enough that no cap binds,
   and rules for a scratch year whose window is open today.
3. Surrenders: every entity surrenders 1 t `--each` times; `--concurrency` of them run at once
   (each on its own pooled connection). Then retirements: the same, retiring 1 t with a
   beneficiary and a purpose. Each phase is timed from first to last.
4. Check: every operation succeeded; the year has exactly `entities × each` tonnes surrendered;
   each entity holds `each` surrendered and `each` retired tonnes; the ledger's audit is clean.

Surrenders of one year take turns on the year's row lock (that is what keeps the caps true), so
their rate is bounded by one transaction at a time; retirements do not share a lock.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import itertools
import os
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from bench.matching import Log, machine, say
from bench.settlement import LOCAL_SERVER_URL, scratch_database
from offsets.registry import OffsetRegistry
from offsets.rules import OffsetRules
from settlement.database import DATABASE_URL_VARIABLE, Database
from settlement.ledger import Ledger
from settlement.values import ByQuantity, Methodology, Project, Role, TonneState

YEAR = 2099


@dataclass(frozen=True, slots=True)
class Phase:
    name: str
    operations: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.operations / self.seconds if self.seconds else 0.0


@dataclass(slots=True)
class Report:
    phases: list[Phase]
    problems: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems


async def _timed(
    name: str, jobs: list[Callable[[], Awaitable[object]]], concurrency: int, log: Log
) -> Phase:
    gate = asyncio.Semaphore(concurrency)

    async def one(job: Callable[[], Awaitable[object]]) -> None:
        async with gate:
            await job()

    started = time.perf_counter()
    await asyncio.gather(*(one(job) for job in jobs))
    phase = Phase(name, len(jobs), time.perf_counter() - started)
    log(f"{name:<11}{phase.operations:>8,} in {phase.seconds:7.3f} s = {phase.rate:>9,.0f}/s")
    return phase


async def run(
    server_url: str, entities: int, each: int, concurrency: int, log: Log = say
) -> Report:
    log(f"machine    {machine()}")
    async with scratch_database(server_url, log) as url:
        database = await Database.open(url, min_size=2, max_size=concurrency + 2)
        try:
            return await _measure(Ledger(database), entities, each, concurrency, log)
        finally:
            await database.close()


async def _measure(ledger: Ledger, entities: int, each: int, concurrency: int, log: Log) -> Report:
    registry = OffsetRegistry(ledger)
    keys = (f"bench/{n}" for n in itertools.count())
    regulator = (await ledger.open_account(next(keys), "regulator", [Role.REGULATOR])).account_id
    owner = (await ledger.open_account(next(keys), "owner", [Role.PARTICIPANT])).account_id
    await ledger.register_methodology(next(keys), regulator, Methodology("PV01", "PV", "energy"))
    await ledger.register_project(next(keys), regulator, Project("P0001", owner, "PV01", "Futian"))
    await ledger.issue(
        next(keys),
        regulator,
        "P0001",
        entities * each * 2,
        dt.date(2025, 1, 1),
        dt.date(2025, 3, 31),
    )
    today = dt.date.today()
    rules = OffsetRules(
        YEAR,
        today - dt.timedelta(days=1),
        today - dt.timedelta(days=1),
        today + dt.timedelta(days=1),
        total_cap_t=entities * each,
        entity_cap_bp=10_000,
    )
    await registry.publish_rules(next(keys), regulator, rules)
    accounts = []
    for n in range(entities):
        entity = await ledger.open_account(next(keys), f"entity-{n}", [Role.COMPLIANCE_ENTITY])
        await ledger.transfer(next(keys), owner, entity.account_id, ByQuantity(2 * each))
        await registry.record_emissions(next(keys), regulator, YEAR, entity.account_id, 10**9)
        accounts.append(entity.account_id)
    log(f"market     {entities} entities × {2 * each} t, {concurrency} at once")

    on = today

    def surrender(account: int, key: str) -> Callable[[], Awaitable[object]]:
        return lambda: registry.surrender(key, account, YEAR, ByQuantity(1), on)

    def retire(account: int, key: str) -> Callable[[], Awaitable[object]]:
        return lambda: registry.retire(key, account, ByQuantity(1), "beneficiary", "bench")

    surrenders = [surrender(a, next(keys)) for a in accounts for _ in range(each)]
    retirements = [retire(a, next(keys)) for a in accounts for _ in range(each)]
    phases = [
        await _timed("surrenders", surrenders, concurrency, log),
        await _timed("retirements", retirements, concurrency, log),
    ]
    problems = []
    position = await registry.position(YEAR, accounts[0], on)
    if position.year_surrendered_t != entities * each:
        problems.append(f"the year has {position.year_surrendered_t} t surrendered")
    for account in accounts:
        states: dict[TonneState, int] = {}
        for holding in await ledger.holdings(account):
            states[holding.state] = states.get(holding.state, 0) + holding.quantity_t
        if states != {TonneState.SURRENDERED: each, TonneState.RETIRED: each}:
            problems.append(f"entity {account} ends with {states}")
    audit = await ledger.audit()
    if not audit.ok:
        problems.append(f"audit: {audit}")
    log(
        "checks     "
        + ("OK: every tonne where it should be; audit clean" if not problems else "FAILED")
    )
    return Report(phases, problems)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.offsets", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--database-url",
        default=os.environ.get(DATABASE_URL_VARIABLE, LOCAL_SERVER_URL),
        help=f"the PostgreSQL server (${DATABASE_URL_VARIABLE}, else {LOCAL_SERVER_URL})",
    )
    parser.add_argument("--entities", type=int, default=32, help="compliance entities (32)")
    parser.add_argument(
        "--each", type=int, default=20, help="operations of each kind per entity (20)"
    )
    parser.add_argument("--concurrency", type=int, default=16, help="operations at once (16)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    report = asyncio.run(run(args.database_url, args.entities, args.each, args.concurrency))
    for problem in report.problems:
        say(f"problem    {problem}")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
