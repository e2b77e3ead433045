"""Methodology applications on the real ledger (Arts. 10-11): submitted, reviewed by experts
drawn from the pool, approved, registered in the ledger and published; rejected and resubmitted
as version 2; every wrong state, wrong role and wrong actor refused with its code, nothing
written; each history complete."""

from __future__ import annotations

import msgspec

from registration.desk import RegistrationDesk
from registration.errors import ErrorCode
from registration.values import Kind, MethodologyContent, State
from settlement.errors import ErrorCode as LedgerCode
from settlement.ledger import Ledger
from settlement.values import Role
from tests.registration import builders
from tests.registration.builders import Office, field, methodology, seed, submitted
from tests.registration.refusals import refused
from tests.settlement.conftest import unique


async def test_a_methodology_goes_from_submission_to_the_ledger_and_the_public_list(
    ledger: Ledger, desk: RegistrationDesk
) -> None:
    office = await Office.open(ledger, desk)
    sector = field()
    panel = await office.experts(sector, 3)
    developer = await office.account(Role.PARTICIPANT)
    content = methodology(sector)
    applied = await submitted(desk, developer, content)
    assert (applied.kind, applied.sector, applied.decider_id) == (Kind.METHODOLOGY, sector, None)
    assert applied.organisation == (await ledger.account(developer)).name

    started = await desk.start_review(unique("r"), office.regulator, applied.application_id, 2, 7)
    assert started.state is State.UNDER_REVIEW and started.draw is not None
    assert started.draw.candidates == tuple(sorted(panel))
    assert started.draw.seed == 7 and len(started.draw.drawn) == 2
    first, second = started.draw.drawn
    mine = await desk.give_opinion(unique("o"), first, applied.application_id, True, "可行")
    assert [o.expert_id for o in mine.opinions] == [first]
    await desk.give_opinion(unique("o"), second, applied.application_id, False, "数据不足")
    # the experts advise; the regulator decides
    approved = await desk.decide(unique("d"), office.regulator, applied.application_id, True, None)
    assert approved.state is State.APPROVED
    assert {o.expert_id: o.approve for o in approved.opinions} == {first: True, second: False}

    registered = await desk.register(unique("g"), office.regulator, applied.application_id)
    assert (registered.state, registered.registered_as) == (State.REGISTERED, content.code)
    async with ledger.database.pool.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT name, sector FROM methodologies WHERE code = $1", content.code
        )
    assert row is not None and tuple(row) == (content.name, sector)
    listed = {m.code: m for m in await desk.published_methodologies()}
    assert listed[content.code].text == content.text
    assert listed[content.code].application_id == applied.application_id
    assert [(h.action, h.state, h.actor_id) for h in registered.history] == [
        ("submitted", State.SUBMITTED, developer),
        ("review_started", State.UNDER_REVIEW, office.regulator),
        ("opinion", State.UNDER_REVIEW, first),
        ("opinion", State.UNDER_REVIEW, second),
        ("approved", State.APPROVED, office.regulator),
        ("registered", State.REGISTERED, office.regulator),
    ]
    # a project can now stand on it (Art. 9)
    owner = await office.account(Role.PARTICIPANT)
    await builders.submitted(desk, owner, builders.project(content.code))


async def test_a_rejection_is_resubmitted_as_version_two_of_the_same_application(
    ledger: Ledger, desk: RegistrationDesk
) -> None:
    office = await Office.open(ledger, desk)
    sector = field()
    await office.experts(sector, 2)
    developer = await office.account(Role.PARTICIPANT)
    first = await submitted(desk, developer, methodology(sector))
    application_id = first.application_id
    await refused(
        ErrorCode.REASON_REQUIRED,
        _decide_after_review(office, application_id, approve=False, reason="  "),
    )
    rejected = await desk.decide(unique("d"), office.regulator, application_id, False, "缺少数据")
    assert (rejected.state, rejected.reason) == (State.REJECTED, "缺少数据")
    await refused(
        ErrorCode.APPLICATION_MUST_BE_APPROVED,
        desk.register(unique("g"), office.regulator, application_id),
    )

    better = msgspec.structs.replace(first.content, notes="补充了数据 Data added.")
    assert isinstance(better, MethodologyContent)
    second = await desk.submit(unique("s"), developer, better, resubmits=application_id)
    assert (second.application_id, second.version, second.state) == (
        application_id,
        2,
        State.SUBMITTED,
    )
    assert second.history[0].detail == "version 2 after version 1's rejection"
    versions = await desk.application(developer, application_id)
    assert [(v.version, v.state) for v in versions] == [
        (1, State.REJECTED),
        (2, State.SUBMITTED),
    ]
    # version 2 is reviewed afresh: a new draw, new opinions
    decided = await office.through_review(second)
    assert decided.version == 2 and decided.draw is not None
    registered = await desk.register(unique("g"), office.regulator, application_id)
    assert registered.version == 2 and registered.state is State.REGISTERED
    listed = {m.code: m for m in await desk.published_methodologies()}
    assert listed[better.code].notes == "补充了数据 Data added."


