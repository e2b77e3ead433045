"""The registration audit fails when it must: each case damages one table behind the desk's back,
checks that the audit names the damage, and repairs it (the fixture audits again after)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from registration.audit import RegistrationAuditError
from registration.desk import RegistrationDesk
from settlement.ledger import Ledger
from settlement.values import Role
from tests.registration.builders import (
    Office,
    field,
    methodology,
    scenario,
    specification,
    submitted,
)
from tests.settlement.conftest import unique


async def _scene(ledger: Ledger, desk: RegistrationDesk) -> dict[str, Any]:
    """A registered methodology reviewed by a panel, and a scenario label."""
    office = await Office.open(ledger, desk)
    sector = field()
    panel = await office.experts(sector, 5)
    developer = await office.account(Role.PARTICIPANT)
    applied = await submitted(desk, developer, methodology(sector))
    a = applied.application_id
    started = await desk.start_review(unique("r"), office.regulator, a, 3, seed=424242)
    assert started.draw is not None
    for expert in started.draw.drawn:
        await desk.give_opinion(unique("o"), expert, a, True, "sound")
    await desk.decide(unique("d"), office.regulator, a, True, None)
    await desk.register(unique("g"), office.regulator, a)
    authority = await office.account(Role.SECTOR_AUTHORITY)
    spec = await submitted(desk, authority, specification(sector))
    await office.through_review(spec)
    await desk.register(unique("g"), office.regulator, spec.application_id)
    mall = await office.account(Role.SCENARIO_OPERATOR)
    labelled = await submitted(desk, mall, scenario(sector))
    await office.through_review(labelled, decider=authority)
    granted = await desk.register(
        unique("g"),
        office.regulator,
        labelled.application_id,
        dt.date(2026, 1, 1),
        dt.date(2027, 12, 31),
    )
    outsider = next(e for e in panel if e not in started.draw.drawn)
    return {
        "a": a,
        "expert": panel[0],
        "outsider": outsider,
        "candidates": "{" + ",".join(map(str, started.draw.candidates)) + "}",
        "label": granted.registered_as,
    }


CASES = [
    (
        "the seed is changed",
        "UPDATE expert_draws SET seed = seed + 1 WHERE application_id = {a}",
        "UPDATE expert_draws SET seed = seed - 1 WHERE application_id = {a}",
        "its seed does not draw the experts recorded",
    ),
    (
        "a candidate is left out",
        "UPDATE expert_draws SET candidates = candidates[2:] WHERE application_id = {a}",
        "UPDATE expert_draws SET candidates = '{candidates}' WHERE application_id = {a}",
        "candidates are not the pool of its version and field",
    ),
    (
        "an expert not drawn slips in an opinion",
        "INSERT INTO expert_opinions (application_id, version, expert_id, approve, text, txn_id)"
        " SELECT {a}, 1, {outsider}, false, 'x', txn_id FROM expert_draws"
        " WHERE application_id = {a}",
        "DELETE FROM expert_opinions WHERE application_id = {a} AND expert_id = {outsider}",
        "an opinion from an expert not drawn",
    ),
    (
        "the state is set without an event",
        "UPDATE registration_applications SET state = 'approved' WHERE application_id = {a}",
        "UPDATE registration_applications SET state = 'registered' WHERE application_id = {a}",
        "state approved, last event registered",
    ),
    (
        "the register entry is renamed",
        "UPDATE registration_applications SET registered_as = 'NOSUCH' WHERE application_id = {a}",
        "UPDATE registration_applications SET registered_as = (SELECT detail FROM"
        " registration_events WHERE application_id = {a} AND action = 'registered')"
        " WHERE application_id = {a}",
        "NOSUCH is not in its register",
    ),
    (
        "an expert leaves the pool without an event",
        "UPDATE experts SET active = false WHERE account_id = {expert}",
        "UPDATE experts SET active = true WHERE account_id = {expert}",
        "the experts table is not what the pool's events leave",
    ),
    (
        "a label is withdrawn without an event",
        "UPDATE scenario_labels SET status = 'withdrawn' WHERE label_id = '{label}'",
        "UPDATE scenario_labels SET status = 'active' WHERE label_id = '{label}'",
        "status withdrawn, history active .. active",
    ),
]


@pytest.mark.parametrize(("damage", "corrupt", "repair", "named"), CASES, ids=[c[0] for c in CASES])
async def test_the_audit_names_the_damage(
    ledger: Ledger, desk: RegistrationDesk, damage: str, corrupt: str, repair: str, named: str
) -> None:
    scene = await _scene(ledger, desk)
    assert await desk.audit() == []
    async with ledger.database.pool.acquire() as conn:
        await conn.execute(corrupt.format(**scene))
        try:
            with pytest.raises(RegistrationAuditError) as caught:
                await desk.check()
            assert any(named in problem for problem in caught.value.problems), (
                damage,
                caught.value.problems,
            )
        finally:
            await conn.execute(repair.format(**scene))
