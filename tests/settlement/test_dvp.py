"""Locks and delivery-versus-payment settlement: tonnes to the buyer, cash to the seller, fees
to the exchange, each trade exactly once, a failing batch leaving nothing behind."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import pytest

from settlement.dvp import fees
from settlement.errors import ErrorCode
from settlement.ledger import Ledger
from settlement.values import (
    FEE_ACCOUNT_ID,
    ByQuantity,
    CashBalance,
    CerFilter,
    Role,
    SerialRange,
    TonneState,
    TradeToSettle,
)
from tests.settlement import builders
from tests.settlement.builders import World
from tests.settlement.conftest import unique
from tests.settlement.refusals import refused

_ids = itertools.count(1)


@dataclass
class Market:
    seller: int
    buyer: int
    block_id: str
    sell_order: int
    buy_order: int

    def trade(self, price_fen: int, quantity_t: int, fee_bp: int = 0) -> TradeToSettle:
        return TradeToSettle(
            next(_ids),
            self.buy_order,
            self.sell_order,
            self.buyer,
            self.seller,
            price_fen,
            quantity_t,
            fee_bp,
            fee_bp,
        )


async def market(ledger: Ledger, lock_t: int = 100, lock_fen: int = 1_000_000) -> Market:
    """A seller with `lock_t` tonnes locked to a sell order; a buyer with cash locked to a buy."""
    world = await World.create(ledger)
    block = await world.issue(ledger, 1_000)
    seller, buyer = world.owner.account_id, (await builders.account(ledger)).account_id
    await ledger.deposit(unique("d"), buyer, 10_000_000)
    sell_order, buy_order = next(_ids), next(_ids)
    await ledger.lock_cers(sell_order, seller, lock_t)
    await ledger.lock_cash(buy_order, buyer, lock_fen)
    return Market(seller, buyer, block.block_id, sell_order, buy_order)


async def test_a_trade_delivers_tonnes_pays_the_seller_and_charges_fees(ledger: Ledger) -> None:
    m = await market(ledger)
    fees_before = await ledger.balance(FEE_ACCOUNT_ID)
    seller_before = await ledger.balance(m.seller)
    trade = m.trade(price_fen=4_999, quantity_t=30, fee_bp=25)  # notional 149,970 fen
    report = await ledger.settle([trade])
    assert report.settled == (trade.trade_id,) and report.already_settled == ()
    buyer_fee, seller_fee = fees(trade)
    assert (buyer_fee, seller_fee) == (375, 375)  # 149,970 × 0.0025 = 374.925 → 375
    holdings = await ledger.holdings(m.buyer)
    assert [(h.block_id, h.first, h.last, h.state) for h in holdings] == [
        (m.block_id, 1, 30, TonneState.FREE)
    ]
    assert await ledger.balance(m.buyer) == CashBalance(
        m.buyer, 10_000_000 - 1_000_000, 1_000_000 - 149_970 - 375
    )
    seller_after = await ledger.balance(m.seller)
    assert seller_after.available_fen - seller_before.available_fen == 149_970 - 375
    fees_after = await ledger.balance(FEE_ACCOUNT_ID)
    assert fees_after.available_fen - fees_before.available_fen == 750


async def test_partial_fills_deliver_consecutive_serials_across_batches(ledger: Ledger) -> None:
    m = await market(ledger, lock_t=100)
    first = [m.trade(5_000, 10), m.trade(5_001, 15)]
    await ledger.settle(first)
    await ledger.settle([m.trade(5_002, 5)])
    held = [(h.first, h.last) for h in await ledger.holdings(m.buyer)]
    assert held == [(1, 30)]
    locked = [h for h in await ledger.holdings(m.seller) if h.state is TonneState.LOCKED]
    assert [(h.first, h.last, h.order_id) for h in locked] == [(31, 100, m.sell_order)]


async def test_settling_a_trade_again_changes_nothing_and_says_so(ledger: Ledger) -> None:
    m = await market(ledger)
    trades = [m.trade(5_000, 10, 5), m.trade(5_000, 20, 5)]
    await ledger.settle(trades[:1])
    before = (await ledger.holdings(m.buyer), await ledger.balance(m.buyer))
    again = await ledger.settle(trades[:1])
    assert again.settled == () and again.already_settled == (trades[0].trade_id,)
    assert again.txn_id is None
    assert (await ledger.holdings(m.buyer), await ledger.balance(m.buyer)) == before
    mixed = await ledger.settle(trades)
    assert mixed.settled == (trades[1].trade_id,)
    assert mixed.already_settled == (trades[0].trade_id,)
    assert sum(h.quantity_t for h in await ledger.holdings(m.buyer)) == 30


async def test_a_known_trade_id_with_other_terms_is_refused(ledger: Ledger) -> None:
    m = await market(ledger)
    trade = m.trade(5_000, 10)
    await ledger.settle([trade])
    altered = TradeToSettle(**{**_fields(trade), "quantity_t": 11})
    await refused(ErrorCode.TRADE_CONFLICT, ledger.settle([altered]))
    twice = [m.trade(5_000, 1)]
    twice.append(TradeToSettle(**{**_fields(twice[0]), "price_fen": 5_001}))
    await refused(ErrorCode.TRADE_CONFLICT, ledger.settle(twice))


async def test_a_failing_trade_rolls_back_its_whole_batch(ledger: Ledger) -> None:
    m = await market(ledger, lock_t=20, lock_fen=200_000)
    before = (await ledger.holdings(m.buyer), await ledger.balance(m.buyer))
    good = m.trade(5_000, 10)
    too_many = m.trade(5_000, 11)  # the lock has 10 tonnes left after `good`
    error = await refused(ErrorCode.LOCK_INSUFFICIENT, ledger.settle([good, too_many]))
    assert str(too_many.trade_id) in error.message
    assert (await ledger.holdings(m.buyer), await ledger.balance(m.buyer)) == before
    too_dear = m.trade(20_001, 10)  # 200,010 fen against 200,000 locked
    await refused(ErrorCode.LOCK_INSUFFICIENT, ledger.settle([too_dear]))
    # nothing was recorded either: the good trade settles now, once
    assert (await ledger.settle([good])).settled == (good.trade_id,)


async def test_a_trade_must_name_the_locks_of_its_own_accounts(ledger: Ledger) -> None:
    m = await market(ledger)
    other = await market(ledger)
    wrong_seller = TradeToSettle(
        next(_ids), m.buy_order, other.sell_order, m.buyer, m.seller, 5_000, 1
    )
    await refused(ErrorCode.LOCK_INSUFFICIENT, ledger.settle([wrong_seller]))
    wrong_buyer = TradeToSettle(
        next(_ids), other.buy_order, m.sell_order, m.buyer, m.seller, 5_000, 1
    )
    await refused(ErrorCode.LOCK_INSUFFICIENT, ledger.settle([wrong_buyer]))


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"quantity_t": 0}, ErrorCode.QUANTITY_MUST_BE_POSITIVE),
        ({"price_fen": 0}, ErrorCode.PRICE_MUST_BE_POSITIVE),
        ({"buyer_fee_bp": -1}, ErrorCode.FEE_RATE_OUT_OF_RANGE),
        ({"seller_fee_bp": 1_001}, ErrorCode.FEE_RATE_OUT_OF_RANGE),
        ({"trade_id": 0}, ErrorCode.MALFORMED_ID),
        ({"buy_order_id": -4}, ErrorCode.MALFORMED_ID),
        ({"buyer_id": "seller"}, ErrorCode.SAME_ACCOUNT),
        ({"buyer_id": 876_543}, ErrorCode.ACCOUNT_NOT_FOUND),
    ],
)
async def test_malformed_trades_are_refused(
    ledger: Ledger, change: dict[str, object], code: ErrorCode
) -> None:
    m = await market(ledger)
    fields = _fields(m.trade(5_000, 1))
    fields.update({k: m.seller if v == "seller" else v for k, v in change.items()})
    await refused(code, ledger.settle([TradeToSettle(**fields)]))  # type: ignore[arg-type]


async def test_release_returns_what_is_left_once(ledger: Ledger) -> None:
    m = await market(ledger, lock_t=50, lock_fen=300_000)
    await ledger.settle([m.trade(5_000, 20)])
    released = await ledger.release(m.sell_order)
    assert released.ranges == (SerialRange(m.block_id, 21, 50),)
    assert (released.quantity_t, released.cash_fen) == (30, 0)
    cash = await ledger.release(m.buy_order)
    assert (cash.quantity_t, cash.cash_fen) == (0, 200_000)
    assert (await ledger.balance(m.buyer)).locked_fen == 0
    again = await ledger.release(m.sell_order)
    assert (again.ranges, again.quantity_t, again.cash_fen) == ((), 0, 0)
    seller = await ledger.holdings(m.seller)
    assert all(h.state is TonneState.FREE for h in seller)


async def test_locks_are_idempotent_by_order_and_refused_when_short(ledger: Ledger) -> None:
    world = await World.create(ledger)
    await world.issue(ledger, 10, vintage=2024)
    block = await world.issue(ledger, 10, vintage=2025)
    seller = world.owner.account_id
    order = next(_ids)
    only_2025 = CerFilter(vintages=(2025,))
    locked = await ledger.lock_cers(order, seller, 4, only_2025)
    assert locked.ranges == (SerialRange(block.block_id, 1, 4),)
    assert await ledger.lock_cers(order, seller, 4, only_2025) == locked
    await refused(ErrorCode.LOCK_EXISTS, ledger.lock_cers(order, seller, 5, only_2025))
    await refused(
        ErrorCode.INSUFFICIENT_HOLDINGS, ledger.lock_cers(next(_ids), seller, 7, only_2025)
    )
    await refused(ErrorCode.MALFORMED_ID, ledger.lock_cers(0, seller, 1))
    # locked tonnes are not free: they cannot be transferred
    buyer = await builders.account(ledger, Role.TRADER)
    await refused(
        ErrorCode.INSUFFICIENT_HOLDINGS,
        ledger.transfer(unique("t"), seller, buyer.account_id, ByQuantity(17)),
    )
    trader = await builders.account(ledger)
    await ledger.deposit(unique("d"), trader.account_id, 1_000)
    cash_order = next(_ids)
    await ledger.lock_cash(cash_order, trader.account_id, 600)
    await refused(ErrorCode.LOCK_EXISTS, ledger.lock_cash(cash_order, trader.account_id, 601))
    await refused(ErrorCode.INSUFFICIENT_CASH, ledger.lock_cash(next(_ids), trader.account_id, 401))
    await refused(ErrorCode.AMOUNT_MUST_BE_POSITIVE, ledger.lock_cash(next(_ids), seller, 0))


def _fields(trade: TradeToSettle) -> dict[str, int]:
    return {name: getattr(trade, name) for name in trade.__struct_fields__}
