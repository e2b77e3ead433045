"""The registration package's front door: the expert pool, applications, their review and
registration, scenario labels, and what is published.

Each write is one ledger transaction under an idempotency key (`Ledger.keyed`): all or nothing,
a repeat returns the first result, and a methodology or project it registers sits in the
ledger's registry beside every other. A review's seed is not part of the request a repeat must
match — the caller draws a fresh one for each attempt — so a repeat returns the first draw.

Who sees what of a submission: the regulator, and the sector authority deciding it, see all of
it; the applicant sees its content, state, reports and history, but neither the draw nor the
opinions, so it cannot approach its reviewers; a drawn expert sees what it was drawn for and
its own opinion only, so opinions stay independent. Anyone else is told there is no such
application.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import msgspec

from registration import applications, audit, experts, public, registers, review, scenarios
from registration.errors import ErrorCode, RegistrationError
from registration.values import (
    Content,
    Expert,
    Kind,
    Label,
    LabelEntry,
    LabelStatus,
    MethodologyEntry,
    PoolEntry,
    Report,
    SpecificationEntry,
    State,
    Submission,
)
from settlement.accounts import get_account
from settlement.ledger import Ledger
from settlement.values import Role


def for_applicant(submission: Submission) -> Submission:
    return msgspec.structs.replace(
        submission,
        draw=None,
        opinions=(),
        history=tuple(h for h in submission.history if h.action != "opinion"),
    )


def for_expert(submission: Submission, expert_id: int) -> Submission:
    return msgspec.structs.replace(
        submission,
        draw=None,
        opinions=tuple(o for o in submission.opinions if o.expert_id == expert_id),
        history=tuple(
            h for h in submission.history if h.action != "opinion" or h.actor_id == expert_id
        ),
    )


class RegistrationDesk:
    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self._pool = ledger.database.pool

    # -- the expert pool -------------------------------------------------------------------------

    async def add_expert(
        self,
        key: str,
        regulator_id: int,
        account_id: int,
        organisation: str,
        fields: Sequence[str],
    ) -> Expert:
        named = tuple(fields)
        return await self.ledger.keyed(
            "add_expert",
            key,
            (regulator_id, account_id, organisation, named),
            Expert,
            lambda conn, txn: experts.add(conn, txn, regulator_id, account_id, organisation, named),
        )

    async def remove_expert(
        self, key: str, regulator_id: int, account_id: int, reason: str
    ) -> Expert:
        return await self.ledger.keyed(
            "remove_expert",
            key,
            (regulator_id, account_id, reason),
            Expert,
            lambda conn, txn: experts.remove(conn, txn, regulator_id, account_id, reason),
        )

    # -- applications ----------------------------------------------------------------------------

    async def submit(
        self,
        key: str,
        applicant_id: int,
        content: Content,
        resubmits: int | None = None,
        reports: Sequence[Report] = (),
    ) -> Submission:
        """Apply; naming a rejected application in `resubmits` submits its next version. A
        project may come with its third-party reports."""
        attached = tuple(reports)
        return await self.ledger.keyed(
            "submit_application",
            key,
            (applicant_id, content, resubmits, attached),
            Submission,
            lambda conn, txn: applications.submit(
                conn, txn, applicant_id, content, resubmits, attached
            ),
        )

    async def attach_reports(
        self, key: str, applicant_id: int, application_id: int, reports: Sequence[Report]
    ) -> Submission:
        attached = tuple(reports)
        return await self.ledger.keyed(
            "attach_reports",
            key,
            (applicant_id, application_id, attached),
            Submission,
            lambda conn, txn: applications.attach_reports(
                conn, txn, applicant_id, application_id, attached
            ),
        )

    async def start_review(
        self,
        key: str,
        actor_id: int,
        application_id: int,
        panel_size: int,
        seed: int,
        verifier: str | None = None,
    ) -> Submission:
        """Draw the panel with `seed` and put the application under review."""
        return await self.ledger.keyed(
            "start_review",
            key,
            (actor_id, application_id, panel_size, verifier),
            Submission,
            lambda conn, txn: review.start_review(
                conn, txn, actor_id, application_id, panel_size, seed, verifier
            ),
        )

    async def give_opinion(
        self, key: str, expert_id: int, application_id: int, approve: bool, text: str
    ) -> Submission:
        """A drawn expert's opinion; the result is what the expert may see."""
        given = await self.ledger.keyed(
            "give_opinion",
            key,
            (expert_id, application_id, approve, text),
            Submission,
            lambda conn, txn: review.give_opinion(
                conn, txn, expert_id, application_id, approve, text
            ),
        )
        return for_expert(given, expert_id)

    async def decide(
        self, key: str, actor_id: int, application_id: int, approve: bool, reason: str | None
    ) -> Submission:
        return await self.ledger.keyed(
            "decide_application",
            key,
            (actor_id, application_id, approve, reason),
            Submission,
            lambda conn, txn: review.decide(conn, txn, actor_id, application_id, approve, reason),
        )

    async def register(
        self,
        key: str,
        regulator_id: int,
        application_id: int,
        valid_from: dt.date | None = None,
        valid_until: dt.date | None = None,
    ) -> Submission:
        """Register an approved application; a scenario's label is valid
        `valid_from..valid_until`."""
        return await self.ledger.keyed(
            "register_application",
            key,
            (regulator_id, application_id, valid_from, valid_until),
            Submission,
            lambda conn, txn: registers.register(
                conn, txn, regulator_id, application_id, valid_from, valid_until
            ),
        )

    async def set_label_status(
        self, key: str, authority_id: int, label_id: str, status: LabelStatus, reason: str
    ) -> Label:
        """Suspend, reinstate (`active`) or withdraw a label, with a reason."""
        return await self.ledger.keyed(
            "set_label_status",
            key,
            (authority_id, label_id, status, reason),
            Label,
            lambda conn, txn: scenarios.set_status(
                conn, txn, authority_id, label_id, status, reason
            ),
        )

    # -- reads -----------------------------------------------------------------------------------

    async def application(self, viewer_id: int, application_id: int) -> list[Submission]:
        """Every version of an application, as `viewer_id` may see it (see the module's note)."""
        async with self._pool.acquire() as conn:
            roles = (await get_account(conn, viewer_id)).roles
            versions = await applications.submissions(conn, application_id=application_id)
        if not versions:
            raise _not_found(application_id)
        newest = versions[-1]
        if Role.REGULATOR in roles or viewer_id == newest.decider_id:
            return versions
        if viewer_id == newest.applicant_id:
            return [for_applicant(v) for v in versions]
        drawn_for = [v for v in versions if v.draw is not None and viewer_id in v.draw.drawn]
        if drawn_for:
            return [for_expert(v, viewer_id) for v in drawn_for]
        raise _not_found(application_id)

    async def mine(self, applicant_id: int) -> list[Submission]:
        """The applicant's submissions, every version, as the applicant sees them."""
        async with self._pool.acquire() as conn:
            found = await applications.submissions(conn, applicant_id=applicant_id)
        return [for_applicant(s) for s in found]

    async def queue(
        self,
        *,
        decider_id: int | None = None,
        kind: Kind | None = None,
        state: State | None = None,
    ) -> list[Submission]:
        """Submissions by kind and state: the regulator's view, or (with `decider_id`) the
        scenarios that sector authority decides."""
        async with self._pool.acquire() as conn:
            return await applications.submissions(
                conn, decider_id=decider_id, kind=kind, state=state
            )

    async def reviews(self, expert_id: int) -> list[Submission]:
        """What the expert was drawn to review, as it may see it."""
        async with self._pool.acquire() as conn:
            found = await applications.submissions(conn, expert_id=expert_id)
        return [for_expert(s, expert_id) for s in found]

    async def experts(self) -> list[Expert]:
        """Everyone ever in the pool, with whether they are in it now."""
        async with self._pool.acquire() as conn:
            return await experts.experts(conn)

    async def labels(self, authority_id: int) -> list[Label]:
        """The labels the sector authority manages, with their history."""
        async with self._pool.acquire() as conn:
            return await scenarios.labels(conn, authority_id=authority_id)

    # -- what is published -----------------------------------------------------------------------

    async def published_pool(self) -> list[PoolEntry]:
        async with self._pool.acquire() as conn:
            return await experts.published(conn)

    async def published_labels(self, on: dt.date) -> list[LabelEntry]:
        async with self._pool.acquire() as conn:
            return await scenarios.published(conn, on)

    async def published_methodologies(self) -> list[MethodologyEntry]:
        async with self._pool.acquire() as conn:
            return await public.methodologies(conn)

    async def published_specifications(self) -> list[SpecificationEntry]:
        async with self._pool.acquire() as conn:
            return await public.specifications(conn)

    # -- audit -----------------------------------------------------------------------------------

    async def audit(self) -> list[str]:
        async with self._pool.acquire() as conn:
            return await audit.audit(conn)

    async def check(self) -> None:
        async with self._pool.acquire() as conn:
            await audit.check(conn)


def _not_found(application_id: int) -> RegistrationError:
    return RegistrationError(ErrorCode.APPLICATION_NOT_FOUND, f"no application {application_id}")
