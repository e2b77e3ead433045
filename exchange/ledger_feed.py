"""Batches of what the exchange decided, for `Ledger.apply`, cut where order would matter.

`Ledger.apply` takes a batch's locks first, then its adjustments (growths, then trims), then its
trades, then its releases. That reordering is harmless except in one case: something of an
account is given back (a release, or an amend's trim) and a later lock or growth of the same
account takes what was given back (cancel a sell, place another for the same tonnes). So a batch
is cut before a lock or growth of an account that gave something back in it, and the two land in
order.
"""

from __future__ import annotations

from settlement.adjusts import OrderAdjust
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
        self._adjusts: list[OrderAdjust] = []
        self._releasing: set[int] = set()  # accounts that gave something back in the open batch
        self.decided = 0  # items ever handed in, so a snapshot knows when the ledger has them
        self._taken = 0  # items handed over by `take`

    def __len__(self) -> int:
        return sum(len(b) for b in self._done) + self._open()

    def lock(self, lock: OrderLock) -> None:
        self.decided += 1
        if lock.account_id in self._releasing:
            self._cut()
        self._locks.append(lock)
        self._cut_if_full()

    def adjust(self, adjust: OrderAdjust) -> None:
        self.decided += 1
        taking = adjust.quantity_t > 0 or adjust.amount_fen > 0
        if taking and adjust.account_id in self._releasing:
            self._cut()
        self._adjusts.append(adjust)
        if not taking:
            self._releasing.add(adjust.account_id)
        self._cut_if_full()

    def trade(self, trade: TradeToSettle) -> None:
        self.decided += 1
        self._trades.append(trade)
        self._cut_if_full()

    def release(self, order_id: int, account_id: int) -> None:
        self.decided += 1
        self._releases.append(order_id)
        self._releasing.add(account_id)
        self._cut_if_full()

    def take(self) -> list[Batch]:
        """Every batch so far, the open one closed, in order."""
        self._cut()
        done, self._done = self._done, []
        self._taken += sum(len(batch) for batch in done)
        return done

    def check_invariants(self) -> None:
        """Raise AssertionError if items were lost or doubled, or a batch is empty or too big."""
        if self.decided != self._taken + len(self):
            raise AssertionError(f"{self.decided} items in, {self._taken} out, {len(self)} held")
        for batch in self._done:
            if not 0 < len(batch) <= self._max_items:
                raise AssertionError(f"a batch of {len(batch)} items (at most {self._max_items})")
        if self._open() > self._max_items:
            raise AssertionError(f"the open batch holds {self._open()} items")

    def _cut_if_full(self) -> None:
        if self._open() >= self._max_items:
            self._cut()

    def _open(self) -> int:
        return len(self._locks) + len(self._trades) + len(self._releases) + len(self._adjusts)

    def _cut(self) -> None:
        if self._open():
            self._done.append(
                Batch(
                    tuple(self._locks),
                    tuple(self._trades),
                    tuple(self._releases),
                    tuple(self._adjusts),
                )
            )
        self._locks, self._trades, self._releases, self._adjusts = [], [], [], []
        self._releasing = set()
