"""Batches of what the exchange decided, for `Ledger.apply`, cut where order would matter.

`Ledger.apply` takes a batch's locks first, then its adjustments (an amend's growths, then its
trims), then its trades, then its releases, and posts the batch's cash moves at once, so only
each cash balance's net change must keep it non-negative. Cash therefore never forces a cut: a
buy's lock may use cash that a release or a sale earlier on the exchange returned, in the same
batch. Tonnes do: a sell order's lock, or an amend's growth of one, takes only tonnes free before
the batch, so a batch is cut before either of an account that receives tonnes in it (a release or
a trim of one of its sell orders, or a trade in which it buys), and the two land in order.

Unless the lock cannot have used them. On a live exchange `fits(lock, received)` asks the risk
view, which reserved the lock's tonnes block by block, oldest first, as the ledger will: if each
block it took from keeps at least `received` tonnes free, then every tonne it took was free
before the batch (the view's free tonnes are the ledger's before the batch, less the batch's
earlier locks, plus what the batch delivered), so the ledger takes the same blocks without what
the batch delivers, and no cut is needed. Traders who buy and sell all day would otherwise
settle a few items a batch. During a replay there is no view, and every such lock cuts.

Netting: an order locked and released within the open batch, with no trade or amendment of its
own in between, asks nothing of the ledger (its lock would be made and undone in one
transaction), so neither is handed over. Most orders on a busy market are cancelled unfilled,
and this spares the ledger their two writes each. It is safe only while every lock in the open
batch is new to the ledger, which holds on a live exchange (`netting` is set once recovery has
handed its batches over) but not during a replay, whose locks the ledger may have applied before
the crash.
"""

from __future__ import annotations

from collections.abc import Callable

from settlement.adjusts import OrderAdjust
from settlement.batches import Batch, OrderLock
from settlement.values import TradeToSettle


class BatchBuilder:
    """Collects locks, trades and releases in decision order; `take` hands over the batches."""

    def __init__(self, max_items: int = 2_000) -> None:
        self._max_items = max_items
        self._done: list[Batch] = []
        self._locks: dict[int, OrderLock] = {}  # the open batch's, by order id, in order
        self._trades: list[TradeToSettle] = []
        self._releases: list[int] = []
        self._adjusts: list[OrderAdjust] = []
        self._received: dict[int, int] = {}  # tonnes accounts receive in the open batch
        self._touched: set[int] = set()  # orders traded or amended in the open batch
        self.netting = False
        self.fits: Callable[[OrderLock, int], bool] | None = None  # see the module's notes
        self.decided = 0  # items ever handed in, so a snapshot knows when the ledger has them
        self.netted = 0  # of those, items netted away: never in a batch, nothing to apply
        self._taken = 0  # items handed over by `take`

    def __len__(self) -> int:
        return sum(len(b) for b in self._done) + self._open()

    def lock(self, lock: OrderLock) -> None:
        self.decided += 1
        received = self._received.get(lock.account_id, 0)
        if lock.quantity_t and received and (self.fits is None or not self.fits(lock, received)):
            self._cut()
        self._locks[lock.order_id] = lock
        self._cut_if_full()

    def adjust(self, adjust: OrderAdjust) -> None:
        self.decided += 1
        if adjust.quantity_t > 0 and adjust.account_id in self._received:
            self._cut()
        elif adjust.quantity_t < 0:
            self._receive(adjust.account_id, -adjust.quantity_t)
        self._adjusts.append(adjust)
        self._touched.add(adjust.order_id)
        self._cut_if_full()

    def trade(self, trade: TradeToSettle) -> None:
        self.decided += 1
        self._trades.append(trade)
        self._touched.add(trade.buy_order_id)
        self._touched.add(trade.sell_order_id)
        self._receive(trade.buyer_id, trade.quantity_t)
        self._cut_if_full()

    def release(self, order_id: int, account_id: int, *, tonnes_back: int) -> None:
        """A finished order's remainder comes back: `tonnes_back` for a sell, cash for a buy."""
        self.decided += 1
        if self.netting and order_id in self._locks and order_id not in self._touched:
            del self._locks[order_id]
            self.netted += 2
            return
        self._releases.append(order_id)
        if tonnes_back:
            self._receive(account_id, tonnes_back)
        self._cut_if_full()

    def take(self) -> list[Batch]:
        """Every batch so far, the open one closed, in order."""
        self._cut()
        done, self._done = self._done, []
        self._taken += sum(len(batch) for batch in done)
        return done

    def check_invariants(self) -> None:
        """Raise AssertionError if items were lost or doubled, or a batch is empty or too big."""
        if self.decided != self._taken + len(self) + self.netted:
            raise AssertionError(
                f"{self.decided} items in, {self._taken} out, {len(self)} held,"
                f" {self.netted} netted"
            )
        for batch in self._done:
            if not 0 < len(batch) <= self._max_items:
                raise AssertionError(f"a batch of {len(batch)} items (at most {self._max_items})")
        if self._open() > self._max_items:
            raise AssertionError(f"the open batch holds {self._open()} items")

    def _receive(self, account_id: int, tonnes: int) -> None:
        self._received[account_id] = self._received.get(account_id, 0) + tonnes

    def _cut_if_full(self) -> None:
        if self._open() >= self._max_items:
            self._cut()

    def _open(self) -> int:
        return len(self._locks) + len(self._trades) + len(self._releases) + len(self._adjusts)

    def _cut(self) -> None:
        if self._open():
            self._done.append(
                Batch(
                    tuple(self._locks.values()),
                    tuple(self._trades),
                    tuple(self._releases),
                    tuple(self._adjusts),
                )
            )
        self._locks, self._trades, self._releases, self._adjusts = {}, [], [], []
        self._received = {}
        self._touched = set()
