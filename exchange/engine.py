"""The sequencer: every order input checked, reserved, journaled, then applied to its book.

    request → instrument and client-order-id checks → risk reservation → journal (group commit)
            → book.submit → risk and ledger feed follow the events → the caller gets the events

Entries are applied strictly in journal order by one task, and only once durable, so nothing an
input causes can leave the process before the input could be replayed. A journal write that
fails is never applied: its reservation is returned and its caller told; the journal and the
books stay consistent (the entry is in neither). Recovery replays the journal through `replay`,
which drives the books and the ledger feed exactly as the live path did, without the risk view
(rebuilt from the ledger once it has caught up).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable

import msgspec

from exchange.errors import ErrorCode, ExchangeError
from exchange.instruments import Instrument
from exchange.journal import Entry, Journal, JournalError
from exchange.ledger_feed import BatchBuilder
from exchange.risk import RiskView
from matching import (
    Accepted,
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
from settlement.batches import OrderLock
from settlement.dvp import BASIS_POINTS
from settlement.errors import LedgerError
from settlement.values import TradeToSettle


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
    """What the exchange remembers of a live order beyond the book."""

    __slots__ = ("account_id", "leaves_t", "side")

    def __init__(self, account_id: int, side: Side, leaves_t: int) -> None:
        self.account_id = account_id
        self.side = side
        self.leaves_t = leaves_t


Listener = Callable[[Entry, list[Event]], None]


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
        self._journal = journal
        self._feed = feed
        self._seq = last_seq
        self._order_ids = last_order_id
        self._clock = clock
        self._on_match = on_match  # told how long each book.submit took, for metrics
        self._last_ts = 0
        self._orders: dict[int, _Order] = {}
        self._by_cl_ord: dict[tuple[int, str], tuple[NewOrder, str, int]] = {}
        self._inflight: deque[tuple[Entry, asyncio.Future[None], asyncio.Future[list[Event]]]]
        self._inflight = deque()
        self._applier: asyncio.Task[None] | None = None
        self._broken: Exception | None = None

    # -- requests ------------------------------------------------------------------------------

    async def new_order(self, account_id: int, request: OrderRequest) -> tuple[int, list[Event]]:
        """Enter an order; its id and the events it caused. A repeated client order id with the
        same request returns the first order's id and no new events."""
        instrument = self._instrument(request.symbol)
        known = self._by_cl_ord.get((account_id, request.cl_ord_id))
        if known is not None:
            command, symbol, order_id = known
            if symbol != request.symbol or _request_of(command, request) != request:
                raise ExchangeError(
                    ErrorCode.DUPLICATE_CL_ORD_ID,
                    f"client order id {request.cl_ord_id!r} names another order",
                )
            return order_id, []
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
        self._by_cl_ord[account_id, request.cl_ord_id] = (command, request.symbol, order_id)
        entry = Entry(
            self._next_seq(), request.symbol, command, request.cl_ord_id, reserved_t, reserved_fen
        )
        try:
            return order_id, await self._sequence(entry)
        except JournalError:
            del self._by_cl_ord[account_id, request.cl_ord_id]
            raise

    async def cancel(self, account_id: int, symbol: str, order_id: int) -> list[Event]:
        self._instrument(symbol)
        command = Cancel(self._now(), order_id, account_id)
        return await self._sequence(Entry(self._next_seq(), symbol, command))

    async def cancel_all(self, account_id: int, symbol: str) -> list[Event]:
        self._instrument(symbol)
        command = CancelAll(self._now(), account_id)
        return await self._sequence(Entry(self._next_seq(), symbol, command))

    async def operate(self, symbol: str, command: Command) -> list[Event]:
        """An operator's command (halt, resume, auction, end of day) for one book."""
        self._instrument(symbol)
        return await self._sequence(Entry(self._next_seq(), symbol, command))

    def order_id_for(self, account_id: int, cl_ord_id: str) -> int | None:
        known = self._by_cl_ord.get((account_id, cl_ord_id))
        return known[2] if known else None

    def now_ns(self) -> int:
        return self._now()

    # -- recovery ------------------------------------------------------------------------------

    def replay(self, entry: Entry) -> list[Event]:
        """Apply a journaled entry during recovery, before the risk view exists."""
        if isinstance(entry.command, NewOrder) and entry.cl_ord_id is not None:
            key = (entry.command.account_id, entry.cl_ord_id)
            self._by_cl_ord[key] = (entry.command, entry.symbol, entry.command.order_id)
            self._order_ids = max(self._order_ids, entry.command.order_id)
        self._seq = max(self._seq, entry.seq)
        return self._apply(entry)

    def go_live(self, risk: RiskView) -> None:
        self.risk = risk

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
            notional = max(limit, 0) * command.quantity_t
            # Each fill's fee is rounded on its own, half up: over k fills they can exceed the fee
            # on the whole by up to k/2 fen, and an order has at most one fill per tonne.
            fee = -(-notional * instrument.buyer_fee_bp // BASIS_POINTS) + command.quantity_t
            fen = notional + fee
            risk.reserve_buy(command.order_id, command.account_id, fen)
            return 0, fen
        except LedgerError as error:
            raise ExchangeError(str(error.code), error.message) from None

    async def _sequence(self, entry: Entry) -> list[Event]:
        if self._broken is not None:
            raise ExchangeError(
                ErrorCode.EXCHANGE_HALTED, f"stopped after an internal error: {self._broken!r}"
            )
        loop = asyncio.get_running_loop()
        result: asyncio.Future[list[Event]] = loop.create_future()
        self._inflight.append((entry, self._journal.append(entry), result))
        if self._applier is None or self._applier.done():
            self._applier = asyncio.create_task(self._apply_in_order(), name="engine-applier")
        # a caller that gives up (a closed session) cancels only its wait: the entry is
        # journaled and is applied all the same (see `_settle`)
        return await result

    async def _apply_in_order(self) -> None:
        while self._inflight:
            entry, durable, result = self._inflight[0]
            try:
                await durable
            except JournalError as error:
                self._inflight.popleft()
                if isinstance(entry.command, NewOrder) and self.risk is not None:
                    self.risk.release(entry.command.order_id)
                _settle(result, error=error)
                continue
            self._inflight.popleft()
            try:
                _settle(result, self._apply(entry))
            except Exception as error:
                # A durable entry the exchange could not follow: a bug. Stop taking input rather
                # than carry on from a state the journal does not describe; a restart replays.
                self._broken = error
                _settle(result, error=error)
                while self._inflight:
                    _settle(self._inflight.popleft()[2], error=error)

    def _apply(self, entry: Entry) -> list[Event]:
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
                self._orders[event.order_id].leaves_t = event.leaves_t
            elif (
                isinstance(event, Rejected)
                and isinstance(entry.command, NewOrder)
                and self.risk is not None
            ):
                self.risk.release(entry.command.order_id)
        for order_id in finished:
            order = self._orders.pop(order_id, None)
            if order is not None:
                if self.risk is not None:
                    self.risk.release(order_id)
                self._feed.release(order_id, order.account_id, tonnes=order.side is Side.SELL)
        for listener in self.listeners:
            listener(entry, events)
        return events

    def _accepted(self, entry: Entry, event: Accepted) -> None:
        self._orders[event.order_id] = _Order(event.account_id, event.side, event.quantity_t)
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
        if self.risk is not None:
            self.risk.fill(trade)
        self._feed.trade(trade)
        for order_id, leaves in (
            (event.maker_order_id, event.maker_leaves_t),
            (event.taker_order_id, event.taker_leaves_t),
        ):
            if not leaves:
                finished.append(order_id)


def _settle(
    result: asyncio.Future[list[Event]],
    events: list[Event] | None = None,
    error: Exception | None = None,
) -> None:
    """Tell the caller, unless it stopped waiting (its wait was cancelled)."""
    if result.done():
        return
    if error is not None:
        result.set_exception(error)
    else:
        result.set_result(events or [])


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
