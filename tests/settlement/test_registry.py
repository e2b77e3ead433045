"""Methodologies, projects and issuance: who may register and issue, serial blocks, and the
refusals (Art. 22 double issuance, unregistered methodology, overlapping batches)."""

from __future__ import annotations

import datetime as dt

import pytest

from settlement.errors import ErrorCode
from settlement.ledger import Ledger
from settlement.values import (
    Holding,
    Methodology,
    Project,
    Role,
    Scheme,
    SchemeRegistration,
    TonneState,
)
from tests.settlement import builders
from tests.settlement.builders import World
from tests.settlement.conftest import unique
from tests.settlement.refusals import refused

JAN = (dt.date(2025, 1, 1), dt.date(2025, 1, 31))


async def test_issuance_creates_a_numbered_block_held_free_by_the_owner(ledger: Ledger) -> None:
    world = await World.create(ledger)
    block = await world.issue(ledger, 1_000)
    assert block.block_id == f"SZCER-{world.project.code}-2025-1"
    assert (block.quantity_t, block.vintage, block.batch) == (1_000, 2025, 1)
    assert await ledger.holdings(world.owner.account_id) == [
        Holding(
            block.block_id,
            1,
            1_000,
            1_000,
            TonneState.FREE,
            None,
            world.project.code,
            world.project.methodology,
            2025,
        )
    ]


async def test_batches_of_one_vintage_are_numbered_in_order(ledger: Ledger) -> None:
    world = await World.create(ledger)
    blocks = [await world.issue(ledger, 10) for _ in range(3)]
    assert [b.batch for b in blocks] == [1, 2, 3]
    assert (await world.issue(ledger, 10, vintage=2024)).batch == 1


async def test_only_the_regulator_registers_and_issues(ledger: Ledger) -> None:
    world = await World.create(ledger)
    trader = await builders.account(ledger, Role.TRADER)
    await refused(
        ErrorCode.ROLE_NOT_ALLOWED,
        ledger.register_methodology(
            unique("m"), trader.account_id, Methodology(builders.code("M"), "x", "y")
        ),
    )
    await refused(
        ErrorCode.ROLE_NOT_ALLOWED,
        ledger.issue(unique("i"), trader.account_id, world.project.code, 5, *JAN),
    )


async def test_a_project_needs_a_participant_owner_and_a_registered_methodology(
    ledger: Ledger,
) -> None:
    regulator = await builders.regulator(ledger)
    trader = await builders.account(ledger, Role.TRADER)
    owner = await builders.account(ledger, Role.PARTICIPANT)
    meth = await builders.methodology(ledger, regulator.account_id)
    await refused(
        ErrorCode.ROLE_NOT_ALLOWED,
        ledger.register_project(
            unique("p"),
            regulator.account_id,
            Project(builders.code("P"), trader.account_id, meth.code, "Nanshan"),
        ),
    )
    await refused(
        ErrorCode.METHODOLOGY_NOT_REGISTERED,
        ledger.register_project(
            unique("p"),
            regulator.account_id,
            Project(builders.code("P"), owner.account_id, "NOSUCH", "Nanshan"),
        ),
    )


async def test_art22_a_project_registered_elsewhere_for_the_vintage_is_not_issued(
    ledger: Ledger,
) -> None:
    regulator = await builders.regulator(ledger)
    owner = await builders.account(ledger, Role.PARTICIPANT)
    project = await builders.project(
        ledger,
        regulator.account_id,
        owner.account_id,
        other_schemes=(SchemeRegistration(Scheme.CCER, 2024, 2025),),
    )
    error = await refused(
        ErrorCode.PROJECT_REGISTERED_UNDER_OTHER_SCHEME,
        ledger.issue(unique("i"), regulator.account_id, project.code, 100, *JAN),
    )
    assert "CCER" in error.message and "Art. 22" in error.message
    # outside the other scheme's period the project may be issued
    block = await ledger.issue(
        unique("i"),
        regulator.account_id,
        project.code,
        100,
        dt.date(2026, 3, 1),
        dt.date(2026, 3, 31),
    )
    assert block.vintage == 2026
    assert await ledger.holdings(owner.account_id) != []


