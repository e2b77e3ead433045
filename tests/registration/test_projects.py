"""Project registration with its CER registration (Art. 21) on the real ledger: only on a
registered methodology (Art. 9), never for a vintage registered under another scheme (Art. 22,
at submission, at registration and at issuance); a small enterprise's project is registered
only with a third party's validation and verification reports, an aggregator's records the
verifier the regulator commissioned; registration puts the project in the ledger, where it can
then be issued."""

from __future__ import annotations

import datetime as dt

import msgspec

from registration.desk import RegistrationDesk
from registration.errors import ErrorCode
from registration.values import ProjectContent, Report, ReportKind, State
from settlement.errors import ErrorCode as LedgerCode
from settlement.ledger import Ledger
from settlement.values import Role, Scheme, SchemeRegistration
from tests.registration.builders import (
    DIGEST,
    REPORTS,
    Office,
    field,
    methodology,
    project,
    seed,
    submitted,
)
from tests.registration.refusals import refused
from tests.settlement.conftest import unique

CCER_2025 = SchemeRegistration(Scheme.CCER, 2024, 2025)
CCER_2020 = SchemeRegistration(Scheme.CCER, 2020, 2020)


async def test_a_small_enterprises_project_is_registered_with_its_reports_and_then_issued(
    ledger: Ledger, desk: RegistrationDesk
) -> None:
    office = await Office.open(ledger, desk)
    sector = field()
    await office.experts(sector, 2)
    code = await office.methodology_in(sector)
    firm = await office.account(Role.PARTICIPANT)
    others = (SchemeRegistration(Scheme.GREEN_CERTIFICATE, 2020, 2022),)
    content = project(code, other_schemes=others)
    applied = await submitted(desk, firm, content)
    assert (applied.sector, applied.aggregator) == (sector, False)
    await refused(
        ErrorCode.VERIFIER_NOT_APPLICABLE,
        desk.start_review(unique("r"), office.regulator, applied.application_id, 2, seed(), "X"),
    )
    decided = await office.through_review(applied)
    a = applied.application_id
    # approved, but a small enterprise's project needs both third-party reports
    message = await refused(
        ErrorCode.THIRD_PARTY_REPORTS_REQUIRED, desk.register(unique("g"), office.regulator, a)
    )
    assert "validation, verification" in message
    await desk.attach_reports(unique("t"), firm, a, REPORTS[:1])
    await refused(
        ErrorCode.THIRD_PARTY_REPORTS_REQUIRED, desk.register(unique("g"), office.regulator, a)
    )
    with_both = await desk.attach_reports(unique("t"), firm, a, REPORTS[1:])
    assert [r.kind for r in with_both.reports] == [ReportKind.VALIDATION, ReportKind.VERIFICATION]
    assert decided.state is with_both.state is State.APPROVED
    registered = await desk.register(unique("g"), office.regulator, a)
    assert (registered.state, registered.registered_as) == (State.REGISTERED, content.code)
    in_ledger = await ledger.project(content.code)
    assert (in_ledger.owner_id, in_ledger.methodology, in_ledger.other_schemes) == (
        firm,
        code,
        others,
    )
    block = await ledger.issue(
        unique("i"),
        office.regulator,
        content.code,
        1_200,
        dt.date(2025, 1, 1),
        dt.date(2025, 12, 31),
    )
    assert block.issued_to == firm
    await refused(
        ErrorCode.APPLICATION_MUST_BE_OPEN, desk.attach_reports(unique("t"), firm, a, REPORTS)
    )
    assert [h.action for h in registered.history].count("report_attached") == 2


