"""REST for registration (Arts. 6, 10-15, 21, 27): applications and their review, the expert
pool, scenario labels, and what the registers publish.

Applicants submit (a project with its third-party reports, if it has them) and read their own
applications; the regulator keeps the expert pool, works its queue — starts a review, which draws
the experts, decides, registers — and grants scenario labels; a sector authority reviews and
decides its sector's scenarios and manages their labels; a drawn expert reads what it was drawn
for and gives its opinion; anyone reads the methodologies, specifications, labels and the pool.
A review's seed is drawn here, from the operating system's randomness, and recorded with the
draw: the panel replays from it, and no one can choose it. The package checks every role and
state again (`registration.desk`), whatever the route.
"""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Annotated

import msgspec

from exchange.endpoint import Call
from exchange.protocol import END
from exchange.rest_certificates import ApplicationPath, Decision
from exchange.rest_fields import Code, Id, LongText, Text, Tonnes
from exchange.rest_offsets import today
from exchange.rest_operator import AccountPath
from exchange.rest_regulator import OtherScheme, Period
from registration.experts import FIELDS_MAX, PANEL_SIZE_MAX, SEED_LIMIT
from registration.values import (
    Content,
    Expert,
    Kind,
    Label,
    LabelEntry,
    LabelStatus,
    MethodologyContent,
    MethodologyEntry,
    PoolEntry,
    ProjectContent,
    Report,
    ReportKind,
    ScenarioContent,
    SpecificationContent,
    SpecificationEntry,
    State,
    Submission,
)
from settlement.values import SchemeRegistration

Digest = Annotated[str, msgspec.Meta(pattern=r"^[0-9a-f]{64}" + END)]
LabelId = Annotated[str, msgspec.Meta(pattern=r"^[A-Z0-9]+(-[A-Z0-9]+)*" + END, max_length=64)]


class ReportBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A third party's report: its kind, issuer, number, and the document's SHA-256."""

    kind: ReportKind
    issuer: Text
    reference: Text
    sha256_hex: Digest

    def report(self) -> Report:
        return Report(self.kind, self.issuer, self.reference, self.sha256_hex)


Reports = Annotated[list[ReportBody], msgspec.Meta(max_length=2)]


class MethodologyBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A methodology application (Art. 10); `resubmits` names a rejected one of the caller's
    to submit its next version."""

    code: Code
    name: Text
    sector: Text
    text: LongText
    notes: LongText
    resubmits: Id | None = None


class ProjectBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A project registration with its CER registration (Art. 21): the monitoring period and the
    reductions claimed for it, registrations under other schemes (Art. 22), and the third-party
    reports a small enterprise's project needs (they may also be attached later)."""

    code: Code
    methodology: Code
    region: Text
    period: Period
    claimed_t: Tonnes
    other_schemes: Annotated[list[OtherScheme], msgspec.Meta(max_length=20)] = []
    reports: Reports = []
    resubmits: Id | None = None


class ScenarioBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A low-carbon scenario application (Arts. 12, 14)."""

    name: Text
    sector: Text
    place: Text
    description: LongText
    resubmits: Id | None = None


class SpecificationBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A scenario evaluation specification of the caller's sector (Art. 13)."""

    sector: Text
    title: Text
    text: LongText
    resubmits: Id | None = None


class ReportsBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    reports: Annotated[list[ReportBody], msgspec.Meta(min_length=1, max_length=2)]


class ExpertBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    account_id: Id  # an account with the expert role
    organisation: Text
    fields: Annotated[list[Text], msgspec.Meta(min_length=1, max_length=FIELDS_MAX)]


class RemovalBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    reason: Text


class ReviewBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The panel's size; for an aggregator's project, the third-party verifier commissioned."""

    panel_size: Annotated[int, msgspec.Meta(ge=1, le=PANEL_SIZE_MAX)] = 3
    verifier: Text | None = None


class OpinionBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    approve: bool
    text: LongText


class RegistrationBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """For a scenario, the label's validity; nothing for the other kinds."""

    valid_from: dt.date | None = None
    valid_until: dt.date | None = None


class LabelStatusBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """`suspended`, `active` (reinstate a suspended label) or `withdrawn` (final)."""

    status: LabelStatus
    reason: Text


