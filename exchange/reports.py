"""What an account is told: execution reports built from the book's events, and its balance;
and each account's open orders as those reports describe them.

Quantity is conserved in every report: quantity = cumulative filled + leaves + cancelled. An
order is open from its acceptance until it is filled or cancelled, so its leaves are its quantity
less what has filled.
"""

from __future__ import annotations

from collections import defaultdict

import msgspec

from exchange.instruments import Instrument
from exchange.journal import Entry
from exchange.snapshots import LiveOrder
from matching import Accepted, Amended, Cancelled, Event, NewOrder, Rejected, Side, Trade


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


class OpenOrder(msgspec.Struct, frozen=True):
    order_id: int
    cl_ord_id: str | None
    symbol: str
    side: Side
    price_fen: int | None  # None only for a market order, which never stays open
    quantity_t: int
    filled_t: int
    leaves_t: int


class _Order:
    __slots__ = ("account_id", "cl_ord_id", "cum", "price_fen", "quantity", "side", "symbol")

    def __init__(
        self,
        symbol: str,
        cl_ord_id: str | None,
        account_id: int,
        side: Side,
        price_fen: int | None,
        quantity: int,
        cum: int = 0,
    ) -> None:
        self.symbol = symbol
        self.cl_ord_id = cl_ord_id
        self.account_id = account_id
        self.side = side
        self.price_fen = price_fen
        self.quantity = quantity
        self.cum = cum


class Reports:
    """Turns each applied entry's events into (account, report) pairs."""

    def __init__(self, instruments: dict[str, Instrument]) -> None:
        self._instruments = instruments
        self._orders: dict[int, _Order] = {}
        self._open: defaultdict[int, set[int]] = defaultdict(set)  # account -> its order ids

    def open_orders(self, account_id: int) -> list[OpenOrder]:
        """The account's open orders, oldest first."""
        views = []
        for order_id in sorted(self._open.get(account_id, ())):
            order = self._orders[order_id]
            views.append(
                OpenOrder(
                    order_id,
                    order.cl_ord_id,
                    order.symbol,
                    order.side,
                    order.price_fen,
                    order.quantity,
                    order.cum,
                    order.quantity - order.cum,
                )
            )
        return views

    def fill_in(self, orders: list[LiveOrder]) -> list[LiveOrder]:
        """`orders` with their client order ids and filled quantities, for a snapshot."""
        out = []
        for order in orders:
            known = self._orders[order.order_id]
            out.append(msgspec.structs.replace(order, cl_ord_id=known.cl_ord_id, cum_t=known.cum))
        return out

    def restore(self, orders: list[LiveOrder]) -> None:
        for order in orders:
            self._orders[order.order_id] = _Order(
                order.symbol,
                order.cl_ord_id,
                order.account_id,
                order.side,
                order.price_fen,
                order.quantity_t,
                order.cum_t,
            )
            self._open[order.account_id].add(order.order_id)

    def of(self, entry: Entry, events: list[Event]) -> list[tuple[int, ExecutionReport]]:
        out: list[tuple[int, ExecutionReport]] = []
        symbol = entry.symbol
        for event in events:
            if isinstance(event, Accepted):
                self._orders[event.order_id] = _Order(
                    symbol,
                    entry.cl_ord_id,
                    event.account_id,
                    event.side,
                    event.price_fen,
                    event.quantity_t,
                )
                self._open[event.account_id].add(event.order_id)
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
                        self._forget(order_id)
            elif isinstance(event, Cancelled):
                order = self._forget(event.order_id)
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
                order.quantity, order.price_fen = event.quantity_t, event.price_fen
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

    def _forget(self, order_id: int) -> _Order:
        order = self._orders.pop(order_id)
        self._open[order.account_id].discard(order_id)
        return order

    def _report(self, symbol: str, order_id: int, status: str, leaves: int) -> ExecutionReport:
        order = self._orders[order_id]
        return ExecutionReport(
            symbol, order_id, order.cl_ord_id, status, order.quantity, order.cum, leaves
        )
