"""A crash campaign: the load of `load.run` against a server that is killed with SIGKILL again
and again at moments chosen to hurt, and whose PostgreSQL is restarted under it once.

    python -m load.crash [--rounds 6] [--seed 1] [--users 12] [--no-postgres-restart]

Everything runs on a private PostgreSQL started here (`initdb`, `pg_ctl`, a temporary
directory, a free port), since restarting it must not touch anyone else's databases. The set-up
and the users are `load.run`'s; the users stay up for the whole campaign, so every kill drops
their connections: traders reconnect, send again the orders whose replies they never had (same
client order ids), resubscribe and check that each book's numbers carry on; REST writers send
again under the same idempotency keys.

Each round aims its kill (the seed picks the moment within the aim):

- `journal`: right after a burst of orders is acknowledged, with more on the wire: group
  commits of the journal under way;
- `settlement`: while the settlement lag is up, or right after trades: ledger batches under way;
- `auction`: the operator starts a call auction over REST, orders rest in it, the operator sends
  the uncross and the server dies under it; after the restart the operator sends the uncross
  again under the same idempotency key, if the book is still in its auction.

The server is started again on the same port and the database; once the users are back the
load is paused and the round is checked (`load.verify`): every acknowledged order, cancel and
amend is in the journal once, every message a client heard is one the journal makes again, the
served books equal a replay of the journal, every trade is settled exactly once, the audit
holds, acknowledged surrenders and retirements are in the ledger, and no client saw a book's
numbers go back. Then the load resumes.

The PostgreSQL round restarts the database server (a fast restart: every session ended) under
load: the exchange must carry on — the journal refusing orders with JOURNAL_UNAVAILABLE while
the database is away, settlement retrying — or stop, and then start again cleanly; never lose or
corrupt anything. It is checked as the kill rounds are.

The campaign prints a table of the rounds and exits 1 if any round failed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import random
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from bench.exchange import free_port
from bench.matching import say
from load import postgres
from load.driver import Swarm, swarm
from load.process import ServerCommand, ServerProcess, start
from load.provision import Counts
from load.report import SwarmReport, codes, print_report
from load.rest import Rest, RestRefusedError
from load.run import print_checks, refusal_problems, set_up
from load.target import Target, started
from load.verify import check_everything

KINDS = ("journal", "settlement", "auction")
POLL_S = 0.01
BURST_POLLS = 20  # a burst is counted over this many polls
LAG_MARK = 5  # the settlement lag a round waits for, times its seeded 1 to 3
AIM_S = 10.0  # the longest a round waits for its moment before it kills anyway
BACK_S = 30.0  # the longest the users may take to come back after a restart
SURVIVE_S = 30.0  # the longest the exchange may take to serve orders again after PostgreSQL
# what a campaign's workload may be told besides a healthy run's: what a kill, an auction and
# a database restart cause, each refused cleanly
EXPECTED = frozenset(
    {
        "INSUFFICIENT_CASH",
        "INSUFFICIENT_HOLDINGS",
        "ORDER_MUST_EXIST",
        "AMEND_QUANTITY_MUST_EXCEED_FILLED",
        "AMEND_MUST_CHANGE_ORDER",
        "SETTLEMENT_BEHIND",
        "CONNECTION_LOST",
        "ORDER_MUST_REST_DURING_AUCTION",
        "JOURNAL_UNAVAILABLE",
        "DATABASE_UNAVAILABLE",
        "EXCHANGE_NOT_READY",
    }
)
ACKS = 'cerx_requests_total{op="new_order",outcome="ok"}'
TRADES = 'cerx_book_events_total{kind="trade"}'
LAG = "cerx_settlement_lag_items"
POOL_RECONNECTING = "Failed to restore the pool connection floor"


@dataclass
class Outcome:
    number: int
    kind: str
    moment: str = ""  # what was under way when it struck
    back_s: float = 0.0  # from the kill (or restart) to the users trading again
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


class Campaign:
    def __init__(
        self,
        found: Target,
        users: Swarm,
        rest: Rest,
        rng: random.Random,
        symbol: str,
        database: postgres.PrivatePostgres | None = None,
    ) -> None:
        assert found.server is not None and found.command is not None
        self.found = found
        self.server: ServerProcess = found.server
        self.command: ServerCommand = found.command
        self.users = users
        self.rest = rest
        self.rng = rng
        self.symbol = symbol
        self.database = database
        self.auctions = 0
        self.reported: set[str] = set()  # problems told in an earlier round
        self.read = 0  # lines of the server's output looked at
        self.logged: list[str] = []  # troubles a killed server logged

    async def metric(self, name: str) -> float:
        try:
            return (await self.rest.metrics()).get(name, 0.0)
        except (aiohttp.ClientError, OSError):
            return 0.0

    async def aim(self, kind: str) -> str:
        """Wait for the kind's moment, kill the server in it; what was under way."""
        await asyncio.sleep(self.rng.uniform(0.5, 2.0))  # the load settles in
        deadline = time.monotonic() + AIM_S
        if kind == "auction":
            return await self.kill_in_auction()
        burst = self.rng.randint(1, 3)
        recent: deque[float] = deque(maxlen=BURST_POLLS)  # acks or trades at each poll
        recent.append(await self.metric(ACKS if kind == "journal" else TRADES))
        while time.monotonic() < deadline:
            await asyncio.sleep(POLL_S)
            samples = await self.rest.metrics()
            if kind == "journal":
                acks = samples.get(ACKS, 0.0)
                # a burst acknowledged, and orders still coming: group commits under way
                if acks - recent[0] >= burst and acks > recent[-1]:
                    await self.kill()
                    return f"{acks - recent[0]:.0f} orders acknowledged in the last polls"
                recent.append(acks)
            else:
                lag, trades = samples.get(LAG, 0.0), samples.get(TRADES, 0.0)
                # the lag up to the seeded mark; past half the time, any lag or fresh trades
                patient = time.monotonic() < deadline - AIM_S / 2
                if lag >= burst * LAG_MARK or (not patient and (lag or trades > recent[-1])):
                    await self.kill()
                    made = trades - recent[-1]
                    return f"settlement lag {lag:.0f} items, {made:.0f} trades just made"
                recent.append(trades)
        await self.kill()
        return f"no {kind} moment within {AIM_S:g} s: killed anyway"

    async def kill_in_auction(self) -> str:
        self.auctions += 1
        operator = self.found.operator
        book = f"/api/v1/operator/instruments/{self.symbol}/auction"
        await self.rest.post(f"{book}/start", operator, None, f"crash-start-{self.auctions}")
        await asyncio.sleep(self.rng.uniform(0.3, 1.5))  # orders rest in the auction
        uncross = asyncio.create_task(
            self.rest.post(f"{book}/uncross", operator, None, self.uncross_key)
        )
        await asyncio.sleep(self.rng.uniform(0.0, 0.015))
        await self.kill()
        with contextlib.suppress(aiohttp.ClientError, OSError, RestRefusedError):
            await uncross
            return "the uncross answered before the kill"
        return "the uncross sent, no answer before the kill"

    @property
    def uncross_key(self) -> str:
        return f"crash-uncross-{self.auctions}"

    async def kill(self) -> None:
        await self.server.kill()

    async def restart(self) -> None:
        self.logged += troubles(self.server.lines[self.read :])
        self.server = await start(self.command)
        self.found.server = self.server
        self.read = 0

    def server_troubles(self) -> list[str]:
        """What the server logged that it should not have, since last asked."""
        found = self.logged + troubles(self.server.lines[self.read :])
        self.read, self.logged = len(self.server.lines), []
        return found

    async def back(self, since: float) -> float:
        """Wait until orders are acknowledged again; the seconds since `since`."""
        deadline = time.monotonic() + BACK_S
        before = await self.metric(ACKS)
        while time.monotonic() < deadline:
            await asyncio.sleep(0.05)
            if await self.metric(ACKS) > before:
                return time.monotonic() - since
        raise TimeoutError(f"no order acknowledged within {BACK_S:g} s")

    async def finish_auction(self) -> list[str]:
        """Uncross an auction the kill left open, as the operator would on coming back."""
        market = await self.rest.get("/api/v1/market")
        status = next(view["status"] for view in market if view["symbol"] == self.symbol)
        if status == "auction":
            book = f"/api/v1/operator/instruments/{self.symbol}/auction"
            await self.rest.post(f"{book}/uncross", self.found.operator, None, self.uncross_key)
        market = await self.rest.get("/api/v1/market")
        status = next(view["status"] for view in market if view["symbol"] == self.symbol)
        return [] if status == "open" else [f"the book is {status} after the uncross"]

    async def check(self, outcome: Outcome) -> SwarmReport:
        """Pause the users, check everything, resume; the users' report so far."""
        if not await self.users.pause():
            outcome.problems.append("the users did not pause")
        report = await self.users.report()
        assert self.found.database_url is not None
        results = await check_everything(
            self.found.ws_url, self.found.database_url, report.heard, lambda _line: None
        )
        results.append(("the server's log", self.server_troubles()))
        for name, problems in results:
            new = [f"{name}: {problem}" for problem in problems]
            outcome.problems += [problem for problem in new if problem not in self.reported]
        self.reported.update(outcome.problems)
        await self.users.resume()
        return report

    async def kill_round(self, number: int, kind: str) -> Outcome:
        outcome = Outcome(number, kind)
        outcome.moment = await self.aim(kind)
        killed = time.monotonic()
        await self.restart()
        outcome.back_s = await self.back(killed)
        if kind == "auction":
            outcome.problems += await self.finish_auction()
        await self.check(outcome)
        return outcome

    async def postgres_round(self, number: int) -> Outcome:
        assert self.database is not None
        outcome = Outcome(number, "postgres")
        await asyncio.sleep(self.rng.uniform(0.5, 2.0))
        before = codes(await self.users.report())
        restarted = time.monotonic()
        await self.database.restart()
        try:
            outcome.back_s = await self.back(restarted)
        except TimeoutError:
            outcome.problems.append(f"no order acknowledged within {BACK_S:g} s of the restart")
        if self.server.running:
            outcome.moment = "the exchange stayed up"
        else:
            outcome.moment = (
                f"the exchange exited ({self.server.process.returncode}); started again"
            )
            await self.restart()
            outcome.back_s = await self.back(restarted)
        report = await self.check(outcome)
        meanwhile = codes(report) - before
        if meanwhile:
            outcome.moment += "; meanwhile " + ", ".join(
                f"{code} {n}" for code, n in meanwhile.most_common(4)
            )
        return outcome


