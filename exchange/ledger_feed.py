"""Batches of what the exchange decided, for `Ledger.apply`, cut where order would matter.

`Ledger.apply` takes a batch's locks first, then its adjustments (an amend's growths, then its
trims), then its trades, then its releases. That reordering is harmless except where a lock or a
growth needs what something before it in the batch gave the account: a release or a trim frees an
order's remainder (cancel a sell, place another for the same tonnes), and a trade gives the buyer
tonnes and the seller cash (sell what was just bought, buy with what was just sold for). The risk
view counts these at once, so such an order is accepted; the ledger would refuse its lock ahead
of what pays for it. So a batch is cut before a lock or growth that takes tonnes from an account
credited tonnes in it, or cash from an account credited cash, and the two land in order.
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
        # accounts credited in the open batch: tonnes (a trade's buyer, a sell's release or
        # trim) and cash (a trade's seller, a buy's release or trim)
        self._credited_t: set[int] = set()
        self._credited_fen: set[int] = set()
        self.decided = 0  # items ever handed in, so a snapshot knows when the ledger has them
        self._taken = 0  # items handed over by `take`

    def __len__(self) -> int:
        return sum(len(b) for b in self._done) + self._open()

    def lock(self, lock: OrderLock) -> None:
        self.decided += 1
        self._cut_if_credited(lock.account_id, tonnes=lock.quantity_t > 0)
        self._locks.append(lock)
        self._cut_if_full()

    def adjust(self, adjust: OrderAdjust) -> None:
        self.decided += 1
        tonnes = adjust.quantity_t != 0
        if adjust.quantity_t > 0 or adjust.amount_fen > 0:
            self._cut_if_credited(adjust.account_id, tonnes=tonnes)
        else:
            (self._credited_t if tonnes else self._credited_fen).add(adjust.account_id)
        self._adjusts.append(adjust)
        self._cut_if_full()

    def trade(self, trade: TradeToSettle) -> None:
        self.decided += 1
        self._trades.append(trade)
        self._credited_t.add(trade.buyer_id)
        self._credited_fen.add(trade.seller_id)
        self._cut_if_full()

    def release(self, order_id: int, account_id: int, *, tonnes: bool) -> None:
        """A finished order's remainder comes back: tonnes for a sell, cash for a buy."""
        self.decided += 1
        self._releases.append(order_id)
        (self._credited_t if tonnes else self._credited_fen).add(account_id)
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

    def _cut_if_credited(self, account_id: int, *, tonnes: bool) -> None:
        if account_id in (self._credited_t if tonnes else self._credited_fen):
            self._cut()

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
        self._credited_t, self._credited_fen = set(), set()
