"""WebSocket traders: each logs in with its API key, follows the book and the trades, and
places, amends and cancels limit orders around the book's mid; when one of its orders fills it
often turns the position round at once, selling what it just bought (so it sells tonnes that
exist for it only through trades not yet settled) or buying back what it sold.

A trader follows the book from the snapshot and the numbered deltas, subscribes again on a gap,
and notes as a problem a snapshot numbered below what it saw before: after a reconnect a book's
numbers must carry on, never go back. The copy of the book it prices from, checked against the
checksums, is the crowd's (`load.crowd`). When its connection goes (a server
killed mid-run) it reconnects with a growing pause, sends again every order whose reply it never
had, under the same client order id (the exchange returns the first order's id, or enters it now,
never twice), and reads its open orders over REST to know where it stands.

Most orders rest a few ticks from the mid; about one in four crosses it and trades. A trader
whose cash or tonnes run low turns to the side that replenishes them.
"""

from __future__ import annotations

import contextlib
import itertools
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gevent
from locust import User, between, task
from locust.contrib.fasthttp import FastHttpSession

from exchange.book_mirror import MirroredBook
from exchange.client import Push, Refused
from exchange.market_data import BookDelta, BookSnapshot, TradePrint
from exchange.reports import BalanceUpdate, ExecutionReport
from load.crowd import Crowd, crowd
from load.wire import Lost, WsSession, rest_call
from matching import Side

LIVE_MAX = 8  # resting orders a trader keeps; past that it cancels before it places
QUANTITY_T = (1, 10)
PASSIVE_TICKS = (1, 15)  # how far from the mid a resting order goes
CROSS_TICKS = (0, 3)  # how far through the opposite best a crossing order goes
CROSSING = 0.25
IOC = 0.1
FLIP = 0.5  # the chance a fill is turned round at once
LOW_TONNES_T = 100
RECONNECT_S = (0.05, 1.0)  # first and longest pause between attempts


@dataclass
class Resting:
    cl_ord_id: str | None
    side: Side
    quantity_t: int
    filled_t: int


