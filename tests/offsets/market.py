"""A small offsets world: a regulator, two projects in different places and sectors, and
compliance entities holding CERs of both."""

from __future__ import annotations

import datetime as dt
import itertools

from offsets.registry import OffsetRegistry
from offsets.rules import OffsetRules
from settlement.ledger import Ledger
from settlement.values import Block, ByQuantity, CerFilter, Methodology, Project, Role
from tests.settlement import builders
from tests.settlement.conftest import unique

ON = dt.date(2026, 6, 1)  # inside every test year's surrender window
_years = itertools.count(2030)


def next_year() -> int:
    """A compliance year no other test in the module uses (they share the year's cap)."""
    return next(_years)


def rules(year: int, **more: object) -> OffsetRules:
    fields: dict[str, object] = {
        "year": year,
        "effective_from": dt.date(2026, 1, 1),
        "window_opens": dt.date(2026, 3, 1),
        "window_closes": dt.date(2026, 6, 30),
        "total_cap_t": 10_000,
        "entity_cap_bp": 1_000,
    }
    fields.update(more)
    return OffsetRules(**fields)  # type: ignore[arg-type]


class World:
    """Solar in Futian (energy) and transport in Nanshan, each issued 2024 and 2025 tonnes."""

    regulator: int
    owner: int
    solar: Project
    bikes: Project
    blocks: dict[tuple[str, int], Block]

    @classmethod
    async def create(cls, ledger: Ledger) -> World:
        world = cls()
        world.regulator = (await builders.regulator(ledger)).account_id
        owner = (await builders.account(ledger, Role.PARTICIPANT)).account_id
        projects = []
        for sector, region in (("energy", "Futian"), ("transport", "Nanshan")):
            meth = Methodology(builders.code("M"), f"{sector} method", sector)
            await ledger.register_methodology(unique("m"), world.regulator, meth)
            project = Project(builders.code("P"), owner, meth.code, region)
            projects.append(await ledger.register_project(unique("p"), world.regulator, project))
        world.solar, world.bikes = projects
        world.blocks = {}
        for project in projects:
            for vintage in (2024, 2025):
                block = await builders.issue(ledger, world.regulator, project.code, 1_000, vintage)
                world.blocks[project.code, vintage] = block
        world.owner = owner
        return world

    async def entity(
        self, ledger: Ledger, registry: OffsetRegistry, year: int, emissions_t: int, tonnes: int
    ) -> int:
        """A compliance entity with `emissions_t` verified for `year`, holding `tonnes` of each
        of the four blocks."""
        entity = (await builders.account(ledger, Role.COMPLIANCE_ENTITY)).account_id
        for block in self.blocks.values():
            await ledger.transfer(unique("t"), self.owner, entity, ByQuantity(tonnes, _only(block)))
        await registry.record_emissions(unique("e"), self.regulator, year, entity, emissions_t)
        return entity


def _only(block: Block) -> CerFilter:
    return CerFilter(vintages=(block.vintage,), projects=(block.project,))