async def test_an_aggregators_project_records_the_commissioned_verifier(
    ledger: Ledger, desk: RegistrationDesk
) -> None:
    office = await Office.open(ledger, desk)
    sector = field()
    await office.experts(sector, 2)
    code = await office.methodology_in(sector)
    platform = await office.account(Role.PARTICIPANT, Role.AGGREGATOR)
    content = project(code)
    applied = await submitted(desk, platform, content)
    assert applied.aggregator
    await refused(
        ErrorCode.VERIFIER_REQUIRED,
        desk.start_review(unique("r"), office.regulator, applied.application_id, 2, seed()),
    )
    await refused(
        ErrorCode.TEXT_INVALID,
        desk.start_review(unique("r"), office.regulator, applied.application_id, 2, seed(), " "),
    )
    decided = await office.through_review(applied, verifier="深圳某核查机构（政府采购）")
    assert decided.verifier == "深圳某核查机构（政府采购）"
    assert "verifier commissioned: 深圳某核查机构（政府采购）" in (decided.history[1].detail or "")
    # no reports of its own needed: the commissioned third party validated and verified
    registered = await desk.register(unique("g"), office.regulator, applied.application_id)
    assert registered.state is State.REGISTERED
    assert (await ledger.project(content.code)).owner_id == platform


async def test_art22_a_period_registered_elsewhere_is_refused_at_submission(
    ledger: Ledger, desk: RegistrationDesk
) -> None:
    office = await Office.open(ledger, desk)
    code = await office.methodology_in(field())
    firm = await office.account(Role.PARTICIPANT)
    message = await refused(
        LedgerCode.PROJECT_REGISTERED_UNDER_OTHER_SCHEME,
        desk.submit(unique("s"), firm, project(code, other_schemes=(CCER_2025,))),
    )
    assert "CCER" in message and "Art. 22" in message
    # a monitoring period over two years is checked year by year
    await refused(
        LedgerCode.PROJECT_REGISTERED_UNDER_OTHER_SCHEME,
        desk.submit(
            unique("s"),
            firm,
            project(
                code,
                other_schemes=(SchemeRegistration(Scheme.GREEN_POWER, 2026, 2026),),
                start=dt.date(2025, 7, 1),
                end=dt.date(2026, 6, 30),
            ),
        ),
    )
    # registered elsewhere for other years only: accepted, and those years stay refused later
    elsewhere = (SchemeRegistration(Scheme.CCER, 2021, 2023),)
    content = project(code, other_schemes=elsewhere)
    applied = await submitted(desk, firm, content)
    assert applied.content == content
    assert await desk.mine(firm) == [applied]


async def test_art22_is_checked_again_at_registration_and_at_issuance(
    ledger: Ledger, desk: RegistrationDesk
) -> None:
    office = await Office.open(ledger, desk)
    sector = field()
    await office.experts(sector, 2)
    code = await office.methodology_in(sector)
    firm = await office.account(Role.PARTICIPANT)
    content = project(code, other_schemes=(SchemeRegistration(Scheme.CCER, 2023, 2024),))
    applied = await submitted(desk, firm, content)
    await office.through_review(applied)
    await desk.attach_reports(unique("t"), firm, applied.application_id, REPORTS)
    # the stored content cannot change, so registration passes the same check again...
    await desk.register(unique("g"), office.regulator, applied.application_id)
    # ...and issuance refuses the years the other scheme covers
    await refused(
        LedgerCode.PROJECT_REGISTERED_UNDER_OTHER_SCHEME,
        ledger.issue(
            unique("i"),
            office.regulator,
            content.code,
            10,
            dt.date(2024, 1, 1),
            dt.date(2024, 3, 31),
        ),
    )


