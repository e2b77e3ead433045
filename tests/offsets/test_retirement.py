"""Voluntary retirement: any holder retires tonnes for good, naming a beneficiary and a purpose;
bad text is refused and nothing moves."""

from __future__ import annotations

import pytest

from offsets.errors import ErrorCode, OffsetError
from offsets.registry import OffsetRegistry
from settlement.errors import ErrorCode as LedgerCode
from settlement.errors import LedgerError
from settlement.ledger import Ledger
from settlement.values import ByQuantity, ByRanges, Role, TonneState
from tests.offsets.market import World
from tests.settlement import builders
from tests.settlement.conftest import unique


async def test_a_holder_retires_tonnes_for_good(ledger: Ledger, registry: OffsetRegistry) -> None:
    world = await World.create(ledger)
    holder = (await builders.account(ledger, Role.TRADER)).account_id
    await ledger.transfer(unique("t"), world.owner, holder, ByQuantity(50))
    retired = await registry.retire(
        unique("r"), holder, ByQuantity(20), "深圳某科技有限公司", "2025 年度运营碳中和"
    )
    assert (retired.quantity_t, retired.beneficiary) == (20, "深圳某科技有限公司")
    assert sum(r.last - r.first + 1 for r in retired.ranges) == 20
    listed = await registry.retirements(holder)
    assert [(r.retirement_id, r.ranges, r.claimed_by) for r in listed] == [
        (retired.retirement_id, retired.ranges, None)
    ]
    states = {h.state: h.quantity_t for h in await ledger.holdings(holder)}
    assert states == {TonneState.FREE: 30, TonneState.RETIRED: 20}
    with pytest.raises(LedgerError) as moved:
        await ledger.transfer(unique("t"), holder, world.owner, ByRanges(retired.ranges))
    assert moved.value.code is LedgerCode.RANGE_NOT_HELD


@pytest.mark.parametrize(
    ("beneficiary", "purpose"),
    [
        ("", "p"),
        ("b", " "),
        ("x" * 201, "p"),
        ("b", "line\nbreak"),
        # a certificate could not hold these: once accepted, no approval could ever succeed
        ("b\u202ed", "p"),
        ("\ufeffb", "p"),
        ("b", "p\x7f"),
        ("b", "p\x85q"),
        ("b\u200fd", "p"),
    ],
)
async def test_bad_text_is_refused_and_nothing_moves(
    ledger: Ledger, registry: OffsetRegistry, beneficiary: str, purpose: str
) -> None:
    world = await World.create(ledger)
    before = await ledger.holdings(world.owner)
    with pytest.raises(OffsetError) as refused:
        await registry.retire(unique("r"), world.owner, ByQuantity(1), beneficiary, purpose)
    assert refused.value.code is ErrorCode.TEXT_INVALID
    assert await ledger.holdings(world.owner) == before
