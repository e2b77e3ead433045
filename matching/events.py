"""Events a book emits, and the codes that explain refusals and cancellations.

Every event carries the book's sequence number `seq`, which rises by exactly one per event, and
the `ts_ns` of the command that caused it. Events are frozen, tagged structs so that the service
can journal and forward them without a second schema.
"""

from __future__ import annotations

import enum

import msgspec

from matching.values import Side, TradingStatus


class RejectCode(enum.Enum):
    """Why a command was refused; each name says what must hold. Stable: clients key on them."""

    BOOK_MUST_NOT_BE_HALTED = "BOOK_MUST_NOT_BE_HALTED"
    BOOK_MUST_BE_HALTED = "BOOK_MUST_BE_HALTED"
    BOOK_MUST_BE_IN_AUCTION = "BOOK_MUST_BE_IN_AUCTION"
    BOOK_MUST_NOT_BE_IN_AUCTION = "BOOK_MUST_NOT_BE_IN_AUCTION"
    ORDER_ID_MUST_BE_UNIQUE = "ORDER_ID_MUST_BE_UNIQUE"
    ORDER_MUST_EXIST = "ORDER_MUST_EXIST"
    ORDER_MUST_BELONG_TO_ACCOUNT = "ORDER_MUST_BELONG_TO_ACCOUNT"
    QUANTITY_MUST_BE_POSITIVE = "QUANTITY_MUST_BE_POSITIVE"
    QUANTITY_MUST_BE_ON_LOT = "QUANTITY_MUST_BE_ON_LOT"
    QUANTITY_MUST_BE_WITHIN_LIMITS = "QUANTITY_MUST_BE_WITHIN_LIMITS"
    PRICE_MUST_BE_GIVEN_FOR_LIMIT = "PRICE_MUST_BE_GIVEN_FOR_LIMIT"
    PRICE_MUST_NOT_BE_GIVEN_FOR_MARKET = "PRICE_MUST_NOT_BE_GIVEN_FOR_MARKET"
    PRICE_MUST_BE_POSITIVE = "PRICE_MUST_BE_POSITIVE"
    PRICE_MUST_BE_ON_TICK = "PRICE_MUST_BE_ON_TICK"
    PRICE_MUST_BE_WITHIN_BAND = "PRICE_MUST_BE_WITHIN_BAND"
    MARKET_ORDER_MUST_BE_IOC_OR_FOK = "MARKET_ORDER_MUST_BE_IOC_OR_FOK"
    POST_ONLY_MUST_BE_RESTING_LIMIT = "POST_ONLY_MUST_BE_RESTING_LIMIT"
    ORDER_MUST_REST_DURING_AUCTION = "ORDER_MUST_REST_DURING_AUCTION"
    POST_ONLY_MUST_NOT_CROSS = "POST_ONLY_MUST_NOT_CROSS"
    FOK_MUST_FILL_COMPLETELY = "FOK_MUST_FILL_COMPLETELY"
    AMEND_QUANTITY_MUST_EXCEED_FILLED = "AMEND_QUANTITY_MUST_EXCEED_FILLED"
    AMEND_MUST_CHANGE_ORDER = "AMEND_MUST_CHANGE_ORDER"


class CancelReason(enum.Enum):
    USER = "user"  # a cancel or cancel-all from the owner
    IOC_REMAINDER = "ioc_remainder"  # unfilled part of an IOC or market order
    SELF_TRADE = "self_trade"  # self-trade prevention
    EXPIRED = "expired"  # a DAY order at the end of the day
    HALT = "halt"  # a halt that cancels resting orders


class Accepted(msgspec.Struct, frozen=True, gc=False, tag="accepted"):
    seq: int
    ts_ns: int
    order_id: int
    account_id: int
    side: Side
    quantity_t: int
    price_fen: int | None  # None for a market order


class Rejected(msgspec.Struct, frozen=True, gc=False, tag="rejected"):
    seq: int
    ts_ns: int
    code: RejectCode
    order_id: int | None  # the order the command named, if any
    account_id: int | None


class Trade(msgspec.Struct, frozen=True, gc=False, tag="trade"):
    """One fill between a resting maker and an incoming taker.

    In a call auction neither side aggressed: `aggressor` is None and the maker is the order
    that arrived first.
    """

    seq: int
    ts_ns: int
    trade_id: int
    price_fen: int
    quantity_t: int
    maker_order_id: int
    maker_account_id: int
    taker_order_id: int
    taker_account_id: int
    aggressor: Side | None
    maker_leaves_t: int
    taker_leaves_t: int


class Cancelled(msgspec.Struct, frozen=True, gc=False, tag="cancelled"):
    seq: int
    ts_ns: int
    order_id: int
    account_id: int
    quantity_t: int  # the quantity taken off the order: its leaves at that moment
    reason: CancelReason


class Amended(msgspec.Struct, frozen=True, gc=False, tag="amended"):
    seq: int
    ts_ns: int
    order_id: int
    account_id: int
    price_fen: int
    quantity_t: int  # new total quantity
    leaves_t: int
    priority_kept: bool


class LevelChanged(msgspec.Struct, frozen=True, gc=False, tag="level"):
    """A price level's new total; quantity 0 and count 0 mean the level is gone."""

    seq: int
    ts_ns: int
    side: Side
    price_fen: int
    quantity_t: int
    order_count: int


class StatusChanged(msgspec.Struct, frozen=True, gc=False, tag="status"):
    seq: int
    ts_ns: int
    status: TradingStatus


class Uncrossed(msgspec.Struct, frozen=True, gc=False, tag="uncrossed"):
    """The call auction's result; price None when nothing could execute."""

    seq: int
    ts_ns: int
    price_fen: int | None
    quantity_t: int


class SessionClosed(msgspec.Struct, frozen=True, gc=False, tag="session_closed"):
    """End of day: the close (None when nothing traded) and the next reference price."""

    seq: int
    ts_ns: int
    close_price_fen: int | None
    reference_price_fen: int
    volume_t: int
    notional_fen: int


Event = (
    Accepted
    | Rejected
    | Trade
    | Cancelled
    | Amended
    | LevelChanged
    | StatusChanged
    | Uncrossed
    | SessionClosed
)
