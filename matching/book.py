"""One instrument's order book: price-time priority matching, commands in, events out.

The book owns its resting orders, its trading status, the reference price that sets its band, the
session's trade statistics and two counters: the event sequence number and the trade id. Nothing
else changes it; `submit` is the only door. The full semantics (check precedence, event order,
self-trade prevention, amend, auction, end of day) are in docs/matching.md; this module follows it
top to bottom.

Invariants (`check_invariants` proves them; tests call it after every command):
- every level is non-empty, its quantity is the sum of its orders' leaves, every resting order has
  leaves > 0 and sits in exactly one level, on its own side at its own price, and in the index;
- each side's heap top is its best live price;
- while the book is open it is not crossed (best bid < best ask).

Performance: the hot path is a new limit order that rests, a cancel and a crossing order. Each side
is a dict of levels plus a heap of prices with lazy deletion (see docs/matching.md for the
measurement behind it); a level's FIFO is a dict in insertion order; orders and events are
msgspec structs, built positionally. Ordered walks beyond the best level (FOK, auction, cancel-all)
sort the level keys: rare commands pay for them, the common ones do not.
"""

from __future__ import annotations

from collections.abc import Iterator
from heapq import heapify, heappop, heappush

from msgspec.structs import replace

from matching.auction import uncross_price
from matching.commands import (
    Amend,
    Cancel,
    CancelAll,
    Command,
    EndOfDay,
    Halt,
    NewOrder,
    Resume,
    StartAuction,
    Uncross,
)
from matching.events import (
    Accepted,
    Amended,
    Cancelled,
    CancelReason,
    Event,
    LevelChanged,
    RejectCode,
    Rejected,
    SessionClosed,
    StatusChanged,
    Trade,
    Uncrossed,
)
from matching.orders import RestingOrder
from matching.rules import InstrumentRules, price_band, round_half_up
from matching.snapshot import BookSnapshot
from matching.values import ClosePriceRule, OrderType, Side, StpMode, TimeInForce, TradingStatus

BUY = Side.BUY
SELL = Side.SELL
MARKET = OrderType.MARKET
GTC = TimeInForce.GTC
IOC = TimeInForce.IOC
FOK = TimeInForce.FOK
DAY = TimeInForce.DAY
CANCEL_NEWEST = StpMode.CANCEL_NEWEST
CANCEL_OLDEST = StpMode.CANCEL_OLDEST
OPEN = TradingStatus.OPEN
HALTED = TradingStatus.HALTED
AUCTION = TradingStatus.AUCTION
R = RejectCode


class BookInvariantError(Exception):
    """A broken invariant: the book can no longer be trusted with tonnes or money."""


class Level:
    """Orders resting at one price, FIFO by insertion into `orders`."""

    __slots__ = ("orders", "price_fen", "quantity_t")

    def __init__(self, price_fen: int) -> None:
        self.price_fen = price_fen
        self.orders: dict[int, RestingOrder] = {}
        self.quantity_t = 0


class BookSide:
    """One side's levels by price, and a heap whose top is always the best live price.

    The heap holds `sign * price` (sign -1 for bids, so the highest bid is the smallest key).
    A level that empties below the top leaves a stale key behind; stale keys are dropped when
    they surface and the heap is rebuilt when they outnumber the live levels.
    """

    __slots__ = ("heap", "levels", "side", "sign")

    def __init__(self, side: Side) -> None:
        self.side = side
        self.sign = -1 if side is BUY else 1
        self.levels: dict[int, Level] = {}
        self.heap: list[int] = []

    def best(self) -> int | None:
        return self.heap[0] * self.sign if self.heap else None

    def level_at(self, price_fen: int) -> Level:
        """Return the level at a price, creating it if it does not exist."""
        level = self.levels.get(price_fen)
        if level is None:
            level = self.levels[price_fen] = Level(price_fen)
            heap = self.heap
            heappush(heap, self.sign * price_fen)
            if len(heap) > 2 * len(self.levels) + 64:
                self.heap = [self.sign * price for price in self.levels]
                heapify(self.heap)
        return level

    def drop_level(self, price_fen: int) -> None:
        """Forget an empty level; keep the heap's top live."""
        levels = self.levels
        del levels[price_fen]
        heap = self.heap
        sign = self.sign
        if heap[0] == sign * price_fen:
            heappop(heap)
            while heap and heap[0] * sign not in levels:
                heappop(heap)

    def level_totals(self) -> dict[int, int]:
        return {price: level.quantity_t for price, level in self.levels.items()}

    def prices_best_first(self) -> list[int]:
        """O(L log L): for the rare commands that walk beyond the best level."""
        return sorted(self.levels, reverse=self.side is BUY)

    def orders_best_first(self) -> Iterator[RestingOrder]:
        levels = self.levels
        for price in self.prices_best_first():
            yield from levels[price].orders.values()


