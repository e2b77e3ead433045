"""The sequencer: every order input checked, reserved, journaled, then applied to its book.

    request → instrument and client-order-id checks → risk reservation → journal (group commit)
            → book.submit → risk and ledger feed follow the events → the caller gets the events

Entries are applied strictly in journal order by one task, and only once durable, so nothing an
input causes can leave the process before the input could be replayed. The task waits once per
journal group and applies the group's entries in one go, each caller told through the `Done`
callback it gave (the `submit_*` methods, for the WebSocket sessions) or through a future (the
`async` methods). A journal write that fails is never applied: its reservation is returned and
its caller told; the journal and the books stay consistent (the entry is in neither). Recovery
replays the journal through `replay`, which drives the books and the ledger feed exactly as the
live path did, without the risk view (rebuilt from the ledger once it has caught up).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence

import msgspec

from exchange.errors import ErrorCode, ExchangeError
from exchange.instruments import Instrument
from exchange.journal import Entry, Journal, JournalError
from exchange.ledger_feed import BatchBuilder
from exchange.risk import RiskView
from exchange.snapshots import ClientOrder, ExchangeSnapshot, LiveOrder
from matching import (
    Accepted,
    Amend,
    Amended,
    Cancel,
    CancelAll,
    Cancelled,
    Command,
    Event,
    NewOrder,
    OrderBook,
    OrderType,
    Rejected,
    Side,
    StpMode,
    TimeInForce,
    Trade,
)
from settlement.adjusts import OrderAdjust
from settlement.batches import OrderLock
from settlement.dvp import BASIS_POINTS, fees
from settlement.errors import LedgerError
from settlement.values import TradeToSettle

log = logging.getLogger(__name__)


class OrderRequest(msgspec.Struct, frozen=True):
    """What a client asks for; the exchange adds the ids and the time."""

    symbol: str
    cl_ord_id: str
    side: Side
    quantity_t: int
    price_fen: int | None = None
    order_type: OrderType = OrderType.LIMIT
    tif: TimeInForce = TimeInForce.GTC
    post_only: bool = False
    stp: StpMode = StpMode.CANCEL_NEWEST


class _Order:
    """What the exchange remembers of a live order beyond the book: enough to size an amend's
    reservation. `reserved` (tonnes for a sell, fen for a buy) follows the journal alone, so a
    replay hands the ledger the same adjustments as the live run did."""

    __slots__ = ("account_id", "leaves_t", "price_fen", "quantity_t", "reserved", "side", "symbol")

    def __init__(
        self,
        symbol: str,
        account_id: int,
        side: Side,
        quantity_t: int,
        price_fen: int | None,
        reserved: int,
    ) -> None:
        self.symbol = symbol
        self.account_id = account_id
        self.side = side
        self.quantity_t = quantity_t
        self.leaves_t = quantity_t
        self.price_fen = price_fen
        self.reserved = reserved


Listener = Callable[[Entry, list[Event]], None]
Done = Callable[[list[Event], Exception | None], None]
"""Told the events an entry caused once it is applied, or why it never will be."""


class Engine:
    def __init__(
        self,
        instruments: list[Instrument],
        journal: Journal,
        feed: BatchBuilder,
        *,
        last_seq: int = 0,
        last_order_id: int = 0,
        clock: Callable[[], int] = time.time_ns,
        on_match: Callable[[float], None] | None = None,
    ) -> None:
        self.instruments = {i.symbol: i for i in instruments}
        self.books = {i.symbol: OrderBook(i.rules, i.reference_price_fen) for i in instruments}
        self.risk: RiskView | None = None  # set once the ledger has caught up (see `go_live`)
        self.listeners: list[Listener] = []
        # told after each journal group is applied, its callers answered (not during a replay)
        self.group_listeners: list[Callable[[], None]] = []
        self._journal = journal
        self._feed = feed
        self._seq = last_seq
        self._order_ids = last_order_id
        self._clock = clock
        self._on_match = on_match  # told how long each book.submit took, for metrics
        self._last_ts = 0
        self._orders: dict[int, _Order] = {}
        self._by_cl_ord: dict[tuple[int, str], ClientOrder] = {}
        # every applied new order's client order id, in journal order: only ever appended to, so
        # a snapshot stores just what was added since the one before (`exchange.snapshots`)
        self.client_orders: list[ClientOrder] = []
        # entries waiting for the journal, in runs that share a journal group's future
        self._groups: deque[tuple[asyncio.Future[None], list[tuple[Entry, Done]]]] = deque()
        self._applier: asyncio.Task[None] | None = None
        self._broken: Exception | None = None
        self.applied_seq = last_seq  # the last entry applied to its book
        self._applied_order_id = last_order_id  # the highest order id among applied entries

    # -- requests ------------------------------------------------------------------------------

    def submit_order(self, account_id: int, request: OrderRequest, done: Done) -> int:
        """Enter an order; its id. `done` is told the events it caused once applied; a repeated
        client order id with the same request is told no events (on the next loop iteration),
        with another request refused at once (`DUPLICATE_CL_ORD_ID`, raised)."""
        instrument = self._instrument(request.symbol)
        known = self._by_cl_ord.get((account_id, request.cl_ord_id))
        if known is not None:
            order_id = known.command.order_id
            if known.symbol != request.symbol or _request_of(known.command, request) != request:
                raise ExchangeError(
                    ErrorCode.DUPLICATE_CL_ORD_ID,
                    f"client order id {request.cl_ord_id!r} names another order",
                )
            asyncio.get_running_loop().call_soon(done, [], None)
            return order_id
        self._order_ids += 1
        order_id = self._order_ids
        command = NewOrder(
            self._now(),
            order_id,
            account_id,
            request.side,
            request.quantity_t,
            request.price_fen,
            request.order_type,
            request.tif,
            request.post_only,
            request.stp,
        )
        reserved_t, reserved_fen = self._reserve(instrument, command)
        self._by_cl_ord[account_id, request.cl_ord_id] = ClientOrder(
            account_id, request.cl_ord_id, request.symbol, command
        )
        entry = Entry(
            self._next_seq(), request.symbol, command, request.cl_ord_id, reserved_t, reserved_fen
        )
        self._sequence(entry, done)
        return order_id

    def submit_cancel(self, account_id: int, symbol: str, order_id: int, done: Done) -> None:
        self._instrument(symbol)
        command = Cancel(self._now(), order_id, account_id)
        self._sequence(Entry(self._next_seq(), symbol, command), done)

    def submit_amend(
        self,
        account_id: int,
        symbol: str,
        order_id: int,
        quantity_t: int,
        price_fen: int | None,
        done: Done,
    ) -> None:
        """Change a resting order's total quantity and, optionally, its price. What the new
        terms need beyond the order's reservation is held first (refused if the account lacks
        it); what they no longer need comes back once the book has amended the order."""
        instrument = self._instrument(symbol)
        command = Amend(self._now(), order_id, account_id, quantity_t, price_fen)
        # the hold is named by the entry's sequence number, taken only once the hold stands so
        # that a refused amend leaves no gap in the journal
        grow_t, grow_fen = self._hold(instrument, self._seq + 1, command)
        entry = Entry(self._next_seq(), symbol, command, None, grow_t, grow_fen)
        self._sequence(entry, done)

    def submit(self, symbol: str, command: Command, done: Done) -> None:
        """Any command for one book: an operator's (halt, resume, auction, end of day) or a
        cancel-all."""
        self._instrument(symbol)
        self._sequence(Entry(self._next_seq(), symbol, command), done)

    async def new_order(self, account_id: int, request: OrderRequest) -> tuple[int, list[Event]]:
        """Enter an order; its id and the events it caused. A repeated client order id with the
        same request returns the first order's id and no new events."""
        waiter = _Waiter()
        order_id = self.submit_order(account_id, request, waiter)
        return order_id, await waiter.future

    async def cancel(self, account_id: int, symbol: str, order_id: int) -> list[Event]:
        waiter = _Waiter()
        self.submit_cancel(account_id, symbol, order_id, waiter)
        return await waiter.future

    async def amend(
        self,
        account_id: int,
        symbol: str,
        order_id: int,
        quantity_t: int,
        price_fen: int | None = None,
    ) -> list[Event]:
        """`submit_amend`, waited for."""
        waiter = _Waiter()
        self.submit_amend(account_id, symbol, order_id, quantity_t, price_fen, waiter)
        return await waiter.future

    async def cancel_all(self, account_id: int, symbol: str) -> list[Event]:
        return await self.operate(symbol, CancelAll(self._now(), account_id))

    async def operate(self, symbol: str, command: Command) -> list[Event]:
        """An operator's command (halt, resume, auction, end of day) for one book."""
        waiter = _Waiter()
        self.submit(symbol, command, waiter)
        return await waiter.future

    async def drain(self) -> None:
        """Return once every entry sequenced so far has been applied (or has failed)."""
        while self._applier is not None and not self._applier.done():
            await asyncio.wait([self._applier])

    def order_id_for(self, account_id: int, cl_ord_id: str) -> int | None:
        known = self._by_cl_ord.get((account_id, cl_ord_id))
        return known.command.order_id if known else None

    def now_ns(self) -> int:
        return self._now()

    # -- recovery ------------------------------------------------------------------------------

    def replay(self, entry: Entry) -> list[Event]:
        """Apply a journaled entry during recovery, before the risk view exists."""
        if isinstance(entry.command, NewOrder) and entry.cl_ord_id is not None:
            account_id = entry.command.account_id
            self._by_cl_ord[account_id, entry.cl_ord_id] = ClientOrder(
                account_id, entry.cl_ord_id, entry.symbol, entry.command
            )
            self._order_ids = max(self._order_ids, entry.command.order_id)
        self._seq = max(self._seq, entry.seq)
        return self._apply(entry)

    def go_live(self, risk: RiskView) -> None:
        self.risk = risk

    def check_invariants(self) -> None:
        """Raise AssertionError if the books, the engine's orders, the risk view and the ledger
        feed disagree. Call between entries (no entry in flight)."""
        resting: dict[int, int] = {}
        for book in self.books.values():
            book.check_invariants()
            resting.update((o.order_id, o.leaves_t) for o in book.resting_orders())
        live = {order_id: order.leaves_t for order_id, order in self._orders.items()}
        if live != resting:
            raise AssertionError(f"live orders {live} but resting {resting}")
        self._feed.check_invariants()
        risk = self.risk
        if risk is None:
            return
        risk.check_invariants()
        for order_id, order in self._orders.items():
            t, fen = risk.reserved(order_id)
            reserved = t if order.side is Side.SELL else fen
            if reserved != order.reserved or order.reserved < 0:
                raise AssertionError(
                    f"order {order_id}: {order.reserved} reserved, the risk view has {reserved}"
                )

    # -- snapshots -----------------------------------------------------------------------------

    def capture(self) -> ExchangeSnapshot:
        """The state after the last applied entry (the reports' and schedule's parts empty):
        client order ids of orders not yet applied are left out, as a replay would."""
        last_order_id = self._applied_order_id
        return ExchangeSnapshot(
            self.applied_seq,
            last_order_id,
            {symbol: book.snapshot() for symbol, book in self.books.items()},
            [
                LiveOrder(
                    order_id,
                    o.symbol,
                    o.account_id,
                    o.side,
                    o.quantity_t,
                    o.leaves_t,
                    o.price_fen,
                    o.reserved,
                    None,
                    0,
                )
                for order_id, o in self._orders.items()
            ],
            len(self.client_orders),
            {},
        )

    def restore(self, snapshot: ExchangeSnapshot, client_orders: Sequence[ClientOrder]) -> None:
        """Start from `snapshot` and its client orders instead of empty books (before any
        replay)."""
        for symbol, book in snapshot.books.items():
            if symbol in self.books:
                self.books[symbol] = OrderBook.restore(book)
        for o in snapshot.orders:
            order = _Order(o.symbol, o.account_id, o.side, o.quantity_t, o.price_fen, o.reserved)
            order.leaves_t = o.leaves_t
            self._orders[o.order_id] = order
        self.client_orders = list(client_orders)
        for c in client_orders:
            self._by_cl_ord[c.account_id, c.cl_ord_id] = c
        self._seq = self.applied_seq = snapshot.seq
        self._order_ids = self._applied_order_id = snapshot.last_order_id

    # -- the sequence --------------------------------------------------------------------------

    def _instrument(self, symbol: str) -> Instrument:
        instrument = self.instruments.get(symbol)
        if instrument is None:
            raise ExchangeError(ErrorCode.UNKNOWN_INSTRUMENT, f"no instrument {symbol!r}")
        return instrument

    def _now(self) -> int:
        # strictly increasing, so journal order and time order agree even if the clock steps back
        self._last_ts = max(self._clock(), self._last_ts + 1)
        return self._last_ts

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def _reserve(self, instrument: Instrument, command: NewOrder) -> tuple[int, int]:
        risk = self.risk
        if risk is None:
            raise ExchangeError(
                ErrorCode.EXCHANGE_NOT_READY, "the exchange is recovering; try again"
            )
        if command.quantity_t <= 0:
            return 0, 0  # the book refuses it with its own code; nothing to reserve
        try:
            if command.side is Side.SELL:
                risk.reserve_sell(
                    command.order_id, command.account_id, command.quantity_t, instrument.only
                )
                return command.quantity_t, 0
            limit = command.price_fen
            if limit is None or command.order_type is OrderType.MARKET:
                limit = self.books[instrument.symbol].band[1]
            fen = _buy_reserve(instrument, limit, command.quantity_t)
            risk.reserve_buy(command.order_id, command.account_id, fen)
            return 0, fen
        except LedgerError as error:
            raise ExchangeError(str(error.code), error.message) from None

    def _hold(self, instrument: Instrument, seq: int, command: Amend) -> tuple[int, int]:
        """Hold what an amend needs beyond the order's reservation, as its fills stand now
        (fills still in flight only lower the need). An amend the book will refuse (no such
        order, another account's) holds nothing."""
        risk = self.risk
        if risk is None:
            raise ExchangeError(
                ErrorCode.EXCHANGE_NOT_READY, "the exchange is recovering; try again"
            )
        order = self._orders.get(command.order_id)
        if order is None or order.account_id != command.account_id:
            return 0, 0
        if order.symbol != instrument.symbol:
            return 0, 0
        leaves = command.quantity_t - (order.quantity_t - order.leaves_t)
        price = order.price_fen if command.price_fen is None else command.price_fen
        if leaves <= 0 or price is None:
            return 0, 0
        more = _need(instrument, order.side, price, leaves) - order.reserved
        if more <= 0:
            return 0, 0
        try:
            if order.side is Side.SELL:
                risk.hold_sell(seq, order.account_id, more, instrument.only)
                return more, 0
            risk.hold_buy(seq, order.account_id, more)
            return 0, more
        except LedgerError as error:
            raise ExchangeError(str(error.code), error.message) from None

    def _sequence(self, entry: Entry, done: Done) -> None:
        if self._broken is not None:
            self._unjournaled(entry)
            raise ExchangeError(
                ErrorCode.EXCHANGE_HALTED, f"stopped after an internal error: {self._broken!r}"
            )
        durable = self._journal.append(entry)
        groups = self._groups
        if groups and groups[-1][0] is durable:
            groups[-1][1].append((entry, done))
        else:
            groups.append((durable, [(entry, done)]))
        if self._applier is None or self._applier.done():
            self._applier = asyncio.create_task(self._apply_in_order(), name="engine-applier")

    async def _apply_in_order(self) -> None:
        groups = self._groups
        while groups:
            durable, entries = groups[0]
            try:
                await durable
            except JournalError as error:
                groups.popleft()
                for entry, done in entries:
                    self._unjournaled(entry)
                    _tell(done, [], error)
                continue
            groups.popleft()
            for at, (entry, done) in enumerate(entries):
                try:
                    events = self._apply(entry)
                except Exception as error:
                    # A durable entry the exchange could not follow: a bug. Stop taking input
                    # rather than carry on from a state the journal does not describe; a
                    # restart replays.
                    self._broken = error
                    for _, waiting in entries[at:]:
                        _tell(waiting, [], error)
                    while groups:
                        for _, waiting in groups.popleft()[1]:
                            _tell(waiting, [], error)
                    return
                _tell(done, events, None)
            for listener in self.group_listeners:
                listener()

    def _apply(self, entry: Entry) -> list[Event]:
        self.applied_seq = entry.seq
        command = entry.command
        if isinstance(command, NewOrder):
            self._applied_order_id = max(self._applied_order_id, command.order_id)
            if entry.cl_ord_id is not None:
                self.client_orders.append(self._by_cl_ord[command.account_id, entry.cl_ord_id])
        instrument = self.instruments[entry.symbol]
        started = time.perf_counter()
        events = self.books[entry.symbol].submit(entry.command)
        if self._on_match is not None:
            self._on_match(time.perf_counter() - started)
        finished: list[int] = []
        for event in events:
            if isinstance(event, Accepted):
                self._accepted(entry, event)
            elif isinstance(event, Trade):
                self._traded(instrument, event, finished)
            elif isinstance(event, Cancelled):
                self._orders[event.order_id].leaves_t = 0
                finished.append(event.order_id)
            elif isinstance(event, Amended):
                self._amended(instrument, entry, event)
            elif isinstance(event, Rejected):
                self._refused(entry)
        self._finished(finished)
        for listener in self.listeners:
            listener(entry, events)
        return events

    def _finished(self, order_ids: list[int]) -> None:
        """Orders done (filled or cancelled): what they still hold goes back."""
        for order_id in order_ids:
            order = self._orders.pop(order_id, None)
            if order is not None:
                if self.risk is not None:
                    self.risk.release(order_id)
                back = order.reserved if order.side is Side.SELL else 0
                self._feed.release(order_id, order.account_id, tonnes_back=back)

    def _unjournaled(self, entry: Entry) -> None:
        """Forget an input that never reached the journal: what it reserved, and its client
        order id (a new order sent again with it is a new order)."""
        self._refused(entry)
        command = entry.command
        if isinstance(command, NewOrder) and entry.cl_ord_id is not None:
            key = (command.account_id, entry.cl_ord_id)
            known = self._by_cl_ord.get(key)
            if known is not None and known.command.order_id == command.order_id:
                del self._by_cl_ord[key]

    def _refused(self, entry: Entry) -> None:
        """Give back what the refused input reserved or held (nothing reached the ledger)."""
        if self.risk is None:
            return
        if isinstance(entry.command, NewOrder):
            self.risk.release(entry.command.order_id)
        elif isinstance(entry.command, Amend):
            self.risk.unhold(entry.seq)

    def _accepted(self, entry: Entry, event: Accepted) -> None:
        reserved = entry.reserved_t if event.side is Side.SELL else entry.reserved_fen
        self._orders[event.order_id] = _Order(
            entry.symbol, event.account_id, event.side, event.quantity_t, event.price_fen, reserved
        )
        instrument = self.instruments[entry.symbol]
        self._feed.lock(
            OrderLock(
                event.order_id,
                event.account_id,
                quantity_t=entry.reserved_t,
                amount_fen=entry.reserved_fen,
                only=instrument.only,
            )
        )

    def _amended(self, instrument: Instrument, entry: Entry, event: Amended) -> None:
        """Fit the order's reservation to its new terms: add what the amend held, give back
        what the new terms do not need, and tell the ledger the difference."""
        order = self._orders[event.order_id]
        order.quantity_t, order.leaves_t, order.price_fen = (
            event.quantity_t,
            event.leaves_t,
            event.price_fen,
        )
        grown = entry.reserved_t or entry.reserved_fen
        order.reserved += grown
        risk = self.risk
        if risk is not None and grown:
            risk.grow(entry.seq, event.order_id)
        excess = order.reserved - _need(instrument, order.side, event.price_fen, event.leaves_t)
        if excess > 0:
            order.reserved -= excess
            if risk is not None:
                if order.side is Side.SELL:
                    risk.trim(event.order_id, tonnes=excess)
                else:
                    risk.trim(event.order_id, fen=excess)
        change = grown - max(excess, 0)
        if change:
            sell = order.side is Side.SELL
            self._feed.adjust(
                OrderAdjust(
                    entry.seq,
                    event.order_id,
                    order.account_id,
                    quantity_t=change if sell else 0,
                    amount_fen=0 if sell else change,
                    only=instrument.only,
                )
            )

    def _traded(self, instrument: Instrument, event: Trade, finished: list[int]) -> None:
        maker, taker = self._orders[event.maker_order_id], self._orders[event.taker_order_id]
        maker.leaves_t, taker.leaves_t = event.maker_leaves_t, event.taker_leaves_t
        if maker.side is Side.BUY:
            buy_order, sell_order = event.maker_order_id, event.taker_order_id
            buyer, seller = event.maker_account_id, event.taker_account_id
        else:
            buy_order, sell_order = event.taker_order_id, event.maker_order_id
            buyer, seller = event.taker_account_id, event.maker_account_id
        trade = TradeToSettle(
            instrument.trade_id(event.trade_id),
            buy_order,
            sell_order,
            buyer,
            seller,
            event.price_fen,
            event.quantity_t,
            instrument.buyer_fee_bp,
            instrument.seller_fee_bp,
        )
        buyer_fee, _ = fees(trade)
        self._orders[buy_order].reserved -= trade.price_fen * trade.quantity_t + buyer_fee
        self._orders[sell_order].reserved -= trade.quantity_t
        if self.risk is not None:
            self.risk.fill(trade)
        self._feed.trade(trade)
        for order_id, leaves in (
            (event.maker_order_id, event.maker_leaves_t),
            (event.taker_order_id, event.taker_leaves_t),
        ):
            if not leaves:
                finished.append(order_id)

    def add_instrument(self, instrument: Instrument) -> None:
        """Trade a newly listed instrument: an empty book, open. Market data and reports hold
        these same dicts, so they know the symbol at once."""
        if instrument.symbol in self.instruments:
            raise ValueError(f"{instrument.symbol} has a book already")
        self.instruments[instrument.symbol] = instrument
        self.books[instrument.symbol] = OrderBook(instrument.rules, instrument.reference_price_fen)