class Trader(User):
    wait_time = between(0.05, 0.3)
    weight = 6

    def on_start(self) -> None:
        self.crowd: Crowd = crowd()
        cast = self.crowd.cast
        self.number = self.crowd.take("trader")
        self.key = cast.traders[self.number % len(cast.traders)]
        self.rng = random.Random(f"{cast.seed}/trader/{self.number}")
        self.symbol = cast.symbol
        self.channels = [f"book:{self.symbol}", f"trades:{self.symbol}"]
        self.book = MirroredBook(self.channels[0])  # the crowd's, once a snapshot is heard
        self.book_seq: int | None = None  # the last book number of this connection, if in order
        self.seen_seq = 0  # the highest book number heard, across connections
        self.live: dict[int, Resting] = {}
        self.unsure: dict[str, dict[str, Any]] = {}  # client order id → order sent, no reply
        self.placing: dict[str, Side] = {}  # client order id → side
        self.turns: deque[tuple[Side, int]] = deque()  # fills to turn round
        self.available_fen: int | None = None
        self.free_t: int | None = None
        self.ids = itertools.count(1)
        self.rest = FastHttpSession(cast.url, self.environment.events.request, user=self)
        self.session = WsSession(self.environment, cast.ws_url, self.on_push)
        with self.crowd.action():
            self.connect()

    def on_stop(self) -> None:
        self.session.close()

    # -- tasks ---------------------------------------------------------------------------------

    @task(10)
    def place(self) -> None:
        with self.crowd.action():
            self.ensure_connected()
            while self.turns:
                self.attempt(self.new_order, *self.turns.popleft(), False)
            if len(self.live) >= LIVE_MAX:
                self.attempt(self.cancel_one)
            else:
                quantity = self.rng.randint(*QUANTITY_T)
                crossing = self.rng.random() < CROSSING
                self.attempt(self.new_order, self.pick_side(), quantity, crossing)

    @task(3)
    def amend(self) -> None:
        with self.crowd.action():
            self.ensure_connected()
            self.attempt(self.amend_one)

    @task(4)
    def cancel(self) -> None:
        with self.crowd.action():
            self.ensure_connected()
            self.attempt(self.cancel_one)

    # -- requests ------------------------------------------------------------------------------

    def new_order(self, side: Side, quantity_t: int, crossing: bool) -> None:
        cl_ord_id = f"{self.crowd.prefix}-{self.number}-{next(self.ids)}"
        args: dict[str, Any] = {
            "symbol": self.symbol,
            "cl_ord_id": cl_ord_id,
            "side": side,
            "quantity": quantity_t,
            "price": self.price(side, crossing),
            "tif": "ioc" if self.rng.random() < IOC else "gtc",
        }
        self.send_order(args)

    def send_order(self, args: dict[str, Any]) -> None:
        cl_ord_id = args["cl_ord_id"]
        self.unsure[cl_ord_id] = args
        # its reports come before its reply: they need its side to follow it
        self.placing[cl_ord_id] = args["side"]
        try:
            order_id = int(self.session.request("new_order", args)["order_id"])
        except Refused as refused:
            del self.unsure[cl_ord_id]
            if refused.code == "DUPLICATE_CL_ORD_ID":
                self.crowd.heard.problems.append(f"{cl_ord_id} sent again was refused: {refused}")
            raise
        finally:
            del self.placing[cl_ord_id]
        del self.unsure[cl_ord_id]
        self.crowd.heard.orders[self.key.account_id, cl_ord_id] = order_id

    def cancel_one(self) -> None:
        if not self.live:
            return
        order_id = self.rng.choice(list(self.live))
        resting = self.live[order_id]
        args: dict[str, Any] = {"symbol": self.symbol}
        if resting.cl_ord_id is not None and self.rng.random() < 0.5:
            args["cl_ord_id"] = resting.cl_ord_id
        else:
            args["order_id"] = order_id
        try:
            self.session.request("cancel", args)
        except Refused:
            self.live.pop(order_id, None)  # filled or cancelled meanwhile
            raise
        self.crowd.heard.cancels.add(order_id)

    def amend_one(self) -> None:
        if not self.live:
            return
        order_id = self.rng.choice(list(self.live))
        resting = self.live[order_id]
        leaves = resting.quantity_t - resting.filled_t
        quantity = resting.filled_t + max(1, leaves + self.rng.randint(-3, 3))
        args: dict[str, Any] = {"symbol": self.symbol, "order_id": order_id, "quantity": quantity}
        if self.rng.random() < 0.5:
            args["price"] = self.price(resting.side, crossing=False)
        elif quantity == resting.quantity_t:
            return  # nothing would change
        try:
            self.session.request("amend", args)
        except Refused:
            self.live.pop(order_id, None)
            raise
        amends = self.crowd.heard.amends
        amends[order_id] = amends.get(order_id, 0) + 1

    def attempt(self, action: Callable[..., None], *args: Any) -> None:
        """Run one request; a refusal is counted (by locust) and the trader carries on; a lost
        connection is made again."""
        try:
            action(*args)
        except Refused:
            pass
        except Lost:
            self.connect()

    # -- prices --------------------------------------------------------------------------------

    def pick_side(self) -> Side:
        high = self.crowd.cast.band_fen[1]
        if self.free_t is not None and self.free_t < LOW_TONNES_T:
            return Side.BUY
        if self.available_fen is not None and self.available_fen < high * QUANTITY_T[1] * 10:
            return Side.SELL
        return self.rng.choice((Side.BUY, Side.SELL))

    def price(self, side: Side, crossing: bool) -> int:
        cast = self.crowd.cast
        low, high = cast.band_fen
        bids, asks = self.book.depth(Side.BUY, 1), self.book.depth(Side.SELL, 1)
        bid = bids[0][0] if bids else None
        ask = asks[0][0] if asks else None
        mid = (bid + ask) // 2 if bid and ask else bid or ask or cast.reference_price_fen
        rng = self.rng
        if crossing:
            if side is Side.BUY:
                price = (ask or mid) + rng.randint(*CROSS_TICKS)
            else:
                price = (bid or mid) - rng.randint(*CROSS_TICKS)
        elif side is Side.BUY:
            price = mid - rng.randint(*PASSIVE_TICKS)
        else:
            price = mid + rng.randint(*PASSIVE_TICKS)
        return min(max(price, low), high)

    # -- the connection ------------------------------------------------------------------------

    def ensure_connected(self) -> None:
        if self.session.closed:
            self.connect()

    def connect(self) -> None:
        """Connect, log in and subscribe, pausing longer after each failure; then send again
        the orders whose fate is unknown and read the open orders."""
        pause = RECONNECT_S[0]
        while True:
            try:
                self.session.open(self.key)
                self.session.request("subscribe", {"channels": self.channels})
                for args in list(self.unsure.values()):
                    self.resend(args)
                orders = rest_call(self.rest, self.key, "GET", "/api/v1/orders", "orders")
                break
            except (Lost, Refused):
                gevent.sleep(pause)
                pause = min(2 * pause, RECONNECT_S[1])
        self.live = {
            o["order_id"]: Resting(o["cl_ord_id"], Side(o["side"]), o["quantity_t"], o["filled_t"])
            for o in orders
            if o["symbol"] == self.symbol
        }

    def resend(self, args: dict[str, Any]) -> None:
        # a refusal: the book refused it, then or now, and its `rejected` report said so
        with contextlib.suppress(Refused):
            self.send_order(args)

    # -- pushed messages (on the session's reader greenlet) ------------------------------------

    def on_push(self, message: Push) -> None:
        heard = self.crowd.heard
        match message:
            case BookSnapshot():
                self.crowd.saw(heard.book, message.channel, message.seq, message.checksum)
                if message.seq < self.seen_seq:
                    heard.problems.append(
                        f"{message.channel}: a snapshot numbered {message.seq} after"
                        f" {self.seen_seq} was heard"
                    )
                self.seen_seq = max(self.seen_seq, message.seq)
                self.book_seq = message.seq
                self.book = self.crowd.mirror(message)
            case BookDelta():
                self.crowd.saw(heard.book, message.channel, message.seq, message.checksum)
                self.seen_seq = max(self.seen_seq, message.seq)
                if self.book_seq is None:
                    return  # waiting for the snapshot
                if message.seq != self.book_seq + 1:
                    self.book_seq = None
                    heard.resyncs += 1
                    gevent.spawn(self.resubscribe)
                    return
                self.book_seq = message.seq
                self.crowd.mirror(message)
            case TradePrint():
                self.crowd.saw(heard.prints, message.channel, message.seq, message.trade_id)
            case ExecutionReport():
                self.on_report(message)
            case BalanceUpdate():
                self.available_fen, self.free_t = message.available_fen, message.free_t

    def on_report(self, report: ExecutionReport) -> None:
        if report.trade_id is not None:
            self.crowd.heard.fills.add(report.trade_id)
        order_id = report.order_id
        if order_id is None or report.symbol != self.symbol:
            return
        resting = self.live.get(order_id)
        if resting is None:
            side = self.placing.get(report.cl_ord_id or "")
            if side is None:
                return  # an order this trader no longer follows
            resting = self.live[order_id] = Resting(report.cl_ord_id, side, 0, 0)
        resting.quantity_t, resting.filled_t = report.quantity, report.cum_qty
        if report.leaves_qty == 0:
            del self.live[order_id]
        if report.last_qty and self.rng.random() < FLIP:
            turned = Side.SELL if resting.side is Side.BUY else Side.BUY
            self.turns.append((turned, report.last_qty))

    def resubscribe(self) -> None:
        with contextlib.suppress(Lost, Refused):  # a lost link: the task loop reconnects
            self.session.request("subscribe", {"channels": self.channels[:1]})
