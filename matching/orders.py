"""A resting order's state, as the book keeps it and as a snapshot records it."""

from __future__ import annotations

import msgspec

from matching.values import Side, StpMode, TimeInForce


class RestingOrder(msgspec.Struct, gc=False):
    """Mutable on purpose: fills and amends change `leaves_t` and `filled_t` in place.

    Its total quantity is `filled_t + leaves_t`; `entry_seq` is the seq of the event that gave it
    its place in the queue.
    """

    order_id: int
    account_id: int
    side: Side
    price_fen: int
    leaves_t: int
    filled_t: int
    tif: TimeInForce
    stp: StpMode
    post_only: bool
    entry_seq: int

    @property
    def quantity_t(self) -> int:
        return self.filled_t + self.leaves_t
