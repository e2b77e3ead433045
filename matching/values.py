"""Value types shared by commands, events and the book.

String-valued enums: they read well on the wire and in the journal, and msgspec encodes and
validates them by value. The book compares members by identity, so their cost on the hot path
is a pointer comparison.
"""

from __future__ import annotations

import enum


class Side(enum.Enum):
    BUY = "buy"
    SELL = "sell"


class OrderType(enum.Enum):
    LIMIT = "limit"
    MARKET = "market"


class TimeInForce(enum.Enum):
    GTC = "gtc"  # good till cancelled
    IOC = "ioc"  # immediate or cancel: the remainder is cancelled
    FOK = "fok"  # fill or kill: all at once or refused
    DAY = "day"  # expires at the end of the trading day


class StpMode(enum.Enum):
    """Self-trade prevention, decided by the incoming (newest) order's mode."""

    CANCEL_NEWEST = "cancel_newest"
    CANCEL_OLDEST = "cancel_oldest"
    CANCEL_BOTH = "cancel_both"


class TradingStatus(enum.Enum):
    OPEN = "open"  # continuous matching
    HALTED = "halted"  # no new orders or amends; cancels allowed
    AUCTION = "auction"  # orders rest without matching until uncross


class ClosePriceRule(enum.Enum):
    """How the session's close price, the next reference price, is taken."""

    LAST_TRADE = "last_trade"
    VWAP = "vwap"
