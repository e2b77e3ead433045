"""The order book: pure, synchronous, deterministic price-time matching of CERs.

Commands in, an ordered list of events out. No I/O, no clock, no randomness, no imports from
other project packages. See docs/matching.md for the exact semantics.
"""

from matching.book import BookInvariantError, OrderBook
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
from matching.rules import InstrumentRules, RulesError, price_band
from matching.snapshot import BookSnapshot, decode_snapshot, encode_snapshot
from matching.values import ClosePriceRule, OrderType, Side, StpMode, TimeInForce, TradingStatus

__all__ = [
    "Accepted",
    "Amend",
    "Amended",
    "BookInvariantError",
    "BookSnapshot",
    "Cancel",
    "CancelAll",
    "CancelReason",
    "Cancelled",
    "ClosePriceRule",
    "Command",
    "EndOfDay",
    "Event",
    "Halt",
    "InstrumentRules",
    "LevelChanged",
    "NewOrder",
    "OrderBook",
    "OrderType",
    "RejectCode",
    "Rejected",
    "RestingOrder",
    "Resume",
    "RulesError",
    "SessionClosed",
    "Side",
    "StartAuction",
    "StatusChanged",
    "StpMode",
    "TimeInForce",
    "Trade",
    "TradingStatus",
    "Uncross",
    "Uncrossed",
    "decode_snapshot",
    "encode_snapshot",
    "price_band",
]