def troubles(lines: list[str]) -> list[str]:
    """What says the server met a bug or stopped settling: a logged exception, with the line
    before it. Warnings are expected of a campaign (a retry, the database out of reach), and so is
    the traceback asyncpg's pool logs when it cannot reconnect while PostgreSQL restarts."""
    found = []
    for before, line in itertools.pairwise(["", *lines]):
        if "settlement stopped" in line:
            found.append(line.strip())
        elif line.startswith("Traceback") and not before.startswith(POOL_RECONNECTING):
            found.append(f"{before.strip()} (a traceback)")
    return found


def print_table(outcomes: list[Outcome], log: Callable[[str], None] = say) -> None:
    log("")
    log(f"{'round':>5}  {'aim':<10} {'back s':>7}  {'outcome':<8} what was under way")
    for o in outcomes:
        log(
            f"{o.number:>5}  {o.kind:<10} {o.back_s:>7.2f}  {'ok' if o.ok else 'FAILED':<8}"
            f" {o.moment}"
        )
        for problem in o.problems[:10]:
            log(f"{'':>33}{problem[:1_000]}")


async def campaign(
    rounds: int,
    seed: int,
    users: int,
    restart_postgres: bool,
    log: Callable[[str], None] = say,
    every_s: float = 5.0,
) -> list[Outcome]:
    """Run the campaign; each round's outcome, the final check last."""
    rng = random.Random(seed)
    counts = Counts.of(users)
    outcomes: list[Outcome] = []
    async with postgres.private(log) as database:
        command = ServerCommand(free_port(), database.url)
        async with (
            started(command, database.url) as found,
            aiohttp.ClientSession() as http,
        ):
            with tempfile.TemporaryDirectory(prefix="cerx-crash-") as folder:
                cast, cast_path = await set_up(found, counts, seed, Path(folder))
                plan = [KINDS[i % len(KINDS)] for i in range(rounds)]
                if restart_postgres:
                    plan.insert(rng.randint(0, len(plan)), "postgres")
                async with swarm(cast_path, counts, log, every_s) as crowd:
                    rest = Rest(http, found.http_url)
                    run = Campaign(found, crowd, rest, rng, cast.symbol, database)
                    for number, kind in enumerate(plan, 1):
                        if kind == "postgres":
                            outcome = await run.postgres_round(number)
                        else:
                            outcome = await run.kill_round(number, kind)
                        outcomes.append(outcome)
                        log(
                            f"round {number}  {outcome.kind}: {outcome.moment};"
                            f" {'ok' if outcome.ok else 'FAILED'}"
                        )
                    report = await crowd.stop()
            print_report(report, log)
            final = Outcome(len(outcomes) + 1, "final")
            results = await check_everything(found.ws_url, database.url, report.heard, log)
            results.append(("refusals", refusal_problems(report, EXPECTED)))
            assert found.server is not None
            status = await found.server.stop()
            results.append(("a clean stop", [f"exit status {status}"] if status else []))
            print_checks(results, log)
            final.moment = "load stopped, the server stopped with SIGTERM"
            final.problems = [f"{name}: {p}" for name, problems in results for p in problems]
            outcomes.append(final)
    return outcomes


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m load.crash", description=(__doc__ or "").split("\n")[0]
    )
    parser.add_argument("--rounds", type=int, default=6, help="kill rounds (6)")
    parser.add_argument("--seed", type=int, default=1, help="picks the kill moments (1)")
    parser.add_argument("--users", type=int, default=12, help="users at once (12)")
    parser.add_argument(
        "--no-postgres-restart",
        dest="restart_postgres",
        action="store_false",
        help="skip the round that restarts PostgreSQL",
    )
    args = parser.parse_args(argv)
    outcomes = asyncio.run(campaign(args.rounds, args.seed, args.users, args.restart_postgres))
    print_table(outcomes)
    ok = all(o.ok for o in outcomes)
    say("OK" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
