"""The standard matching workload: a seeded, pre-generated stream of commands.

`standard_stream(seed, size)` returns the same list of commands for the same arguments, built with
`random.Random(seed)` and integers only. The mix, per command:

- 60 % passive limit orders of 1-100 t (GTC; one in twenty DAY, one in twenty post-only) on the
  tick grid, 1 to `MAX_OFFSET_TICKS` ticks on their own side of a mid price that drifts slowly
  (a walk of at most one tick every 256 commands, turned back beyond ±CNY 2.50 of the reference)
  and never crossing the book, so they rest;
- 25 % cancels of orders resting at that moment, chosen uniformly;
- 15 % orders that cross: two in three a GTC limit 0-5 ticks through the touch (its remainder,
  if any, rests), one in three a market IOC. Their size follows the number of live orders, which
  holds the book near `TARGET_LIVE_ORDERS` (about 1,500) once it has filled up, within the first
  few thousand commands.

`ACCOUNTS` accounts place all orders, so crossing orders meet their own account's orders now and
then and self-trade prevention fires (takers: mostly cancel-newest, some cancel-oldest and
cancel-both). Timestamps and order ids rise strictly.

"Resting at that moment" needs the book: the builder submits every command to a real
`OrderBook` as it generates it and follows the events (fills, cancels, what rests). The stream is
therefore fixed for a given seed, size and book semantics; a change of the book's semantics may
change the stream, which the event hash of `bench.matching` would show.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from matching import (
    Cancel,
    Cancelled,
    Command,
    Event,
    InstrumentRules,
    NewOrder,
    OrderBook,
    OrderType,
    Rejected,
    Side,
    StpMode,
    TimeInForce,
    Trade,
    price_band,
)

STANDARD_RULES = InstrumentRules(symbol="SZCER-BENCH")  # tick 1 fen, lot 1 t, band ±10 %
REFERENCE_PRICE_FEN = 5_000  # CNY 50.00 per tonne
ACCOUNTS = 40
TARGET_LIVE_ORDERS = 1_500
MAX_OFFSET_TICKS = 60  # how far behind the mid a passive order may be placed
DRIFT_EVERY = 256  # commands between steps of the mid's walk
DRIFT_LIMIT_FEN = 250  # the walk reverts towards the reference beyond this distance
FIRST_TS_NS = 1_767_225_600_000_000_000  # 2026-01-01T00:00:00Z
TS_STEP_MAX_NS = 20_000  # commands arrive 1 ns to 20 µs apart
CROSSING_BASE_T = 480  # twice the mean size of a crossing order when the book is at its target
PASSIVE_PERCENT = 60
CANCEL_PERCENT = 25  # the remaining 15 % cross

BUY = Side.BUY
SELL = Side.SELL


@dataclass(frozen=True, slots=True)
class StreamStats:
    """What the builder generated, and how full the book was while it did."""

    passive: int
    cancels: int
    crossing: int
    live_final: int
    live_max: int
    live_mean_after_fill: int  # mean number of live orders over the second half of the stream


class StreamBuilder:
    """Generate commands against a real book, recording them in `commands`.

    Besides the standard mix (`step`), the demo uses the single kinds (`passive`, `cancel`,
    `crossing`) and `submit` for hand-written commands. Every command goes through `submit`.
    """

    def __init__(
        self,
        seed: int,
        *,
        rules: InstrumentRules = STANDARD_RULES,
        reference_price_fen: int = REFERENCE_PRICE_FEN,
        accounts: int = ACCOUNTS,
        target_live_orders: int = TARGET_LIVE_ORDERS,
        crossing_base_t: int = CROSSING_BASE_T,
        first_ts_ns: int = FIRST_TS_NS,
        ts_step_max_ns: int = TS_STEP_MAX_NS,
    ) -> None:
        self.rng = random.Random(seed)
        self.rules = rules
        self.book = OrderBook(rules, reference_price_fen)
        self.commands: list[Command] = []
        self.accounts = accounts
        self.target_live_orders = target_live_orders
        self.crossing_base_t = crossing_base_t
        self.mid_fen = reference_price_fen
        self._reference_fen = reference_price_fen
        # The band at the start: the builder does not follow an EndOfDay's new reference.
        self._band_low_fen, self._band_high_fen = price_band(rules, reference_price_fen)
        self._ts_ns = first_ts_ns
        self.ts_step_max_ns = ts_step_max_ns
        self._last_order_id = 0
        # The live orders: a list for a uniform choice in O(1), positions for removal in O(1).
        self._live: list[int] = []
        self._position: dict[int, int] = {}
        self._owner: dict[int, int] = {}
        self.counts = {"passive": 0, "cancel": 0, "crossing": 0}

    # -- ids and time ----------------------------------------------------------------------------

    def next_ts_ns(self) -> int:
        self._ts_ns += self.rng.randint(1, self.ts_step_max_ns)
        return self._ts_ns

    def advance_clock(self, ts_ns: int) -> None:
        """Move the clock forward to `ts_ns` (a session phase starting), never back."""
        self._ts_ns = max(self._ts_ns, ts_ns)

    def next_order_id(self) -> int:
        self._last_order_id += 1
        return self._last_order_id

    def account(self) -> int:
        return self.rng.randint(1, self.accounts)

    @property
    def live_orders(self) -> int:
        return len(self._live)

    def live_order(self) -> tuple[int, int] | None:
        """A resting order chosen uniformly, as (order id, account id); None when none rests."""
        if not self._live:
            return None
        order_id = self._live[self.rng.randrange(len(self._live))]
        return order_id, self._owner[order_id]

    # -- the standard mix ------------------------------------------------------------------------

    def step(self) -> None:
        """Generate and submit one command of the standard mix."""
        roll = self.rng.randrange(100)
        if roll < PASSIVE_PERCENT:
            self.passive()
        elif roll < PASSIVE_PERCENT + CANCEL_PERCENT:
            if not self.cancel():
                self.passive()
        elif not self.crossing():
            self.passive()
        if not len(self.commands) % DRIFT_EVERY:
            self._drift()

    def _drift(self) -> None:
        step = self.rng.randint(-1, 1)
        distance = self.mid_fen - self._reference_fen
        if abs(distance) > DRIFT_LIMIT_FEN:
            step = -1 if distance > 0 else 1
        self.mid_fen += step * self.rules.tick_fen

    # -- single kinds ----------------------------------------------------------------------------

    def passive(self) -> NewOrder:
        """A limit order behind the touch, near the mid: it rests."""
        rng = self.rng
        tick = self.rules.tick_fen
        side = BUY if rng.randrange(2) else SELL
        offset = 1 + rng.randint(0, rng.randint(0, MAX_OFFSET_TICKS - 1))
        if side is BUY:
            price = self.mid_fen - offset * tick
            best_ask = self.book.best_ask()
            if best_ask is not None:
                price = min(price, best_ask - tick)
        else:
            price = self.mid_fen + offset * tick
            best_bid = self.book.best_bid()
            if best_bid is not None:
                price = max(price, best_bid + tick)
        price = min(max(price, self._band_low_fen), self._band_high_fen)
        roll = rng.randrange(20)
        command = NewOrder(
            ts_ns=self.next_ts_ns(),
            order_id=self.next_order_id(),
            account_id=self.account(),
            side=side,
            quantity_t=rng.randint(1, 100) * self.rules.lot_t,
            price_fen=price,
            tif=TimeInForce.DAY if roll == 0 else TimeInForce.GTC,
            post_only=roll == 1,
        )
        self.submit(command)
        self.counts["passive"] += 1
        return command

    def cancel(self) -> Cancel | None:
        """Cancel a resting order chosen uniformly; None when nothing rests."""
        chosen = self.live_order()
        if chosen is None:
            return None
        order_id, account_id = chosen
        command = Cancel(ts_ns=self.next_ts_ns(), order_id=order_id, account_id=account_id)
        self.submit(command)
        self.counts["cancel"] += 1
        return command

    def crossing(self) -> NewOrder | None:
        """An order through the touch; None when the side it would take from is empty."""
        rng = self.rng
        side = BUY if rng.randrange(2) else SELL
        touch = self.book.best_ask() if side is BUY else self.book.best_bid()
        if touch is None:
            return None
        # Mean 240 t (about five passive orders) at the target by default, half a tonne more per
        # live order above it, less below: the feedback that holds the book near the target.
        excess = len(self._live) - self.target_live_orders
        size = max(2, self.crossing_base_t + excess)
        quantity = rng.randint(1, size) * self.rules.lot_t
        roll = rng.randrange(10)
        stp = (
            StpMode.CANCEL_NEWEST
            if roll < 7
            else StpMode.CANCEL_OLDEST
            if roll < 9
            else StpMode.CANCEL_BOTH
        )
        ts_ns, order_id, account_id = self.next_ts_ns(), self.next_order_id(), self.account()
        if rng.randrange(3):
            through = rng.randint(0, 5) * self.rules.tick_fen
            price = touch + through if side is BUY else touch - through
            price = min(max(price, self._band_low_fen), self._band_high_fen)
            command = NewOrder(ts_ns, order_id, account_id, side, quantity, price, stp=stp)
        else:
            command = NewOrder(
                ts_ns,
                order_id,
                account_id,
                side,
                quantity,
                None,
                OrderType.MARKET,
                TimeInForce.IOC,
                stp=stp,
            )
        self.submit(command)
        self.counts["crossing"] += 1
        return command

    # -- following the book ----------------------------------------------------------------------

    def submit(self, command: Command) -> list[Event]:
        """Record a command, submit it and follow its events: what rests, what left."""
        self.commands.append(command)
        events = self.book.submit(command)
        new_order = command if isinstance(command, NewOrder) else None
        if new_order is None:
            for event in events:
                self._follow(event, None)
            return events
        entering = new_order.order_id
        rests = new_order.tif is TimeInForce.GTC or new_order.tif is TimeInForce.DAY
        leaves = new_order.quantity_t
        for event in events:
            leaves = self._follow(event, entering, leaves)
            if isinstance(event, Cancelled | Rejected) and event.order_id == entering:
                rests = False  # refused, or cancelled whole or in part: it does not rest
        if rests and leaves:
            self._remember(entering, new_order.account_id)
        return events

    def _follow(self, event: Event, entering: int | None, leaves: int = 0) -> int:
        """Drop orders the event took off the book; return the entering order's leaves."""
        if type(event) is Trade:
            if not event.maker_leaves_t:
                self._forget(event.maker_order_id)
            if not event.taker_leaves_t:
                self._forget(event.taker_order_id)
            if event.taker_order_id == entering:
                return event.taker_leaves_t
        elif type(event) is Cancelled:
            self._forget(event.order_id)
        return leaves

    def _remember(self, order_id: int, account_id: int) -> None:
        self._position[order_id] = len(self._live)
        self._live.append(order_id)
        self._owner[order_id] = account_id

    def _forget(self, order_id: int) -> None:
        position = self._position.pop(order_id, None)
        if position is None:
            return
        del self._owner[order_id]
        last = self._live.pop()
        if last != order_id:
            self._live[position] = last
            self._position[last] = position

    def stats(self, live_max: int, live_mean_after_fill: int) -> StreamStats:
        return StreamStats(
            passive=self.counts["passive"],
            cancels=self.counts["cancel"],
            crossing=self.counts["crossing"],
            live_final=len(self._live),
            live_max=live_max,
            live_mean_after_fill=live_mean_after_fill,
        )


def build_standard_stream(
    seed: int, size: int, *, progress: Callable[[str], None] | None = None, progress_every: int = 0
) -> tuple[list[Command], StreamStats]:
    """Generate the standard stream and the statistics of its generation.

    With `progress` and `progress_every` > 0, report a line every that many commands.
    """
    builder = StreamBuilder(seed)
    live_max = 0
    live_sum = 0
    half = size // 2
    for index in range(size):
        builder.step()
        live = builder.live_orders
        live_max = max(live_max, live)
        if index >= half:
            live_sum += live
        if progress is not None and progress_every and (index + 1) % progress_every == 0:
            progress(f"  generated {index + 1:>11,} / {size:,} commands, {live:,} live orders")
    mean = live_sum // (size - half) if size > half else 0
    return builder.commands, builder.stats(live_max, mean)


def standard_stream(seed: int, size: int) -> list[Command]:
    """Return the standard stream of `size` commands for `seed`: same arguments, same list.

    >>> stream = standard_stream(1, 200)
    >>> len(stream), stream == standard_stream(1, 200)
    (200, True)
    """
    return build_standard_stream(seed, size)[0]
