"""The pre-trade risk view: what each account can still spend and deliver, in memory.

It mirrors the ledger as it will stand once everything the exchange has decided has been applied
there: orders reserve at once (a buy its cash, a sell its tonnes of the eligible blocks, oldest
vintage first, as the ledger's lock will choose), fills move the reserved cash and tonnes, and a
finished order's remainder comes back. The ledger catches up in batches (`Ledger.apply`); this
view answers at once, so an order never waits for the database to be checked. Built from the
ledger at start, after the ledger has caught up with the journal.
"""

from __future__ import annotations

from bisect import insort
from collections import defaultdict
from collections.abc import Callable

from settlement.connection import Connection
from settlement.dvp import fees
from settlement.errors import ErrorCode, LedgerError
from settlement.values import EXTERNAL_ACCOUNT_ID, BlockInfo, CerFilter, TradeToSettle


class RiskInvariantError(AssertionError):
    pass


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise RiskInvariantError(message)


class _Sell:
    __slots__ = ("account_id", "by_block")

    def __init__(self, account_id: int, by_block: dict[str, int]) -> None:
        self.account_id = account_id
        self.by_block = by_block  # block -> tonnes still reserved, in delivery order


class _Buy:
    __slots__ = ("account_id", "fen")

    def __init__(self, account_id: int, fen: int) -> None:
        self.account_id = account_id
        self.fen = fen