class LabelPath(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    label_id: LabelId


class QueueQuery(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    kind: Kind | None = None
    state: State | None = None


class ScenarioQueueQuery(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    state: State | None = None


# -- applicants --------------------------------------------------------------------------------


async def _submit(
    call: Call, content: Content, resubmits: int | None, reports: list[ReportBody] | None = None
) -> Submission:
    attached = [r.report() for r in reports or []]
    return await call.exchange.registration.submit(
        call.key, call.caller, content, resubmits, attached
    )


async def submit_methodology(call: Call, body: MethodologyBody) -> Submission:
    """Apply to register a methodology (any organisation on the platform but staff)."""
    content = MethodologyContent(body.code, body.name, body.sector, body.text, body.notes)
    return await _submit(call, content, body.resubmits)


async def submit_project(call: Call, body: ProjectBody) -> Submission:
    """Apply to register a project and its reductions for a monitoring period."""
    others = tuple(
        SchemeRegistration(o.scheme, o.first_year, o.last_year) for o in body.other_schemes
    )
    content = ProjectContent(
        body.code,
        body.methodology,
        body.region,
        body.period.start,
        body.period.end,
        body.claimed_t,
        others,
    )
    return await _submit(call, content, body.resubmits, body.reports)


async def submit_scenario(call: Call, body: ScenarioBody) -> Submission:
    """Apply for a low-carbon scenario label, in a sector with a registered specification."""
    content = ScenarioContent(body.name, body.sector, body.place, body.description)
    return await _submit(call, content, body.resubmits)


async def submit_specification(call: Call, body: SpecificationBody) -> Submission:
    """Submit a scenario evaluation specification for the caller's sector."""
    return await _submit(
        call, SpecificationContent(body.sector, body.title, body.text), body.resubmits
    )


async def attach_reports(call: Call, path: ApplicationPath, body: ReportsBody) -> Submission:
    """Attach third-party reports to the caller's project application, until it is registered."""
    return await call.exchange.registration.attach_reports(
        call.key, call.caller, path.application_id, [r.report() for r in body.reports]
    )


async def mine(call: Call) -> list[Submission]:
    """The caller's applications, every version, with their history."""
    return await call.exchange.registration.mine(call.caller)


async def application_versions(call: Call, path: ApplicationPath) -> list[Submission]:
    """Every version of an application, as far as the caller may see it: all of it for the
    regulator and the deciding authority, no draw or opinions for the applicant, only its own
    opinion for a drawn expert."""
    return await call.exchange.registration.application(call.caller, path.application_id)


# -- the regulator -----------------------------------------------------------------------------


async def add_expert(call: Call, body: ExpertBody) -> Expert:
    """Add an expert account to the pool with its organisation and fields (Art. 6)."""
    return await call.exchange.registration.add_expert(
        call.key, call.caller, body.account_id, body.organisation, body.fields
    )


async def remove_expert(call: Call, path: AccountPath, body: RemovalBody) -> Expert:
    """Remove an expert from the pool: it is drawn no more, and gives the opinions it owes."""
    return await call.exchange.registration.remove_expert(
        call.key, call.caller, path.account_id, body.reason
    )


async def experts(call: Call) -> list[Expert]:
    """Everyone ever in the pool, with whether they are in it now."""
    return await call.exchange.registration.experts()


async def regulator_queue(call: Call, query: QueueQuery) -> list[Submission]:
    """Applications of every kind, by kind and state, in full."""
    return await call.exchange.registration.queue(kind=query.kind, state=query.state)


async def _start_review(call: Call, application_id: int, body: ReviewBody) -> Submission:
    seed = secrets.randbelow(SEED_LIMIT)
    return await call.exchange.registration.start_review(
        call.key, call.caller, application_id, body.panel_size, seed, body.verifier
    )


async def regulator_review(call: Call, path: ApplicationPath, body: ReviewBody) -> Submission:
    """Start the review of a methodology, project or specification: draw the experts."""
    return await _start_review(call, path.application_id, body)


async def regulator_decision(call: Call, path: ApplicationPath, body: Decision) -> Submission:
    """Approve, or reject with a reason, once every drawn expert has given its opinion."""
    return await call.exchange.registration.decide(
        call.key, call.caller, path.application_id, body.approve, body.reason
    )


async def register(call: Call, path: ApplicationPath, body: RegistrationBody) -> Submission:
    """Register an approved application: the methodology or project in the ledger, the
    specification for its sector, or the scenario's label for its validity."""
    return await call.exchange.registration.register(
        call.key, call.caller, path.application_id, body.valid_from, body.valid_until
    )


# -- sector authorities ------------------------------------------------------------------------


async def scenario_queue(call: Call, query: ScenarioQueueQuery) -> list[Submission]:
    """The scenarios the caller decides, in full."""
    return await call.exchange.registration.queue(decider_id=call.caller, state=query.state)


async def scenario_review(call: Call, path: ApplicationPath, body: ReviewBody) -> Submission:
    """Start the evaluation of a scenario of the caller's sector: draw the experts."""
    return await _start_review(call, path.application_id, body)


async def scenario_decision(call: Call, path: ApplicationPath, body: Decision) -> Submission:
    """Pass, or fail with a reason, a scenario's evaluation."""
    return await call.exchange.registration.decide(
        call.key, call.caller, path.application_id, body.approve, body.reason
    )


async def labels(call: Call) -> list[Label]:
    """The labels of the caller's sectors, with their history."""
    return await call.exchange.registration.labels(call.caller)


async def label_status(call: Call, path: LabelPath, body: LabelStatusBody) -> Label:
    """Suspend, reinstate or withdraw a label of the caller's sector, with a reason."""
    return await call.exchange.registration.set_label_status(
        call.key, call.caller, path.label_id, body.status, body.reason
    )


# -- experts -----------------------------------------------------------------------------------


async def reviews(call: Call) -> list[Submission]:
    """What the caller was drawn to review, with its own opinion."""
    return await call.exchange.registration.reviews(call.caller)


async def give_opinion(call: Call, path: ApplicationPath, body: OpinionBody) -> Submission:
    """Give the one opinion the caller owes on an application under review."""
    return await call.exchange.registration.give_opinion(
        call.key, call.caller, path.application_id, body.approve, body.text
    )


# -- the public --------------------------------------------------------------------------------


async def public_methodologies(call: Call) -> list[MethodologyEntry]:
    """Every registered methodology, with its text and notes when it was applied for."""
    return await call.exchange.registration.published_methodologies()


async def public_specifications(call: Call) -> list[SpecificationEntry]:
    """Every registered scenario evaluation specification; those in force marked."""
    return await call.exchange.registration.published_specifications()


async def public_scenarios(call: Call) -> list[LabelEntry]:
    """Every low-carbon scenario label, with its status and whether it is in force today."""
    return await call.exchange.registration.published_labels(today())


async def public_experts(call: Call) -> list[PoolEntry]:
    """The expert pool as it is now (Art. 27): names, organisations, fields."""
    return await call.exchange.registration.published_pool()
