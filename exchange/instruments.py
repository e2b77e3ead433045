"""Listed instruments: a book's rules plus what the exchange adds around it — which CERs a
seller may deliver, the fees, and the number that makes its trade ids unique exchange-wide."""

from __future__ import annotations

import msgspec

from exchange.sessions import TradingHours
from matching import InstrumentRules
from settlement.connection import Connection
from settlement.values import ANY_CER, CerFilter

TRADE_ID_BITS = 40
"""A book numbers its trades 1, 2, 3…; the exchange-wide id puts the instrument above these bits."""


class Instrument(msgspec.Struct, frozen=True):
    instrument_id: int  # 1.. ; part of every trade id of this instrument
    symbol: str
    rules: InstrumentRules
    reference_price_fen: int
    only: CerFilter = ANY_CER
    buyer_fee_bp: int = 0
    seller_fee_bp: int = 0
    hours: TradingHours | None = None  # None: continuous, never closed

    def trade_id(self, book_trade_id: int) -> int:
        """
        >>> Instrument(2, "SZCER-2025", InstrumentRules(symbol="SZCER-2025"), 5_000).trade_id(7)
        2199023255559
        """
        return (self.instrument_id << TRADE_ID_BITS) | book_trade_id


_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder(Instrument).decode


async def list_instrument(conn: Connection, instrument: Instrument) -> bool:
    """List `instrument`; False if its symbol is listed already (the listing stands)."""
    listed = await conn.fetchval(
        "INSERT INTO instruments (symbol, instrument_id, spec) VALUES ($1, $2, $3)"
        " ON CONFLICT (symbol) DO NOTHING RETURNING symbol",
        instrument.symbol,
        instrument.instrument_id,
        _encode(instrument),
    )
    return listed is not None


async def listed(conn: Connection) -> list[Instrument]:
    rows = await conn.fetch("SELECT spec FROM instruments ORDER BY instrument_id")
    return [_decode(row[0]) for row in rows]
