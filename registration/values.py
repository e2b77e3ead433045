"""The registration package's value types: what an application asks for (its content, one struct
per kind), a submission (one version of an application) with its review and history, the expert
pool, and scenario labels.

Structs are msgspec structs, so they go on the wire and into the ledger's stored results as they
are. Quantities are whole tonnes (`int`).
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

import msgspec

from settlement.values import SchemeRegistration


class Kind(StrEnum):
    METHODOLOGY = "methodology"  # Arts. 10-11
    PROJECT = "project"  # Art. 21: the project and its CER registration
    SCENARIO = "scenario"  # Arts. 12, 14
    SPECIFICATION = "scenario_specification"  # Art. 13


class State(StrEnum):
    SUBMITTED = "submitted"
    UNDER_REVIEW = "under_review"
    APPROVED = "approved"
    REJECTED = "rejected"
    REGISTERED = "registered"


OPEN_STATES = frozenset({State.SUBMITTED, State.UNDER_REVIEW, State.APPROVED})
"""States in which a submission is still on its way to a register."""


class MethodologyContent(msgspec.Struct, frozen=True, tag="methodology"):
    """A methodology application (Art. 10): the registration form's code, name and sector, the
    methodology's text and its explanatory notes."""

    code: str
    name: str
    sector: str
    text: str
    notes: str


class ProjectContent(msgspec.Struct, frozen=True, tag="project"):
    """A project registration with its CER registration (Art. 21): the project on a registered
    methodology, its region, the monitoring period and the reductions claimed for it, and its
    registrations under other schemes (Art. 22)."""

    code: str
    methodology: str
    region: str
    period_start: dt.date
    period_end: dt.date
    claimed_t: int
    other_schemes: tuple[SchemeRegistration, ...] = ()


class ScenarioContent(msgspec.Struct, frozen=True, tag="scenario"):
    """A low-carbon scenario application (Arts. 12, 14): a scenario its operator runs."""

    name: str
    sector: str
    place: str
    description: str


class SpecificationContent(msgspec.Struct, frozen=True, tag="scenario_specification"):
    """A scenario evaluation specification (Art. 13), by the sector's competent authority."""

    sector: str
    title: str
    text: str


Content = MethodologyContent | ProjectContent | ScenarioContent | SpecificationContent

KIND_OF: dict[type[Content], Kind] = {
    MethodologyContent: Kind.METHODOLOGY,
    ProjectContent: Kind.PROJECT,
    ScenarioContent: Kind.SCENARIO,
    SpecificationContent: Kind.SPECIFICATION,
}


class ReportKind(StrEnum):
    VALIDATION = "validation"  # 项目审定报告
    VERIFICATION = "verification"  # 减排量核证报告


class Report(msgspec.Struct, frozen=True):
    """A third party's report on a project: who issued it, its number, and the SHA-256 of the
    document, so the file the regulator holds can be matched to the record."""

    kind: ReportKind
    issuer: str
    reference: str
    sha256_hex: str


class Draw(msgspec.Struct, frozen=True):
    """The experts drawn for a review, and everything needed to replay the draw: the seed, the
    field, the panel size, and the candidates — the pool of `pool_version` in that field, less
    the applicant and experts of its organisation — in account order."""

    seed: int
    field: str
    panel_size: int
    pool_version: int
    candidates: tuple[int, ...]
    drawn: tuple[int, ...]


class Opinion(msgspec.Struct, frozen=True):
    expert_id: int
    approve: bool
    text: str
    at: dt.datetime


class HistoryEntry(msgspec.Struct, frozen=True):
    """One step of a submission: what was done, the state after it, who did it, when, why."""

    seq: int
    action: str
    state: State
    actor_id: int
    detail: str | None
    at: dt.datetime


class Submission(msgspec.Struct, frozen=True):
    """One version of an application, where it stands, and how it got there.

    `decider_id` is the sector authority that decides a scenario (None: the regulator decides).
    `registered_as` names what the registration made: a methodology or project code, a label id,
    or the specification's sector."""

    application_id: int
    version: int
    kind: Kind
    applicant_id: int
    organisation: str
    sector: str
    content: Content
    state: State
    aggregator: bool
    decider_id: int | None
    specification_id: int | None
    verifier: str | None
    reports: tuple[Report, ...]
    draw: Draw | None
    opinions: tuple[Opinion, ...]
    reason: str | None
    registered_as: str | None
    history: tuple[HistoryEntry, ...]


class Expert(msgspec.Struct, frozen=True):
    account_id: int
    name: str
    organisation: str
    fields: tuple[str, ...]
    active: bool
    since: dt.datetime


class PoolEntry(msgspec.Struct, frozen=True):
    """An expert as the published list shows it (Art. 27): no account id."""

    name: str
    organisation: str
    fields: tuple[str, ...]
    since: dt.datetime


class LabelStatus(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    WITHDRAWN = "withdrawn"


class LabelEvent(msgspec.Struct, frozen=True):
    seq: int
    status: LabelStatus
    actor_id: int
    reason: str | None
    at: dt.datetime


class Label(msgspec.Struct, frozen=True):
    """A low-carbon scenario label (Art. 14), with its suspensions and withdrawal (Art. 15)."""

    label_id: str
    application_id: int
    version: int
    operator_id: int
    authority_id: int
    name: str
    sector: str
    place: str
    valid_from: dt.date
    valid_until: dt.date
    status: LabelStatus
    history: tuple[LabelEvent, ...]


class LabelEntry(msgspec.Struct, frozen=True):
    """A label as the public list shows it; `in_force` on the list's date."""

    label_id: str
    operator: str
    name: str
    sector: str
    place: str
    valid_from: dt.date
    valid_until: dt.date
    status: LabelStatus
    in_force: bool


class MethodologyEntry(msgspec.Struct, frozen=True):
    """A registered methodology as published, with its text and notes when it was registered
    through an application."""

    code: str
    name: str
    sector: str
    application_id: int | None
    text: str | None
    notes: str | None


class SpecificationEntry(msgspec.Struct, frozen=True):
    """A registered scenario evaluation specification, as published (Art. 13)."""

    application_id: int
    version: int
    sector: str
    title: str
    text: str
    authority: str
    in_force: bool
