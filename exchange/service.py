"""The running exchange: the sequencer with its journal, risk view, settlement worker and
execution reports, recovered from the database and wired together.

While it runs, its risk view is the authority on what accounts may spend and deliver, so the
ledger writes that change that — deposits, withdrawals, issuances — go through here and the view
follows them: a deposit or an issuance is credited once the ledger has it; a withdrawal is taken
from the view first (cash reserved by orders cannot leave) and given back if the ledger refuses.
Each is keyed, and a repeat of a key the ledger has recorded changes the view no more than it
changes the ledger. These writes run one at a time, so a repeat cannot race its first run.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import NamedTuple, TypeVar, get_args

import asyncpg
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
from exchange.reports import BalanceUpdate, Reports
from exchange.risk import RiskView
from exchange.sessions import Sessions
from exchange.settler import Settler
from exchange.snapshots import EVERY_ENTRIES, ClientOrder, ExchangeSnapshot, Snapshots
from matching import Event, Rejected
from offsets.registry import OffsetRegistry
from offsets.signing import PlatformKey
from registration.desk import RegistrationDesk
from settlement.database import Database
from settlement.ledger import Ledger
from settlement.values import (
    Block,
    BlockInfo,
    ByBlocks,
    ByQuantity,
    ByRanges,
    CashMoved,
    Role,
    Selection,
)

log = logging.getLogger(__name__)
Push = Callable[[bytes], None]
T = TypeVar("T")


class Certifier(NamedTuple):
    """What issuing certificates needs: the platform's signing key, and the public address the
    verification links (and QR codes) point at."""

    key: PlatformKey
    public_url: str


class Exchange:
    def __init__(
        self,
        database: Database,
        instruments: list[Instrument],
        limits: Limits = DEFAULT_LIMITS,
        snapshot_every: int = EVERY_ENTRIES,
    ) -> None:
        self.database = database
        self.limits = limits
        self._account_buckets: dict[int, TokenBucket] = {}
        self.metrics = metrics = Metrics()
        self.ledger = Ledger(database)
        self.offsets = OffsetRegistry(self.ledger)
        self.registration = RegistrationDesk(self.ledger)
        self.certifier: Certifier | None = None  # set by whoever serves it (it knows the address)
        self.feed = BatchBuilder()
        self.journal = Journal(database.pool, on_commit=metrics.journal_written)
        self.engine = Engine(
            instruments, self.journal, self.feed, on_match=metrics.match_seconds.observe
        )
        self.settler = Settler(
            self.ledger, self.feed, lambda _b, seconds: metrics.settlement_seconds.observe(seconds)
        )
        self.market_data = MarketData(self.engine.books, self.engine.instruments)
        self.sessions = Sessions(
            {i.symbol: i.hours for i in instruments if i.hours is not None},
            lambda symbol: self.engine.books[symbol].status,
            self.engine.operate,
            self.engine.now_ns,
        )
        self.reports = Reports(self.engine.instruments)
        self.queues: dict[int, list[bytes]] = {}  # every session's send queue, by session
        self.snapshots = Snapshots(
            database.pool,
            self._capture,
            lambda: self.engine.client_orders,
            lambda: self.feed.decided,
            lambda: self.settler.applied_items,
            snapshot_every,
        )
        metrics.track(
            lambda: self.settler.lag,
            lambda: sum(map(len, self.queues.values())),
            lambda: self.feed.netted,
        )
        self.nonces = NonceGuard()
        self.replayed = 0  # journal entries the last start replayed (after its snapshot)
        self._subscribers: defaultdict[int, set[Push]] = defaultdict(set)
        self._roles: dict[int, frozenset[Role]] = {}
        self._following = asyncio.Lock()
        self._balances_due: set[int] = set()  # accounts told of reports in the current group

    @classmethod
    async def open(
        cls,
        database: Database,
        instruments: list[Instrument],
        limits: Limits = DEFAULT_LIMITS,
        snapshot_every: int = EVERY_ENTRIES,
    ) -> Exchange:
        exchange = cls(database, instruments, limits, snapshot_every)
        # listening from the first replayed entry: the reports' memory of orders is rebuilt too
        exchange.engine.listeners.append(exchange._on_events)
        exchange.engine.listeners.append(exchange.sessions.observe)
        exchange.engine.group_listeners.append(exchange._on_group)
        exchange.replayed = await recover(
            exchange.engine,
            database.pool,
            exchange.ledger,
            exchange.feed,
            restore=exchange._restore,
        )
        exchange.settler.applied_items = exchange.feed.decided  # recovery applied them itself
        exchange.feed.netting = True  # every lock from here on is new to the ledger
        risk = exchange.engine.risk
        assert risk is not None  # recovery went live
        exchange.feed.fits = lambda lock, received: risk.keeps_free(
            lock.order_id, lock.account_id, received
        )
        exchange.engine.listeners.append(exchange.snapshots.observe)
        exchange.journal.start()
        exchange.settler.start()
        exchange.sessions.start()
        exchange.snapshots.start()
        return exchange

    async def close(self) -> None:
        """Stop, leaving a snapshot of the final state if the ledger has caught up with it."""
        await self.sessions.close()
        await self.snapshots.close()
        await self.journal.close()
        await self.engine.drain()
        await self.settler.close()
        if not self.settler.lag and self.settler.error is None:
            self.snapshots.take()
            try:
                await self.snapshots.write_ready()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                # the next start replays the journal from the last snapshot written instead
                log.warning("the final snapshot could not be written", exc_info=True)

    def _capture(self) -> ExchangeSnapshot:
        state = self.engine.capture()
        return msgspec.structs.replace(
            state,
            orders=self.reports.fill_in(state.orders),
            sessions=self.sessions.state(),
            market=self.market_data.state(),
        )

    def _restore(self, snapshot: ExchangeSnapshot, client_orders: list[ClientOrder]) -> None:
        self.engine.restore(snapshot, client_orders)
        self.reports.restore(snapshot.orders)
        self.sessions.restore(snapshot.sessions)
        if snapshot.market is not None:
            self.market_data.restore(snapshot.market)

    async def authenticate(
        self,
        key_id: str,
        timestamp_ms: int,
        nonce: str,
        signature: str,
        request: auth.HttpRequest | None = None,
    ) -> int:
        """The account a signed login or REST request comes from (see `exchange.auth`), or a
        refusal."""
        if not auth.KEY_ID.fullmatch(key_id):
            # no key has such an id, and PostgreSQL refuses some of them (NUL, broken UTF-8)
            raise ExchangeError(ErrorCode.AUTH_UNKNOWN_KEY, "no such API key")
        async with self.database.pool.acquire() as conn:
            key = await keys.find(conn, key_id)
        if key is None:
            raise ExchangeError(ErrorCode.AUTH_UNKNOWN_KEY, "no such API key")
        auth.verify(key.secret, auth.message(timestamp_ms, nonce, key.key_id, request), signature)
        self.nonces.admit(key.key_id, timestamp_ms, nonce, time.time_ns() // 1_000_000)
        return key.account_id

    async def roles(self, account_id: int) -> frozenset[Role]:
        """The account's roles, from the ledger once: they do not change while it runs."""
        roles = self._roles.get(account_id)
        if roles is None:
            roles = self._roles[account_id] = frozenset(
                (await self.ledger.account(account_id)).roles
            )
        return roles

    # -- ledger writes the risk view follows --------------------------------------------------

    async def deposit(self, key: str, account_id: int, amount_fen: int) -> CashMoved:
        risk = self._risk()
        async with self._following:
            repeat = await self.ledger.recorded(key)
            moved = await self.ledger.deposit(key, account_id, amount_fen)
            if not repeat:
                risk.credit_cash(account_id, amount_fen)
            return moved

    async def withdraw(self, key: str, account_id: int, amount_fen: int) -> CashMoved:
        risk = self._risk()
        async with self._following:
            if await self.ledger.recorded(key):
                return await self.ledger.withdraw(key, account_id, amount_fen)
            await self.ledger.account(account_id)  # an unknown account is not short of cash
            risk.debit_cash(account_id, amount_fen)
            try:
                return await self.ledger.withdraw(key, account_id, amount_fen)
            except BaseException:
                risk.credit_cash(account_id, amount_fen)
                raise

    async def issue(
        self,
        key: str,
        actor_id: int,
        project_code: str,
        quantity_t: int,
        period_start: dt.date,
        period_end: dt.date,
    ) -> Block:
        risk = self._risk()
        async with self._following:
            repeat = await self.ledger.recorded(key)
            # read before issuing: once the block exists the view must learn it without fail
            project = await self.ledger.project(project_code)
            block = await self.ledger.issue(
                key, actor_id, project_code, quantity_t, period_start, period_end
            )
            if not repeat:
                info = BlockInfo(block.vintage, project.methodology, block.project)
                risk.add_block(block.block_id, info)
                risk.credit_tonnes(block.issued_to, block.block_id, block.quantity_t)
            return block

    async def take_out(
        self,
        key: str,
        account_id: int,
        selection: Selection,
        write: Callable[[Selection], Awaitable[T]],
        eligible: Callable[[str], bool] = lambda _block: True,
    ) -> T:
        """Write tonnes out of trading for good (a surrender, a retirement) with the risk view
        following: the tonnes are taken from the view first — by quantity, oldest vintage first
        among the blocks `eligible` admits, and then named to the ledger block by block, so the
        ledger takes exactly what the view set aside; by ranges, as so many of each block — and
        put back if the ledger refuses. The write waits until the ledger has everything the
        exchange decided before it, so the tonnes the view saw free are free there too."""
        risk = self._risk()
        async with self._following:
            if await self.ledger.recorded(key):
                return await write(selection)
            if isinstance(selection, ByQuantity):
                per_block = risk.take_out(account_id, selection.quantity_t, eligible)
                named: Selection = ByBlocks(tuple(per_block.items()))
            else:
                per_block = _per_block(selection)
                risk.take_out_blocks(account_id, per_block)
                named = selection
            try:
                await self.settler.reach(self.feed.decided)
                return await write(named)
            except BaseException:
                risk.put_back(account_id, per_block)
                raise

    def _risk(self) -> RiskView:
        risk = self.engine.risk
        if risk is None:
            raise ExchangeError(
                ErrorCode.EXCHANGE_NOT_READY, "the exchange is recovering; try again"
            )
        return risk

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
        self.market_data.publish(entry, events)
        count = self.metrics.count_book_event
        for event in events:
            count(event.code.value if isinstance(event, Rejected) else _KINDS[type(event)])
        for account_id, report in self.reports.of(entry, events):
            pushes = self._subscribers.get(account_id)
            if pushes:
                self._balances_due.add(account_id)
                data = _encode(report)  # once, however many sessions the account has
                for push in list(pushes):
                    push(data)

    def _on_group(self) -> None:
        """After a journal group: settlement has work, and each account told of a report in
        it is told its balance once, as the group left it."""
        self.settler.wake()
        due, self._balances_due = self._balances_due, set()
        for account_id in due:
            self.tell_balance(account_id)

    def tell_balance(self, account_id: int) -> None:
        """Send the account's sessions what it can now use (after a fill, a deposit…)."""
        risk, pushes = self.engine.risk, self._subscribers.get(account_id)
        if risk is None or not pushes:
            return
        message = _encode(BalanceUpdate(risk.available_fen(account_id), risk.free_t(account_id)))
        for push in list(pushes):
            push(message)


def _per_block(selection: ByRanges | ByBlocks) -> dict[str, int]:
    if isinstance(selection, ByBlocks):
        return dict(selection.quantities)
    per_block: defaultdict[str, int] = defaultdict(int)
    for item in selection.ranges:
        per_block[item.block_id] += item.last - item.first + 1
    return dict(per_block)


EXCHANGE_KEY = web.AppKey("exchange", Exchange)
_encode = msgspec.json.Encoder().encode
_KINDS = {kind: kind.__struct_config__.tag for kind in get_args(Event)}
