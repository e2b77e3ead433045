"""The expert pool (Art. 6) and the draw: the regulator adds and removes experts, the published
list shows who is in it; a draw takes only experts of the field, never the applicant's own
organisation's, and replays exactly from its recorded seed; a removed expert is not drawn again
but still gives the opinion it was drawn for."""

from __future__ import annotations

import asyncio

from hypothesis import given
from hypothesis import strategies as st

from registration.desk import RegistrationDesk
from registration.errors import ErrorCode
from registration.experts import Member, candidates, draw, pool_as_of
from registration.values import State
from settlement.errors import ErrorCode as LedgerCode
from settlement.ledger import Ledger
from settlement.values import Role
from tests.registration.builders import Office, field, methodology, seed, submitted
from tests.registration.refusals import refused
from tests.settlement.conftest import unique


async def test_the_regulator_keeps_the_pool_and_the_list_is_published(
    ledger: Ledger, desk: RegistrationDesk
) -> None:
    office = await Office.open(ledger, desk)
    expert = await office.account(Role.EXPERT, name=unique("张教授"))
    added = await desk.add_expert(
        unique("x"), office.regulator, expert, " 深圳大学 ", ["energy", " transport", "energy"]
    )
    assert (added.organisation, added.fields, added.active) == (
        "深圳大学",
        ("energy", "transport"),
        True,
    )
    listed = {e.name: e for e in await desk.published_pool()}
    name = (await ledger.account(expert)).name
    assert listed[name].organisation == "深圳大学" and listed[name].fields == added.fields
    await refused(
        ErrorCode.EXPERT_ALREADY_IN_POOL,
        desk.add_expert(unique("x"), office.regulator, expert, "深圳大学", ["energy"]),
    )
    removed = await desk.remove_expert(unique("x"), office.regulator, expert, "任期届满")
    assert removed.active is False
    assert name not in {e.name for e in await desk.published_pool()}
    await refused(
        ErrorCode.EXPERT_NOT_IN_POOL,
        desk.remove_expert(unique("x"), office.regulator, expert, "again"),
    )
    # back in, with other fields
    again = await desk.add_expert(unique("x"), office.regulator, expert, "深圳大学", ["water"])
    assert again.active and again.fields == ("water",)
    assert expert in {e.account_id for e in await desk.experts() if e.active}


async def test_pool_refusals(ledger: Ledger, desk: RegistrationDesk) -> None:
    office = await Office.open(ledger, desk)
    expert = await office.account(Role.EXPERT)
    trader = await office.account(Role.TRADER)
    await refused(
        LedgerCode.ROLE_NOT_ALLOWED,
        desk.add_expert(unique("x"), expert, expert, "org", ["energy"]),
    )
    await refused(
        LedgerCode.ROLE_NOT_ALLOWED,
        desk.add_expert(unique("x"), office.regulator, trader, "org", ["energy"]),
    )
    await refused(
        LedgerCode.ACCOUNT_NOT_FOUND,
        desk.add_expert(unique("x"), office.regulator, 10**12, "org", ["energy"]),
    )
    for fields in ([], [" "], [f"f{n}" for n in range(21)], ["a\tb"]):
        await refused(
            ErrorCode.FIELDS_INVALID,
            desk.add_expert(unique("x"), office.regulator, expert, "org", fields),
        )
    await refused(
        ErrorCode.TEXT_INVALID,
        desk.add_expert(unique("x"), office.regulator, expert, "", ["energy"]),
    )
    await refused(
        ErrorCode.EXPERT_NOT_IN_POOL,
        desk.remove_expert(unique("x"), office.regulator, expert, "never joined"),
    )
    assert expert not in {e.account_id for e in await desk.experts()}


async def test_an_expert_of_the_applicants_organisation_is_never_drawn(
    ledger: Ledger, desk: RegistrationDesk
) -> None:
    office = await Office.open(ledger, desk)
    sector = field()
    organisation = unique("Shenzhen Green Travel Association")
    applicant = await office.account(Role.PARTICIPANT, name=organisation)
    # its own experts (the name spelled with other case and spacing), and two independent ones
    own = await office.experts(sector, 3, organisation=f"  {organisation.upper()} ")
    independent = await office.experts(sector, 2)
    other_field = await office.experts(field(), 2)
    drawn: set[int] = set()
    for n in range(12):
        applied = await submitted(desk, applicant, methodology(sector))
        started = await desk.start_review(
            unique("r"), office.regulator, applied.application_id, 1 + n % 2, seed()
        )
        assert started.draw is not None
        assert started.draw.candidates == tuple(sorted(independent))
        drawn |= set(started.draw.drawn)
    assert drawn == set(independent)
    assert not drawn & set(own) and not drawn & set(other_field)
    applied = await submitted(desk, applicant, methodology(sector))
    await refused(
        ErrorCode.NOT_ENOUGH_EXPERTS,
        desk.start_review(unique("r"), office.regulator, applied.application_id, 3, seed()),
    )


