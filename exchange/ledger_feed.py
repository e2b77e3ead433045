"""Batches of what the exchange decided, for `Ledger.apply`, cut where order would matter.

`Ledger.apply` takes a batch's locks first, then its trades, then its releases, and posts the
batch's cash moves at once, so only each cash balance's net change must keep it non-negative.
Cash therefore never forces a cut: a buy's lock may use cash that a release or a sale earlier on
the exchange returned, in the same batch. Tonnes do: a sell order's lock takes only tonnes free
before the batch, so a batch is cut before a sell lock of an account that receives tonnes in it
(a release of one of its sell orders, or a trade in which it buys), and the two land in order.
"""

from __future__ import annotations

from settlement.batches import Batch, OrderLock
from settlement.values import TradeToSettle


class BatchBuilder:
    """Collects locks, trades and releases in decision order; `take` hands over the batches."""

    def __init__(self, max_items: int = 2_000) -> None:
        self._max_items = max_items
        self._done: list[Batch] = []
        self._locks: list[OrderLock] = []
        self._trades: list[TradeToSettle] = []
        self._releases: list[int] = []
        self._receiving: set[int] = set()  # accounts that receive tonnes in the open batch

    def __len__(self) -> int:
        return sum(len(b.locks) + len(b.trades) + len(b.releases) for b in self._done) + (
            len(self._locks) + len(self._trades) + len(self._releases)
        )

    def lock(self, lock: OrderLock) -> None:
        if lock.quantity_t and lock.account_id in self._receiving:
            self._cut()
        self._locks.append(lock)
        self._cut_if_full()

    def trade(self, trade: TradeToSettle) -> None:
        self._trades.append(trade)
        self._receiving.add(trade.buyer_id)
        self._cut_if_full()

    def release(self, order_id: int, account_id: int, *, tonnes: bool = True) -> None:
        """`tonnes`: the order may hold tonnes (a sell order); a buy order holds only cash."""
        self._releases.append(order_id)
        if tonnes:
            self._receiving.add(account_id)
        self._cut_if_full()

    def take(self) -> list[Batch]:
        """Every batch so far, the open one closed, in order."""
        self._cut()
        done, self._done = self._done, []
        return done

    def _cut_if_full(self) -> None:
        if len(self._locks) + len(self._trades) + len(self._releases) >= self._max_items:
            self._cut()

    def _cut(self) -> None:
        if self._locks or self._trades or self._releases:
            self._done.append(Batch(tuple(self._locks), tuple(self._trades), tuple(self._releases)))
        self._locks, self._trades, self._releases = [], [], []
        self._receiving = set()
