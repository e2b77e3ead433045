"""A deliberately naive order book, written from docs/matching.md alone, to test the real one by.

Every resting order sits in one plain list. Each question (the best price, a level's totals, the
book order) is a linear scan or a sort by (price, entry sequence) made afresh; nothing is cached,
indexed or clever, so that the code reads as the spec does. It is slow on purpose and small
enough to check line by line against the document.

It answers the same commands with the same events (same classes, fields, `seq` and trade ids) as
`matching.OrderBook`, and offers the read-only accessors the tests compare: status, reference
price, best bid and ask, depth, resting orders in book order, one order by id. It has no
snapshot: restore is the real book's business.
"""

from __future__ import annotations

import math
from fractions import Fraction

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
from matching.rules import InstrumentRules
from matching.values import ClosePriceRule, OrderType, Side, StpMode, TimeInForce, TradingStatus

BASIS_POINTS = 10_000
HALF = Fraction(1, 2)

R = RejectCode
BUY = Side.BUY
SELL = Side.SELL
OPEN = TradingStatus.OPEN
HALTED = TradingStatus.HALTED
AUCTION = TradingStatus.AUCTION


def round_half_up_to_tick(value: Fraction, tick_fen: int) -> int:
    """`value` rounded half-up to a multiple of `tick_fen`, by exact rational arithmetic."""
    return tick_fen * math.floor(value / tick_fen + HALF)


def band(rules: InstrumentRules, reference_price_fen: int) -> tuple[int, int]:
    """The band: reference × (1 ∓ band_bp / 10000), rounded half-up to the tick, low >= 1 tick,
    high >= low.

    >>> band(InstrumentRules(symbol="X"), 5_005)
    (4505, 5506)
    """
    low = Fraction(reference_price_fen * (BASIS_POINTS - rules.band_bp), BASIS_POINTS)
    high = Fraction(reference_price_fen * (BASIS_POINTS + rules.band_bp), BASIS_POINTS)
    low_fen = max(round_half_up_to_tick(low, rules.tick_fen), rules.tick_fen)
    return low_fen, max(round_half_up_to_tick(high, rules.tick_fen), low_fen)


def opposite(side: Side) -> Side:
    return SELL if side is BUY else BUY


def crosses(side: Side, limit_fen: int, resting_price_fen: int) -> bool:
    """Whether an order of `side` with limit `limit_fen` crosses an opposite resting price."""
    if side is BUY:
        return limit_fen >= resting_price_fen
    return limit_fen <= resting_price_fen


def priority_key(order: RestingOrder) -> tuple[int, int]:
    """Sort key for one side in priority order: best price first, then entry sequence."""
    price = -order.price_fen if order.side is BUY else order.price_fen
    return price, order.entry_seq


