"""Listed instruments: a book's rules plus what the exchange adds around it — which CERs a
seller may deliver, the fees, and the number that makes its trade ids unique exchange-wide."""

from __future__ import annotations

import msgspec

from matching import InstrumentRules
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

    def trade_id(self, book_trade_id: int) -> int:
        """
        >>> Instrument(2, "SZCER-2025", InstrumentRules(symbol="SZCER-2025"), 5_000).trade_id(7)
        2199023255559
        """
        return (self.instrument_id << TRADE_ID_BITS) | book_trade_id
