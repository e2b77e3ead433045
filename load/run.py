"""A load run: realistic users against a live exchange for a bounded time, then the proof that
nothing they were told was lost.

    python -m load.run [--users 20] [--duration 60s] [--seed 1]
                       [--database-url URL | --embedded | --url URL [--operator-key K:S ...]]

1. The exchange: by default `cerx serve --demo` started here on a scratch database of the
   PostgreSQL server `--database-url` names (else `$CERX_DATABASE_URL`, else the local server),
   dropped at the end; with `--embedded`, on the embedded PostgreSQL in a temporary directory;
   with `--url`, a server already running there, set up with the operator's and regulator's keys
   (`--operator-key`, `--regulator-key` or `$CERX_LOAD_OPERATOR_KEY`,
   `$CERX_LOAD_REGULATOR_KEY`, as KEY_ID:SECRET_HEX) and checked through `--database-url`, its
   database, if given.
2. The set-up, over REST (`load.provision`): accounts, keys, cash, CERs, offset rules.
3. The load: locust users in a process of their own (`load.swarm`): about 60 % WebSocket traders,
   20 % REST readers, 10 % compliance entities surrendering, 10 % organisations retiring and
   applying for certificates. A progress line every few seconds.
4. The figures: requests per second, latency p50/p95/p99 by request kind, refusals by code.
5. The checks (`load.verify`), with the load stopped: every acknowledged order, cancel and amend
   is in the journal, once; every message a client heard is one the journal makes again; the
   served books equal a replay of the journal; every trade is settled exactly once; the audit
   holds; every acknowledged surrender, retirement and application is in the ledger. A refusal
   the workload should never meet (an internal error, a lost connection) fails the run too.

Exits 1 if a check fails, 0 otherwise. Prices, quantities and balances are integers throughout;
floats appear only in timings.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import aiohttp

from bench.matching import say
from load.cast import Cast, save
from load.driver import swarm
from load.provision import Counts, provision
from load.report import SwarmReport, codes, print_report
from load.rest import Rest
from load.target import Target, target
from load.verify import check_everything

# what the workload is told no to in a healthy run: races it cannot avoid (a cancel or an amend
# of an order that just filled) and limits it may reach (cash, tonnes, a settlement lag)
EXPECTED = frozenset(
    {
        "INSUFFICIENT_CASH",
        "INSUFFICIENT_HOLDINGS",
        "ORDER_MUST_EXIST",
        "AMEND_QUANTITY_MUST_EXCEED_FILLED",
        "AMEND_MUST_CHANGE_ORDER",
        "SETTLEMENT_BEHIND",
    }
)


def seconds(text: str) -> float:
    """`90`, `90s`, `2m` or `1h` in seconds."""
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([smh]?)", text.strip())
    if m is None:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (such as 60s or 2m)")
    return float(m[1]) * {"": 1, "s": 1, "m": 60, "h": 3_600}[m[2]]


async def set_up(found: Target, counts: Counts, seed: int, folder: Path) -> tuple[Cast, Path]:
    """Set the market up for `counts` users; the cast, and the file it is written to."""
    async with aiohttp.ClientSession() as http:
        cast = await provision(
            Rest(http, found.http_url), found.operator, found.regulator, counts, seed, say
        )
    path = folder / "cast.json"
    save(cast, path)
    return cast, path


async def server_figures(found: Target) -> None:
    """What the server says of its journal and settlement, from its metrics."""
    async with aiohttp.ClientSession() as http:
        m = await Rest(http, found.http_url).metrics()
    commits = m.get("cerx_journal_group_entries_count", 0)
    entries = m.get("cerx_journal_group_entries_sum", 0)
    batches = m.get("cerx_settlement_batch_seconds_count", 0)
    say(
        f"server     {entries:,.0f} journal entries in {commits:,.0f} group commits"
        f" ({entries / max(commits, 1):.1f} each); {batches:,.0f} settlement batches;"
        f" settlement lag now {m.get('cerx_settlement_lag_items', 0):,.0f}"
    )


def refusal_problems(report: SwarmReport, expected: frozenset[str]) -> list[str]:
    unexpected = {code: n for code, n in codes(report).items() if code not in expected}
    problems = [f"refusals the workload should not meet: {unexpected}"] if unexpected else []
    return problems + [f"a user raised: {text[:2_000]}" for text in report.exceptions]


def print_checks(results: list[tuple[str, list[str]]], log: Callable[[str], None] = say) -> bool:
    """Print each check and its problems; whether all held."""
    for name, problems in results:
        log(f"check      {name:<52} {'ok' if not problems else 'FAILED'}")
        for problem in problems[:20]:
            log(f"             {problem[:1_000]}")
    return all(not problems for _, problems in results)


async def run(args: argparse.Namespace) -> int:
    counts = Counts.of(args.users)
    say(
        f"load       {counts.total} users ({counts.traders} traders, {counts.readers} readers,"
        f" {counts.compliance} compliance entities, {counts.retirees} retirees)"
        f" for {args.duration:g} s, seed {args.seed}"
    )
    results: list[tuple[str, list[str]]] = []
    async with target(
        args.url, args.database_url, args.embedded, args.operator_key, args.regulator_key, say
    ) as found:
        say(f"exchange   {found.ws_url}")
        with tempfile.TemporaryDirectory(prefix="cerx-load-") as folder:
            _, cast_path = await set_up(found, counts, args.seed, Path(folder))
            async with swarm(cast_path, counts, say, args.every) as users:
                await asyncio.sleep(args.duration)
                report = await users.stop()
        print_report(report, say)
        await server_figures(found)
        results.append(
            ("only the refusals a healthy run meets", refusal_problems(report, EXPECTED))
        )
        if found.database_url is None:
            say("checks     of the journal and the ledger skipped: no --database-url to read")
        else:
            results += await check_everything(found.ws_url, found.database_url, report.heard, say)
        if found.server is not None:
            status = await found.server.stop()
            output = found.server.output
            trouble = [
                line for line in output.splitlines() if "Traceback" in line or "ERROR" in line
            ]
            results.append(
                (
                    "the server stops cleanly, having logged no error",
                    ([f"exit status {status}"] if status else []) + trouble[:10],
                )
            )
    ok = print_checks(results)
    say("OK" if ok else "FAILED")
    return 0 if ok else 1


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m load.run", description=(__doc__ or "").split("\n")[0]
    )
    parser.add_argument("--users", type=int, default=20, help="users at once (20)")
    parser.add_argument("--duration", type=seconds, default=60.0, help="how long (60s)")
    parser.add_argument("--seed", type=int, default=1, help="the workload's seed (1)")
    parser.add_argument("--every", type=float, default=5.0, help="seconds between progress lines")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--url", help="load the server running here instead of starting one")
    where.add_argument(
        "--embedded", action="store_true", help="start the server on an embedded PostgreSQL"
    )
    parser.add_argument(
        "--database-url",
        help="the PostgreSQL server for a scratch database; with --url: that server's database",
    )
    parser.add_argument("--operator-key", help="with --url: the operator's KEY_ID:SECRET_HEX")
    parser.add_argument("--regulator-key", help="with --url: the regulator's KEY_ID:SECRET_HEX")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    return asyncio.run(run(parse(argv)))


if __name__ == "__main__":
    sys.exit(main())
