"""Builders for registration tests: staff, experts in a field, and applications of each kind
taken as far as a test needs them.

Tests in a module share one database and one expert pool, so each test works in fields
(sectors) of its own: `field()` names one no other test uses.
"""

from __future__ import annotations

import datetime as dt
import itertools

from registration.desk import RegistrationDesk
from registration.values import (
    Content,
    MethodologyContent,
    ProjectContent,
    Report,
    ReportKind,
    ScenarioContent,
    SpecificationContent,
    State,
    Submission,
)
from settlement.ledger import Ledger
from settlement.values import Role, SchemeRegistration
from tests.settlement import builders
from tests.settlement.conftest import unique

_seeds = itertools.count(1_000)
DIGEST = "ab" * 32


def field() -> str:
    return unique("field")


def seed() -> int:
    return next(_seeds)


class Office:
    """A regulator and the pool it keeps; experts are added per field."""

    def __init__(self, ledger: Ledger, desk: RegistrationDesk, regulator: int) -> None:
        self.ledger = ledger
        self.desk = desk
        self.regulator = regulator

    @classmethod
    async def open(cls, ledger: Ledger, desk: RegistrationDesk) -> Office:
        return cls(ledger, desk, (await builders.regulator(ledger)).account_id)

    async def account(self, *roles: Role, name: str | None = None) -> int:
        name = name or unique("acct")
        return (await self.ledger.open_account(f"open/{name}", name, roles)).account_id

    async def experts(self, sector: str, count: int, organisation: str | None = None) -> list[int]:
        """`count` new experts in `sector`, each of its own organisation unless one is named."""
        ids = []
        for _ in range(count):
            expert = await self.account(Role.EXPERT)
            await self.desk.add_expert(
                unique("x"), self.regulator, expert, organisation or unique("org"), [sector]
            )
            ids.append(expert)
        return ids

    async def methodology_in(self, sector: str) -> str:
        """A methodology of `sector` registered in the ledger directly."""
        return (await builders.methodology(self.ledger, self.regulator, sector)).code

    async def through_review(
        self,
        submission: Submission,
        approve: bool = True,
        panel_size: int = 2,
        decider: int | None = None,
        verifier: str | None = None,
    ) -> Submission:
        """Draw the panel, every drawn expert approves, and the decider decides."""
        decider = decider or self.regulator
        desk, application_id = self.desk, submission.application_id
        started = await desk.start_review(
            unique("rv"), decider, application_id, panel_size, seed(), verifier
        )
        assert started.state is State.UNDER_REVIEW and started.draw is not None
        for expert in started.draw.drawn:
            await desk.give_opinion(unique("op"), expert, application_id, True, "sound")
        reason = None if approve else "not additional"
        decided = await desk.decide(unique("d"), decider, application_id, approve, reason)
        assert decided.state is (State.APPROVED if approve else State.REJECTED)
        return decided


def methodology(sector: str, code: str | None = None) -> MethodologyContent:
    return MethodologyContent(
        code or builders.code("M"),
        "Rooftop photovoltaics",
        sector,
        "基准情景与减排情景的计算方法\nBaseline and project emissions.",
        "编制说明 Explanatory notes.",
    )


def project(
    methodology_code: str,
    code: str | None = None,
    other_schemes: tuple[SchemeRegistration, ...] = (),
    start: dt.date = dt.date(2025, 1, 1),
    end: dt.date = dt.date(2025, 12, 31),
) -> ProjectContent:
    return ProjectContent(
        code or builders.code("P"), methodology_code, "Futian", start, end, 1_200, other_schemes
    )


def scenario(sector: str) -> ScenarioContent:
    return ScenarioContent("绿色商超 Green Mall", sector, "Nanshan, Shenzhen", "Low-carbon retail.")


def specification(sector: str) -> SpecificationContent:
    return SpecificationContent(sector, "低碳商超评价规范", "评价内容与方法 Requirements.")


REPORTS = (
    Report(ReportKind.VALIDATION, "深圳某审定机构", "VAL-2026-001", DIGEST),
    Report(ReportKind.VERIFICATION, "深圳某核证机构", "VER-2026-001", DIGEST),
)


async def submitted(desk: RegistrationDesk, applicant: int, content: Content) -> Submission:
    submission = await desk.submit(unique("s"), applicant, content)
    assert submission.state is State.SUBMITTED and submission.version == 1
    return submission
