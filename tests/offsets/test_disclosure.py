"""Disclosure: issuance, trading, surrender and retirement by vintage and methodology, and each
year's rules and cap use, as the ledger's history has them."""

from __future__ import annotations

import itertools

from offsets.disclosure import Flow, disclosure
from offsets.registry import OffsetRegistry
from settlement.batches import Batch, OrderLock
from settlement.ledger import Ledger
from settlement.values import ByQuantity, CerFilter, Role, TradeToSettle
from tests.offsets.market import ON, World, next_year, rules
from tests.settlement import builders
from tests.settlement.conftest import unique

_ids = itertools.count(50_000_000)


async def test_flows_follow_the_ledger(ledger: Ledger, registry: OffsetRegistry) -> None:
    world = await World.create(ledger)
    year = next_year()
    await registry.publish_rules(unique("r"), world.regulator, rules(year, total_cap_t=777))
    entity = await world.entity(ledger, registry, year, emissions_t=10_000, tonnes=40)
    solar_2025 = CerFilter(vintages=(2025,), projects=(world.solar.code,))
    await registry.surrender(unique("s"), entity, year, ByQuantity(7, solar_2025), ON)
    await registry.retire(unique("r"), entity, ByQuantity(3, solar_2025), "beneficiary", "purpose")
    buyer = (await builders.account(ledger, Role.TRADER)).account_id
    await ledger.deposit(unique("d"), buyer, 1_000_000)
    sell, buy = next(_ids), next(_ids)
    trade = TradeToSettle(next(_ids), buy, sell, buyer, entity, 100, 11, 0, 0)
    await ledger.apply(
        Batch(
            (
                OrderLock(sell, entity, quantity_t=11, only=solar_2025),
                OrderLock(buy, buyer, amount_fen=1_100),
            ),
            (trade,),
        )
    )
    async with ledger.database.pool.acquire() as conn:
        public = await disclosure(conn)
    solar = world.solar.methodology
    assert Flow(2025, solar, 1_000, 11, 7, 3) in public.flows
    assert Flow(2024, solar, 1_000, 0, 0, 0) in public.flows
    assert {p.code: p.issued_t for p in public.projects}[world.bikes.code] == 2_000
    assert solar in {m.code for m in public.methodologies}
    use = next(y for y in public.years if y.year == year)
    assert (use.total_cap_t, use.surrendered_t, len(use.rules)) == (777, 7, 1)
