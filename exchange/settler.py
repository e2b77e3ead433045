"""The settlement worker: hands the feed's batches to the ledger as they form.

It runs beside the sequencer and never slows it: the engine only appends to the feed; this task
takes whatever has gathered, applies it in order, and goes back to waiting. Lag is what has been
decided but not yet applied. A database outage is retried (every batch is idempotent); a batch
the ledger refuses means the exchange and the ledger disagree, which no retry mends: the worker
stops, keeps the batch, and says why (`error`), for the operator and the health endpoint. So does
any other error, which would be a bug: logged, never a worker ending unnoticed.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections import deque
from collections.abc import Callable

import asyncpg

from exchange.errors import ErrorCode, ExchangeError
from exchange.ledger_feed import BatchBuilder
from settlement.batches import Batch
from settlement.errors import LedgerError
from settlement.ledger import Ledger

log = logging.getLogger(__name__)

RETRY_S = (0.05, 0.1, 0.2, 0.5, 1.0, 2.0)  # then every 2 s
UNREACHABLE = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.ConnectionDoesNotExistError,
    # what a pooled connection whose session the server ended (a restart) raises on its next
    # use, with its protocol left mid-operation: asyncpg's "cannot switch to state 12"
    asyncpg.InternalClientError,
    # and what a transaction on it raises as it rolls back: "the underlying connection is closed"
    asyncpg.InterfaceError,
)
"""What a database outage raises: worth waiting out, unlike a refusal."""


class Settler:
    def __init__(
        self,
        ledger: Ledger,
        feed: BatchBuilder,
        on_applied: Callable[[Batch, float], None] | None = None,
    ) -> None:
        self._ledger = ledger
        self._feed = feed
        self._pending: deque[Batch] = deque()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._on_applied = on_applied  # the batch and the seconds it took, for metrics
        self.error: Exception | None = None
        self.applied_batches = 0
        self.applied_items = 0  # counts as the feed's `decided` does

    @property
    def lag(self) -> int:
        """Locks, trades and releases decided but not yet in the ledger."""
        waiting = sum(len(b) for b in self._pending)
        return waiting + len(self._feed)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="settler")

    def wake(self) -> None:
        """Something was added to the feed."""
        self._wake.set()

    async def drain(self) -> None:
        """Return once everything decided so far is in the ledger (or the worker stopped)."""
        while self.lag and self.error is None:
            self._wake.set()
            await asyncio.sleep(0.005)

    async def reach(self, items: int, timeout_s: float = 10.0) -> None:
        """Return once the first `items` items the feed was handed are in the ledger; refuse
        with SETTLEMENT_BEHIND if that takes longer than `timeout_s` (or the worker stopped)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                while self.applied_items < items and self.error is None:
                    self._wake.set()
                    await asyncio.sleep(0.002)
        if self.applied_items >= items:
            return
        raise ExchangeError(
            ErrorCode.SETTLEMENT_BEHIND,
            "settlement has not caught up with this account's trading; try again",
            1_000,
        )

    async def close(self, timeout_s: float = 10.0) -> None:
        """Drain for up to `timeout_s`, then stop. Anything left stays in the journal, and the
        next start's recovery hands it to the ledger again (idempotently)."""
        try:
            await asyncio.wait_for(self.drain(), timeout_s)
        except TimeoutError:
            log.warning(
                "stopping with %d items not yet in the ledger; recovery applies them", self.lag
            )
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            self._pending.extend(self._feed.take())
            while self._pending:
                batch = self._pending[0]
                started = time.perf_counter()
                try:
                    await self._apply(batch)
                except LedgerError as error:
                    self.error = error
                    log.error("settlement stopped: the ledger refused a batch: %s", error)
                    return
                except Exception as error:
                    # not an outage and not a refusal: a bug; stop where it shows, never silently
                    self.error = error
                    log.exception("settlement stopped: an unexpected error")
                    return
                self._pending.popleft()
                self.applied_batches += 1
                self.applied_items += len(batch)
                if self._on_applied is not None:
                    self._on_applied(batch, time.perf_counter() - started)

    async def _apply(self, batch: Batch) -> None:
        """Apply, retrying for as long as the database is out of reach."""
        for attempt in itertools.count():
            try:
                await self._ledger.apply(batch)
                return
            except UNREACHABLE as error:
                pause = RETRY_S[min(attempt, len(RETRY_S) - 1)]
                log.warning("settlement retry %d in %.2f s after %r", attempt + 1, pause, error)
                await asyncio.sleep(pause)
