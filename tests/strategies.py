"""Random command streams for the order book: one generator, two sources of randomness.

`StreamGenerator` makes realistic streams over small spaces of ids, accounts and prices, so that
what is rare in production happens every few commands: crosses through several levels,
self-trades under every STP mode, amends up and down and across the book, cancels of unknown or
foreign ids, reused order ids, auctions and uncrosses, halts with and without cancellation,
end-of-day expiry and a moving reference price, FOK/IOC/market/post-only orders, and every kind
of refusal (bad ticks, lots, limits, band, missing or extra prices).

It draws through a `Chooser`: `random_stream(seed, n)` feeds it `random.Random(seed)` for the
differential test's thousands of seeded streams; `streams()` and `DrawChooser` feed it
hypothesis draws, so that hypothesis can shrink a failing stream to a short one.

The generator keeps only its own memory (the ids it has used and who entered them), never the
book's state, so a stream is a plain list of commands that any book can be fed.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from hypothesis import strategies as st

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
from matching.rules import InstrumentRules, price_band
from matching.values import ClosePriceRule, OrderType, Side, StpMode, TimeInForce, TradingStatus

T = TypeVar("T")


@dataclass(frozen=True)
class Market:
    """An instrument to generate for: its rules, its first reference price, and how far from
    the reference (in ticks) ordinary prices stray."""

    name: str
    rules: InstrumentRules
    reference_price_fen: int
    spread_ticks: int

    @property
    def anchor_fen(self) -> int:
        """The on-tick price nearest the first reference, around which prices cluster."""
        tick = self.rules.tick_fen
        return tick * ((self.reference_price_fen + tick // 2) // tick)


SMALL = Market(
    "small",
    InstrumentRules(
        symbol="T-SMALL", tick_fen=5, lot_t=10, min_quantity_t=20, max_quantity_t=200, band_bp=1_000
    ),
    reference_price_fen=1_000,  # band [900, 1100]
    spread_ticks=6,
)
SMALL_VWAP = Market(
    "small-vwap",
    InstrumentRules(
        symbol="T-VWAP",
        tick_fen=5,
        lot_t=10,
        min_quantity_t=10,
        max_quantity_t=200,
        band_bp=1_000,
        close_rule=ClosePriceRule.VWAP,
    ),
    reference_price_fen=1_000,
    spread_ticks=6,
)
TIGHT = Market(
    "tight-band",
    InstrumentRules(
        symbol="T-TIGHT", tick_fen=5, lot_t=10, min_quantity_t=10, max_quantity_t=100, band_bp=100
    ),
    reference_price_fen=1_000,  # band [990, 1010]: end of day moves it, prices fall outside
    spread_ticks=3,
)
CHEAP = Market(
    "cheap",
    InstrumentRules(
        symbol="T-CHEAP",
        tick_fen=2,
        lot_t=5,
        min_quantity_t=5,
        max_quantity_t=50,
        band_bp=9_000,
        close_rule=ClosePriceRule.VWAP,
    ),
    reference_price_fen=9,  # band [2, 18]: the low bound is clamped to one tick
    spread_ticks=3,
)
TINY = Market(
    "tiny-reference",
    InstrumentRules(symbol="T-TINY", tick_fen=10, lot_t=1, min_quantity_t=1, max_quantity_t=20),
    reference_price_fen=3,  # below half a tick: the band is the single price [10, 10]
    spread_ticks=2,
)
DEFAULT = Market(
    "default-rules", InstrumentRules(symbol="T-DEFAULT"), reference_price_fen=5_005, spread_ticks=8
)
MARKETS: tuple[Market, ...] = (SMALL, SMALL_VWAP, TIGHT, CHEAP, TINY, DEFAULT)

ACCOUNTS = (1, 2, 3, 4)
SIDES = (Side.BUY, Side.SELL)
STP_MODES = (StpMode.CANCEL_NEWEST, StpMode.CANCEL_OLDEST, StpMode.CANCEL_BOTH)
LIMIT_TIFS = (
    (TimeInForce.GTC,) * 5 + (TimeInForce.DAY,) * 2 + (TimeInForce.IOC,) * 2 + (TimeInForce.FOK,)
)
ALL_TIFS = (TimeInForce.GTC, TimeInForce.DAY, TimeInForce.IOC, TimeInForce.FOK)


class Chooser(Protocol):
    """The randomness a generator needs; implemented over `random.Random` and hypothesis."""

    def integer(self, low: int, high: int) -> int:
        """An integer in [low, high]; hypothesis shrinks it towards `low`."""
        ...

    def choice(self, options: Sequence[T]) -> T:
        """One of `options`; hypothesis shrinks it towards the first."""
        ...

    def percent(self, chance: int) -> bool:
        """True with probability `chance` %; hypothesis shrinks it towards False."""
        ...


class RandomChooser:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def integer(self, low: int, high: int) -> int:
        return self.rng.randint(low, high)

    def choice(self, options: Sequence[T]) -> T:
        return options[self.rng.randrange(len(options))]

    def percent(self, chance: int) -> bool:
        return self.rng.randrange(100) < chance


class DrawChooser:
    def __init__(self, draw: Callable[[st.SearchStrategy[Any]], Any]) -> None:
        self.draw = draw

    def integer(self, low: int, high: int) -> int:
        value: int = self.draw(st.integers(low, high))
        return value

    def choice(self, options: Sequence[T]) -> T:
        return options[self.integer(0, len(options) - 1)]

    def percent(self, chance: int) -> bool:
        return self.integer(0, 99) >= 100 - chance


# Order-flow kinds and their weights; the first is what hypothesis shrinks towards. Status
# commands mostly come from `StreamGenerator._status_kind`, which knows the status they lead to;
# "any_status" sends one regardless, so that refused status changes happen too.
KINDS: tuple[tuple[str, int], ...] = (
    ("limit", 52),
    ("market", 8),
    ("cancel", 8),
    ("amend", 16),
    ("cancel_all", 2),
    ("end_of_day", 3),
    ("any_status", 3),
    ("oddity", 2),
)
STATUS_KINDS = ("halt", "resume", "start_auction", "uncross")


def weighted_kind(roll: int) -> str:
    """The kind that `roll`, in [0, total weight), falls on.

    >>> weighted_kind(0), weighted_kind(52)
    ('limit', 'market')
    """
    for kind, weight in KINDS:
        if roll < weight:
            return kind
        roll -= weight
    raise ValueError("roll beyond the total weight")


@dataclass
class StreamGenerator:
    """Makes one command at a time for `market`.

    It remembers the ids it used, who entered them and on which side, and the trading status its
    own status commands lead to (which depends on nothing else); it never looks at a book.
    """

    market: Market
    ts_ns: int = 1_700_000_000_000_000_000
    next_order_id: int = 1
    owners: dict[int, int] = field(default_factory=dict)  # order id -> account that entered it
    sides: dict[int, Side] = field(default_factory=dict)  # order id -> side it was entered on
    restable: list[int] = field(default_factory=list)  # ids of GTC and DAY limit orders entered
    status: TradingStatus = TradingStatus.OPEN
    status_before_halt: TradingStatus = TradingStatus.OPEN

    def next(self, c: Chooser) -> Command:
        self.ts_ns += c.integer(1, 5_000)
        kind = self._status_kind(c)
        if kind is None:
            kind = weighted_kind(c.integer(0, sum(weight for _, weight in KINDS) - 1))
        if kind == "any_status":
            kind = c.choice(STATUS_KINDS)
        return self._make(kind, c)

    def _status_kind(self, c: Chooser) -> str | None:
        """A status change that the book accepts, now and then: halts are short, auctions a bit
        longer, continuous trading longest."""
        if self.status is TradingStatus.HALTED:
            return "resume" if c.percent(25) else None
        if self.status is TradingStatus.AUCTION:
            return "uncross" if c.percent(7) else None
        if c.percent(4):
            return c.choice(("start_auction", "start_auction", "halt"))
        return None

    def _follow_status(self, kind: str) -> None:
        """The status after a status command of `kind`, as docs/matching.md has it."""
        halted = self.status is TradingStatus.HALTED
        if kind == "halt" and not halted:
            self.status_before_halt, self.status = self.status, TradingStatus.HALTED
        elif kind == "resume" and halted:
            self.status = self.status_before_halt
        elif kind == "start_auction" and self.status is TradingStatus.OPEN:
            self.status = TradingStatus.AUCTION
        elif kind == "uncross" and self.status is TradingStatus.AUCTION:
            self.status = TradingStatus.OPEN

    def _make(self, kind: str, c: Chooser) -> Command:
        ts = self.ts_ns
        if kind in STATUS_KINDS:
            self._follow_status(kind)
        if kind == "limit":
            return self._limit(c)
        if kind == "market":
            return self._market(c)
        if kind == "cancel":
            order_id = self._known_id(c)
            return Cancel(ts, order_id, self._owner_or_other(c, order_id))
        if kind == "amend":
            return self._amend(c)
        if kind == "cancel_all":
            return CancelAll(ts, c.choice(ACCOUNTS))
        if kind == "end_of_day":
            return EndOfDay(ts)
        if kind == "halt":
            return Halt(ts, cancel_resting=c.percent(40))
        if kind == "resume":
            return Resume(ts)
        if kind == "start_auction":
            return StartAuction(ts)
        if kind == "uncross":
            return Uncross(ts)
        return self._oddity(c)

    # --- ids, accounts, prices, quantities ------------------------------------------------

    def _new_id(self, c: Chooser) -> int:
        """Mostly a fresh id; sometimes one used before (resting: refused; gone: reusable)."""
        if self.next_order_id > 1 and c.percent(15):
            return c.integer(max(1, self.next_order_id - 8), self.next_order_id - 1)
        order_id = self.next_order_id
        self.next_order_id += 1
        return order_id

    def _known_id(self, c: Chooser) -> int:
        """The id of a recent order that could rest, mostly; sometimes any id, or one never used."""
        if self.next_order_id == 1 or c.percent(5):
            return self.next_order_id + 1_000
        if not self.restable or c.percent(10):
            return c.integer(max(1, self.next_order_id - 10), self.next_order_id - 1)
        return c.choice(self.restable[-8:])

    def _owner_or_other(self, c: Chooser, order_id: int) -> int:
        owner = self.owners.get(order_id)
        if owner is None or c.percent(10):
            return c.choice(ACCOUNTS)
        return owner

    def _price(self, c: Chooser, side: Side) -> int:
        """Near the first reference mostly, on the passive side of it or, less often, across;
        sometimes at or past the band, off tick, or not positive."""
        rules = self.market.rules
        tick = rules.tick_fen
        reference = self.market.reference_price_fen
        spread = self.market.spread_ticks
        away = -1 if side is Side.BUY else 1
        if c.percent(30):
            away = -away
            ticks = c.integer(0, spread // 2 + 1)
        else:
            ticks = c.integer(0, spread)
        near = max(self.market.anchor_fen + away * ticks * tick, tick)
        if not c.percent(8):
            return near
        low, high = price_band(rules, reference)
        odd = c.integer(0, 5)
        if odd == 0:
            return c.choice((low, high))
        if odd == 1:
            return c.choice((low - tick, high + tick))
        if odd == 2 and tick > 1:
            return near + c.integer(1, tick - 1)
        if odd == 3:
            return c.choice((0, -tick))
        return c.choice((low - 20 * tick, high + 20 * tick, 2 * high))

    def _quantity(self, c: Chooser) -> int:
        """A few lots mostly; sometimes 0, negative, off lot, or outside the limits."""
        rules = self.market.rules
        lot = rules.lot_t
        ordinary = rules.min_quantity_t + lot * c.integer(0, 5)
        if not c.percent(5):
            return min(ordinary, rules.max_quantity_t)
        odd = c.integer(0, 4)
        if odd == 0:
            return c.choice((0, -lot))
        if odd == 1 and lot > 1:
            return ordinary + c.integer(1, lot - 1)
        if odd == 2 and rules.min_quantity_t > lot:
            return rules.min_quantity_t - lot
        if odd == 3:
            return rules.max_quantity_t
        return rules.max_quantity_t + lot

    # --- commands -------------------------------------------------------------------------

    def _limit(self, c: Chooser) -> NewOrder:
        order_id = self._new_id(c)
        account = c.choice(ACCOUNTS)
        self.owners[order_id] = account
        side = c.choice(SIDES)
        self.sides[order_id] = side
        tif = c.choice(LIMIT_TIFS)
        post_only = c.percent(8)
        if tif in (TimeInForce.GTC, TimeInForce.DAY):
            self.restable.append(order_id)
        return NewOrder(
            ts_ns=self.ts_ns,
            order_id=order_id,
            account_id=account,
            side=side,
            quantity_t=self._quantity(c),
            price_fen=None if c.percent(2) else self._price(c, side),
            order_type=OrderType.LIMIT,
            tif=tif,
            post_only=post_only,
            stp=c.choice(STP_MODES),
        )

    def _market(self, c: Chooser) -> NewOrder:
        order_id = self._new_id(c)
        account = c.choice(ACCOUNTS)
        self.owners[order_id] = account
        side = c.choice(SIDES)
        self.sides[order_id] = side
        tif = c.choice(ALL_TIFS) if c.percent(15) else c.choice((TimeInForce.IOC, TimeInForce.FOK))
        return NewOrder(
            ts_ns=self.ts_ns,
            order_id=order_id,
            account_id=account,
            side=side,
            quantity_t=self._quantity(c),
            price_fen=self._price(c, side) if c.percent(5) else None,
            order_type=OrderType.MARKET,
            tif=tif,
            post_only=c.percent(5),
            stp=c.choice(STP_MODES),
        )

    def _amend(self, c: Chooser) -> Amend:
        order_id = self._known_id(c)
        account = self._owner_or_other(c, order_id)
        side = self.sides.get(order_id, Side.BUY)
        price = self._price(c, side) if c.percent(55) else None
        return Amend(self.ts_ns, order_id, account, self._quantity(c), price)

    def _oddity(self, c: Chooser) -> Command:
        """Commands rare in practice: one account on both sides of one price, a sweep through
        the whole book, an account cancelling everything."""
        odd = c.integer(0, 2)
        if odd == 2:
            return CancelAll(self.ts_ns, 1)
        order_id = self._new_id(c)
        account = 1 if odd == 0 else 2
        side = c.choice(SIDES)
        self.owners[order_id] = account
        self.sides[order_id] = side
        if odd == 0:
            self.restable.append(order_id)
        return NewOrder(
            ts_ns=self.ts_ns,
            order_id=order_id,
            account_id=account,
            side=side,
            quantity_t=self.market.rules.max_quantity_t,
            price_fen=self.market.anchor_fen if odd == 0 else None,
            order_type=OrderType.LIMIT if odd == 0 else OrderType.MARKET,
            tif=c.choice((TimeInForce.GTC, TimeInForce.DAY)) if odd == 0 else TimeInForce.IOC,
            stp=c.choice(STP_MODES),
        )


@dataclass(frozen=True)
class Stream:
    market: Market
    commands: list[Command]


def random_stream(seed: int, n: int, market: Market | None = None) -> Stream:
    """A reproducible stream of `n` commands; the market too is drawn from the seed if not given.

    >>> a, b = random_stream(7, 50), random_stream(7, 50)
    >>> a == b and len(a.commands) == 50
    True
    """
    rng = random.Random(seed)
    chosen = market if market is not None else MARKETS[rng.randrange(len(MARKETS))]
    chooser = RandomChooser(rng)
    generator = StreamGenerator(chosen)
    return Stream(chosen, [generator.next(chooser) for _ in range(n)])


@st.composite
def streams(
    draw: st.DrawFn, markets: Sequence[Market] = MARKETS, min_size: int = 1, max_size: int = 60
) -> Stream:
    """A hypothesis strategy for a stream: it shrinks to fewer, plainer commands."""
    market = draw(st.sampled_from(markets))
    size = draw(st.integers(min_size, max_size))
    chooser = DrawChooser(draw)
    generator = StreamGenerator(market)
    return Stream(market, [generator.next(chooser) for _ in range(size)])
