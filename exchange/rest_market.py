"""Public REST reads: the listed instruments and their rules, and each market as it stands."""

from __future__ import annotations

import msgspec

from exchange.endpoint import Call
from exchange.errors import ErrorCode, ExchangeError
from exchange.market_data import Bar
from exchange.protocol import Symbol
from matching import TradingStatus
from settlement.values import CerFilter


class SymbolPath(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    symbol: Symbol


class InstrumentView(msgspec.Struct, frozen=True):
    symbol: str
    instrument_id: int
    status: TradingStatus
    tick_fen: int
    lot_t: int
    min_quantity_t: int
    max_quantity_t: int
    band_bp: int
    band_fen: tuple[int, int]
    reference_price_fen: int
    eligible: CerFilter
    buyer_fee_bp: int
    seller_fee_bp: int


class MarketView(msgspec.Struct, frozen=True):
    """One book now, and its trading since the session started (prices None before a trade)."""

    symbol: str
    status: TradingStatus
    reference_price_fen: int
    band_fen: tuple[int, int]
    best_bid_fen: int | None
    best_ask_fen: int | None
    last_price_fen: int | None
    open_fen: int | None
    high_fen: int | None
    low_fen: int | None
    volume_t: int
    notional_fen: int


async def instruments(call: Call) -> list[InstrumentView]:
    engine = call.exchange.engine
    views = []
    for symbol, instrument in engine.instruments.items():
        book, rules = engine.books[symbol], instrument.rules
        views.append(
            InstrumentView(
                symbol,
                instrument.instrument_id,
                book.status,
                rules.tick_fen,
                rules.lot_t,
                rules.min_quantity_t,
                rules.max_quantity_t,
                rules.band_bp,
                book.band,
                book.reference_price_fen,
                instrument.only,
                instrument.buyer_fee_bp,
                instrument.seller_fee_bp,
            )
        )
    return views


async def market(call: Call) -> list[MarketView]:
    engine, market_data = call.exchange.engine, call.exchange.market_data
    views = []
    for symbol, book in engine.books.items():
        day = market_data.day(symbol)
        views.append(
            MarketView(
                symbol,
                book.status,
                book.reference_price_fen,
                book.band,
                book.best_bid(),
                book.best_ask(),
                day.last_fen,
                day.open_fen,
                day.high_fen,
                day.low_fen,
                day.volume_t,
                day.notional_fen,
            )
        )
    return views


async def bars(call: Call, path: SymbolPath) -> list[Bar]:
    """The one-minute bars a chart opens with; `bars:SYMBOL` on the WebSocket carries on."""
    if path.symbol not in call.exchange.engine.books:
        raise ExchangeError(ErrorCode.UNKNOWN_INSTRUMENT, f"no instrument {path.symbol}")
    return call.exchange.market_data.bars(path.symbol)