class OrderBook:
    """A single instrument's book. See the module docstring and docs/matching.md."""

    def __init__(self, rules: InstrumentRules, reference_price_fen: int) -> None:
        if reference_price_fen < 1:
            raise ValueError("reference_price_fen must be positive")
        self._rules = rules
        self._bids = BookSide(BUY)
        self._asks = BookSide(SELL)
        self._orders: dict[int, RestingOrder] = {}
        self._status = OPEN
        self._status_before_halt = OPEN
        self._seq = 0  # the last seq emitted
        self._trade_id = 0  # the last trade id used
        self._last_price_fen: int | None = None
        self._volume_t = 0
        self._notional_fen = 0
        self._set_reference(reference_price_fen)

    # -- reading -------------------------------------------------------------------------------

    @property
    def rules(self) -> InstrumentRules:
        return self._rules

    @property
    def status(self) -> TradingStatus:
        return self._status

    @property
    def reference_price_fen(self) -> int:
        return self._reference_price_fen

    @property
    def band(self) -> tuple[int, int]:
        return self._band_low_fen, self._band_high_fen

    @property
    def last_seq(self) -> int:
        return self._seq

    def best_bid(self) -> int | None:
        return self._bids.best()

    def best_ask(self) -> int | None:
        return self._asks.best()

    def depth(self, side: Side, levels: int) -> list[tuple[int, int, int]]:
        """Return up to `levels` (price, quantity, order count) rows, best first."""
        book_side = self._side(side)
        rows = []
        for price in book_side.prices_best_first()[:levels]:
            level = book_side.levels[price]
            rows.append((price, level.quantity_t, len(level.orders)))
        return rows

    def order(self, order_id: int) -> RestingOrder | None:
        order = self._orders.get(order_id)
        return None if order is None else replace(order)

    def resting_orders(self) -> list[RestingOrder]:
        """Copies of every resting order in book order: bids best first, then asks."""
        return [replace(order) for order in self._book_order()]

    # -- the one door ----------------------------------------------------------------------------

    def submit(self, command: Command) -> list[Event]:
        """Apply one command and return the events it caused, in order."""
        events: list[Event] = []
        match command:
            case NewOrder():
                self._new_order(command, events)
            case Cancel():
                self._cancel(command, events)
            case Amend():
                self._amend(command, events)
            case CancelAll():
                self._cancel_all(command, events)
            case EndOfDay():
                self._end_of_day(command, events)
            case Halt():
                self._halt(command, events)
            case Resume():
                self._resume(command, events)
            case StartAuction():
                self._start_auction(command, events)
            case Uncross():
                self._uncross(command, events)
        return events

    # -- new orders ----------------------------------------------------------------------------

    def _new_order(self, cmd: NewOrder, events: list[Event]) -> None:
        code = self._check_new_order(cmd)
        if code is not None:
            events.append(self._rejected(cmd.ts_ns, code, cmd.order_id, cmd.account_id))
            return
        side = cmd.side
        price = cmd.price_fen
        if price is None:  # a market order: its limit is the band's edge
            price = self._band_high_fen if side is BUY else self._band_low_fen
        self._seq = seq = self._seq + 1
        events.append(
            Accepted(
                seq, cmd.ts_ns, cmd.order_id, cmd.account_id, side, cmd.quantity_t, cmd.price_fen
            )
        )
        order = RestingOrder(
            cmd.order_id,
            cmd.account_id,
            side,
            price,
            cmd.quantity_t,
            0,
            cmd.tif,
            cmd.stp,
            cmd.post_only,
            seq,
        )
        if self._status is AUCTION:
            self._enter_auction(order, cmd.ts_ns, events)
            return
        # The common case, a passive order, goes straight to rest without the taker steps.
        if side is BUY:
            heap = self._asks.heap
            crosses = bool(heap) and heap[0] <= price
        else:
            heap = self._bids.heap
            crosses = bool(heap) and -heap[0] >= price
        if crosses:
            self._finish_taker(order, self._match(order, cmd.ts_ns, events), cmd.ts_ns, events)
        elif order.tif is IOC or order.tif is FOK:
            self._cancelled(order, CancelReason.IOC_REMAINDER, cmd.ts_ns, events)
        else:
            self._rest(order, cmd.ts_ns, events)

    def _check_new_order(self, cmd: NewOrder) -> RejectCode | None:
        """The checks of docs/matching.md, in precedence order."""
        status = self._status
        if status is HALTED:
            return R.BOOK_MUST_NOT_BE_HALTED
        if cmd.order_id in self._orders:
            return R.ORDER_ID_MUST_BE_UNIQUE
        code = self._check_quantity(cmd.quantity_t)
        if code is not None:
            return code
        tif = cmd.tif
        immediate = tif is IOC or tif is FOK
        if cmd.order_type is MARKET:
            if cmd.price_fen is not None:
                return R.PRICE_MUST_NOT_BE_GIVEN_FOR_MARKET
            if not immediate:
                return R.MARKET_ORDER_MUST_BE_IOC_OR_FOK
        else:
            code = self._check_price(cmd.price_fen)
            if code is not None:
                return code
        if cmd.post_only and immediate:
            return R.POST_ONLY_MUST_BE_RESTING_LIMIT
        if status is AUCTION:
            if immediate or cmd.post_only:
                return R.ORDER_MUST_REST_DURING_AUCTION
            return None
        return self._check_liquidity(cmd)

    def _check_quantity(self, quantity_t: int) -> RejectCode | None:
        rules = self._rules
        if quantity_t <= 0:
            return R.QUANTITY_MUST_BE_POSITIVE
        if quantity_t % rules.lot_t:
            return R.QUANTITY_MUST_BE_ON_LOT
        if not rules.min_quantity_t <= quantity_t <= rules.max_quantity_t:
            return R.QUANTITY_MUST_BE_WITHIN_LIMITS
        return None

    def _check_price(self, price_fen: int | None) -> RejectCode | None:
        if price_fen is None:
            return R.PRICE_MUST_BE_GIVEN_FOR_LIMIT
        if price_fen <= 0:
            return R.PRICE_MUST_BE_POSITIVE
        if price_fen % self._rules.tick_fen:
            return R.PRICE_MUST_BE_ON_TICK
        if not self._band_low_fen <= price_fen <= self._band_high_fen:
            return R.PRICE_MUST_BE_WITHIN_BAND
        return None

    def _check_liquidity(self, cmd: NewOrder) -> RejectCode | None:
        """Post-only and FOK checks, which look at the opposite side (book open only)."""
        if cmd.post_only:
            # post-only orders are limit orders by now, so the price is there
            if self._crosses(cmd.side, cmd.price_fen or 0):
                return R.POST_ONLY_MUST_NOT_CROSS
        elif cmd.tif is FOK and not self._fok_fillable(cmd):
            return R.FOK_MUST_FILL_COMPLETELY
        return None

    def _fok_fillable(self, cmd: NewOrder) -> bool:
        buying = cmd.side is BUY
        limit = cmd.price_fen
        if limit is None:
            limit = self._band_high_fen if buying else self._band_low_fen
        opposite = self._asks if buying else self._bids
        needed = cmd.quantity_t
        for price in opposite.prices_best_first():
            if (price > limit) if buying else (price < limit):
                return False
            for maker in opposite.levels[price].orders.values():
                if maker.account_id == cmd.account_id:
                    if cmd.stp is CANCEL_OLDEST:
                        continue
                    return False
                needed -= maker.leaves_t
                if needed <= 0:
                    return True
        return False

    def _crosses(self, side: Side, price_fen: int) -> bool:
        if side is BUY:
            heap = self._asks.heap
            return bool(heap) and heap[0] <= price_fen
        heap = self._bids.heap
        return bool(heap) and -heap[0] >= price_fen

    def _match(self, taker: RestingOrder, ts_ns: int, events: list[Event]) -> bool:
        """Match a taker against the opposite side; True when self-trade prevention stopped it.

        The taker's `price_fen` is its limit. Levels are visited best first while they cross.
        """
        buying = taker.side is BUY
        opposite = self._asks if buying else self._bids
        heap = opposite.heap
        sign = opposite.sign
        levels = opposite.levels
        index = self._orders
        limit = taker.price_fen
        account = taker.account_id
        while taker.leaves_t and heap:
            price = heap[0] * sign
            if (price > limit) if buying else (price < limit):
                break
            level = levels[price]
            orders = level.orders
            stopped = touched = False
            while True:
                maker = next(iter(orders.values()))
                if maker.account_id == account:
                    if taker.stp is CANCEL_NEWEST:
                        stopped = True
                        break
                    del orders[maker.order_id]
                    del index[maker.order_id]
                    level.quantity_t -= maker.leaves_t
                    touched = True
                    self._seq = seq = self._seq + 1
                    events.append(
                        Cancelled(
                            seq,
                            ts_ns,
                            maker.order_id,
                            account,
                            maker.leaves_t,
                            CancelReason.SELF_TRADE,
                        )
                    )
                    if taker.stp is not CANCEL_OLDEST:
                        stopped = True
                        break
                else:
                    quantity = min(maker.leaves_t, taker.leaves_t)
                    maker.leaves_t -= quantity
                    maker.filled_t += quantity
                    taker.leaves_t -= quantity
                    taker.filled_t += quantity
                    level.quantity_t -= quantity
                    touched = True
                    self._trade(price, quantity, maker, taker, taker.side, ts_ns, events)
                    if not maker.leaves_t:
                        del orders[maker.order_id]
                        del index[maker.order_id]
                if not orders or not taker.leaves_t:
                    break
            if touched:
                self._seq = seq = self._seq + 1
                events.append(
                    LevelChanged(
                        seq, ts_ns, opposite.side, price, level.quantity_t, len(level.orders)
                    )
                )
                if not orders:
                    opposite.drop_level(price)
            if stopped:
                return True
        return False

    def _finish_taker(
        self, order: RestingOrder, stopped: bool, ts_ns: int, events: list[Event]
    ) -> None:
        """Cancel or rest what is left of an order after matching."""
        if not order.leaves_t:
            return
        if stopped:
            self._cancelled(order, CancelReason.SELF_TRADE, ts_ns, events)
        elif order.tif is IOC or order.tif is FOK:
            self._cancelled(order, CancelReason.IOC_REMAINDER, ts_ns, events)
        else:
            self._rest(order, ts_ns, events)

    def _rest(self, order: RestingOrder, ts_ns: int, events: list[Event]) -> None:
        book_side = self._bids if order.side is BUY else self._asks
        level = book_side.level_at(order.price_fen)
        level.orders[order.order_id] = order
        level.quantity_t += order.leaves_t
        self._orders[order.order_id] = order
        self._level_changed(book_side.side, level, ts_ns, events)

    def _enter_auction(self, order: RestingOrder, ts_ns: int, events: list[Event]) -> None:
        """Self-trade prevention at auction entry, then rest: no matching until uncross."""
        buying = order.side is BUY
        limit = order.price_fen
        opposite = self._asks if buying else self._bids
        conflicts = [
            resting
            for resting in opposite.orders_best_first()
            if resting.account_id == order.account_id
            and ((resting.price_fen <= limit) if buying else (resting.price_fen >= limit))
        ]
        if conflicts:
            if order.stp is not CANCEL_NEWEST:
                for resting in conflicts:
                    self._cancel_resting(resting, CancelReason.SELF_TRADE, ts_ns, events)
            if order.stp is not CANCEL_OLDEST:
                self._cancelled(order, CancelReason.SELF_TRADE, ts_ns, events)
                return
        self._rest(order, ts_ns, events)

    # -- cancel and amend ----------------------------------------------------------------------

    def _cancel(self, cmd: Cancel, events: list[Event]) -> None:
        order = self._orders.get(cmd.order_id)
        if order is None:
            code = R.ORDER_MUST_EXIST
        elif order.account_id != cmd.account_id:
            code = R.ORDER_MUST_BELONG_TO_ACCOUNT
        else:
            self._cancel_resting(order, CancelReason.USER, cmd.ts_ns, events)
            return
        events.append(self._rejected(cmd.ts_ns, code, cmd.order_id, cmd.account_id))

    def _cancel_all(self, cmd: CancelAll, events: list[Event]) -> None:
        mine = [order for order in self._book_order() if order.account_id == cmd.account_id]
        if not mine:
            events.append(self._rejected(cmd.ts_ns, R.ORDER_MUST_EXIST, None, cmd.account_id))
        for order in mine:
            self._cancel_resting(order, CancelReason.USER, cmd.ts_ns, events)

    def _amend(self, cmd: Amend, events: list[Event]) -> None:
        code = self._check_amend(cmd)
        if code is not None:
            events.append(self._rejected(cmd.ts_ns, code, cmd.order_id, cmd.account_id))
            return
        order = self._orders[cmd.order_id]
        ts_ns = cmd.ts_ns
        old_price = order.price_fen
        new_price = old_price if cmd.price_fen is None else cmd.price_fen
        new_leaves = cmd.quantity_t - order.filled_t
        book_side = self._bids if order.side is BUY else self._asks
        level = book_side.levels[old_price]
        if new_price == old_price and new_leaves < order.leaves_t:
            level.quantity_t -= order.leaves_t - new_leaves
            order.leaves_t = new_leaves
            self._amended(order, True, ts_ns, events)
            self._level_changed(book_side.side, level, ts_ns, events)
            return
        del level.orders[order.order_id]
        level.quantity_t -= order.leaves_t
        order.leaves_t = new_leaves
        order.entry_seq = self._amended(order, False, ts_ns, events, price_fen=new_price)
        if new_price == old_price:  # quantity up: to the back of the same level
            level.orders[order.order_id] = order
            level.quantity_t += new_leaves
            self._level_changed(book_side.side, level, ts_ns, events)
            return
        del self._orders[order.order_id]
        self._level_changed(book_side.side, level, ts_ns, events)
        if not level.orders:
            book_side.drop_level(old_price)
        order.price_fen = new_price
        if self._status is AUCTION:
            self._enter_auction(order, ts_ns, events)
            return
        stopped = self._crosses(order.side, new_price) and self._match(order, ts_ns, events)
        self._finish_taker(order, stopped, ts_ns, events)

    def _check_amend(self, cmd: Amend) -> RejectCode | None:
        """The amend checks of docs/matching.md, in precedence order."""
        if self._status is HALTED:
            return R.BOOK_MUST_NOT_BE_HALTED
        order = self._orders.get(cmd.order_id)
        if order is None:
            return R.ORDER_MUST_EXIST
        if order.account_id != cmd.account_id:
            return R.ORDER_MUST_BELONG_TO_ACCOUNT
        code = self._check_quantity(cmd.quantity_t)
        if code is not None:
            return code
        if cmd.quantity_t <= order.filled_t:
            return R.AMEND_QUANTITY_MUST_EXCEED_FILLED
        if cmd.price_fen is not None:
            code = self._check_price(cmd.price_fen)
            if code is not None:
                return code
        new_price = order.price_fen if cmd.price_fen is None else cmd.price_fen
        if new_price == order.price_fen and cmd.quantity_t == order.quantity_t:
            return R.AMEND_MUST_CHANGE_ORDER
        if order.post_only and self._status is OPEN and self._crosses(order.side, new_price):
            return R.POST_ONLY_MUST_NOT_CROSS
        return None

    # -- status ----------------------------------------------------------------------------------

    def _halt(self, cmd: Halt, events: list[Event]) -> None:
        if self._status is HALTED:
            events.append(self._rejected(cmd.ts_ns, R.BOOK_MUST_NOT_BE_HALTED, None, None))
            return
        self._status_before_halt = self._status
        self._set_status(HALTED, cmd.ts_ns, events)
        if cmd.cancel_resting:
            for order in list(self._book_order()):
                self._cancel_resting(order, CancelReason.HALT, cmd.ts_ns, events)

    def _resume(self, cmd: Resume, events: list[Event]) -> None:
        if self._status is not HALTED:
            events.append(self._rejected(cmd.ts_ns, R.BOOK_MUST_BE_HALTED, None, None))
            return
        self._set_status(self._status_before_halt, cmd.ts_ns, events)

    def _start_auction(self, cmd: StartAuction, events: list[Event]) -> None:
        if self._status is HALTED:
            code = R.BOOK_MUST_NOT_BE_HALTED
        elif self._status is AUCTION:
            code = R.BOOK_MUST_NOT_BE_IN_AUCTION
        else:
            self._set_status(AUCTION, cmd.ts_ns, events)
            return
        events.append(self._rejected(cmd.ts_ns, code, None, None))

    def _uncross(self, cmd: Uncross, events: list[Event]) -> None:
        """Execute the call auction at the single price that maximises volume, then open."""
        ts_ns = cmd.ts_ns
        if self._status is not AUCTION:
            events.append(self._rejected(ts_ns, R.BOOK_MUST_BE_IN_AUCTION, None, None))
            return
        price, volume = uncross_price(
            self._bids.level_totals(), self._asks.level_totals(), self._reference_price_fen
        )
        self._seq = seq = self._seq + 1
        events.append(Uncrossed(seq, ts_ns, price if volume else None, volume))
        if volume:
            self._execute_uncross(price, volume, ts_ns, events)
        self._set_status(OPEN, ts_ns, events)

    def _execute_uncross(self, price: int, volume: int, ts_ns: int, events: list[Event]) -> None:
        bids = [order for order in self._bids.orders_best_first() if order.price_fen >= price]
        asks = [order for order in self._asks.orders_best_first() if order.price_fen <= price]
        touched_bids: dict[int, Level] = {}
        touched_asks: dict[int, Level] = {}
        b = a = 0
        while volume:
            bid, ask = bids[b], asks[a]
            quantity = min(bid.leaves_t, ask.leaves_t, volume)
            volume -= quantity
            maker, taker = (bid, ask) if bid.entry_seq < ask.entry_seq else (ask, bid)
            for order, touched, book_side in (
                (bid, touched_bids, self._bids),
                (ask, touched_asks, self._asks),
            ):
                order.leaves_t -= quantity
                order.filled_t += quantity
                level = touched[order.price_fen] = book_side.levels[order.price_fen]
                level.quantity_t -= quantity
                if not order.leaves_t:
                    del level.orders[order.order_id]
                    del self._orders[order.order_id]
            self._trade(price, quantity, maker, taker, None, ts_ns, events)
            b += not bid.leaves_t
            a += not ask.leaves_t
        for touched, book_side in ((touched_bids, self._bids), (touched_asks, self._asks)):
            for level in touched.values():  # filled in book order, so already best first
                self._level_changed(book_side.side, level, ts_ns, events)
                if not level.orders:
                    book_side.drop_level(level.price_fen)

    def _end_of_day(self, cmd: EndOfDay, events: list[Event]) -> None:
        ts_ns = cmd.ts_ns
        for order in [order for order in self._book_order() if order.tif is DAY]:
            self._cancel_resting(order, CancelReason.EXPIRED, ts_ns, events)
        close = self._last_price_fen
        if close is not None and self._rules.close_rule is ClosePriceRule.VWAP:
            tick = self._rules.tick_fen
            close = tick * round_half_up(self._notional_fen, self._volume_t * tick)
        if close is not None:
            self._set_reference(close)
        self._seq = seq = self._seq + 1
        events.append(
            SessionClosed(
                seq, ts_ns, close, self._reference_price_fen, self._volume_t, self._notional_fen
            )
        )
        self._last_price_fen = None
        self._volume_t = 0
        self._notional_fen = 0

    # -- shared steps ----------------------------------------------------------------------------

    def _cancel_resting(
        self, order: RestingOrder, reason: CancelReason, ts_ns: int, events: list[Event]
    ) -> None:
        """Take a resting order off the book: Cancelled, then its level's new totals."""
        book_side = self._bids if order.side is BUY else self._asks
        level = book_side.levels[order.price_fen]
        del level.orders[order.order_id]
        del self._orders[order.order_id]
        level.quantity_t -= order.leaves_t
        self._cancelled(order, reason, ts_ns, events)
        self._level_changed(book_side.side, level, ts_ns, events)
        if not level.orders:
            book_side.drop_level(order.price_fen)

    def _trade(
        self,
        price_fen: int,
        quantity_t: int,
        maker: RestingOrder,
        taker: RestingOrder,
        aggressor: Side | None,
        ts_ns: int,
        events: list[Event],
    ) -> None:
        """Record a fill already applied to both orders: session statistics and the event."""
        self._last_price_fen = price_fen
        self._volume_t += quantity_t
        self._notional_fen += price_fen * quantity_t
        self._trade_id = trade_id = self._trade_id + 1
        self._seq = seq = self._seq + 1
        events.append(
            Trade(
                seq,
                ts_ns,
                trade_id,
                price_fen,
                quantity_t,
                maker.order_id,
                maker.account_id,
                taker.order_id,
                taker.account_id,
                aggressor,
                maker.leaves_t,
                taker.leaves_t,
            )
        )

    def _cancelled(
        self, order: RestingOrder, reason: CancelReason, ts_ns: int, events: list[Event]
    ) -> None:
        self._seq = seq = self._seq + 1
        events.append(
            Cancelled(seq, ts_ns, order.order_id, order.account_id, order.leaves_t, reason)
        )

    def _amended(
        self,
        order: RestingOrder,
        priority_kept: bool,
        ts_ns: int,
        events: list[Event],
        price_fen: int | None = None,
    ) -> int:
        self._seq = seq = self._seq + 1
        events.append(
            Amended(
                seq,
                ts_ns,
                order.order_id,
                order.account_id,
                order.price_fen if price_fen is None else price_fen,
                order.quantity_t,
                order.leaves_t,
                priority_kept,
            )
        )
        return seq

    def _level_changed(self, side: Side, level: Level, ts_ns: int, events: list[Event]) -> None:
        self._seq = seq = self._seq + 1
        events.append(
            LevelChanged(seq, ts_ns, side, level.price_fen, level.quantity_t, len(level.orders))
        )

    def _rejected(
        self, ts_ns: int, code: RejectCode, order_id: int | None, account_id: int | None
    ) -> Rejected:
        self._seq = seq = self._seq + 1
        return Rejected(seq, ts_ns, code, order_id, account_id)

    def _set_status(self, status: TradingStatus, ts_ns: int, events: list[Event]) -> None:
        self._status = status
        self._seq = seq = self._seq + 1
        events.append(StatusChanged(seq, ts_ns, status))

    def _set_reference(self, reference_price_fen: int) -> None:
        self._reference_price_fen = reference_price_fen
        self._band_low_fen, self._band_high_fen = price_band(self._rules, reference_price_fen)

    def _side(self, side: Side) -> BookSide:
        return self._bids if side is BUY else self._asks

    def _book_order(self) -> Iterator[RestingOrder]:
        """Every resting order: bids best first, FIFO within a price, then asks the same way."""
        yield from self._bids.orders_best_first()
        yield from self._asks.orders_best_first()

    # -- recovery --------------------------------------------------------------------------------

    def snapshot(self) -> BookSnapshot:
        """Capture the whole book as an independent value."""
        return BookSnapshot(
            rules=self._rules,
            reference_price_fen=self._reference_price_fen,
            status=self._status,
            status_before_halt=self._status_before_halt,
            next_seq=self._seq + 1,
            next_trade_id=self._trade_id + 1,
            last_price_fen=self._last_price_fen,
            volume_t=self._volume_t,
            notional_fen=self._notional_fen,
            bids=[replace(order) for order in self._bids.orders_best_first()],
            asks=[replace(order) for order in self._asks.orders_best_first()],
        )

    @classmethod
    def restore(cls, snapshot: BookSnapshot) -> OrderBook:
        """Rebuild a book that behaves exactly as the one the snapshot was taken of."""
        book = cls(snapshot.rules, snapshot.reference_price_fen)
        book._status = snapshot.status
        book._status_before_halt = snapshot.status_before_halt
        book._seq = snapshot.next_seq - 1
        book._trade_id = snapshot.next_trade_id - 1
        book._last_price_fen = snapshot.last_price_fen
        book._volume_t = snapshot.volume_t
        book._notional_fen = snapshot.notional_fen
        for saved in (*snapshot.bids, *snapshot.asks):
            order = replace(saved)
            level = book._side(order.side).level_at(order.price_fen)
            level.orders[order.order_id] = order
            level.quantity_t += order.leaves_t
            book._orders[order.order_id] = order
        book.check_invariants()
        return book

    # -- proof -----------------------------------------------------------------------------------

    def check_invariants(self) -> None:
        """Raise BookInvariantError if any invariant of the module docstring fails. O(n log n)."""
        seen = 0
        for book_side in (self._bids, self._asks):
            seen += self._check_side(book_side)
        _require(seen == len(self._orders), "index holds orders that no level holds")
        bid, ask = self._bids.best(), self._asks.best()
        if self._status is OPEN and bid is not None and ask is not None:
            _require(bid < ask, f"open book is crossed: bid {bid} >= ask {ask}")
        _require(self._seq >= 0 and self._trade_id >= 0, "counters must not be negative")

    def _check_side(self, book_side: BookSide) -> int:
        count = 0
        for price, level in book_side.levels.items():
            _require(level.price_fen == price, f"level keyed {price} holds {level.price_fen}")
            _require(bool(level.orders), f"empty level {price} kept")
            total = 0
            for order_id, order in level.orders.items():
                _require(order.order_id == order_id, f"order {order_id} filed under another id")
                _require(self._orders.get(order_id) is order, f"order {order_id} not indexed")
                _require(order.side is book_side.side, f"order {order_id} on the wrong side")
                _require(order.price_fen == price, f"order {order_id} at the wrong level")
                _require(order.leaves_t > 0, f"order {order_id} rests with no leaves")
                _require(order.filled_t >= 0, f"order {order_id} has negative fills")
                total += order.leaves_t
            _require(total == level.quantity_t, f"level {price} total is not {total}")
            count += len(level.orders)
        live = {key for key in book_side.heap if key * book_side.sign in book_side.levels}
        _require(
            live == {book_side.sign * price for price in book_side.levels},
            "heap lost a live level",
        )
        if book_side.heap:
            _require(book_side.heap[0] * book_side.sign in book_side.levels, "heap top is not live")
            _require(book_side.heap[0] == min(live), "heap top is not the best price")
        return count


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise BookInvariantError(message)
