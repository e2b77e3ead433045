"""Orders acknowledged per second over WebSocket, durable, and the ack latency at a fixed rate.

Run as `python -m bench.exchange [--database-url URL] [--seconds 10] [--connections 8]
[--window 64] [--rate 5000] [--own-accounts] [--trading]`.

1. Create a scratch database on the server (`--database-url`, else `$CERX_DATABASE_URL`, else the
   local server) and start `python -m exchange serve --demo` on it in its own process, rate limits
   lifted.
2. Sustained: `--connections` WebSocket sessions of the demo trader carol each keep `--window`
   requests outstanding for `--seconds`: a passive buy of 1 t inside the band, then its cancel by
   client order id, over and over. Every reply is an acknowledgement of a journaled (durable) input.
   An account's execution reports go to all its sessions, so each session also reads the reports of
   the others' orders (8 sessions: 9 messages per request); with `--own-accounts` each session
   logs in as a trader of its own, made for the run (2 messages per request). With `--trading`
   each session's trader also holds CERs and alternates a sell and a buy of 1 t at one price,
   so orders trade with each other and every trade settles (the default's orders are cancelled
   before settlement takes them, so the ledger feed nets them away). The sessions are
   `bench.frames` links, a bare WebSocket client whose cost per request stays small beside the
   server's (the CPU line after each phase says how small): it writes what a loop iteration
   sends at once, reads a reply's id and outcome from its first bytes, and only counts pushes.
3. Wait for settlement to catch up with the sustained phase (its lag, from `/metrics`, at 0), so
   that the next phase measures a server in its steady state at that rate.
4. Fixed rate: the same sessions send `--rate` requests a second in all, at even intervals, without
   waiting, for `--seconds`; each reply's latency is measured from its send.
5. Stop the server with SIGTERM (it drains settlement), check its exit, audit the ledger, drop
   the database. Exits 1 if anything failed.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import itertools
import os
import random
import re
import signal
import socket
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import asyncpg
import msgspec

from bench import frames
from bench.matching import say
from bench.settlement import LOCAL_SERVER_URL, scratch_database
from exchange import demo, keys
from exchange.auth import sign
from settlement.database import DATABASE_URL_VARIABLE, Database
from settlement.ledger import Ledger
from settlement.values import ByQuantity, Role

KEY_LINE = re.compile(r"demo key\s+carol\s+account (\d+)\s+key (\S+)\s+secret ([0-9a-f]+)")
GOAL_RATE, GOAL_P99_MS, GOAL_AT = 20_000, 5.0, 5_000
SYMBOL = "SZCER-2025"  # band 4,500..5,500 around 5,000; nothing rests at or below 4,900


@dataclass
class Tally:
    acks: int = 0
    refused: dict[str, int] = field(default_factory=dict)
    latencies_ns: list[int] = field(default_factory=list)
    closed: list[str] = field(default_factory=list)  # sessions the server closed, and why


class Session:
    """One logged-in WebSocket session alternating new orders and their cancels. Replies are
    read as they arrive (by `on_message`); pushed messages (execution reports, balances) are
    only counted."""

    def __init__(self, name: str, trading: bool = False) -> None:
        self.name = name
        self.trading = trading  # sells and buys of 1 t at one price, which trade
        self.link: frames.Link | None = None
        self.ids = itertools.count(1)
        self.sent: dict[int, int] = {}  # req_id -> perf_counter_ns at send
        self.placed: list[bytes] = []
        self.rng = random.Random(name)
        self.pushed = 0
        self.closed: str | None = None  # why the server closed the session, once it has
        self.tally = Tally()
        self.refill_until = 0  # sustained: each reply sends the next request until then
        self.sending = False  # more requests may follow in this phase
        self._quiet: asyncio.Future[None] | None = None  # every reply of the phase is in
        self._login: asyncio.Future[dict[str, Any]] | None = None

    def send_next(self) -> None:
        link = self.link
        if self.closed is not None or link is None:
            return
        req_id = next(self.ids)
        if self.trading:
            side = b"sell" if req_id % 2 else b"buy"
            frame = TRADE_ORDER % (req_id, b"%s-%d" % (self.name.encode(), req_id), side)
        elif self.placed and req_id % 2 == 0:
            frame = CANCEL % (req_id, self.placed.pop())
        else:
            cl_ord_id = b"%s-%d" % (self.name.encode(), req_id)
            self.placed.append(cl_ord_id)
            frame = NEW_ORDER % (req_id, cl_ord_id, self.rng.randrange(4_600, 4_901))
        self.sent[req_id] = time.perf_counter_ns()
        link.send(frame)

    def on_message(self, payload: bytes) -> None:
        if not payload.startswith(REPLY):
            self.pushed += 1  # an execution report or a balance, pushed
            return
        comma = payload.find(b",", len(REPLY))
        req_id = int(payload[len(REPLY) : comma])
        sent = self.sent.pop(req_id, None)
        if sent is None:
            if self._login is not None and not self._login.done():
                self._login.set_result(msgspec.json.decode(payload))
            return
        tally = self.tally
        tally.latencies_ns.append(time.perf_counter_ns() - sent)
        if payload.startswith(b'"ok":true', comma + 1):
            tally.acks += 1
        else:
            code = msgspec.json.decode(payload)["error"]["code"]
            tally.refused[code] = tally.refused.get(code, 0) + 1
        if self.refill_until and time.perf_counter_ns() < self.refill_until:
            self.send_next()
        elif not self.sent:
            self._settle()

    def on_close(self, code: int | None) -> None:
        # closed by the server (1013: it read too slowly to keep up): nothing more comes
        self.closed = f"session {self.name}: closed, code {code}"
        if self.sending or self.sent:
            self.tally.closed.append(self.closed)
        self.sent.clear()
        if self._login is not None and not self._login.done():
            self._login.set_exception(ConnectionError(self.closed))
        self._settle()

    def _settle(self) -> None:
        if not self.sending and self._quiet is not None and not self._quiet.done():
            self._quiet.set_result(None)

    def begin(self, tally: Tally, refill_until: int = 0) -> None:
        self.tally, self.refill_until, self.sending = tally, refill_until, True
        self._quiet = asyncio.get_running_loop().create_future()

    async def end(self) -> None:
        """Send no more in this phase; return once every reply is in."""
        self.sending, self.refill_until = False, 0
        if not self.sent or self.closed is not None:
            self._settle()
        assert self._quiet is not None
        await asyncio.wait_for(self._quiet, REPLY_S)

    async def login(self, port: int, key: str, secret: bytes, n: int) -> None:
        self.link = await frames.connect("127.0.0.1", port, "/ws", self.on_message, self.on_close)
        ts, nonce = time.time_ns() // 1_000_000, f"bench-{os.getpid()}-{n}"
        self._login = asyncio.get_running_loop().create_future()
        self.link.send(
            msgspec.json.encode(
                {
                    "op": "login",
                    "req_id": 0,
                    "args": {
                        "api_key": key,
                        "timestamp_ms": ts,
                        "nonce": nonce,
                        "signature": sign(secret, ts, nonce, key),
                    },
                }
            )
        )
        reply = await asyncio.wait_for(self._login, REPLY_S)
        if not reply.get("ok"):
            raise RuntimeError(f"login refused: {reply}")


REPLY = b'{"req_id":'
NEW_ORDER = (
    b'{"op":"new_order","req_id":%d,"args":{"symbol":"' + SYMBOL.encode() + b'",'
    b'"cl_ord_id":"%s","side":"buy","quantity":1,"price":%d}}'
)
TRADE_ORDER = (
    b'{"op":"new_order","req_id":%d,"args":{"symbol":"' + SYMBOL.encode() + b'",'
    b'"cl_ord_id":"%s","side":"%s","quantity":1,"price":5000}}'
)
CANCEL = (
    b'{"op":"cancel","req_id":%d,"args":{"symbol":"' + SYMBOL.encode() + b'","cl_ord_id":"%s"}}'
)
TRADING_TONNES = 1_000_000  # each trader's CERs with --trading: more than a run sells
REPLY_S = 60.0  # how long the end of a phase waits for the replies still outstanding


async def own_traders(url: str, count: int, tonnes: int = 0) -> list[tuple[str, bytes]]:
    """`count` traders of the demo market's, each with cash, `tonnes` of 2025 CERs and an API
    key, made before the server starts (so its risk view knows them): (key id, secret) each."""
    database = await Database.open(url, min_size=1, max_size=2)
    try:
        keys_of = {k.name: k for k in await demo.seed(database)}  # --demo then changes nothing
        ledger = Ledger(database)
        owner = (await ledger.project("P0002")).owner_id  # its CERs are all of vintage 2025
        if tonnes:
            await ledger.issue(
                "bench/issue",
                keys_of["regulator"].account_id,
                "P0002",
                count * tonnes,
                dt.date(2025, 7, 1),
                dt.date(2025, 12, 31),
            )
        out = []
        for n in range(count):
            trader = await ledger.open_account(f"bench/trader/{n}", f"bench-{n}", [Role.TRADER])
            await ledger.deposit(f"bench/cash/{n}", trader.account_id, 10_000_000_000)
            if tonnes:
                await ledger.transfer(
                    f"bench/cers/{n}", owner, trader.account_id, ByQuantity(tonnes)
                )
            async with database.pool.acquire() as conn:
                key = await keys.create(conn, trader.account_id)
            out.append((key.key_id, key.secret))
        return out
    finally:
        await database.close()


async def sustained(sessions: list[Session], window: int, seconds: float) -> Tally:
    """Each session keeps `window` requests outstanding for `seconds`: a reply sends the next."""
    tally = Tally()
    until = time.perf_counter_ns() + int(seconds * 1e9)
    for session in sessions:
        session.begin(tally, until)
        for _ in range(window):
            session.send_next()
    await asyncio.sleep(seconds)
    for session in sessions:
        await session.end()
    return tally


async def fixed_rate(sessions: list[Session], rate: int, seconds: float) -> Tally:
    """`rate` requests a second in all, the sessions in turn, without waiting for replies. The
    loop wakes about once a millisecond and sends what has come due since."""
    tally = Tally()
    for session in sessions:
        session.begin(tally)
    start = time.perf_counter_ns()
    until = start + int(seconds * 1e9)
    interval_ns, due, turn = 1_000_000_000 // rate, start, 0
    while due < until:
        now = time.perf_counter_ns()
        while due <= now and due < until:
            sessions[turn % len(sessions)].send_next()
            turn += 1
            due += interval_ns
        await asyncio.sleep(max(due - time.perf_counter_ns(), 0) / 1e9)
    for session in sessions:
        await session.end()
    return tally


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def process_cpu_s(pid: int) -> float:
    """User and system CPU seconds `pid` has used so far (0 if it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime


class CpuMeter:
    """CPU seconds of the server, of this process and of the database's backends for the
    scratch database (its walwriter and others are shared with whatever else runs there): a
    steadier measure than a rate on a shared machine."""

    def __init__(self, server_pid: int, database_url: str) -> None:
        self._server_pid = server_pid
        self._database_url = database_url

    async def read(self) -> dict[str, float]:
        conn = await asyncpg.connect(self._database_url)
        try:
            pids = await conn.fetch(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
            )
        finally:
            await conn.close()
        return {
            "server": process_cpu_s(self._server_pid),
            "bench": time.process_time(),
            "postgres": sum(process_cpu_s(row[0]) for row in pids),
        }


def cpu_line(before: dict[str, float], after: dict[str, float], requests: int) -> str:
    """CPU microseconds per acknowledged request, per process, and the load average."""
    per = {name: 1e6 * (after[name] - before[name]) / max(requests, 1) for name in after}
    load = " ".join(f"{value:.2f}" for value in os.getloadavg())
    return (
        f"  cpu      per request: server {per['server']:.0f} us, load generator"
        f" {per['bench']:.0f} us, postgres backends {per['postgres']:.0f} us; load average {load}"
    )


SERVER_METRICS = (
    "cerx_journal_group_entries_count",
    "cerx_journal_group_entries_sum",
    "cerx_journal_commit_seconds_sum",
    "cerx_settlement_batch_seconds_count",
    "cerx_settlement_batch_seconds_sum",
    "cerx_settlement_lag_items",
    'cerx_book_events_total{kind="trade"}',
    "cerx_settlement_netted_items_total",
)


async def server_metrics(http: aiohttp.ClientSession, port: int) -> dict[str, float]:
    """The server's journal and settlement figures from /metrics."""
    async with http.get(f"http://127.0.0.1:{port}/metrics") as response:
        text = await response.text()
    values = {}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name in SERVER_METRICS:
            values[name] = float(value)
    return values


async def settled(http: aiohttp.ClientSession, port: int, timeout_s: float = 300) -> float:
    """Wait until the server's settlement has caught up (lag 0); the seconds it took. The fixed
    rate is measured from there, on its own, not while the ledger catches up with the sustained
    phase."""
    started = time.perf_counter()
    while (await server_metrics(http, port)).get(SERVER_METRICS[5], 0.0) > 0:
        if time.perf_counter() - started > timeout_s:
            raise RuntimeError(f"settlement did not catch up within {timeout_s:g} s")
        await asyncio.sleep(0.1)
    return time.perf_counter() - started


def server_line(before: dict[str, float], after: dict[str, float]) -> str:
    """What the journal and settlement did between two scrapes."""

    def delta(name: str) -> float:
        return after.get(name, 0.0) - before.get(name, 0.0)

    commits, batches = delta(SERVER_METRICS[0]), delta(SERVER_METRICS[3])
    entries = delta(SERVER_METRICS[1]) / max(commits, 1)
    commit_ms = 1000 * delta(SERVER_METRICS[2]) / max(commits, 1)
    batch_ms = 1000 * delta(SERVER_METRICS[4]) / max(batches, 1)
    return (
        f"  server   {commits:,.0f} journal commits of {entries:,.1f} entries, {commit_ms:.2f} ms"
        f" each; {delta(SERVER_METRICS[6]):,.0f} trades; {batches:,.0f} ledger batches,"
        f" {batch_ms:.1f} ms each; {delta(SERVER_METRICS[7]):,.0f} items netted;"
        f" settlement lag {after.get(SERVER_METRICS[5], 0.0):,.0f} items"
    )


def percentile_ms(values: Sequence[int], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1e6


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def run(args: argparse.Namespace) -> int:
    server_url = args.database_url or os.environ.get(DATABASE_URL_VARIABLE) or LOCAL_SERVER_URL
    ok = True
    async with scratch_database(server_url, say) as url:
        own = args.own_accounts or args.trading
        tonnes = TRADING_TONNES if args.trading else 0
        traders = await own_traders(url, args.connections, tonnes) if own else []
        port = free_port()
        server = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "exchange",
            "serve",
            "--demo",
            "--port",
            str(port),
            "--database-url",
            url,
            "--session-rate",
            "10000000",
            "--account-rate",
            "10000000",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        assert server.stdout is not None
        lines: list[str] = []
        while not (lines and lines[-1].startswith("listening")):
            line = await asyncio.wait_for(server.stdout.readline(), timeout=120)
            if not line:
                raise RuntimeError("the server exited:\n" + "".join(lines))
            lines.append(line.decode())
        try:
            match = next(m for line in lines if (m := KEY_LINE.search(line)))
            key, secret = match[2], bytes.fromhex(match[3])
            say(f"server     pid {server.pid}, ws://127.0.0.1:{port}/ws")
            async with aiohttp.ClientSession() as http:
                sessions = [Session(f"s{n}", args.trading) for n in range(args.connections)]
                for n, session in enumerate(sessions):
                    await session.login(port, *(traders[n] if traders else (key, secret)), n)
                say(
                    f"sustained  {args.connections} sessions x {args.window} outstanding, "
                    f"{args.seconds:g} s, "
                    + ("each its own trader" if traders else "all of trader carol")
                    + (", trading with each other" if args.trading else "")
                )
                meter = CpuMeter(server.pid, url)
                before, cpu_before = await server_metrics(http, port), await meter.read()
                high = await sustained(sessions, args.window, args.seconds)
                after, cpu_after = await server_metrics(http, port), await meter.read()
                say(server_line(before, after))
                say(cpu_line(cpu_before, cpu_after, len(high.latencies_ns)))
                pushed = sum(s.pushed for s in sessions)
                say(f"  pushed   {pushed / max(len(high.latencies_ns), 1):.1f} messages a request")
                waited = await settled(http, port)
                say(f"settled    the settlement lag reached 0 in {waited:.1f} s")
                before, cpu_before = await server_metrics(http, port), await meter.read()
                say(f"fixed rate {args.rate:,}/s for {args.seconds:g} s")
                paced = await fixed_rate(sessions, args.rate, args.seconds)
                say(server_line(before, await server_metrics(http, port)))
                say(cpu_line(cpu_before, await meter.read(), len(paced.latencies_ns)))
                for session in sessions:
                    if session.link is not None:
                        session.link.close()
        except BaseException:
            if server.returncode is None:
                server.kill()
                await server.wait()
            raise
        server.send_signal(signal.SIGTERM)
        out, _ = await asyncio.wait_for(server.communicate(), timeout=120)
        if server.returncode != 0:
            say(f"FAILED     the server exited {server.returncode}:\n{out.decode()}")
            ok = False
        database = await Database.open(url, min_size=1, max_size=2)
        try:
            report = await Ledger(database).audit()
        finally:
            await database.close()
    rate = high.acks / args.seconds
    say("")
    say("results    acknowledgements are of journaled (durable) inputs")
    say(
        f"  sustained  {rate:,.0f} acks/s; latency p50 {percentile_ms(high.latencies_ns, 0.5):.2f}"
        f" ms, p99 {percentile_ms(high.latencies_ns, 0.99):.2f} ms; refused {high.refused or 0}"
    )
    p99 = percentile_ms(paced.latencies_ns, 0.99)
    say(
        f"  at {args.rate:,}/s  {paced.acks / args.seconds:,.0f} acks/s; latency p50"
        f" {percentile_ms(paced.latencies_ns, 0.5):.2f} ms, p99 {p99:.2f} ms,"
        f" p99.9 {percentile_ms(paced.latencies_ns, 0.999):.2f} ms,"
        f" max {percentile_ms(paced.latencies_ns, 1.0):.2f} ms; refused {paced.refused or 0}"
    )
    say(
        f"goal       {GOAL_RATE:,} acks/s sustained: {'met' if rate >= GOAL_RATE else 'NOT met'};"
        f" p99 < {GOAL_P99_MS} ms at {GOAL_AT:,}/s:"
        f" {'met' if p99 < GOAL_P99_MS and args.rate == GOAL_AT else 'NOT met or not measured'}"
    )
    for closed in high.closed + paced.closed:
        say(f"closed     {closed}")
    say(f"audit      {'clean' if report.ok else 'FAILED: ' + '; '.join(report.problems[:3])}")
    ok = ok and report.ok and not high.refused and not paced.refused
    ok = ok and not high.closed and not paced.closed
    say("OK" if ok else "FAILED")
    return 0 if ok else 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.exchange", description=__doc__)
    parser.add_argument("--database-url")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--window", type=int, default=64)
    parser.add_argument("--rate", type=int, default=GOAL_AT)
    parser.add_argument(
        "--own-accounts",
        action="store_true",
        help="each session its own trader; by default all are carol's, so each session also"
        " receives the execution reports of the other sessions' orders",
    )
    parser.add_argument(
        "--trading",
        action="store_true",
        help="sells and buys of 1 t at one price, which trade with each other and settle"
        " (each session its own trader, with CERs); by default passive buys and their cancels,"
        " which settlement nets away",
    )
    return asyncio.run(run(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
