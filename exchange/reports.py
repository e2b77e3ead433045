"""What an account is told: execution reports built from the book's events, and its balance.

Quantity is conserved in every report: quantity = cumulative filled + leaves + cancelled.
"""

from __future__ import annotations

import msgspec

from exchange.instruments import Instrument
from exchange.journal import Entry
from exchange.snapshots import LiveOrder
from matching import Accepted, Amended, Cancelled, Event, NewOrder, Rejected, Trade


class ExecutionReport(msgspec.Struct, frozen=True, omit_defaults=True, tag="execution"):
    symbol: str
    order_id: int | None
    cl_ord_id: str | None
    status: str  # new, partially_filled, filled, cancelled, rejected, amended
    quantity: int
    cum_qty: int
    leaves_qty: int
    last_qty: int = 0
    last_price: int | None = None
    trade_id: int | None = None
    reason: str | None = None


class BalanceUpdate(msgspec.Struct, frozen=True, tag="balance"):
    """What the account can now use for new orders: cash, and tonnes not reserved by its sells
    (of any vintage; an instrument accepts those it lists). Sent after each change."""

    available_fen: int
    free_t: int


class _Order:
    __slots__ = ("cl_ord_id", "cum", "quantity")

    def __init__(self, cl_ord_id: str | None, quantity: int) -> None:
        self.cl_ord_id = cl_ord_id
        self.quantity = quantity
        self.cum = 0


class Reports:
    """Turns each applied entry's events into (account, report) pairs."""

    def __init__(self, instruments: dict[str, Instrument]) -> None:
        self._instruments = instruments
        self._orders: dict[int, _Order] = {}

    def fill_in(self, orders: list[LiveOrder]) -> list[LiveOrder]:
        """`orders` with their client order ids and filled quantities, for a snapshot."""
        out = []
        for order in orders:
            known = self._orders[order.order_id]
            out.append(msgspec.structs.replace(order, cl_ord_id=known.cl_ord_id, cum_t=known.cum))
        return out

    def restore(self, orders: list[LiveOrder]) -> None:
        for order in orders:
            known = self._orders[order.order_id] = _Order(order.cl_ord_id, order.quantity_t)
            known.cum = order.cum_t

    def of(self, entry: Entry, events: list[Event]) -> list[tuple[int, ExecutionReport]]:
        out: list[tuple[int, ExecutionReport]] = []
        symbol = entry.symbol
        for event in events:
            if isinstance(event, Accepted):
                order = self._orders[event.order_id] = _Order(entry.cl_ord_id, event.quantity_t)
                out.append(
                    (
                        event.account_id,
                        self._report(symbol, event.order_id, "new", event.quantity_t),
                    )
                )
            elif isinstance(event, Trade):
                for order_id, account, leaves in (
                    (event.maker_order_id, event.maker_account_id, event.maker_leaves_t),
                    (event.taker_order_id, event.taker_account_id, event.taker_leaves_t),
                ):
                    order = self._orders[order_id]
                    order.cum += event.quantity_t
                    status = "partially_filled" if leaves else "filled"
                    out.append(
                        (
                            account,
                            ExecutionReport(
                                symbol,
                                order_id,
                                order.cl_ord_id,
                                status,
                                order.quantity,
                                order.cum,
                                leaves,
                                event.quantity_t,
                                event.price_fen,
                                self._instruments[symbol].trade_id(event.trade_id),
                            ),
                        )
                    )
                    if not leaves:
                        del self._orders[order_id]
            elif isinstance(event, Cancelled):
                order = self._orders.pop(event.order_id)
                out.append(
                    (
                        event.account_id,
                        ExecutionReport(
                            symbol,
                            event.order_id,
                            order.cl_ord_id,
                            "cancelled",
                            order.quantity,
                            order.cum,
                            0,
                            reason=event.reason.value,
                        ),
                    )
                )
            elif isinstance(event, Amended):
                order = self._orders[event.order_id]
                order.quantity = event.quantity_t
                out.append(
                    (
                        event.account_id,
                        self._report(symbol, event.order_id, "amended", event.leaves_t),
                    )
                )
            elif isinstance(event, Rejected) and event.account_id is not None:
                command = entry.command
                cl_ord_id = entry.cl_ord_id if isinstance(command, NewOrder) else None
                quantity = command.quantity_t if isinstance(command, NewOrder) else 0
                out.append(
                    (
                        event.account_id,
                        ExecutionReport(
                            symbol,
                            event.order_id,
                            cl_ord_id,
                            "rejected",
                            quantity,
                            0,
                            0,
                            reason=event.code.value,
                        ),
                    )
                )
        return out

    def _report(self, symbol: str, order_id: int, status: str, leaves: int) -> ExecutionReport:
        order = self._orders[order_id]
        return ExecutionReport(
            symbol, order_id, order.cl_ord_id, status, order.quantity, order.cum, leaves
        )
