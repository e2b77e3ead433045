"""Low-carbon scenarios (Arts. 12-15): a sector authority's evaluation specification is reviewed
and registered, which makes the authority its sector's; a scenario operator applies in that
sector, the authority draws the experts and decides, the regulator grants the label; the
authority suspends, reinstates and withdraws it with reasons; the public list says which labels
are in force."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable

from registration.desk import RegistrationDesk
from registration.errors import ErrorCode
from registration.values import Kind, Label, LabelStatus, State
from settlement.errors import ErrorCode as LedgerCode
from settlement.ledger import Ledger
from settlement.values import Role
from tests.registration.builders import (
    Office,
    field,
    scenario,
    seed,
    specification,
    submitted,
)
from tests.registration.refusals import refused
from tests.settlement.conftest import unique

FROM, UNTIL = dt.date(2026, 7, 1), dt.date(2029, 6, 30)


async def sector_with_authority(office: Office, sector: str) -> tuple[int, int]:
    """A sector authority whose specification of `sector` is registered; it and the spec's id."""
    authority = await office.account(Role.SECTOR_AUTHORITY)
    applied = await submitted(office.desk, authority, specification(sector))
    assert (applied.kind, applied.decider_id) == (Kind.SPECIFICATION, None)
    await office.through_review(applied)
    registered = await office.desk.register(unique("g"), office.regulator, applied.application_id)
    assert (registered.state, registered.registered_as) == (State.REGISTERED, sector)
    return authority, applied.application_id


async def test_a_scenario_is_evaluated_by_its_sector_and_labelled_by_the_regulator(
    ledger: Ledger, desk: RegistrationDesk
) -> None:
    office = await Office.open(ledger, desk)
    sector = field()
    await office.experts(sector, 3)
    authority, spec_id = await sector_with_authority(office, sector)
    specs = {s.application_id: s for s in await desk.published_specifications()}
    assert specs[spec_id].in_force and specs[spec_id].sector == sector

    mall = await office.account(Role.SCENARIO_OPERATOR)
    applied = await submitted(desk, mall, scenario(sector))
    a = applied.application_id
    assert (applied.decider_id, applied.specification_id) == (authority, spec_id)
    assert [s.application_id for s in await desk.queue(decider_id=authority)] == [a]
    # the regulator and other authorities do not decide this scenario
    other = await office.account(Role.SECTOR_AUTHORITY)
    for actor in (office.regulator, other):
        await refused(
            ErrorCode.NOT_THE_SECTOR_AUTHORITY, desk.start_review(unique("r"), actor, a, 2, seed())
        )
    started = await desk.start_review(unique("r"), authority, a, 2, seed())
    assert started.draw is not None
    for expert in started.draw.drawn:
        await desk.give_opinion(unique("o"), expert, a, True, "符合评价规范")
    await refused(
        ErrorCode.NOT_THE_SECTOR_AUTHORITY,
        desk.decide(unique("d"), office.regulator, a, True, None),
    )
    await desk.decide(unique("d"), authority, a, True, None)
    # the label is the regulator's to grant (Art. 14), valid for a period
    await refused(
        LedgerCode.ROLE_NOT_ALLOWED, desk.register(unique("g"), authority, a, FROM, UNTIL)
    )
    for period in ((None, None), (FROM, None), (UNTIL, FROM)):
        await refused(
            ErrorCode.PERIOD_INVALID, desk.register(unique("g"), office.regulator, a, *period)
        )
    registered = await desk.register(unique("g"), office.regulator, a, FROM, UNTIL)
    label_id = registered.registered_as or ""
    assert label_id.startswith("SZLCS-2026-")
    [label] = await desk.labels(authority)
    assert (label.label_id, label.operator_id, label.sector, label.status) == (
        label_id,
        mall,
        sector,
        LabelStatus.ACTIVE,
    )
    public = {entry.label_id: entry for entry in await desk.published_labels(dt.date(2027, 1, 1))}
    assert (
        public[label_id].in_force and public[label_id].operator == (await ledger.account(mall)).name
    )
    assert not {e.label_id: e for e in await desk.published_labels(dt.date(2030, 1, 1))}[
        label_id
    ].in_force


