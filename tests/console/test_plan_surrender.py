"""The serial ranges the console proposes for a surrender of N tonnes (and then sends, so that
what is confirmed is what moves): the oldest eligible free tonnes first. Checked against the
simplest model: every eligible free serial listed one by one, in that order, the first N taken."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from exchange.console.holders import plan_surrender
from settlement.values import Holding, TonneState

BLOCKS = ("SZCER-A-2024-1", "SZCER-B-2024-1", "SZCER-A-2025-1", "SZCER-C-2023-1")


@st.composite
def holdings(draw: st.DrawFn) -> list[Holding]:
    found = []
    for block in draw(st.lists(st.sampled_from(BLOCKS), unique=True)):
        vintage = int(block.split("-")[2])
        first = 1
        for _ in range(draw(st.integers(1, 3))):  # runs of one block, apart from each other
            first += draw(st.integers(0, 5))
            quantity = draw(st.integers(1, 20))
            state = draw(st.sampled_from([TonneState.FREE, TonneState.LOCKED]))
            found.append(
                Holding(
                    block, first, first + quantity - 1, quantity, state, None, "P", "M", vintage
                )
            )
            first += quantity
    return draw(st.permutations(found))


@given(holdings(), st.sets(st.sampled_from(BLOCKS)), st.integers(1, 120))
def test_the_plan_is_the_first_eligible_free_serials_oldest_vintage_first(
    held: list[Holding], eligible: set[str], quantity_t: int
) -> None:
    serials = sorted(
        (h.vintage, h.block_id, serial)
        for h in held
        if h.state is TonneState.FREE and h.block_id in eligible
        for serial in range(h.first, h.last + 1)
    )
    planned = plan_surrender(held, eligible, quantity_t)
    chosen = [(r.block_id, s) for r in planned.ranges for s in range(r.first, r.last + 1)]
    assert chosen == [(block, serial) for _, block, serial in serials[:quantity_t]]
    assert planned.short_t == max(0, quantity_t - len(serials))
