"""Instrument rules: tick, lot, quantity limits, price band, close-price rule.

A rules value is immutable; a change of rules is a new version, never an edit in place.
Defaults follow Shenzhen exchange practice: lot 1 t, tick 1 fen, band ±10 % of the reference
price (the previous close), rounded half-up to the tick.
"""

from __future__ import annotations

import msgspec

from matching.values import ClosePriceRule

BASIS_POINTS = 10_000


class RulesError(ValueError):
    """Raised when a rules value cannot describe a tradable instrument."""


class InstrumentRules(msgspec.Struct, frozen=True, kw_only=True):
    symbol: str
    tick_fen: int = 1
    lot_t: int = 1
    min_quantity_t: int = 1
    max_quantity_t: int = 1_000_000
    band_bp: int = 1_000  # half-width of the price band, basis points of the reference price
    close_rule: ClosePriceRule = ClosePriceRule.LAST_TRADE

    def __post_init__(self) -> None:
        if not self.symbol:
            raise RulesError("symbol must not be empty")
        if self.tick_fen < 1:
            raise RulesError("tick_fen must be at least 1")
        if self.lot_t < 1:
            raise RulesError("lot_t must be at least 1")
        if not self.lot_t <= self.min_quantity_t <= self.max_quantity_t:
            raise RulesError("need lot_t <= min_quantity_t <= max_quantity_t")
        if self.min_quantity_t % self.lot_t or self.max_quantity_t % self.lot_t:
            raise RulesError("quantity limits must be whole lots")
        if not 0 <= self.band_bp < BASIS_POINTS:
            raise RulesError("band_bp must be in [0, 10000)")


def round_half_up(numerator: int, denominator: int) -> int:
    """Round numerator / denominator half-up, both positive.

    >>> round_half_up(5, 2), round_half_up(7, 3)
    (3, 2)
    """
    return (2 * numerator + denominator) // (2 * denominator)


def price_band(rules: InstrumentRules, reference_price_fen: int) -> tuple[int, int]:
    """Return the lowest and highest acceptable prices around a reference price.

    Each bound is reference × (1 ∓ band) rounded half-up to the tick; the low bound is at least
    one tick, so a band never admits a zero price, and the high bound is at least the low one, so
    even a reference below half a tick leaves one tradable price.

    >>> price_band(InstrumentRules(symbol="X"), 5_005)
    (4505, 5506)
    """
    unit = BASIS_POINTS * rules.tick_fen
    low = rules.tick_fen * round_half_up(reference_price_fen * (BASIS_POINTS - rules.band_bp), unit)
    high = rules.tick_fen * round_half_up(
        reference_price_fen * (BASIS_POINTS + rules.band_bp), unit
    )
    low = max(low, rules.tick_fen)
    return low, max(high, low)
