"""Who may open a WebSocket session: caps on the sessions open from one remote address and in
all, so that a flood of connections cannot take the memory and file descriptors that the
sessions already open need.

A connection past either cap is refused before the upgrade, with HTTP 429 and the REST
refusal body `{"ok": false, "error": {"code": "TOO_MANY_SESSIONS", "msg", "retry_after_ms"}}`
(and a `Retry-After` header), and counted in `cerx_connection_refusals_total{reason}`, reason
`per_address` or `total`. WebSocket clients report the status of a refused upgrade
(`aiohttp.WSServerHandshakeError.status`, `websockets.InvalidStatus`), and nothing was opened,
so the client may simply try again later; the sessions already open are not touched.

The address is the TCP peer's. Behind a reverse proxy every client has the proxy's, so there the
per-address cap should be as large as the total (`cerx serve --max-sessions-per-address`) and
the proxy should cap per client instead.
"""

from __future__ import annotations

from collections import Counter
from typing import Literal

import msgspec
from aiohttp import web

from exchange.endpoint import Refusal, status_of
from exchange.errors import ErrorCode
from exchange.limits import Limits
from exchange.metrics import Metrics
from exchange.protocol import ErrorBody

RETRY_AFTER_MS = 1_000
Cap = Literal["per_address", "total"]


class Admission:
    """The sessions open, by remote address, against `limits`' caps."""

    def __init__(self, limits: Limits, metrics: Metrics) -> None:
        self._per_address_max = limits.sessions_per_address
        self._total_max = limits.sessions_total
        self._metrics = metrics
        self._open: Counter[str] = Counter()
        self._total = 0

    def enter(self, address: str) -> web.Response | None:
        """Count a session from `address` in (None: admitted, `leave` when it ends), or the
        refusal to answer its upgrade with."""
        if self._total >= self._total_max:
            return self._refuse("total", f"the exchange has {self._total_max} sessions open")
        if self._open[address] >= self._per_address_max:
            return self._refuse(
                "per_address", f"this address has {self._per_address_max} sessions open"
            )
        self._open[address] += 1
        self._total += 1
        return None

    def leave(self, address: str) -> None:
        self._total -= 1
        self._open[address] -= 1
        if not self._open[address]:
            del self._open[address]  # so the table holds only addresses with sessions open

    def check_invariants(self) -> None:
        counts = self._open.values()
        within = all(1 <= n <= self._per_address_max for n in counts)
        if not within or self._total != sum(counts) or self._total > self._total_max:
            raise AssertionError(f"{self._total} sessions open, by address {self._open}")

    def _refuse(self, cap: Cap, why: str) -> web.Response:
        self._metrics.connection_refusals.labels(cap).inc()
        code = ErrorCode.TOO_MANY_SESSIONS
        body = Refusal(False, ErrorBody(code, f"{why}, the most allowed", RETRY_AFTER_MS))
        return web.Response(
            body=msgspec.json.encode(body),
            status=status_of(code),
            content_type="application/json",
            headers={"Retry-After": str(RETRY_AFTER_MS // 1_000)},
        )
