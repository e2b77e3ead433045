"""The running exchange: the sequencer with its journal, risk view, settlement worker and
execution reports, recovered from the database and wired together."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Callable
from typing import get_args

import msgspec
from aiohttp import web

from exchange import auth, keys
from exchange.auth import NonceGuard
from exchange.engine import Engine
from exchange.errors import ErrorCode, ExchangeError
from exchange.instruments import Instrument
from exchange.journal import Entry, Journal
from exchange.ledger_feed import BatchBuilder
from exchange.limits import DEFAULT_LIMITS, Limits, TokenBucket
from exchange.market_data import MarketData
from exchange.metrics import Metrics
from exchange.recovery import recover
from exchange.reports import Reports
from exchange.settler import Settler
from matching import Event, Rejected
from settlement.database import Database
from settlement.ledger import Ledger

Push = Callable[[bytes], None]


class Exchange:
    def __init__(
        self, database: Database, instruments: list[Instrument], limits: Limits = DEFAULT_LIMITS
    ) -> None:
        self.database = database
        self.limits = limits
        self._account_buckets: dict[int, TokenBucket] = {}
        self.metrics = metrics = Metrics()
        self.ledger = Ledger(database)
        self.feed = BatchBuilder()
        self.journal = Journal(database.pool, on_commit=metrics.journal_written)
        self.engine = Engine(
            instruments, self.journal, self.feed, on_match=metrics.match_seconds.observe
        )
        self.settler = Settler(
            self.ledger, self.feed, lambda _b, seconds: metrics.settlement_seconds.observe(seconds)
        )
        self.market_data = MarketData(self.engine.books, self.engine.instruments)
        self.reports = Reports(self.engine.instruments)
        self.queues: set[asyncio.Queue[bytes]] = set()  # every session's send queue
        metrics.track(lambda: self.settler.lag, lambda: sum(q.qsize() for q in self.queues))
        self.nonces = NonceGuard()
        self._subscribers: defaultdict[int, set[Push]] = defaultdict(set)

    @classmethod
    async def open(
        cls, database: Database, instruments: list[Instrument], limits: Limits = DEFAULT_LIMITS
    ) -> Exchange:
        exchange = cls(database, instruments, limits)
        # listening from the first replayed entry: the reports' memory of orders is rebuilt too
        exchange.engine.listeners.append(exchange._on_events)
        await recover(exchange.engine, database.pool, exchange.ledger, exchange.feed)
        exchange.journal.start()
        exchange.settler.start()
        return exchange

    async def close(self) -> None:
        await self.journal.close()
        await self.settler.close()

    async def authenticate(self, key_id: str, timestamp_ms: int, nonce: str, signature: str) -> int:
        """The account a signed request comes from (see `exchange.auth`), or a refusal."""
        async with self.database.pool.acquire() as conn:
            key = await keys.find(conn, key_id)
        if key is None:
            raise ExchangeError(ErrorCode.AUTH_UNKNOWN_KEY, "no such API key")
        auth.verify(key.secret, timestamp_ms, nonce, key.key_id, signature)
        self.nonces.admit(key.key_id, timestamp_ms, nonce, time.time_ns() // 1_000_000)
        return key.account_id

    def account_bucket(self, account_id: int) -> TokenBucket:
        bucket = self._account_buckets.get(account_id)
        if bucket is None:
            limits = self.limits
            bucket = TokenBucket(limits.account_per_second, limits.account_burst)
            self._account_buckets[account_id] = bucket
        return bucket

    def follow(self, account_id: int, push: Push) -> Callable[[], None]:
        """Send `push` the account's execution reports; returns how to stop."""
        self._subscribers[account_id].add(push)
        return lambda: self._subscribers[account_id].discard(push)

    def _on_events(self, entry: Entry, events: list[Event]) -> None:
        self.settler.wake()
        self.market_data.publish(entry, events)
        count = self.metrics.count_book_event
        for event in events:
            count(event.code.value if isinstance(event, Rejected) else _KINDS[type(event)])
        for account_id, report in self.reports.of(entry, events):
            pushes = self._subscribers.get(account_id)
            if pushes:
                data = _encode(report)  # once, however many sessions the account has
                for push in list(pushes):
                    push(data)


EXCHANGE_KEY = web.AppKey("exchange", Exchange)
_encode = msgspec.json.Encoder().encode
_KINDS = {kind: kind.__struct_config__.tag for kind in get_args(Event)}
