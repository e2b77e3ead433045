"""Batches of what the exchange decided, for `Ledger.apply`, cut where order would matter.

`Ledger.apply` takes a batch's locks first, then its trades, then its releases. That reordering
is harmless except where a lock needs what something before it in the batch gave the account:
a release frees an order's remainder (cancel a sell, place another for the same tonnes), and a
trade gives the buyer tonnes and the seller cash (sell what was just bought, buy with what was
just sold for). The risk view counts both at once, so such an order is accepted; the ledger
would refuse its lock ahead of the release or trade that pays for it. So a batch is cut before
a lock of an account credited in it, and the two land in order.
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
        self._credited: set[int] = set()  # accounts a release or trade in the open batch paid

    def __len__(self) -> int:
        return sum(len(b.locks) + len(b.trades) + len(b.releases) for b in self._done) + (
            len(self._locks) + len(self._trades) + len(self._releases)
        )

    def lock(self, lock: OrderLock) -> None:
        if lock.account_id in self._credited:
            self._cut()
        self._locks.append(lock)
        self._cut_if_full()

    def trade(self, trade: TradeToSettle) -> None:
        self._trades.append(trade)
        self._credited.update((trade.buyer_id, trade.seller_id))
        self._cut_if_full()

    def release(self, order_id: int, account_id: int) -> None:
        self._releases.append(order_id)
        self._credited.add(account_id)
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
        self._credited = set()