async def _decide_after_review(
    office: Office, application_id: int, approve: bool, reason: str | None
) -> None:
    desk = office.desk
    started = await desk.start_review(unique("r"), office.regulator, application_id, 2, seed())
    assert started.draw is not None
    for expert in started.draw.drawn:
        await desk.give_opinion(unique("o"), expert, application_id, approve, "opinion")
    await desk.decide(unique("d"), office.regulator, application_id, approve, reason)


async def test_every_transition_from_the_wrong_state_is_refused(
    ledger: Ledger, desk: RegistrationDesk
) -> None:
    office = await Office.open(ledger, desk)
    sector = field()
    await office.experts(sector, 2)
    developer = await office.account(Role.PARTICIPANT)
    applied = await submitted(desk, developer, methodology(sector))
    a, r = applied.application_id, office.regulator
    # submitted: no decision, no opinion, no registration, no resubmission
    await refused(
        ErrorCode.APPLICATION_MUST_BE_UNDER_REVIEW, desk.decide(unique("d"), r, a, True, None)
    )
    await refused(ErrorCode.APPLICATION_MUST_BE_APPROVED, desk.register(unique("g"), r, a))
    await refused(
        ErrorCode.APPLICATION_MUST_BE_REJECTED,
        desk.submit(unique("s"), developer, applied.content, resubmits=a),
    )
    started = await desk.start_review(unique("r"), r, a, 2, seed())
    assert started.draw is not None
    # under review: not again, and no decision before every opinion is in
    await refused(
        ErrorCode.APPLICATION_MUST_BE_SUBMITTED, desk.start_review(unique("r"), r, a, 2, seed())
    )
    await refused(ErrorCode.OPINIONS_PENDING, desk.decide(unique("d"), r, a, True, None))
    await desk.give_opinion(unique("o"), started.draw.drawn[0], a, True, "ok")
    await refused(ErrorCode.OPINIONS_PENDING, desk.decide(unique("d"), r, a, True, None))
    await refused(ErrorCode.APPLICATION_MUST_BE_APPROVED, desk.register(unique("g"), r, a))
    await desk.give_opinion(unique("o"), started.draw.drawn[1], a, True, "ok")
    await desk.decide(unique("d"), r, a, True, None)
    # approved: decided once; no opinion, no review
    await refused(
        ErrorCode.APPLICATION_MUST_BE_UNDER_REVIEW, desk.decide(unique("d"), r, a, False, "late")
    )
    await refused(
        ErrorCode.APPLICATION_MUST_BE_UNDER_REVIEW,
        desk.give_opinion(unique("o"), started.draw.drawn[0], a, False, "late"),
    )
    await refused(
        ErrorCode.APPLICATION_MUST_BE_SUBMITTED, desk.start_review(unique("r"), r, a, 2, seed())
    )
    await desk.register(unique("g"), r, a)
    # registered: final
    await refused(ErrorCode.APPLICATION_MUST_BE_APPROVED, desk.register(unique("g"), r, a))
    await refused(
        ErrorCode.APPLICATION_MUST_BE_REJECTED,
        desk.submit(unique("s"), developer, applied.content, resubmits=a),
    )
    [final] = await desk.application(r, a)
    assert [h.action for h in final.history] == [
        "submitted",
        "review_started",
        "opinion",
        "opinion",
        "approved",
        "registered",
    ]


