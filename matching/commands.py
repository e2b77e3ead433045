"""Commands a book accepts: frozen, tagged structs, one class per kind.

Every command carries the id and timestamp it was given by the sequencer; the book has no clock
and mints no ids of its own except trade ids, which it numbers from its own state.
"""

from __future__ import annotations

import msgspec

from matching.values import OrderType, Side, StpMode, TimeInForce


class NewOrder(msgspec.Struct, frozen=True, gc=False, tag="new_order"):
    """Enter an order. A limit order has a price; a market order has none and is IOC or FOK."""

    ts_ns: int
    order_id: int
    account_id: int
    side: Side
    quantity_t: int
    price_fen: int | None = None
    order_type: OrderType = OrderType.LIMIT
    tif: TimeInForce = TimeInForce.GTC
    post_only: bool = False
    stp: StpMode = StpMode.CANCEL_NEWEST


class Cancel(msgspec.Struct, frozen=True, gc=False, tag="cancel"):
    ts_ns: int
    order_id: int
    account_id: int


class Amend(msgspec.Struct, frozen=True, gc=False, tag="amend"):
    """Change a resting order's total quantity and, optionally, its price.

    `quantity_t` is the new total order quantity (filled plus leaves), as FIX's OrderQty.
    Quantity down at the same price keeps time priority; a price change or quantity up loses it.
    """

    ts_ns: int
    order_id: int
    account_id: int
    quantity_t: int
    price_fen: int | None = None  # None keeps the price


class CancelAll(msgspec.Struct, frozen=True, gc=False, tag="cancel_all"):
    ts_ns: int
    account_id: int


class EndOfDay(msgspec.Struct, frozen=True, gc=False, tag="end_of_day"):
    """Expire DAY orders, close the session and take its close as the next reference price."""

    ts_ns: int


class Halt(msgspec.Struct, frozen=True, gc=False, tag="halt"):
    ts_ns: int
    cancel_resting: bool = False


class Resume(msgspec.Struct, frozen=True, gc=False, tag="resume"):
    """Leave a halt for the status the book had before it (open or auction)."""

    ts_ns: int


class StartAuction(msgspec.Struct, frozen=True, gc=False, tag="start_auction"):
    ts_ns: int


class Uncross(msgspec.Struct, frozen=True, gc=False, tag="uncross"):
    """Execute the call auction at its single price, then open continuous trading."""

    ts_ns: int


Command = NewOrder | Cancel | Amend | CancelAll | EndOfDay | Halt | Resume | StartAuction | Uncross