async def test_an_issuance_period_overlapping_an_earlier_batch_is_refused(ledger: Ledger) -> None:
    world = await World.create(ledger)
    reg, code = world.regulator.account_id, world.project.code
    await ledger.issue(unique("i"), reg, code, 50, dt.date(2025, 1, 1), dt.date(2025, 3, 31))
    await refused(
        ErrorCode.ISSUANCE_PERIOD_OVERLAPS,
        ledger.issue(unique("i"), reg, code, 50, dt.date(2025, 3, 31), dt.date(2025, 4, 30)),
    )
    after = await ledger.issue(
        unique("i"), reg, code, 50, dt.date(2025, 4, 1), dt.date(2025, 4, 30)
    )
    assert after.batch == 2


@pytest.mark.parametrize(
    ("quantity", "start", "end", "code"),
    [
        (0, *JAN, ErrorCode.QUANTITY_MUST_BE_POSITIVE),
        (-5, *JAN, ErrorCode.QUANTITY_MUST_BE_POSITIVE),
        (5, dt.date(2025, 2, 1), dt.date(2025, 1, 1), ErrorCode.MALFORMED_PERIOD),
        (5, dt.date(2024, 12, 1), dt.date(2025, 1, 31), ErrorCode.MALFORMED_PERIOD),
        (5, dt.date(1999, 1, 1), dt.date(1999, 1, 2), ErrorCode.VINTAGE_OUT_OF_RANGE),
    ],
)
async def test_bad_issuances_are_refused_and_write_nothing(
    ledger: Ledger, quantity: int, start: dt.date, end: dt.date, code: ErrorCode
) -> None:
    world = await World.create(ledger)
    await refused(
        code,
        ledger.issue(
            unique("i"), world.regulator.account_id, world.project.code, quantity, start, end
        ),
    )
    assert await ledger.holdings(world.owner.account_id) == []


async def test_unknown_project_and_malformed_codes_are_refused(ledger: Ledger) -> None:
    regulator = await builders.regulator(ledger)
    await refused(
        ErrorCode.PROJECT_NOT_FOUND,
        ledger.issue(unique("i"), regulator.account_id, "NOSUCH", 5, *JAN),
    )
    await refused(
        ErrorCode.MALFORMED_ID,
        ledger.register_methodology(
            unique("m"), regulator.account_id, Methodology("pv-01", "x", "y")
        ),
    )
    await refused(ErrorCode.PROJECT_NOT_FOUND, ledger.project("NOSUCH"))


async def test_registering_twice_is_refused_but_repeating_a_key_is_not(ledger: Ledger) -> None:
    regulator = await builders.regulator(ledger)
    meth = Methodology(builders.code("M"), "Cycling", "transport")
    key = unique("m")
    first = await ledger.register_methodology(key, regulator.account_id, meth)
    assert await ledger.register_methodology(key, regulator.account_id, meth) == first
    await refused(
        ErrorCode.METHODOLOGY_EXISTS,
        ledger.register_methodology(unique("m"), regulator.account_id, meth),
    )
    await refused(
        ErrorCode.IDEMPOTENCY_KEY_REUSED,
        ledger.register_methodology(
            key, regulator.account_id, Methodology(builders.code("M"), "Other", "transport")
        ),
    )


async def test_a_project_reads_back_with_its_other_schemes(ledger: Ledger) -> None:
    regulator = await builders.regulator(ledger)
    owner = await builders.account(ledger, Role.PARTICIPANT)
    schemes = (
        SchemeRegistration(Scheme.CCER, 2020, 2021),
        SchemeRegistration(Scheme.GREEN_POWER, 2022, 2022),
    )
    project = await builders.project(
        ledger, regulator.account_id, owner.account_id, other_schemes=schemes
    )
    assert await ledger.project(project.code) == project