async def test_project_refusals(ledger: Ledger, desk: RegistrationDesk) -> None:
    office = await Office.open(ledger, desk)
    sector = field()
    code = await office.methodology_in(sector)
    firm = await office.account(Role.PARTICIPANT)
    good = project(code)
    existing = await office.account(Role.PARTICIPANT)
    registered = project(code)
    taken = await submitted(desk, existing, registered)
    await office.experts(sector, 2)
    await office.through_review(taken)
    await desk.attach_reports(unique("t"), existing, taken.application_id, REPORTS)
    await desk.register(unique("g"), office.regulator, taken.application_id)
    cases: list[tuple[ErrorCode | LedgerCode, ProjectContent]] = [
        (
            LedgerCode.METHODOLOGY_NOT_REGISTERED,
            msgspec.structs.replace(good, methodology="NOSUCH"),
        ),
        (ErrorCode.CODE_INVALID, msgspec.structs.replace(good, code="p-1")),
        (ErrorCode.CODE_TAKEN, msgspec.structs.replace(good, code=registered.code)),
        (ErrorCode.TEXT_INVALID, msgspec.structs.replace(good, region="")),
        (ErrorCode.QUANTITY_INVALID, msgspec.structs.replace(good, claimed_t=0)),
        (
            ErrorCode.PERIOD_INVALID,
            msgspec.structs.replace(good, period_end=dt.date(2024, 12, 31)),
        ),
        (
            ErrorCode.PERIOD_INVALID,
            msgspec.structs.replace(good, period_start=dt.date(1999, 1, 1)),
        ),
        (
            ErrorCode.PERIOD_INVALID,
            msgspec.structs.replace(
                good, other_schemes=(SchemeRegistration(Scheme.CCER, 2022, 2021),)
            ),
        ),
        (
            ErrorCode.PERIOD_INVALID,
            msgspec.structs.replace(good, other_schemes=(CCER_2020, CCER_2020)),
        ),
    ]
    for refusal, content in cases:
        await refused(refusal, desk.submit(unique("s"), firm, content))
    # only participants apply for projects
    for role in (Role.AGGREGATOR, Role.TRADER, Role.SCENARIO_OPERATOR):
        await refused(
            LedgerCode.ROLE_NOT_ALLOWED,
            desk.submit(unique("s"), await office.account(role), good),
        )
    assert await desk.mine(firm) == []
    # reports: only the applicant's project, only well formed
    applied = await submitted(desk, firm, good)
    a = applied.application_id
    bad_digest = Report(ReportKind.VALIDATION, "机构", "R-1", DIGEST.upper())
    for refusal, attempt in [
        (ErrorCode.REPORT_INVALID, desk.attach_reports(unique("t"), firm, a, [bad_digest])),
        (ErrorCode.REPORT_INVALID, desk.attach_reports(unique("t"), firm, a, [])),
        (ErrorCode.REPORT_INVALID, desk.attach_reports(unique("t"), firm, a, REPORTS[:1] * 2)),
        (ErrorCode.APPLICATION_NOT_FOUND, desk.attach_reports(unique("t"), existing, a, REPORTS)),
    ]:
        await refused(refusal, attempt)
    await refused(
        ErrorCode.NOT_A_PROJECT_APPLICATION,
        desk.submit(unique("s"), firm, methodology(sector), reports=REPORTS),
    )
    other_kind = await submitted(desk, firm, methodology(sector))
    await refused(
        ErrorCode.NOT_A_PROJECT_APPLICATION,
        desk.attach_reports(unique("t"), firm, other_kind.application_id, REPORTS),
    )


async def test_two_approved_applications_for_one_code_register_once(
    ledger: Ledger, desk: RegistrationDesk
) -> None:
    office = await Office.open(ledger, desk)
    sector = field()
    await office.experts(sector, 2)
    code = await office.methodology_in(sector)
    content = project(code)
    firms = [await office.account(Role.PARTICIPANT) for _ in range(2)]
    applied = [await submitted(desk, firm, content) for firm in firms]
    for firm, submission in zip(firms, applied, strict=True):
        await office.through_review(submission)
        await desk.attach_reports(unique("t"), firm, submission.application_id, REPORTS)
    await desk.register(unique("g"), office.regulator, applied[0].application_id)
    await refused(
        LedgerCode.PROJECT_EXISTS,
        desk.register(unique("g"), office.regulator, applied[1].application_id),
    )
    [second] = await desk.application(office.regulator, applied[1].application_id)
    assert second.state is State.APPROVED


async def test_the_reports_may_come_with_the_submission(
    ledger: Ledger, desk: RegistrationDesk
) -> None:
    office = await Office.open(ledger, desk)
    sector = field()
    await office.experts(sector, 1)
    firm = await office.account(Role.PARTICIPANT)
    content = project(await office.methodology_in(sector))
    applied = await desk.submit(unique("s"), firm, content, reports=REPORTS)
    assert applied.reports == REPORTS
    assert [h.action for h in applied.history] == ["submitted"] + ["report_attached"] * 2
    await office.through_review(applied, panel_size=1)
    registered = await desk.register(unique("g"), office.regulator, applied.application_id)
    assert registered.registered_as == content.code