class ReferenceBook:
    """The spec, executed literally. See the module docstring."""

    def __init__(self, rules: InstrumentRules, reference_price_fen: int) -> None:
        self.rules = rules
        self.reference_price_fen = reference_price_fen
        self.status = OPEN
        self.status_before_halt = OPEN
        self.orders: list[RestingOrder] = []  # every resting order, in no particular order
        self.next_seq = 1
        self.next_trade_id = 1
        self.last_price_fen: int | None = None
        self.volume_t = 0
        self.notional_fen = 0
        self._ts_ns = 0
        self._events: list[Event] = []

    # --- read-only views ------------------------------------------------------------------

    def side_orders(self, side: Side) -> list[RestingOrder]:
        """One side's resting orders in priority order."""
        return sorted((o for o in self.orders if o.side is side), key=priority_key)

    def resting_orders(self) -> list[RestingOrder]:
        """Book order: bids best first, FIFO within a price; then asks the same way."""
        return self.side_orders(BUY) + self.side_orders(SELL)

    def order(self, order_id: int) -> RestingOrder | None:
        for o in self.orders:
            if o.order_id == order_id:
                return o
        return None

    def best(self, side: Side) -> int | None:
        orders = self.side_orders(side)
        return orders[0].price_fen if orders else None

    def best_bid(self) -> int | None:
        return self.best(BUY)

    def best_ask(self) -> int | None:
        return self.best(SELL)

    def level_totals(self, side: Side, price_fen: int) -> tuple[int, int]:
        quantity = 0
        count = 0
        for o in self.orders:
            if o.side is side and o.price_fen == price_fen:
                quantity += o.leaves_t
                count += 1
        return quantity, count

    def depth(self, side: Side, levels: int) -> list[tuple[int, int, int]]:
        prices: list[int] = []
        for o in self.side_orders(side):
            if o.price_fen not in prices:
                prices.append(o.price_fen)
        return [(p, *self.level_totals(side, p)) for p in prices[:levels]]

    # --- commands -------------------------------------------------------------------------

    def submit(self, cmd: Command) -> list[Event]:
        self._ts_ns = cmd.ts_ns
        self._events = []
        if isinstance(cmd, NewOrder):
            self._new_order(cmd)
        elif isinstance(cmd, Cancel):
            self._cancel(cmd)
        elif isinstance(cmd, CancelAll):
            self._cancel_all(cmd)
        elif isinstance(cmd, Amend):
            self._amend(cmd)
        elif isinstance(cmd, Halt):
            self._halt(cmd)
        elif isinstance(cmd, Resume):
            self._resume()
        elif isinstance(cmd, StartAuction):
            self._start_auction()
        elif isinstance(cmd, Uncross):
            self._uncross()
        elif isinstance(cmd, EndOfDay):
            self._end_of_day()
        else:  # pragma: no cover - the Command union is closed
            raise TypeError(f"not a command: {cmd!r}")
        assert self._events, "every command yields at least one event"
        return self._events

    # --- emitting -------------------------------------------------------------------------

    def _seq(self) -> int:
        seq = self.next_seq
        self.next_seq += 1
        return seq

    def _reject(self, code: RejectCode, order_id: int | None, account_id: int | None) -> None:
        self._events.append(Rejected(self._seq(), self._ts_ns, code, order_id, account_id))

    def _level_changed(self, side: Side, price_fen: int) -> None:
        quantity, count = self.level_totals(side, price_fen)
        self._events.append(
            LevelChanged(self._seq(), self._ts_ns, side, price_fen, quantity, count)
        )

    def _cancel_order(self, o: RestingOrder, reason: CancelReason) -> None:
        """Emit `Cancelled` for `o` with its leaves; take it off the book if it is resting."""
        self._events.append(
            Cancelled(self._seq(), self._ts_ns, o.order_id, o.account_id, o.leaves_t, reason)
        )
        self._remove(o)

    def _remove(self, o: RestingOrder) -> None:
        """Take `o` off the book if it rests there; identity, since orders are compared by value."""
        self.orders = [x for x in self.orders if x is not o]

    def _cancel_with_level(self, o: RestingOrder, reason: CancelReason) -> None:
        self._cancel_order(o, reason)
        self._level_changed(o.side, o.price_fen)

    def _rest(self, o: RestingOrder) -> None:
        self.orders.append(o)
        self._level_changed(o.side, o.price_fen)

    def _trade(
        self, price_fen: int, maker: RestingOrder, taker: RestingOrder, aggressor: Side | None
    ) -> None:
        quantity = min(maker.leaves_t, taker.leaves_t)
        for o in (maker, taker):
            o.leaves_t -= quantity
            o.filled_t += quantity
        trade_id = self.next_trade_id
        self.next_trade_id += 1
        self._events.append(
            Trade(
                seq=self._seq(),
                ts_ns=self._ts_ns,
                trade_id=trade_id,
                price_fen=price_fen,
                quantity_t=quantity,
                maker_order_id=maker.order_id,
                maker_account_id=maker.account_id,
                taker_order_id=taker.order_id,
                taker_account_id=taker.account_id,
                aggressor=aggressor,
                maker_leaves_t=maker.leaves_t,
                taker_leaves_t=taker.leaves_t,
            )
        )
        self.last_price_fen = price_fen
        self.volume_t += quantity
        self.notional_fen += quantity * price_fen
        for o in (maker, taker):
            if o.leaves_t == 0:
                self._remove(o)

    # --- checks shared by new orders and amends ---------------------------------------------

    def _quantity_code(self, quantity_t: int) -> RejectCode | None:
        if quantity_t <= 0:
            return R.QUANTITY_MUST_BE_POSITIVE
        if quantity_t % self.rules.lot_t != 0:
            return R.QUANTITY_MUST_BE_ON_LOT
        if not self.rules.min_quantity_t <= quantity_t <= self.rules.max_quantity_t:
            return R.QUANTITY_MUST_BE_WITHIN_LIMITS
        return None

    def _price_code(self, price_fen: int) -> RejectCode | None:
        if price_fen <= 0:
            return R.PRICE_MUST_BE_POSITIVE
        if price_fen % self.rules.tick_fen != 0:
            return R.PRICE_MUST_BE_ON_TICK
        low, high = band(self.rules, self.reference_price_fen)
        if not low <= price_fen <= high:
            return R.PRICE_MUST_BE_WITHIN_BAND
        return None

    def _crosses_opposite_best(self, side: Side, limit_fen: int) -> bool:
        best = self.best(opposite(side))
        return best is not None and crosses(side, limit_fen, best)

    def _market_limit(self, side: Side) -> int:
        low, high = band(self.rules, self.reference_price_fen)
        return high if side is BUY else low

    def _fok_fillable(self, side: Side, account_id: int, stp: StpMode, limit_fen: int) -> int:
        fillable = 0
        for maker in self.side_orders(opposite(side)):
            if not crosses(side, limit_fen, maker.price_fen):
                break
            if maker.account_id == account_id:
                if stp is StpMode.CANCEL_OLDEST:
                    continue
                break
            fillable += maker.leaves_t
        return fillable

    def _new_order_code(self, cmd: NewOrder) -> RejectCode | None:  # noqa: C901 - the table
        market = cmd.order_type is OrderType.MARKET
        if self.status is HALTED:
            return R.BOOK_MUST_NOT_BE_HALTED
        if self.order(cmd.order_id) is not None:
            return R.ORDER_ID_MUST_BE_UNIQUE
        code = self._quantity_code(cmd.quantity_t)
        if code is not None:
            return code
        if market and cmd.price_fen is not None:
            return R.PRICE_MUST_NOT_BE_GIVEN_FOR_MARKET
        if market and cmd.tif in (TimeInForce.GTC, TimeInForce.DAY):
            return R.MARKET_ORDER_MUST_BE_IOC_OR_FOK
        if not market:
            if cmd.price_fen is None:
                return R.PRICE_MUST_BE_GIVEN_FOR_LIMIT
            code = self._price_code(cmd.price_fen)
            if code is not None:
                return code
        immediate = cmd.tif in (TimeInForce.IOC, TimeInForce.FOK)
        if cmd.post_only and (market or immediate):
            return R.POST_ONLY_MUST_BE_RESTING_LIMIT
        if self.status is AUCTION and (market or immediate or cmd.post_only):
            return R.ORDER_MUST_REST_DURING_AUCTION
        limit = self._market_limit(cmd.side) if cmd.price_fen is None else cmd.price_fen
        if self.status is OPEN and cmd.post_only and self._crosses_opposite_best(cmd.side, limit):
            return R.POST_ONLY_MUST_NOT_CROSS
        if (
            self.status is OPEN
            and cmd.tif is TimeInForce.FOK
            and self._fok_fillable(cmd.side, cmd.account_id, cmd.stp, limit) < cmd.quantity_t
        ):
            return R.FOK_MUST_FILL_COMPLETELY
        return None

    # --- new orders -----------------------------------------------------------------------

    def _new_order(self, cmd: NewOrder) -> None:
        code = self._new_order_code(cmd)
        if code is not None:
            self._reject(code, cmd.order_id, cmd.account_id)
            return
        seq = self._seq()
        self._events.append(
            Accepted(
                seq,
                cmd.ts_ns,
                cmd.order_id,
                cmd.account_id,
                cmd.side,
                cmd.quantity_t,
                cmd.price_fen,
            )
        )
        limit = self._market_limit(cmd.side) if cmd.price_fen is None else cmd.price_fen
        order = RestingOrder(
            order_id=cmd.order_id,
            account_id=cmd.account_id,
            side=cmd.side,
            price_fen=limit,  # a market order never rests, so its band-edge limit never shows
            leaves_t=cmd.quantity_t,
            filled_t=0,
            tif=cmd.tif,
            stp=cmd.stp,
            post_only=cmd.post_only,
            entry_seq=seq,
        )
        if self.status is AUCTION:
            self._enter_auction(order)
            return
        stopped = self._match(order)
        self._finish_taker(order, stopped, market=cmd.order_type is OrderType.MARKET)

    def _match(self, taker: RestingOrder) -> bool:
        """Continuous matching, steps 2 and 3. Returns whether self-trade prevention stopped it."""
        while taker.leaves_t > 0:
            makers = self.side_orders(opposite(taker.side))
            if not makers or not crosses(taker.side, taker.price_fen, makers[0].price_fen):
                return False
            price = makers[0].price_fen
            level = [o for o in makers if o.price_fen == price]
            changed = False
            stopped = False
            for maker in level:
                if taker.leaves_t == 0:
                    break
                if maker.account_id == taker.account_id:
                    if taker.stp is StpMode.CANCEL_NEWEST:
                        stopped = True
                        break
                    self._cancel_order(maker, CancelReason.SELF_TRADE)
                    changed = True
                    if taker.stp is StpMode.CANCEL_BOTH:
                        stopped = True
                        break
                    continue
                self._trade(price, maker, taker, taker.side)
                changed = True
            if changed:
                self._level_changed(opposite(taker.side), price)
            if stopped:
                return True
        return False

    def _finish_taker(self, taker: RestingOrder, stopped: bool, market: bool) -> None:
        """Step 4: the taker's remainder."""
        if taker.leaves_t == 0:
            return
        if stopped:
            self._cancel_order(taker, CancelReason.SELF_TRADE)
        elif market or taker.tif is TimeInForce.IOC:
            self._cancel_order(taker, CancelReason.IOC_REMAINDER)
        elif taker.tif is TimeInForce.FOK:  # pragma: no cover - check 15 makes it unreachable
            raise AssertionError("a FOK order that passed its check must fill completely")
        else:
            self._rest(taker)

    def _enter_auction(self, order: RestingOrder) -> None:
        """Self-trade prevention at auction entry, then rest if the order survives."""
        conflicts = [
            o
            for o in self.resting_orders()
            if o.account_id == order.account_id
            and o.side is opposite(order.side)
            and crosses(order.side, order.price_fen, o.price_fen)
        ]
        if conflicts:
            if order.stp is StpMode.CANCEL_NEWEST:
                self._cancel_order(order, CancelReason.SELF_TRADE)
                return
            for conflict in conflicts:
                self._cancel_with_level(conflict, CancelReason.SELF_TRADE)
            if order.stp is StpMode.CANCEL_BOTH:
                self._cancel_order(order, CancelReason.SELF_TRADE)
                return
        self._rest(order)

    # --- cancels and amends ---------------------------------------------------------------

    def _cancel(self, cmd: Cancel) -> None:
        o = self.order(cmd.order_id)
        if o is None:
            self._reject(R.ORDER_MUST_EXIST, cmd.order_id, cmd.account_id)
        elif o.account_id != cmd.account_id:
            self._reject(R.ORDER_MUST_BELONG_TO_ACCOUNT, cmd.order_id, cmd.account_id)
        else:
            self._cancel_with_level(o, CancelReason.USER)

    def _cancel_all(self, cmd: CancelAll) -> None:
        own = [o for o in self.resting_orders() if o.account_id == cmd.account_id]
        if not own:
            self._reject(R.ORDER_MUST_EXIST, None, cmd.account_id)
        for o in own:
            self._cancel_with_level(o, CancelReason.USER)

    def _amend_code(self, cmd: Amend) -> RejectCode | None:
        if self.status is HALTED:
            return R.BOOK_MUST_NOT_BE_HALTED
        o = self.order(cmd.order_id)
        if o is None:
            return R.ORDER_MUST_EXIST
        if o.account_id != cmd.account_id:
            return R.ORDER_MUST_BELONG_TO_ACCOUNT
        code = self._quantity_code(cmd.quantity_t)
        if code is not None:
            return code
        if cmd.quantity_t <= o.filled_t:
            return R.AMEND_QUANTITY_MUST_EXCEED_FILLED
        if cmd.price_fen is not None:
            code = self._price_code(cmd.price_fen)
            if code is not None:
                return code
        new_price = o.price_fen if cmd.price_fen is None else cmd.price_fen
        if cmd.quantity_t == o.quantity_t and new_price == o.price_fen:
            return R.AMEND_MUST_CHANGE_ORDER
        if self.status is OPEN and o.post_only and self._crosses_opposite_best(o.side, new_price):
            return R.POST_ONLY_MUST_NOT_CROSS
        return None

    def _amend(self, cmd: Amend) -> None:
        code = self._amend_code(cmd)
        if code is not None:
            self._reject(code, cmd.order_id, cmd.account_id)
            return
        o = self.order(cmd.order_id)
        assert o is not None
        old_price = o.price_fen
        new_price = old_price if cmd.price_fen is None else cmd.price_fen
        keep = new_price == old_price and cmd.quantity_t < o.quantity_t
        o.leaves_t = cmd.quantity_t - o.filled_t
        seq = self._seq()
        self._events.append(
            Amended(
                seq,
                cmd.ts_ns,
                o.order_id,
                o.account_id,
                new_price,
                cmd.quantity_t,
                o.leaves_t,
                keep,
            )
        )
        if keep:
            self._level_changed(o.side, old_price)
            return
        o.entry_seq = seq
        if new_price == old_price:  # quantity up: to the back of its level
            self._level_changed(o.side, old_price)
            return
        self._remove(o)
        self._level_changed(o.side, old_price)
        o.price_fen = new_price
        if self.status is AUCTION:
            self._enter_auction(o)
            return
        stopped = self._match(o)
        self._finish_taker(o, stopped, market=False)

    # --- status ---------------------------------------------------------------------------

    def _status_changed(self, status: TradingStatus) -> None:
        self.status = status
        self._events.append(StatusChanged(self._seq(), self._ts_ns, status))

    def _halt(self, cmd: Halt) -> None:
        if self.status is HALTED:
            self._reject(R.BOOK_MUST_NOT_BE_HALTED, None, None)
            return
        self.status_before_halt = self.status
        self._status_changed(HALTED)
        if cmd.cancel_resting:
            for o in self.resting_orders():
                self._cancel_with_level(o, CancelReason.HALT)

    def _resume(self) -> None:
        if self.status is not HALTED:
            self._reject(R.BOOK_MUST_BE_HALTED, None, None)
            return
        self._status_changed(self.status_before_halt)

    def _start_auction(self) -> None:
        if self.status is AUCTION:
            self._reject(R.BOOK_MUST_NOT_BE_IN_AUCTION, None, None)
        elif self.status is HALTED:
            self._reject(R.BOOK_MUST_NOT_BE_HALTED, None, None)
        else:
            self._status_changed(AUCTION)

    def _uncross_price(self) -> tuple[int | None, int]:
        """The uncross price and executable quantity; (None, 0) when nothing executes."""
        best_key: tuple[int, int, int, int] | None = None
        for p in sorted({o.price_fen for o in self.orders}):
            demand = sum(o.leaves_t for o in self.orders if o.side is BUY and o.price_fen >= p)
            supply = sum(o.leaves_t for o in self.orders if o.side is SELL and o.price_fen <= p)
            executable = min(demand, supply)
            key = (-executable, abs(demand - supply), abs(p - self.reference_price_fen), p)
            if best_key is None or key < best_key:
                best_key = key
        if best_key is None or best_key[0] == 0:
            return None, 0
        return best_key[3], -best_key[0]

    def _uncross(self) -> None:
        if self.status is not AUCTION:
            self._reject(R.BOOK_MUST_BE_IN_AUCTION, None, None)
            return
        price, executable = self._uncross_price()
        self._events.append(Uncrossed(self._seq(), self._ts_ns, price, executable))
        if price is not None:
            bids = [o for o in self.side_orders(BUY) if o.price_fen >= price]
            asks = [o for o in self.side_orders(SELL) if o.price_fen <= price]
            touched_bids: list[int] = []
            touched_asks: list[int] = []
            i = j = 0
            while i < len(bids) and j < len(asks):
                bid, ask = bids[i], asks[j]
                maker, taker = (bid, ask) if bid.entry_seq < ask.entry_seq else (ask, bid)
                self._trade(price, maker, taker, None)
                if bid.price_fen not in touched_bids:
                    touched_bids.append(bid.price_fen)
                if ask.price_fen not in touched_asks:
                    touched_asks.append(ask.price_fen)
                if bid.leaves_t == 0:
                    i += 1
                if ask.leaves_t == 0:
                    j += 1
            for p in sorted(touched_bids, reverse=True):
                self._level_changed(BUY, p)
            for p in sorted(touched_asks):
                self._level_changed(SELL, p)
        self._status_changed(OPEN)

    def _end_of_day(self) -> None:
        for o in self.resting_orders():
            if o.tif is TimeInForce.DAY:
                self._cancel_with_level(o, CancelReason.EXPIRED)
        close: int | None = None
        if self.volume_t > 0:
            if self.rules.close_rule is ClosePriceRule.VWAP:
                close = round_half_up_to_tick(
                    Fraction(self.notional_fen, self.volume_t), self.rules.tick_fen
                )
            else:
                close = self.last_price_fen
        if close is not None:
            self.reference_price_fen = close
        self._events.append(
            SessionClosed(
                self._seq(),
                self._ts_ns,
                close,
                self.reference_price_fen,
                self.volume_t,
                self.notional_fen,
            )
        )
        self.volume_t = 0
        self.notional_fen = 0
        self.last_price_fen = None
