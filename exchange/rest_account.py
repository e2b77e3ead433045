"""The caller's own REST reads: its cash, its holdings, its open orders and its settled trades.

Every read is of the signed caller's account only; no parameter names another account.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

from exchange.endpoint import Call
from exchange.errors import ErrorCode, ExchangeError
from exchange.instruments import TRADE_ID_BITS
from exchange.protocol import Symbol
from exchange.reports import OpenOrder
from exchange.rest_fields import Id
from matching import Side
from settlement.values import CashBalance, Holding

MAX_TRADES = 1_000


class AccountView(msgspec.Struct, frozen=True):
    account_id: int
    ledger: CashBalance
    tradable_fen: int  # what new buy orders may still reserve now


class HoldingsView(msgspec.Struct, frozen=True):
    account_id: int
    holdings: list[Holding]


class TradesQuery(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    symbol: Symbol | None = None
    limit: Annotated[int, msgspec.Meta(ge=1, le=MAX_TRADES)] = 100
    before: Id | None = None  # a trade id


class TradeView(msgspec.Struct, frozen=True):
    """One of the caller's settled trades, from the caller's side: its order and its fee."""

    trade_id: int
    symbol: str | None  # None if the instrument is not traded here now
    side: Side
    order_id: int
    price_fen: int
    quantity_t: int
    fee_fen: int


class TradesPage(msgspec.Struct, frozen=True):
    trades: list[TradeView]
    next_before: int | None  # pass as `before` for the next page; None on the last


async def account(call: Call) -> AccountView:
    exchange = call.exchange
    risk = exchange.engine.risk
    tradable = risk.available_fen(call.caller) if risk is not None else 0
    return AccountView(call.caller, await exchange.ledger.balance(call.caller), tradable)


async def holdings(call: Call) -> HoldingsView:
    return HoldingsView(call.caller, await call.exchange.ledger.holdings(call.caller))


async def orders(call: Call) -> list[OpenOrder]:
    return call.exchange.reports.open_orders(call.caller)


# Newest first is the order the ledger settled them in: settlement transactions follow the
# journal, and a trade id's top bits are its instrument's, so trade ids alone order by instrument.
_TRADES = """
SELECT trade_id, buyer_id, buy_order_id, sell_order_id, price_fen, quantity_t,
       buyer_fee_fen, seller_fee_fen
FROM settled_trades
WHERE (buyer_id = $1 OR seller_id = $1)
  AND ($2::bigint IS NULL OR trade_id >> $3 = $2)
  AND ($4::bigint IS NULL OR (txn_id, trade_id) < (
      SELECT txn_id, trade_id FROM settled_trades
      WHERE trade_id = $4 AND (buyer_id = $1 OR seller_id = $1)))
ORDER BY txn_id DESC, trade_id DESC
LIMIT $5
"""


async def trades(call: Call, query: TradesQuery) -> TradesPage:
    """The caller's settled trades, newest first, a page at a time: a page ends with the trade
    id to pass as `before` for the next. Trades appear here once settled in the ledger."""
    instruments = call.exchange.engine.instruments
    symbols = {i.instrument_id: symbol for symbol, i in instruments.items()}
    instrument_id = None
    if query.symbol is not None:
        instrument = instruments.get(query.symbol)
        if instrument is None:
            raise ExchangeError(ErrorCode.UNKNOWN_INSTRUMENT, f"no instrument {query.symbol!r}")
        instrument_id = instrument.instrument_id
    async with call.exchange.database.pool.acquire() as conn:
        rows = await conn.fetch(
            _TRADES, call.caller, instrument_id, TRADE_ID_BITS, query.before, query.limit
        )
    views = []
    for trade_id, buyer, buy_order, sell_order, price, quantity, buyer_fee, seller_fee in rows:
        bought = buyer == call.caller
        views.append(
            TradeView(
                trade_id,
                symbols.get(trade_id >> TRADE_ID_BITS),
                Side.BUY if bought else Side.SELL,
                buy_order if bought else sell_order,
                price,
                quantity,
                buyer_fee if bought else seller_fee,
            )
        )
    full = len(views) == query.limit
    return TradesPage(views, views[-1].trade_id if full and views else None)
