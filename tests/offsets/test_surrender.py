"""Offset rules, verified emissions and surrender on the real ledger: versions that never change,
every tonne checked against the scope, both caps held under concurrent surrenders, every refusal
with its code and nothing moved; the ledger's audit runs after each test."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest

from offsets.errors import ErrorCode, OffsetError
from offsets.registry import OffsetRegistry
from offsets.rules import Basis
from settlement.errors import ErrorCode as LedgerCode
from settlement.errors import LedgerError
from settlement.ledger import Ledger
from settlement.values import ByBlocks, ByQuantity, ByRanges, Role, SerialRange, TonneState
from tests.offsets.market import ON, World, next_year, rules
from tests.settlement import builders
from tests.settlement.conftest import unique


async def refused(code: ErrorCode | LedgerCode, awaitable: object) -> None:
    with pytest.raises((OffsetError, LedgerError)) as caught:
        await awaitable  # type: ignore[misc]
    assert caught.value.code == code, caught.value


async def test_rules_are_versioned_and_the_newest_in_effect_applies(
    ledger: Ledger, registry: OffsetRegistry
) -> None:
    world = await World.create(ledger)
    year = next_year()
    first = await registry.publish_rules(unique("r"), world.regulator, rules(year))
    later = rules(year, effective_from=dt.date(2026, 5, 1), total_cap_t=500)
    second = await registry.publish_rules(unique("r"), world.regulator, later)
    assert (first.version, second.version) == (1, 2)
    assert (await registry.rules_in_effect(year, dt.date(2026, 4, 30))).version == 1
    assert (await registry.rules_in_effect(year, dt.date(2026, 5, 1))).rules.total_cap_t == 500
    assert [p.rules for p in await registry.rules_history(year)] == [rules(year), later]
    # refusals: bad rules, an earlier effective date than the last version, a non-regulator
    for bad in (
        rules(year, entity_cap_bp=10_001),
        rules(year, window_opens=dt.date(2026, 7, 1)),
        rules(year, total_cap_t=-1),
    ):
        await refused(
            ErrorCode.RULES_INVALID, registry.publish_rules(unique("r"), world.regulator, bad)
        )
    await refused(
        ErrorCode.RULES_INVALID,
        registry.publish_rules(
            unique("r"), world.regulator, rules(year, effective_from=dt.date(2026, 4, 1))
        ),
    )
    await refused(
        LedgerCode.ROLE_NOT_ALLOWED, registry.publish_rules(unique("r"), world.owner, rules(year))
    )
    await refused(ErrorCode.NO_OFFSET_RULES, registry.rules_in_effect(year + 500, ON))
    assert len(await registry.rules_history(year)) == 2


async def test_a_surrender_takes_only_tonnes_in_scope_within_the_entitys_cap(
    ledger: Ledger, registry: OffsetRegistry
) -> None:
    world = await World.create(ledger)
    year = next_year()
    scope = rules(year, vintages=(2025,), sectors=("energy",))
    await registry.publish_rules(unique("r"), world.regulator, scope)
    entity = await world.entity(ledger, registry, year, emissions_t=2_000, tonnes=100)
    position, blocks = await registry.preview(year, entity, ON)
    eligible = {b.block_id for b in blocks if b.eligible}
    assert eligible == {world.blocks[world.solar.code, 2025].block_id}
    assert (position.entity_cap_t, position.may_surrender_t, position.coverage_bp) == (200, 200, 0)

    done = await registry.surrender(unique("s"), entity, year, ByQuantity(60), ON)
    assert done.quantity_t == 60
    assert {r.block_id for r in done.ranges} == eligible
    # out of scope by name, beyond what qualifies, beyond the entity's cap: refused, nothing moves
    before = await ledger.holdings(entity)
    bike_2025 = world.blocks[world.bikes.code, 2025].block_id
    solar_2024 = world.blocks[world.solar.code, 2024].block_id
    await refused(
        ErrorCode.OUT_OF_SCOPE,
        registry.surrender(
            unique("s"), entity, year, ByRanges((SerialRange(bike_2025, 1, 1),)), ON
        ),
    )
    await refused(
        ErrorCode.OUT_OF_SCOPE,
        registry.surrender(unique("s"), entity, year, ByBlocks(((solar_2024, 1),)), ON),
    )
    await refused(
        LedgerCode.INSUFFICIENT_HOLDINGS,
        registry.surrender(unique("s"), entity, year, ByQuantity(41), ON),
    )
    more = await world.entity(ledger, registry, year, emissions_t=500, tonnes=100)
    await refused(  # 10% of 500 t is 50 t
        ErrorCode.ENTITY_CAP_EXCEEDED,
        registry.surrender(unique("s"), more, year, ByQuantity(51), ON),
    )
    assert await ledger.holdings(entity) == before
    position = await registry.position(year, entity, ON)
    assert (position.surrendered_t, position.entity_remaining_t, position.coverage_bp) == (
        60,
        140,
        300,
    )
    surrendered = await registry.surrenders(entity)
    assert [s.quantity_t for s in surrendered] == [60]
    assert surrendered[0].ranges == done.ranges
    # final: the surrendered tonnes never move again
    await refused(
        LedgerCode.RANGE_NOT_HELD,
        ledger.transfer(unique("t"), entity, world.owner, ByRanges(done.ranges)),
    )
    states = {h.state for h in await ledger.holdings(entity) if h.block_id in eligible}
    assert TonneState.SURRENDERED in states


async def test_surrender_refusals_outside_the_rules(
    ledger: Ledger, registry: OffsetRegistry
) -> None:
    world = await World.create(ledger)
    year = next_year()
    entity = await world.entity(ledger, registry, year, emissions_t=1_000, tonnes=10)
    await refused(
        ErrorCode.NO_OFFSET_RULES, registry.surrender(unique("s"), entity, year, ByQuantity(1), ON)
    )
    await registry.publish_rules(unique("r"), world.regulator, rules(year))
    for day in (dt.date(2026, 2, 28), dt.date(2026, 7, 1)):
        await refused(
            ErrorCode.OUTSIDE_SURRENDER_WINDOW,
            registry.surrender(unique("s"), entity, year, ByQuantity(1), day),
        )
    unverified = (await builders.account(ledger, Role.COMPLIANCE_ENTITY)).account_id
    await refused(
        ErrorCode.NO_VERIFIED_EMISSIONS,
        registry.surrender(unique("s"), unverified, year, ByQuantity(1), ON),
    )
    trader = (await builders.account(ledger, Role.TRADER)).account_id
    await refused(
        ErrorCode.NOT_A_COMPLIANCE_ENTITY,
        registry.record_emissions(unique("e"), world.regulator, year, trader, 100),
    )
    await refused(
        ErrorCode.EMISSIONS_INVALID,
        registry.record_emissions(unique("e"), world.regulator, year, entity, -1),
    )
    # a repeat under the same key is the same surrender, not a second one
    key = unique("s")
    first = await registry.surrender(key, entity, year, ByQuantity(5), ON)
    assert await registry.surrender(key, entity, year, ByQuantity(5), ON) == first
    assert (await registry.position(year, entity, ON)).surrendered_t == 5


async def test_concurrent_surrenders_never_exceed_the_total_cap(
    ledger: Ledger, registry: OffsetRegistry
) -> None:
    world = await World.create(ledger)
    year = next_year()
    await registry.publish_rules(unique("r"), world.regulator, rules(year, total_cap_t=100))
    entities = [
        await world.entity(ledger, registry, year, emissions_t=10_000, tonnes=30) for _ in range(8)
    ]
    attempts = [
        registry.surrender(unique("s"), entity, year, ByQuantity(15), ON)
        for entity in entities
        for _ in range(2)
    ]
    outcomes = await asyncio.gather(*attempts, return_exceptions=True)
    done = [o for o in outcomes if not isinstance(o, BaseException)]
    failed = [o for o in outcomes if isinstance(o, BaseException)]
    assert all(
        isinstance(f, OffsetError) and f.code is ErrorCode.TOTAL_CAP_EXCEEDED for f in failed
    )
    assert sum(d.quantity_t for d in done) == len(done) * 15 <= 100
    assert len(done) == 6  # 6 × 15 = 90; a seventh would need 105
    position = await registry.position(year, entities[0], ON)
    assert position.year_surrendered_t == 90 and position.year_remaining_t == 10
    # the last 10 t go to exactly one of two racing entities
    last = await asyncio.gather(
        registry.surrender(unique("s"), entities[0], year, ByQuantity(10), ON),
        registry.surrender(unique("s"), entities[1], year, ByQuantity(10), ON),
        return_exceptions=True,
    )
    assert sorted(type(o).__name__ for o in last) == ["OffsetError", "Surrendered"]


async def test_concurrent_surrenders_of_one_entity_never_exceed_its_cap(
    ledger: Ledger, registry: OffsetRegistry
) -> None:
    world = await World.create(ledger)
    year = next_year()
    await registry.publish_rules(unique("r"), world.regulator, rules(year))
    entity = await world.entity(ledger, registry, year, emissions_t=300, tonnes=50)  # cap 30 t
    outcomes = await asyncio.gather(
        *(registry.surrender(unique("s"), entity, year, ByQuantity(4), ON) for _ in range(12)),
        return_exceptions=True,
    )
    done = [o for o in outcomes if not isinstance(o, BaseException)]
    assert len(done) == 7  # 28 t; an eighth would make 32
    assert all(
        isinstance(o, OffsetError) and o.code is ErrorCode.ENTITY_CAP_EXCEEDED
        for o in outcomes
        if isinstance(o, BaseException)
    )
    assert (await registry.position(year, entity, ON)).surrendered_t == 28


def test_the_entity_cap_follows_its_basis() -> None:
    base = rules(2040, entity_cap_bp=500)
    assert base.entity_cap_t(1_999, None) == 99  # rounded down: never over the share
    assert rules(2040, entity_cap_bp=500, basis=Basis.ALLOCATION).entity_cap_t(900, 600) == 30
    assert rules(2040, entity_cap_bp=500, basis=Basis.SHORTFALL).entity_cap_t(900, 600) == 15
    assert rules(2040, entity_cap_bp=500, basis=Basis.ALLOCATION).entity_cap_t(900, None) == 0