async def test_wrong_roles_and_wrong_actors_are_refused(
    ledger: Ledger, desk: RegistrationDesk
) -> None:
    office = await Office.open(ledger, desk)
    sector = field()
    panel = await office.experts(sector, 2)
    developer = await office.account(Role.PARTICIPANT)
    outsider = await office.account(Role.PARTICIPANT)
    for staff in (Role.REGULATOR, Role.OPERATOR, Role.EXPERT, Role.SECTOR_AUTHORITY):
        await refused(
            LedgerCode.ROLE_NOT_ALLOWED,
            desk.submit(unique("s"), await office.account(staff), methodology(sector)),
        )
    applied = await submitted(desk, developer, methodology(sector))
    a = applied.application_id
    for actor in (developer, panel[0]):
        await refused(
            LedgerCode.ROLE_NOT_ALLOWED, desk.start_review(unique("r"), actor, a, 1, seed())
        )
    await refused(
        ErrorCode.APPLICATION_NOT_FOUND,
        desk.submit(unique("s"), outsider, applied.content, resubmits=a),
    )
    started = await desk.start_review(unique("r"), office.regulator, a, 1, seed())
    assert started.draw is not None
    [drawn] = started.draw.drawn
    [not_drawn] = [e for e in panel if e != drawn]
    await refused(ErrorCode.NOT_DRAWN, desk.give_opinion(unique("o"), not_drawn, a, True, "me too"))
    await refused(
        LedgerCode.ROLE_NOT_ALLOWED, desk.give_opinion(unique("o"), developer, a, True, "mine")
    )
    await desk.give_opinion(unique("o"), drawn, a, True, "sound")
    await refused(
        ErrorCode.OPINION_ALREADY_GIVEN, desk.give_opinion(unique("o"), drawn, a, False, "again")
    )
    await refused(LedgerCode.ROLE_NOT_ALLOWED, desk.decide(unique("d"), drawn, a, True, None))
    await desk.decide(unique("d"), office.regulator, a, True, None)
    await refused(LedgerCode.ROLE_NOT_ALLOWED, desk.register(unique("g"), developer, a))
    # who sees what
    with_draw = await desk.application(office.regulator, a)
    assert with_draw[0].draw is not None and len(with_draw[0].opinions) == 1
    [as_applicant] = await desk.application(developer, a)
    assert as_applicant.draw is None and as_applicant.opinions == ()
    assert "opinion" not in {h.action for h in as_applicant.history}
    [as_expert] = await desk.application(drawn, a)
    assert as_expert.draw is None and [o.expert_id for o in as_expert.opinions] == [drawn]
    for nobody in (outsider, not_drawn):
        await refused(ErrorCode.APPLICATION_NOT_FOUND, desk.application(nobody, a))
    assert [s.application_id for s in await desk.reviews(drawn)] == [a]
    assert await desk.reviews(not_drawn) == []


async def test_bad_content_is_refused_and_nothing_is_written(
    ledger: Ledger, desk: RegistrationDesk
) -> None:
    office = await Office.open(ledger, desk)
    sector = field()
    developer = await office.account(Role.PARTICIPANT)
    taken = await office.methodology_in(sector)
    good = methodology(sector)
    for code, content in [
        (ErrorCode.CODE_INVALID, msgspec.structs.replace(good, code="pv-01")),
        (ErrorCode.CODE_TAKEN, msgspec.structs.replace(good, code=taken)),
        (ErrorCode.TEXT_INVALID, msgspec.structs.replace(good, name=" ")),
        (ErrorCode.TEXT_INVALID, msgspec.structs.replace(good, name="a\nb")),
        (ErrorCode.TEXT_INVALID, msgspec.structs.replace(good, text="x" * 20_001)),
        (ErrorCode.TEXT_INVALID, msgspec.structs.replace(good, notes="bell\a")),
    ]:
        await refused(code, desk.submit(unique("s"), developer, content))
    await refused(
        ErrorCode.APPLICATION_NOT_FOUND, desk.submit(unique("s"), developer, good, resubmits=10**9)
    )
    assert await desk.mine(developer) == []
    applied = await submitted(desk, developer, good)
    await refused(
        ErrorCode.APPLICATION_KIND_MISMATCH,
        desk.submit(
            unique("s"),
            developer,
            builders.project(taken),
            resubmits=applied.application_id,
        ),
    )
    for size in (0, 16):
        await refused(
            ErrorCode.PANEL_SIZE_INVALID,
            desk.start_review(unique("r"), office.regulator, applied.application_id, size, seed()),
        )
    await refused(
        ErrorCode.VERIFIER_NOT_APPLICABLE,
        desk.start_review(
            unique("r"), office.regulator, applied.application_id, 1, seed(), "某核查机构"
        ),
    )
    await refused(
        ErrorCode.NOT_ENOUGH_EXPERTS,
        desk.start_review(unique("r"), office.regulator, applied.application_id, 1, seed()),
    )
    await refused(
        ErrorCode.APPLICATION_NOT_FOUND,
        desk.start_review(unique("r"), office.regulator, 10**9, 1, seed()),
    )
    [still] = await desk.mine(developer)
    assert still.state is State.SUBMITTED and len(still.history) == 1


async def test_a_repeat_returns_the_first_result_and_the_first_draw(
    ledger: Ledger, desk: RegistrationDesk
) -> None:
    office = await Office.open(ledger, desk)
    sector = field()
    await office.experts(sector, 6)
    developer = await office.account(Role.PARTICIPANT)
    key = unique("s")
    content = methodology(sector)
    first = await desk.submit(key, developer, content)
    assert await desk.submit(key, developer, content) == first
    await refused(
        LedgerCode.IDEMPOTENCY_KEY_REUSED, desk.submit(key, developer, methodology(sector))
    )
    review_key, a = unique("r"), first.application_id
    drawn = await desk.start_review(review_key, office.regulator, a, 3, seed=11)
    # another seed under the same key is the same request: the first draw stands
    again = await desk.start_review(review_key, office.regulator, a, 3, seed=12)
    assert again == drawn
    assert len(await desk.mine(developer)) == 1