async def test_the_authority_suspends_reinstates_and_withdraws_a_label(
    ledger: Ledger, desk: RegistrationDesk
) -> None:
    office = await Office.open(ledger, desk)
    sector = field()
    await office.experts(sector, 2)
    authority, _ = await sector_with_authority(office, sector)
    mall = await office.account(Role.SCENARIO_OPERATOR)
    applied = await submitted(desk, mall, scenario(sector))
    await office.through_review(applied, decider=authority)
    registered = await desk.register(
        unique("g"), office.regulator, applied.application_id, FROM, UNTIL
    )
    label_id = registered.registered_as or ""
    on = dt.date(2027, 1, 1)

    def status(
        to: LabelStatus, reason: str = "数据采集不配合", by: int = authority
    ) -> Awaitable[Label]:
        return desk.set_label_status(unique("l"), by, label_id, to, reason)

    await refused(ErrorCode.LABEL_MUST_BE_SUSPENDED, status(LabelStatus.ACTIVE))
    await refused(ErrorCode.REASON_REQUIRED, status(LabelStatus.SUSPENDED, " "))
    await refused(
        ErrorCode.NOT_THE_SECTOR_AUTHORITY, status(LabelStatus.SUSPENDED, by=office.regulator)
    )
    await refused(
        ErrorCode.LABEL_NOT_FOUND,
        desk.set_label_status(
            unique("l"), authority, "SZLCS-1999-000001", LabelStatus.SUSPENDED, "x"
        ),
    )
    suspended = await desk.set_label_status(
        unique("l"), authority, label_id, LabelStatus.SUSPENDED, "数据采集不配合"
    )
    assert suspended.status is LabelStatus.SUSPENDED
    assert not {e.label_id: e for e in await desk.published_labels(on)}[label_id].in_force
    await refused(ErrorCode.LABEL_MUST_BE_ACTIVE, status(LabelStatus.SUSPENDED))
    reinstated = await desk.set_label_status(
        unique("l"), authority, label_id, LabelStatus.ACTIVE, "已整改"
    )
    assert {e.label_id: e for e in await desk.published_labels(on)}[label_id].in_force
    withdrawn = await desk.set_label_status(
        unique("l"), authority, label_id, LabelStatus.WITHDRAWN, "不再符合评价标准"
    )
    assert reinstated.status is LabelStatus.ACTIVE and withdrawn.status is LabelStatus.WITHDRAWN
    for to in LabelStatus:
        expected = {
            LabelStatus.ACTIVE: ErrorCode.LABEL_MUST_BE_SUSPENDED,
            LabelStatus.SUSPENDED: ErrorCode.LABEL_MUST_BE_ACTIVE,
            LabelStatus.WITHDRAWN: ErrorCode.LABEL_MUST_NOT_BE_WITHDRAWN,
        }[to]
        await refused(expected, status(to))
    assert [(e.status, e.reason, e.actor_id) for e in withdrawn.history] == [
        (LabelStatus.ACTIVE, None, office.regulator),
        (LabelStatus.SUSPENDED, "数据采集不配合", authority),
        (LabelStatus.ACTIVE, "已整改", authority),
        (LabelStatus.WITHDRAWN, "不再符合评价标准", authority),
    ]


async def test_scenario_and_specification_refusals(ledger: Ledger, desk: RegistrationDesk) -> None:
    office = await Office.open(ledger, desk)
    sector = field()
    await office.experts(sector, 2)
    mall = await office.account(Role.SCENARIO_OPERATOR)
    # no specification registered for the sector yet
    await refused(
        ErrorCode.NO_EVALUATION_SPECIFICATION, desk.submit(unique("s"), mall, scenario(sector))
    )
    authority, _ = await sector_with_authority(office, sector)
    # the sector is the first authority's to specify; a newer spec of its own replaces the old
    rival = await office.account(Role.SECTOR_AUTHORITY)
    await refused(
        ErrorCode.SECTOR_OF_ANOTHER_AUTHORITY,
        desk.submit(unique("s"), rival, specification(sector)),
    )
    _, newer = await sector_with_authority_again(office, authority, sector)
    specs = {s.application_id: s.in_force for s in await desk.published_specifications()}
    assert specs[newer] is True and list(specs.values()).count(True) >= 1
    applied = await submitted(desk, mall, scenario(sector))
    assert applied.specification_id == newer
    # roles
    for role in (Role.PARTICIPANT, Role.TRADER, Role.SECTOR_AUTHORITY):
        await refused(
            LedgerCode.ROLE_NOT_ALLOWED,
            desk.submit(unique("s"), await office.account(role), scenario(sector)),
        )
    for role in (Role.SCENARIO_OPERATOR, Role.REGULATOR):
        await refused(
            LedgerCode.ROLE_NOT_ALLOWED,
            desk.submit(unique("s"), await office.account(role), specification(field())),
        )


async def sector_with_authority_again(
    office: Office, authority: int, sector: str
) -> tuple[int, int]:
    applied = await submitted(office.desk, authority, specification(sector))
    await office.through_review(applied)
    await office.desk.register(unique("g"), office.regulator, applied.application_id)
    return authority, applied.application_id


async def test_of_two_authorities_specifying_a_new_sector_the_first_registered_has_it(
    ledger: Ledger, desk: RegistrationDesk
) -> None:
    office = await Office.open(ledger, desk)
    sector = field()
    await office.experts(sector, 2)
    authorities = [await office.account(Role.SECTOR_AUTHORITY) for _ in range(2)]
    applied = [await submitted(desk, a, specification(sector)) for a in authorities]
    for submission in applied:
        await office.through_review(submission)
    await desk.register(unique("g"), office.regulator, applied[0].application_id)
    await refused(
        ErrorCode.SECTOR_OF_ANOTHER_AUTHORITY,
        desk.register(unique("g"), office.regulator, applied[1].application_id),
    )