def _buy_reserve(instrument: Instrument, limit_fen: int, quantity_t: int) -> int:
    """Cash a buy of `quantity_t` at up to `limit_fen` reserves: notional and fee, plus a fen a
    tonne, because each fill's fee is rounded on its own (half up): over k fills they can exceed
    the fee on the whole by up to k/2 fen, and an order has at most one fill per tonne."""
    notional = max(limit_fen, 0) * quantity_t
    return notional + -(-notional * instrument.buyer_fee_bp // BASIS_POINTS) + quantity_t


def _need(instrument: Instrument, side: Side, price_fen: int, leaves_t: int) -> int:
    """What a resting order of `leaves_t` at `price_fen` must have reserved: tonnes or fen."""
    return leaves_t if side is Side.SELL else _buy_reserve(instrument, price_fen, leaves_t)


class _Waiter:
    """A `Done` that resolves a future, for the callers that await."""

    __slots__ = ("future",)

    def __init__(self) -> None:
        self.future: asyncio.Future[list[Event]] = asyncio.get_running_loop().create_future()

    def __call__(self, events: list[Event], error: Exception | None) -> None:
        if self.future.done():
            return  # the caller stopped waiting (its wait was cancelled)
        if error is not None:
            self.future.set_exception(error)
        else:
            self.future.set_result(events)


def _tell(done: Done, events: list[Event], error: Exception | None) -> None:
    """Tell a caller; one that fails must not stop the entries after its own."""
    try:
        done(events, error)
    except Exception:
        log.exception("a caller failed on being told of its entry")


def _request_of(command: NewOrder, request: OrderRequest) -> OrderRequest:
    return OrderRequest(
        request.symbol,
        request.cl_ord_id,
        command.side,
        command.quantity_t,
        command.price_fen,
        command.order_type,
        command.tif,
        command.post_only,
        command.stp,
    )
