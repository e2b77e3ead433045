"""Locust as a library, in a process of its own, steered over its standard input.

    python -m load.swarm --traders T --readers R --compliance C --retirees O [--spawn-rate S]

The cast is `$CERX_LOAD_CAST`. The process starts the users and then reads one command a line:

    pause              close the crowd's gate; answers `paused` once no user is in an action
    resume             open it again; answers `resumed`
    report PATH        write the report so far to PATH (msgpack); answers `reported`
    stop PATH          stop every user, write the final report to PATH, answer `stopped`, exit

and prints a `progress` line every `--every` seconds: users, requests and failures per second
since the last line, and the 99th percentile of their latency. End of input counts as `stop`
without a report, so the process never outlives its parent.

The runner (`load.run`, `load.crash`) is asyncio; locust is gevent, which patches the standard
library for the whole process: hence a process of its own, and this narrow line protocol.

Latencies are recorded here, per request kind, in microseconds, as locust reports them to its
listeners (its own statistics round to whole milliseconds, too coarse below 100 ms).
"""

from __future__ import annotations

import argparse
import sys
import time
from array import array
from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Any

import gevent
from gevent.fileobject import FileObjectPosix
from locust import User
from locust.env import Environment
from locust.exception import CatchResponseError

from load.crowd import crowd
from load.holders import ComplianceEntity, Retiree
from load.readers import Reader
from load.report import KindStats, SwarmReport, encode_report
from load.traders import Trader
from load.verify import Heard

PAUSE_S = 30.0


def percentile(ordered: Sequence[int], q: float) -> int:
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0


class Recorder:
    """Every request's latency and outcome, by kind."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.latencies_us: defaultdict[str, array[int]] = defaultdict(lambda: array("q"))
        self.errors: defaultdict[str, Counter[str]] = defaultdict(Counter)
        self.window: list[int] = []  # latencies since the last progress line
        self.window_failures = 0
        self.window_started = self.started
        self.users = 0

    def on_request(
        self,
        request_type: str,
        name: str,
        response_time: float,
        exception: BaseException | None = None,
        **_: Any,
    ) -> None:
        kind = f"{request_type} {name}"
        latency_us = round(response_time * 1_000)
        self.latencies_us[kind].append(latency_us)
        self.window.append(latency_us)
        if exception is not None:
            code = (
                str(exception.args[0])
                if isinstance(exception, CatchResponseError)
                else type(exception).__name__
            )
            self.errors[kind][code] += 1
            self.window_failures += 1

    def progress(self, users: int) -> str:
        self.users = max(self.users, users)
        now = time.monotonic()
        seconds = max(now - self.window_started, 1e-9)
        ordered = sorted(self.window)
        line = (
            f"progress {now - self.started:6.1f} s  {users:4d} users"
            f"  {len(ordered) / seconds:8,.0f} req/s  {self.window_failures / seconds:6,.0f} fail/s"
            f"  p99 {percentile(ordered, 0.99) / 1_000:8.1f} ms"
        )
        self.window, self.window_failures, self.window_started = [], 0, now
        return line

    def report(self, users: int, exceptions: list[str], heard: Heard) -> SwarmReport:
        self.users = max(self.users, users)
        kinds = []
        for kind, values in sorted(self.latencies_us.items()):
            ordered = sorted(values)
            kinds.append(
                KindStats(
                    kind,
                    len(ordered),
                    sum(self.errors[kind].values()),
                    percentile(ordered, 0.50),
                    percentile(ordered, 0.95),
                    percentile(ordered, 0.99),
                    ordered[-1],
                )
            )
        errors = {kind: dict(codes) for kind, codes in self.errors.items() if codes}
        return SwarmReport(
            time.monotonic() - self.started, self.users, kinds, errors, exceptions, heard
        )


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m load.swarm", description=__doc__)
    for kind in ("traders", "readers", "compliance", "retirees"):
        parser.add_argument(f"--{kind}", type=int, default=0)
    parser.add_argument("--spawn-rate", type=float, default=50.0, help="users started a second")
    parser.add_argument("--every", type=float, default=2.0, help="seconds between progress lines")
    args = parser.parse_args(argv)
    classes: list[type[User]] = []
    for user_class, count in (
        (Trader, args.traders),
        (Reader, args.readers),
        (ComplianceEntity, args.compliance),
        (Retiree, args.retirees),
    ):
        user_class.fixed_count = count
        if count:
            classes.append(user_class)
    the_crowd = crowd()
    users = sum(c.fixed_count for c in classes)
    environment = Environment(user_classes=classes, host=the_crowd.cast.url)
    recorder = Recorder()
    environment.events.request.add_listener(recorder.on_request)  # type: ignore[no-untyped-call]
    runner = environment.create_local_runner()
    runner.start(users, spawn_rate=args.spawn_rate)
    say(f"ready {users}")

    def progress() -> None:
        while True:
            gevent.sleep(args.every)
            say(recorder.progress(runner.user_count))

    def write(path: str) -> None:
        exceptions = [
            f"{row['count']} x {row['msg']}\n{row['traceback']}"
            for row in runner.exceptions.values()
        ]
        report = recorder.report(runner.user_count, exceptions, the_crowd.heard)
        with open(path, "wb") as file:
            file.write(encode_report(report))

    printer = gevent.spawn(progress)
    stdin = FileObjectPosix(sys.stdin.fileno(), "rb", close=False)
    try:
        for raw in stdin:
            command, _, path = raw.decode().strip().partition(" ")
            match command:
                case "pause":
                    say("paused" if the_crowd.pause(PAUSE_S) else "paused timeout")
                case "resume":
                    the_crowd.resume()
                    say("resumed")
                case "report":
                    write(path)
                    say("reported")
                case "stop":
                    runner.stop()
                    write(path)
                    say("stopped")
                    break
                case _:
                    say(f"unknown {command}")
    finally:
        printer.kill()
        runner.quit()
    return 0


if __name__ == "__main__":
    sys.exit(main())
