"""Small builders for ledger tests: fresh accounts, a registered project, an issuance.

Tests in a module share one database, so every name and code here is unique.
"""

from __future__ import annotations

import datetime as dt
import itertools
import os

from settlement.ledger import Ledger
from settlement.values import Account, Block, Methodology, Project, Role, SchemeRegistration
from tests.settlement.conftest import unique

_codes = itertools.count(1)


def code(prefix: str) -> str:
    """A methodology or project code ([A-Z0-9], at most 16) no other test uses."""
    return f"{prefix}{os.getpid() % 100_000:05d}{next(_codes):05d}"[:16]


async def account(ledger: Ledger, *roles: Role) -> Account:
    name = unique("acct")
    return await ledger.open_account(f"open/{name}", name, roles or (Role.TRADER,))


async def regulator(ledger: Ledger) -> Account:
    return await account(ledger, Role.REGULATOR)


async def methodology(ledger: Ledger, regulator_id: int, sector: str = "energy") -> Methodology:
    registered = Methodology(code("M"), "Rooftop photovoltaics", sector)
    return await ledger.register_methodology(unique("meth"), regulator_id, registered)


async def project(
    ledger: Ledger,
    regulator_id: int,
    owner_id: int,
    methodology_code: str | None = None,
    other_schemes: tuple[SchemeRegistration, ...] = (),
) -> Project:
    if methodology_code is None:
        methodology_code = (await methodology(ledger, regulator_id)).code
    registered = Project(code("P"), owner_id, methodology_code, "Futian", other_schemes)
    return await ledger.register_project(unique("proj"), regulator_id, registered)


async def issue(
    ledger: Ledger, regulator_id: int, project_code: str, quantity_t: int, vintage: int = 2025
) -> Block:
    """Issue a batch covering the next free month of `vintage` for the project."""
    month = next(_months.setdefault((project_code, vintage), itertools.count(1)))
    start = dt.date(vintage, month, 1)
    end = dt.date(vintage, month, 28)
    return await ledger.issue(unique("issue"), regulator_id, project_code, quantity_t, start, end)


_months: dict[tuple[str, int], itertools.count[int]] = {}


class World:
    """A regulator, a participant owning a project, and what was issued to it."""

    def __init__(self, regulator: Account, owner: Account, project: Project) -> None:
        self.regulator = regulator
        self.owner = owner
        self.project = project

    @classmethod
    async def create(cls, ledger: Ledger) -> World:
        reg = await regulator(ledger)
        owner = await account(ledger, Role.PARTICIPANT)
        return cls(reg, owner, await project(ledger, reg.account_id, owner.account_id))

    async def issue(self, ledger: Ledger, quantity_t: int, vintage: int = 2025) -> Block:
        return await issue(
            ledger, self.regulator.account_id, self.project.code, quantity_t, vintage
        )
