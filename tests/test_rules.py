"""Instrument rules: what a tradable instrument must satisfy, and the price band around a
reference price (rounded half-up to the tick, the low bound at least one tick)."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from matching import ClosePriceRule, InstrumentRules, RulesError, price_band
from matching.rules import round_half_up


def test_rules_defaults_follow_shenzhen_practice() -> None:
    rules = InstrumentRules(symbol="SZCER-2025")
    assert (rules.tick_fen, rules.lot_t, rules.min_quantity_t, rules.max_quantity_t) == (
        1,
        1,
        1,
        1_000_000,
    )
    assert rules.band_bp == 1_000
    assert rules.close_rule is ClosePriceRule.LAST_TRADE


INVALID_RULES: list[tuple[str, dict[str, Any], str]] = [
    # (name, fields, message)
    ("empty symbol", {"symbol": ""}, "symbol must not be empty"),
    ("zero tick", {"tick_fen": 0}, "tick_fen must be at least 1"),
    ("negative tick", {"tick_fen": -10}, "tick_fen must be at least 1"),
    ("zero lot", {"lot_t": 0}, "lot_t must be at least 1"),
    ("minimum under the lot", {"lot_t": 10, "min_quantity_t": 5}, "lot_t <= min_quantity_t"),
    (
        "minimum over the maximum",
        {"min_quantity_t": 100, "max_quantity_t": 90},
        "min_quantity_t <= max_quantity_t",
    ),
    (
        "minimum off the lot",
        {"lot_t": 10, "min_quantity_t": 15, "max_quantity_t": 100},
        "quantity limits must be whole lots",
    ),
    (
        "maximum off the lot",
        {"lot_t": 10, "min_quantity_t": 10, "max_quantity_t": 105},
        "quantity limits must be whole lots",
    ),
    ("negative band", {"band_bp": -1}, r"band_bp must be in \[0, 10000\)"),
    ("band of 100 %", {"band_bp": 10_000}, r"band_bp must be in \[0, 10000\)"),
]


@pytest.mark.parametrize(
    ("fields", "message"),
    [case[1:] for case in INVALID_RULES],
    ids=[case[0] for case in INVALID_RULES],
)
def test_rules_that_cannot_describe_an_instrument_raise_rules_error(
    fields: dict[str, Any], message: str
) -> None:
    arguments: dict[str, Any] = {"symbol": "X", **fields}
    with pytest.raises(RulesError, match=message):
        InstrumentRules(**arguments)


@pytest.mark.parametrize(
    "fields",
    [
        {"band_bp": 0},
        {"band_bp": 9_999},
        {"lot_t": 10, "min_quantity_t": 10, "max_quantity_t": 10},
        {"tick_fen": 5, "lot_t": 100, "min_quantity_t": 200, "max_quantity_t": 1_000},
    ],
    ids=["no band", "widest band", "one allowed quantity", "coarse tick and lot"],
)
def test_rules_at_the_limits_of_validity_are_accepted(fields: dict[str, Any]) -> None:
    InstrumentRules(symbol="X", **fields)


def test_rules_error_is_a_value_error() -> None:
    assert issubclass(RulesError, ValueError)


def test_rules_are_immutable() -> None:
    rules = InstrumentRules(symbol="X")
    with pytest.raises(AttributeError):
        rules.tick_fen = 2  # type: ignore[misc]


def test_decoding_invalid_rules_fails_validation() -> None:
    with pytest.raises(msgspec.ValidationError, match="lot_t must be at least 1"):
        msgspec.json.decode(b'{"symbol": "X", "lot_t": 0}', type=InstrumentRules)


@pytest.mark.parametrize(
    ("numerator", "denominator", "rounded"),
    [(5, 2, 3), (7, 3, 2), (1, 2, 1), (1, 3, 0), (3, 2, 2), (4, 2, 2), (0, 7, 0), (2_009, 10, 201)],
)
def test_round_half_up_rounds_halves_up(numerator: int, denominator: int, rounded: int) -> None:
    assert round_half_up(numerator, denominator) == rounded


BAND_EXAMPLES: list[tuple[str, dict[str, Any], int, tuple[int, int]]] = [
    # (name, rules fields, reference, (low, high))
    ("default 10 % on 1 fen", {}, 5_000, (4_500, 5_500)),
    ("doc example: 4504.5 and 5505.5 round up", {}, 5_005, (4_505, 5_506)),
    ("tick 10: half a tick rounds up at both edges", {"tick_fen": 10}, 1_050, (950, 1_160)),
    ("tick 10: 954 rounds down, 1166 up", {"tick_fen": 10}, 1_060, (950, 1_170)),
    ("tick 10: 936 rounds up, 1144 down", {"tick_fen": 10}, 1_040, (940, 1_140)),
    ("tick 10: reference off the tick", {"tick_fen": 10}, 1_005, (900, 1_110)),
    ("no band: the reference itself", {"band_bp": 0}, 5_000, (5_000, 5_000)),
    ("no band, reference off the tick", {"tick_fen": 10, "band_bp": 0}, 1_055, (1_060, 1_060)),
    ("5 % band", {"band_bp": 500}, 2_000, (1_900, 2_100)),
    ("low bound floored at one tick", {"tick_fen": 10, "band_bp": 9_999}, 10, (10, 20)),
    ("low bound floored at 1 fen", {"band_bp": 9_999}, 1, (1, 2)),
    (
        "low bound of half a tick rounds up to one tick",
        {"tick_fen": 10, "band_bp": 9_000},
        50,
        (10, 100),
    ),
]


@pytest.mark.parametrize(
    ("fields", "reference", "band"),
    [case[1:] for case in BAND_EXAMPLES],
    ids=[case[0] for case in BAND_EXAMPLES],
)
def test_price_band_examples(fields: dict[str, Any], reference: int, band: tuple[int, int]) -> None:
    assert price_band(InstrumentRules(symbol="X", **fields), reference) == band


def test_price_band_bounds_are_on_the_tick_and_bracket_every_positive_reference() -> None:
    rules = InstrumentRules(symbol="X", tick_fen=10, band_bp=1_000)
    for reference in range(1, 3_000):
        low, high = price_band(rules, reference)
        assert low % 10 == 0 and high % 10 == 0, reference
        assert 10 <= low <= high, reference
        assert low <= max(reference + 5, 10) and reference - 5 <= high, reference


def test_price_band_below_half_a_tick_still_admits_the_first_tick() -> None:
    assert price_band(InstrumentRules(symbol="X", tick_fen=10), 1) == (10, 10)
