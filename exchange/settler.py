"""The settlement worker: hands the feed's batches to the ledger as they form.

It runs beside the sequencer and never slows it: the engine only appends to the feed; this
worker takes whatever has gathered, applies it in order, and goes back to waiting. Lag is what
has been decided but not yet applied. A database outage is retried (every batch is idempotent);
a batch the ledger refuses means the exchange and the ledger disagree, which no retry mends: the
worker stops, keeps the batch, and says why (`error`), for the operator and the health endpoint.
So does any other error, which would be a bug: logged, never a worker ending unnoticed.

The worker runs on a thread of its own, with its own event loop and its own connections, so
that its statements are not queued behind the requests on the exchange's busy loop (a batch
took 75-170 ms in the database but 250-650 ms there). The feed stays the exchange's: only the
exchange's loop touches it. The worker asks for work when it has none (`_hand_over`, run on the
exchange's loop); the exchange then hands it the feed's batches through `_pending`, a deque
that only the exchange appends to and only the worker pops from, or, if the feed is empty,
remembers that the worker waits and hands the next batches over on the next `wake`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable

import asyncpg

from exchange.errors import ErrorCode, ExchangeError
from exchange.ledger_feed import BatchBuilder
from settlement.batches import Batch
from settlement.database import Database
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

GATHER_ITEMS, GATHER_S = 500, 0.02  # after a round of fewer items, wait this long for more
POOL_SIZE = 2  # the worker's own connections: one at a time in use, one spare after an outage


class Settler:
    def __init__(
        self,
        ledger: Ledger,
        feed: BatchBuilder,
        on_applied: Callable[[Batch, float], None] | None = None,
    ) -> None:
        self._url = ledger.database.url  # the worker opens its own connections to it
        self._feed = feed
        # handed over, not yet applied, in order: each batch with the items it accounts for, its
        # own and those the feed netted away before it (an empty batch when only those)
        self._pending: deque[tuple[Batch, int]] = deque()
        self._netted = 0  # the feed's netted items accounted for in `_pending` so far
        self._on_applied = on_applied  # the batch and the seconds it took, for metrics; on the
        # worker's thread
        self._loop: asyncio.AbstractEventLoop | None = None  # the exchange's
        self._worker_loop: asyncio.AbstractEventLoop | None = None
        self._work: asyncio.Event | None = None  # on the worker's loop: `_pending` has batches
        self._hurry = asyncio.Event()  # on the worker's loop: someone waits, do not gather
        self._task: asyncio.Task[None] | None = None  # the worker, on its loop
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self._hungry = False  # the worker waits for batches (the exchange's loop's to change)
        self._handed = 0  # items handed to the worker (written by the exchange's loop only)
        self._done = 0  # of those, items applied (written by the worker only)
        self.error: Exception | None = None
        self.applied_batches = 0
        self.applied_items = 0  # counts as the feed's `decided` does

    @property
    def lag(self) -> int:
        """Locks, trades and releases decided but not yet in the ledger."""
        return self._handed - self._done + len(self._feed)

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._hungry = not self._pending
        self._started.clear()
        self._thread = threading.Thread(target=self._thread_main, name="settler", daemon=True)
        self._thread.start()
        self._started.wait()

    def wake(self) -> None:
        """Something was added to the feed (call on the exchange's loop)."""
        if self._hungry:
            self._hand_over()

    async def drain(self) -> None:
        """Return once everything decided so far is in the ledger (or the worker stopped)."""
        while self.lag and self.error is None:
            self._hurry_up()
            self.wake()
            await asyncio.sleep(0.005)

    async def reach(self, items: int, timeout_s: float = 10.0) -> None:
        """Return once the first `items` items the feed was handed are in the ledger; refuse
        with SETTLEMENT_BEHIND if that takes longer than `timeout_s` (or the worker stopped)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                while self.applied_items < items and self.error is None:
                    self._hurry_up()
                    self.wake()
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
        thread, worker_loop, task = self._thread, self._worker_loop, self._task
        if thread is None or worker_loop is None or task is None:
            return
        with contextlib.suppress(RuntimeError):  # its loop has ended already
            worker_loop.call_soon_threadsafe(task.cancel)
        await asyncio.to_thread(thread.join)
        self._thread = self._worker_loop = self._task = None
        self._hungry = False

    # -- on the exchange's loop ----------------------------------------------------------------

    def _hurry_up(self) -> None:
        """Someone waits for the ledger: the worker asks for work without gathering first."""
        if self._worker_loop is not None:
            with contextlib.suppress(RuntimeError):  # the worker has stopped: its loop is closed
                self._worker_loop.call_soon_threadsafe(self._hurry.set)

    def _hand_over(self) -> None:
        """Give the worker the feed's batches, or remember that it waits for some."""
        feed = self._feed
        batches = feed.take()
        netted, self._netted = feed.netted - self._netted, feed.netted
        if not batches and not netted:
            self._hungry = True
            return
        self._hungry = False
        handed = [(batch, len(batch)) for batch in batches or [Batch()]]
        handed[-1] = (handed[-1][0], handed[-1][1] + netted)
        self._handed += sum(items for _, items in handed)
        self._pending.extend(handed)
        if self._worker_loop is not None and self._work is not None:
            with contextlib.suppress(RuntimeError):  # the worker has stopped: its loop is closed
                self._worker_loop.call_soon_threadsafe(self._work.set)

    # -- on the worker's thread ----------------------------------------------------------------

    def _thread_main(self) -> None:
        with contextlib.suppress(asyncio.CancelledError):  # stopped by `close`
            asyncio.run(self._main())

    async def _main(self) -> None:
        self._worker_loop = asyncio.get_running_loop()
        self._work = asyncio.Event()
        self._hurry = asyncio.Event()
        if self._pending:
            self._work.set()  # left over from before a `close`: these come first
        task = asyncio.current_task()
        assert task is not None
        self._task = task
        self._started.set()
        pool: asyncpg.Pool | None = None
        try:
            pool = await self._connect()
            await self._run(Ledger(Database(pool, self._url, None)))
        finally:
            if pool is not None:
                pool.terminate()  # nothing is in flight any more: a close would only wait

    async def _connect(self) -> asyncpg.Pool:
        for attempt in itertools.count():
            try:
                return await asyncpg.create_pool(self._url, min_size=1, max_size=POOL_SIZE)
            except UNREACHABLE as error:
                pause = RETRY_S[min(attempt, len(RETRY_S) - 1)]
                log.warning("settlement connect retry %d in %.2f s: %r", attempt + 1, pause, error)
                await asyncio.sleep(pause)
        raise AssertionError("unreachable")

    async def _run(self, ledger: Ledger) -> None:
        work, pending = self._work, self._pending
        assert work is not None
        while True:
            await work.wait()
            work.clear()
            round_items = 0
            while pending:
                batch, items = pending[0]
                started = time.perf_counter()
                try:
                    if batch:
                        await self._apply(ledger, batch)
                except LedgerError as error:
                    self.error = error
                    log.error("settlement stopped: the ledger refused a batch: %s", error)
                    return
                except Exception as error:
                    # not an outage and not a refusal: a bug; stop where it shows, never silently
                    self.error = error
                    log.exception("settlement stopped: an unexpected error")
                    return
                pending.popleft()
                self.applied_items += items
                self._done += items
                round_items += len(batch)
                if batch:
                    self.applied_batches += 1
                    if self._on_applied is not None:
                        self._on_applied(batch, time.perf_counter() - started)
            if 0 < round_items < GATHER_ITEMS and not self._hurry.is_set():
                # a batch costs about a dozen statements whatever its size: at a moderate rate,
                # let the next gather a while rather than settle each few items on their own,
                # unless someone waits for the ledger (`reach`, `drain`)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._hurry.wait(), GATHER_S)
            self._hurry.clear()
            loop = self._loop
            if loop is not None:
                with contextlib.suppress(RuntimeError):  # the exchange's loop has ended
                    loop.call_soon_threadsafe(self._hand_over)

    async def _apply(self, ledger: Ledger, batch: Batch) -> None:
        """Apply, retrying for as long as the database is out of reach."""
        for attempt in itertools.count():
            try:
                await ledger.apply(batch)
                return
            except UNREACHABLE as error:
                pause = RETRY_S[min(attempt, len(RETRY_S) - 1)]
                log.warning("settlement retry %d in %.2f s after %r", attempt + 1, pause, error)
                await asyncio.sleep(pause)