async def test_a_recorded_draw_replays_exactly_from_its_seed(
    ledger: Ledger, desk: RegistrationDesk
) -> None:
    office = await Office.open(ledger, desk)
    sector = field()
    panel = await office.experts(sector, 9)
    applicant = await office.account(Role.PARTICIPANT)
    recorded = []
    for n in range(6):
        applied = await submitted(desk, applicant, methodology(sector))
        started = await desk.start_review(
            unique("r"), office.regulator, applied.application_id, 4, seed=1_000_003 * n
        )
        assert started.draw is not None
        recorded.append(started.draw)
        # removals after the draw change nothing about it
        await desk.remove_expert(unique("x"), office.regulator, panel[n], "rotated out")
    async with ledger.database.pool.acquire() as conn:
        for recorded_draw in recorded:
            pool = await pool_as_of(conn, recorded_draw.pool_version)
            again = candidates(pool, sector, applicant, (await ledger.account(applicant)).name)
            assert again == recorded_draw.candidates
            assert draw(again, 4, recorded_draw.seed) == recorded_draw.drawn
    # different seeds drew different panels from the same kind of pool
    assert len({d.drawn for d in recorded}) > 1


async def test_a_removed_expert_is_not_drawn_again_but_gives_its_opinion(
    ledger: Ledger, desk: RegistrationDesk
) -> None:
    office = await Office.open(ledger, desk)
    sector = field()
    [expert] = await office.experts(sector, 1)
    applicant = await office.account(Role.PARTICIPANT)
    applied = await submitted(desk, applicant, methodology(sector))
    a = applied.application_id
    await desk.start_review(unique("r"), office.regulator, a, 1, seed())
    await desk.remove_expert(unique("x"), office.regulator, expert, "conflict declared later")
    await desk.give_opinion(unique("o"), expert, a, False, "outside the scope")
    decided = await desk.decide(unique("d"), office.regulator, a, False, "outside the scope")
    assert decided.state is State.REJECTED
    later = await submitted(desk, applicant, methodology(sector))
    await refused(
        ErrorCode.NOT_ENOUGH_EXPERTS,
        desk.start_review(unique("r"), office.regulator, later.application_id, 1, seed()),
    )


async def test_draws_racing_pool_changes_each_see_one_whole_pool(
    ledger: Ledger, desk: RegistrationDesk
) -> None:
    office = await Office.open(ledger, desk)
    sector = field()
    await office.experts(sector, 4)
    applicant = await office.account(Role.PARTICIPANT)
    waiting = [await office.account(Role.EXPERT) for _ in range(6)]
    applied = [await submitted(desk, applicant, methodology(sector)) for _ in range(6)]
    await asyncio.gather(
        *(
            desk.start_review(unique("r"), office.regulator, s.application_id, 3, seed())
            for s in applied
        ),
        *(
            desk.add_expert(unique("x"), office.regulator, e, unique("org"), [sector])
            for e in waiting
        ),
    )
    # the audit after the test replays every draw against the pool of its version


_members = st.lists(
    st.builds(
        Member,
        st.integers(100, 140),
        st.sampled_from(["Acme", "acme ", "Other", "Third"]),
        st.lists(st.sampled_from(["energy", "water"]), min_size=1, unique=True).map(tuple),
    ),
    unique_by=lambda m: m.account_id,
)


@given(_members, st.integers(0, 2**63 - 1), st.integers(1, 5))
def test_a_draw_is_a_function_of_its_candidates_size_and_seed(
    members: list[Member], seed_value: int, size: int
) -> None:
    pool = candidates(members, "energy", 100, "ACME")
    assert all(m.organisation.strip().lower() != "acme" for m in members if m.account_id in pool)
    if len(pool) < size:
        return
    drawn = draw(pool, size, seed_value)
    assert len(set(drawn)) == size and set(drawn) <= set(pool)
    assert draw(tuple(reversed(pool)), size, seed_value) == drawn