class RiskView:
    def __init__(self, blocks: dict[str, BlockInfo]) -> None:
        self._blocks = blocks
        self._order = sorted(blocks, key=lambda b: (blocks[b].vintage, b))
        self._rank = {block: rank for rank, block in enumerate(self._order)}
        self._cash: defaultdict[int, int] = defaultdict(int)
        self._free: defaultdict[int, dict[str, int]] = defaultdict(dict)
        self._sells: dict[int, _Sell] = {}
        self._buys: dict[int, _Buy] = {}
        # what amends hold until their book says yes (added to the order) or no (given back)
        self._held: dict[int, _Sell | _Buy] = {}

    @classmethod
    async def load(cls, conn: Connection) -> RiskView:
        """The view of the ledger as it stands: free tonnes, available cash and open locks."""
        blocks = {
            row[0]: BlockInfo(row[1], row[2], row[3])
            for row in await conn.fetch(
                "SELECT b.block_id, b.vintage, p.methodology, b.project"
                " FROM blocks b JOIN projects p ON p.code = b.project"
            )
        }
        view = cls(blocks)
        for account_id, fen in await conn.fetch(
            "SELECT account_id, balance_fen FROM cash_balances WHERE bucket = 'available'"
        ):
            view.credit_cash(account_id, fen)
        for account_id, block_id, tonnes in await conn.fetch(
            "SELECT account_id, block_id, sum(last_serial - first_serial + 1)::bigint FROM holdings"
            " WHERE state = 'free' GROUP BY 1, 2"
        ):
            view.credit_tonnes(account_id, block_id, tonnes)
        sells: defaultdict[int, dict[str, int]] = defaultdict(dict)
        owners: dict[int, int] = {}
        for order_id, account_id, block_id, tonnes in await conn.fetch(
            "SELECT h.order_id, h.account_id, h.block_id, sum(h.last_serial - h.first_serial + 1)"
            "::bigint FROM holdings h JOIN blocks b USING (block_id) WHERE h.state = 'locked'"
            " GROUP BY 1, 2, 3, b.vintage ORDER BY 1, b.vintage, 3"
        ):
            sells[order_id][block_id] = tonnes
            owners[order_id] = account_id
        for order_id, by_block in sells.items():
            view._sells[order_id] = _Sell(owners[order_id], by_block)
        for order_id, account_id, fen in await conn.fetch(
            "SELECT order_id, account_id, remaining_fen FROM cash_locks WHERE remaining_fen > 0"
        ):
            view._buys[order_id] = _Buy(account_id, fen)
        return view

    # -- reads ---------------------------------------------------------------------------------

    def available_fen(self, account_id: int) -> int:
        return self._cash[account_id]

    def free_t(self, account_id: int) -> int:
        return sum(self._free[account_id].values())

    def free_by_block(self, account_id: int) -> dict[str, int]:
        return {block: t for block, t in self._free[account_id].items() if t}

    def keeps_free(self, order_id: int, account_id: int, tonnes: int) -> bool:
        """Whether every block the sell order reserved from keeps `tonnes` free (see
        `exchange.ledger_feed` for why that lets its lock share a batch with tonnes received)."""
        free, reserved = self._free[account_id], self.reserved_by_block(order_id)
        return bool(reserved) and all(free.get(block, 0) >= tonnes for block in reserved)

    def reserved_by_block(self, order_id: int) -> dict[str, int]:
        sell = self._sells.get(order_id)
        return {block: t for block, t in sell.by_block.items() if t} if sell else {}

    def reserved(self, order_id: int) -> tuple[int, int]:
        """(tonnes, fen) still reserved for an order."""
        sell, buy = self._sells.get(order_id), self._buys.get(order_id)
        return (sum(sell.by_block.values()) if sell else 0, buy.fen if buy else 0)

    def check_invariants(self) -> None:
        """Raise `RiskInvariantError` if the view contradicts itself."""
        for account_id, fen in self._cash.items():
            # the external account is where deposits come from: it goes negative by design
            ok = fen >= 0 or account_id == EXTERNAL_ACCOUNT_ID
            _require(ok, f"account {account_id} has {fen} fen available")
        for account_id, free in self._free.items():
            for block, tonnes in free.items():
                _require(tonnes >= 0, f"account {account_id} has {tonnes} t free of {block}")
                _require(block in self._blocks, f"account {account_id} holds unknown {block}")
        for order_id, sell in self._sells.items():
            blocks = list(sell.by_block)
            _require(
                blocks == sorted(blocks, key=self._rank.__getitem__),
                f"sell order {order_id} would deliver out of vintage order: {blocks}",
            )
            _require(
                all(t > 0 for t in sell.by_block.values()),
                f"sell order {order_id} keeps empty or negative blocks: {sell.by_block}",
            )
        for order_id, buy in self._buys.items():
            _require(buy.fen >= 0, f"buy order {order_id} has {buy.fen} fen reserved")

    # -- changes -------------------------------------------------------------------------------

    def credit_cash(self, account_id: int, fen: int) -> None:
        self._cash[account_id] += fen

    def debit_cash(self, account_id: int, fen: int) -> None:
        """Take cash an account has not reserved (a withdrawal), or refuse."""
        if self._cash[account_id] < fen:
            raise LedgerError(
                ErrorCode.INSUFFICIENT_CASH,
                f"{fen} fen asked, {self._cash[account_id]} available (orders reserve the rest)",
            )
        self._cash[account_id] -= fen

    def add_block(self, block_id: str, info: BlockInfo) -> None:
        """Know a block issued while running, ranked among the others for delivery. O(blocks)."""
        if block_id in self._blocks:
            raise ValueError(f"block {block_id} is known already")
        self._blocks[block_id] = info
        insort(self._order, block_id, key=lambda b: (self._blocks[b].vintage, b))
        self._rank = {block: rank for rank, block in enumerate(self._order)}

    def credit_tonnes(self, account_id: int, block_id: str, tonnes: int) -> None:
        free = self._free[account_id]
        free[block_id] = free.get(block_id, 0) + tonnes

    def reserve_buy(self, order_id: int, account_id: int, fen: int) -> None:
        if self._cash[account_id] < fen:
            raise LedgerError(
                ErrorCode.INSUFFICIENT_CASH,
                f"{fen} fen needed, {self._cash[account_id]} available",
            )
        self._cash[account_id] -= fen
        self._buys[order_id] = _Buy(account_id, fen)

    def reserve_sell(self, order_id: int, account_id: int, tonnes: int, only: CerFilter) -> None:
        self._sells[order_id] = _Sell(account_id, self._take(account_id, tonnes, only))

    def take_out(
        self, account_id: int, tonnes: int, eligible: Callable[[str], bool]
    ) -> dict[str, int]:
        """Take free tonnes out of trading for good (a surrender, a retirement): `tonnes` of the
        blocks `eligible` admits, oldest vintage first; the tonnes taken per block."""
        return self._take_where(account_id, tonnes, eligible)

    def take_out_blocks(self, account_id: int, per_block: dict[str, int]) -> None:
        """Take exactly so many free tonnes of each block out of trading, or refuse and take
        none."""
        free = self._free[account_id]
        short = {b: t for b, t in per_block.items() if free.get(b, 0) < t}
        if short:
            block, tonnes = next(iter(short.items()))
            raise LedgerError(
                ErrorCode.INSUFFICIENT_HOLDINGS,
                f"{tonnes} t of {block} needed, {free.get(block, 0)} t free and not in orders",
            )
        for block, tonnes in per_block.items():
            free[block] -= tonnes

    def put_back(self, account_id: int, per_block: dict[str, int]) -> None:
        """Undo a `take_out`: the ledger refused the write."""
        for block, tonnes in per_block.items():
            self.credit_tonnes(account_id, block, tonnes)

    def hold_buy(self, hold_id: int, account_id: int, fen: int) -> None:
        """Set cash aside for an amend that grows a buy order, until `grow` or `unhold`."""
        self.reserve_buy(hold_id, account_id, fen)
        self._held[hold_id] = self._buys.pop(hold_id)

    def hold_sell(self, hold_id: int, account_id: int, tonnes: int, only: CerFilter) -> None:
        """Set tonnes aside for an amend that grows a sell order, until `grow` or `unhold`."""
        self._held[hold_id] = _Sell(account_id, self._take(account_id, tonnes, only))

    def grow(self, hold_id: int, order_id: int) -> None:
        """The amend was accepted: its holding joins the order's reservation."""
        held = self._held.pop(hold_id)
        if isinstance(held, _Buy):
            self._buys[order_id].fen += held.fen
            return
        by_block = self._sells[order_id].by_block
        for block, tonnes in held.by_block.items():
            by_block[block] = by_block.get(block, 0) + tonnes
        # delivery goes oldest vintage first, over the grown reservation as over the first one
        self._sells[order_id].by_block = dict(
            sorted(by_block.items(), key=lambda item: self._rank[item[0]])
        )

    def unhold(self, hold_id: int) -> None:
        """The amend was refused (or never journaled): give its holding back as it was taken."""
        held = self._held.pop(hold_id, None)
        if isinstance(held, _Buy):
            self._cash[held.account_id] += held.fen
        elif held is not None:
            for block, tonnes in held.by_block.items():
                self.credit_tonnes(held.account_id, block, tonnes)

    def trim(self, order_id: int, tonnes: int = 0, fen: int = 0) -> None:
        """Give back part of an order's reservation: cash, or tonnes from the end of the
        delivery order (newest vintage first), as the ledger's trim does."""
        if fen:
            buy = self._buys[order_id]
            buy.fen -= fen
            self._cash[buy.account_id] += fen
        if tonnes:
            sell = self._sells[order_id]
            for block in reversed(list(sell.by_block)):
                size = min(sell.by_block[block], tonnes)
                sell.by_block[block] -= size
                if not sell.by_block[block]:
                    del sell.by_block[block]
                self.credit_tonnes(sell.account_id, block, size)
                tonnes -= size
                if not tonnes:
                    break
        if tonnes:
            raise AssertionError(f"order {order_id} holds fewer tonnes than its trim")

    def _take(self, account_id: int, tonnes: int, only: CerFilter) -> dict[str, int]:
        return self._take_where(account_id, tonnes, lambda b: only.admits(self._blocks[b]))

    def _take_where(
        self, account_id: int, tonnes: int, admits: Callable[[str], bool]
    ) -> dict[str, int]:
        free = self._free[account_id]
        eligible = sorted(
            (b for b, t in free.items() if t and admits(b)), key=self._rank.__getitem__
        )
        if sum(free[b] for b in eligible) < tonnes:
            raise LedgerError(
                ErrorCode.INSUFFICIENT_HOLDINGS,
                f"{tonnes} t needed, {sum(free[b] for b in eligible)} t free that qualify",
            )
        taken: dict[str, int] = {}
        wanted = tonnes
        for block in eligible:
            size = min(free[block], wanted)
            free[block] -= size
            taken[block] = size
            wanted -= size
            if not wanted:
                break
        return taken

    def fill(self, trade: TradeToSettle) -> None:
        """Move a trade's tonnes and cash out of its orders' reservations, as DvP will."""
        buyer_fee, seller_fee = fees(trade)
        notional = trade.price_fen * trade.quantity_t
        buy = self._buys[trade.buy_order_id]
        buy.fen -= notional + buyer_fee
        self._cash[trade.seller_id] += notional - seller_fee
        sell = self._sells[trade.sell_order_id]
        wanted = trade.quantity_t
        for block in list(sell.by_block):
            size = min(sell.by_block[block], wanted)
            sell.by_block[block] -= size
            if not sell.by_block[block]:
                del sell.by_block[block]
            self.credit_tonnes(trade.buyer_id, block, size)
            wanted -= size
            if not wanted:
                break
        if wanted or buy.fen < 0:
            raise AssertionError(f"trade {trade.trade_id} exceeds its orders' reservations")

    def release(self, order_id: int) -> None:
        """Return what an order still holds; a second release finds nothing."""
        sell = self._sells.pop(order_id, None)
        if sell is not None:
            for block, tonnes in sell.by_block.items():
                self.credit_tonnes(sell.account_id, block, tonnes)
        buy = self._buys.pop(order_id, None)
        if buy is not None:
            self._cash[buy.account_id] += buy.fen
