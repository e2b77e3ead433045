"""A whole book as one value, for recovery: restore(snapshot(b)) behaves exactly as b.

Schema evolution follows msgspec's rules: a field added later has a default and goes last.
"""

from __future__ import annotations

import msgspec

from matching.orders import RestingOrder
from matching.rules import InstrumentRules
from matching.values import TradingStatus


class BookSnapshot(msgspec.Struct, frozen=True, kw_only=True):
    rules: InstrumentRules
    reference_price_fen: int
    status: TradingStatus
    status_before_halt: TradingStatus
    next_seq: int
    next_trade_id: int
    last_price_fen: int | None
    volume_t: int
    notional_fen: int
    bids: list[RestingOrder]  # book order: best price first, FIFO within a price
    asks: list[RestingOrder]


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(BookSnapshot)


def encode_snapshot(snapshot: BookSnapshot) -> bytes:
    return _encoder.encode(snapshot)


def decode_snapshot(data: bytes) -> BookSnapshot:
    return _decoder.decode(data)
