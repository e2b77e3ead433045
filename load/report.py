"""What a swarm reports (`SwarmReport`, sent as msgpack), and how the runners print it: the
throughput, the latency of each request kind, and the refusals by code."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import msgspec

from load.verify import Heard


class KindStats(msgspec.Struct):
    kind: str  # request type and name, such as "WS new_order" or "POST surrender"
    requests: int
    failures: int
    p50_us: int
    p95_us: int
    p99_us: int
    max_us: int


class SwarmReport(msgspec.Struct):
    seconds: float  # from the first user started to this report
    users: int  # the most users running at once
    kinds: list[KindStats]
    errors: dict[str, dict[str, int]]  # kind → code → count
    exceptions: list[str]  # what users raised that they should not have: bugs of the load
    heard: Heard


encode_report = msgspec.msgpack.Encoder().encode
decode_report = msgspec.msgpack.Decoder(SwarmReport).decode


def codes(report: SwarmReport) -> Counter[str]:
    """Refusals and failures by code, over every kind."""
    total: Counter[str] = Counter()
    for by_code in report.errors.values():
        total.update(by_code)
    return total


def _ms(us: int) -> str:
    return f"{us / 1_000:,.1f}"


def print_report(report: SwarmReport, say: Callable[[str], None]) -> None:
    seconds = max(report.seconds, 1e-9)
    requests = sum(k.requests for k in report.kinds)
    failures = sum(k.failures for k in report.kinds)
    say("")
    say(
        f"throughput {requests:,} requests in {report.seconds:.1f} s = {requests / seconds:,.0f}/s"
        f" with {report.users} users; {failures:,} refused or failed"
    )
    say(
        f"{'kind':<20} {'requests':>9} {'/s':>8} {'failed':>7} {'p50 ms':>8} {'p95 ms':>8}"
        f" {'p99 ms':>8} {'max ms':>8}"
    )
    for k in report.kinds:
        say(
            f"{k.kind:<20} {k.requests:>9,} {k.requests / seconds:>8,.1f} {k.failures:>7,}"
            f" {_ms(k.p50_us):>8} {_ms(k.p95_us):>8} {_ms(k.p99_us):>8} {_ms(k.max_us):>8}"
        )
    if report.errors:
        say("refusals and failures by code")
        for code, count in codes(report).most_common():
            kinds = ", ".join(
                f"{kind} {by_code[code]:,}"
                for kind, by_code in sorted(report.errors.items())
                if code in by_code
            )
            say(f"  {code:<34} {count:>7,}  ({kinds})")
    heard = report.heard
    say(
        f"heard      {len(heard.orders):,} orders, {len(heard.cancels):,} cancels,"
        f" {sum(heard.amends.values()):,} amends and {len(heard.fills):,} fills acknowledged;"
        f" {len(heard.book):,} book messages, {len(heard.prints):,} trade prints;"
        f" {len(heard.surrenders):,} surrenders, {len(heard.retirements):,} retirements,"
        f" {len(heard.applications):,} certificate applications; {heard.resyncs:,} book resyncs"
    )
