"""Applications: submitting one (or a new version of a rejected one), attaching a project's
third-party reports, and reading submissions with their review and history.

    submitted ──start review (draw)──▶ under_review ──decide──▶ approved ──register──▶ registered
                                                         └─────▶ rejected ──resubmit──▶ version n+1

An application is numbered once; each submission of it is a version, 1, 2, 3…, and only the
newest can move. Every step is a row of `registration_events` (who, when, what, why); the state
on `registration_applications` is their projection, written in the same transaction. The
review and the decision are in `registration.review`, the registration in
`registration.registers`.

Who applies: a methodology, any organisation holding an account on the platform that is not
staff or an expert (Art. 10); a project, a participant — a small enterprise, or an aggregator
acting as project participant (Arts. 20-21); a scenario, its operator (Art. 12); an evaluation
specification, the sector's competent authority (Art. 13). The applicant's organisation is its
account's registered name, never a field the applicant fills in, so it cannot steer who may be
drawn to review it. What must hold of the content is checked here at submission; what the
registers check again (the ledger's Art. 9 and Art. 22 rules) is checked again when registering.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import msgspec

from registration.errors import ErrorCode, RegistrationError
from registration.text import LONG, check_text
from registration.values import (
    KIND_OF,
    OPEN_STATES,
    Content,
    Draw,
    HistoryEntry,
    Kind,
    MethodologyContent,
    Opinion,
    ProjectContent,
    Report,
    ReportKind,
    ScenarioContent,
    SpecificationContent,
    State,
    Submission,
)
from settlement import registry
from settlement.accounts import lock_accounts, require_role
from settlement.connection import Connection
from settlement.registry import CODE, FIRST_VINTAGE, LAST_VINTAGE
from settlement.values import Role

APPLICANTS: dict[Kind, frozenset[Role]] = {
    Kind.METHODOLOGY: frozenset(
        {
            Role.PARTICIPANT,
            Role.AGGREGATOR,
            Role.TRADER,
            Role.COMPLIANCE_ENTITY,
            Role.SCENARIO_OPERATOR,
        }
    ),
    Kind.PROJECT: frozenset({Role.PARTICIPANT}),
    Kind.SCENARIO: frozenset({Role.SCENARIO_OPERATOR}),
    Kind.SPECIFICATION: frozenset({Role.SECTOR_AUTHORITY}),
}
CLAIMED_T_MAX = 10**12
_content = msgspec.json.Decoder(Content)


class Checked(msgspec.Struct, frozen=True):
    """A content as it will be stored, and what the submission derives from it."""

    content: Content
    sector: str
    decider_id: int | None = None
    specification_id: int | None = None


async def submit(
    conn: Connection,
    txn_id: int,
    applicant_id: int,
    content: Content,
    resubmits: int | None = None,
    reports: Sequence[Report] = (),
) -> Submission:
    """Submit an application, or (naming it in `resubmits`) the next version of the applicant's
    rejected one; a project may come with its third-party reports."""
    kind = KIND_OF[type(content)]
    roles = await lock_accounts(conn, [applicant_id])
    require_role(roles, applicant_id, APPLICANTS[kind], f"apply for a {kind.value}")
    if reports and kind is not Kind.PROJECT:
        raise RegistrationError(
            ErrorCode.NOT_A_PROJECT_APPLICATION, "only a project comes with third-party reports"
        )
    if resubmits is None:
        application_id = int(await conn.fetchval("SELECT nextval('registration_application_ids')"))
        version = 1
    else:
        previous = await latest(conn, resubmits)
        if previous["applicant_id"] != applicant_id:
            raise _not_found(resubmits)
        if previous["kind"] != kind:
            raise RegistrationError(
                ErrorCode.APPLICATION_KIND_MISMATCH,
                f"application {resubmits} is a {previous['kind']} application, not a {kind}",
            )
        if previous["state"] != State.REJECTED:
            raise RegistrationError(
                ErrorCode.APPLICATION_MUST_BE_REJECTED,
                f"application {resubmits} is {previous['state']}: only a rejected one is"
                " submitted again",
            )
        application_id, version = resubmits, previous["version"] + 1
    checked = await check_content(conn, applicant_id, content)
    organisation = await conn.fetchval(
        "SELECT name FROM accounts WHERE account_id = $1", applicant_id
    )
    await conn.execute(
        "INSERT INTO registration_applications (application_id, version, kind, applicant_id,"
        " organisation, sector, content, aggregator, decider_id, specification_id, state)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'submitted')",
        application_id,
        version,
        kind.value,
        applicant_id,
        organisation,
        checked.sector,
        msgspec.json.encode(checked.content),
        kind is Kind.PROJECT and Role.AGGREGATOR in roles[applicant_id],
        checked.decider_id,
        checked.specification_id,
    )
    detail = None if version == 1 else f"version {version} after version {version - 1}'s rejection"
    await event(
        conn, txn_id, application_id, version, "submitted", State.SUBMITTED, applicant_id, detail
    )
    if reports:
        await _store_reports(conn, txn_id, application_id, version, State.SUBMITTED, reports)
    return await submission(conn, application_id, version)


async def check_content(conn: Connection, applicant_id: int, content: Content) -> Checked:
    """The content trimmed and checked, with its sector (and, for a scenario, its decider)."""
    match content:
        case MethodologyContent():
            return await _methodology(conn, content)
        case ProjectContent():
            return await _project(conn, content)
        case ScenarioContent():
            return await _scenario(conn, content)
        case SpecificationContent():
            return await _specification(conn, applicant_id, content)


async def _methodology(conn: Connection, content: MethodologyContent) -> Checked:
    code = _code("methodology", content.code)
    if await conn.fetchval("SELECT 1 FROM methodologies WHERE code = $1", code):
        raise RegistrationError(ErrorCode.CODE_TAKEN, f"methodology {code} is registered")
    checked = MethodologyContent(
        code,
        check_text("name", content.name),
        check_text("sector", content.sector),
        check_text("text", content.text, LONG),
        check_text("notes", content.notes, LONG),
    )
    return Checked(checked, checked.sector)


async def _project(conn: Connection, content: ProjectContent) -> Checked:
    code = _code("project", content.code)
    if await conn.fetchval("SELECT 1 FROM projects WHERE code = $1", code):
        raise RegistrationError(ErrorCode.CODE_TAKEN, f"project {code} is registered")
    methodology = await registry.get_methodology(conn, content.methodology)
    checked = msgspec.structs.replace(
        content, code=code, region=check_text("region", content.region)
    )
    check_project(checked)
    return Checked(checked, methodology.sector)


def check_project(content: ProjectContent) -> None:
    """The monitoring period, the claim and the other schemes well formed, and no vintage of
    the period registered under another scheme (Art. 22, the ledger's own check)."""
    start, end = content.period_start, content.period_end
    if not (start <= end and FIRST_VINTAGE <= start.year <= end.year <= LAST_VINTAGE):
        raise RegistrationError(
            ErrorCode.PERIOD_INVALID,
            f"monitoring period {start}..{end}: from a start to an end no earlier, in the years"
            f" {FIRST_VINTAGE}..{LAST_VINTAGE}",
        )
    if not 1 <= content.claimed_t <= CLAIMED_T_MAX:
        raise RegistrationError(
            ErrorCode.QUANTITY_INVALID, f"claimed reductions {content.claimed_t} t"
        )
    seen: set[tuple[str, int]] = set()
    for other in content.other_schemes:
        if not FIRST_VINTAGE <= other.first_year <= other.last_year <= LAST_VINTAGE:
            raise RegistrationError(
                ErrorCode.PERIOD_INVALID,
                f"{other.scheme} registration {other.first_year}..{other.last_year}",
            )
        if (other.scheme, other.first_year) in seen:
            raise RegistrationError(
                ErrorCode.PERIOD_INVALID, f"{other.scheme} from {other.first_year} listed twice"
            )
        seen.add((other.scheme, other.first_year))
    for vintage in range(start.year, end.year + 1):
        registry.require_not_registered_elsewhere(content.code, content.other_schemes, vintage)


async def _scenario(conn: Connection, content: ScenarioContent) -> Checked:
    checked = ScenarioContent(
        check_text("name", content.name),
        check_text("sector", content.sector),
        check_text("place", content.place),
        check_text("description", content.description, LONG),
    )
    row = await conn.fetchrow(
        "SELECT authority_id, specification_id FROM scenario_sectors WHERE sector = $1",
        checked.sector,
    )
    if row is None:
        raise RegistrationError(
            ErrorCode.NO_EVALUATION_SPECIFICATION,
            f"no evaluation specification is registered for {checked.sector!r} (Art. 13)",
        )
    return Checked(checked, checked.sector, row[0], row[1])


async def _specification(
    conn: Connection, applicant_id: int, content: SpecificationContent
) -> Checked:
    checked = SpecificationContent(
        check_text("sector", content.sector),
        check_text("title", content.title),
        check_text("text", content.text, LONG),
    )
    await require_sector_free(conn, checked.sector, applicant_id)
    return Checked(checked, checked.sector)


async def require_sector_free(conn: Connection, sector: str, authority_id: int) -> None:
    """A sector's specifications come from one authority: the first to register one."""
    owner = await conn.fetchval(
        "SELECT authority_id FROM scenario_sectors WHERE sector = $1", sector
    )
    if owner is not None and owner != authority_id:
        raise RegistrationError(
            ErrorCode.SECTOR_OF_ANOTHER_AUTHORITY,
            f"sector {sector!r} is account {owner}'s to specify",
        )


def _code(kind: str, code: str) -> str:
    if not CODE.fullmatch(code):
        raise RegistrationError(
            ErrorCode.CODE_INVALID, f"{kind} code {code!r}: 1-16 characters A-Z and 0-9"
        )
    return code


async def attach_reports(
    conn: Connection,
    txn_id: int,
    applicant_id: int,
    application_id: int,
    reports: Sequence[Report],
) -> Submission:
    """Attach third-party reports to the applicant's project application, at any time until it
    is registered; a later report of a kind replaces the earlier one."""
    row = await latest(conn, application_id)
    if row["applicant_id"] != applicant_id:
        raise _not_found(application_id)
    if row["kind"] != Kind.PROJECT:
        raise RegistrationError(
            ErrorCode.NOT_A_PROJECT_APPLICATION,
            f"application {application_id} is a {row['kind']} application",
        )
    if row["state"] not in OPEN_STATES:
        raise RegistrationError(
            ErrorCode.APPLICATION_MUST_BE_OPEN, f"application {application_id} is {row['state']}"
        )
    if not reports:
        raise RegistrationError(ErrorCode.REPORT_INVALID, "attach at least one report")
    version = row["version"]
    await _store_reports(conn, txn_id, application_id, version, State(row["state"]), reports)
    return await submission(conn, application_id, version)


async def _store_reports(
    conn: Connection,
    txn_id: int,
    application_id: int,
    version: int,
    state: State,
    reports: Sequence[Report],
) -> None:
    checked = [check_report(report) for report in reports]
    if len({r.kind for r in checked}) < len(checked):
        raise RegistrationError(ErrorCode.REPORT_INVALID, "one report of each kind at a time")
    applicant_id = await conn.fetchval(
        "SELECT applicant_id FROM registration_applications"
        " WHERE application_id = $1 AND version = $2",
        application_id,
        version,
    )
    for report in checked:
        await conn.execute(
            "INSERT INTO project_reports (application_id, version, kind, issuer, reference,"
            " sha256_hex, txn_id) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            application_id,
            version,
            report.kind.value,
            report.issuer,
            report.reference,
            report.sha256_hex,
            txn_id,
        )
        await event(
            conn,
            txn_id,
            application_id,
            version,
            "report_attached",
            state,
            applicant_id,
            f"{report.kind} report {report.reference} by {report.issuer}",
        )


def check_report(report: Report) -> Report:
    digest = report.sha256_hex
    if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise RegistrationError(
            ErrorCode.REPORT_INVALID, "sha256_hex: the document's SHA-256, 64 lower-case hex digits"
        )
    return Report(
        report.kind,
        check_text("issuer", report.issuer),
        check_text("reference", report.reference),
        digest,
    )


async def latest(conn: Connection, application_id: int) -> Any:
    """The newest version's row, locked for the transaction: only it may move."""
    row = await conn.fetchrow(
        "SELECT * FROM registration_applications WHERE application_id = $1"
        " ORDER BY version DESC LIMIT 1 FOR UPDATE",
        application_id,
    )
    if row is None:
        raise _not_found(application_id)
    return row


def _not_found(application_id: int) -> RegistrationError:
    return RegistrationError(ErrorCode.APPLICATION_NOT_FOUND, f"no application {application_id}")


async def event(
    conn: Connection,
    txn_id: int,
    application_id: int,
    version: int,
    action: str,
    state: State,
    actor_id: int,
    detail: str | None,
) -> None:
    await conn.execute(
        "INSERT INTO registration_events (application_id, version, seq, action, state, actor_id,"
        " detail, txn_id) SELECT $1, $2, coalesce(max(seq), 0) + 1, $3, $4, $5, $6, $7"
        " FROM registration_events WHERE application_id = $1 AND version = $2",
        application_id,
        version,
        action,
        state.value,
        actor_id,
        detail,
        txn_id,
    )


# -- reads -------------------------------------------------------------------------------------


async def submission(conn: Connection, application_id: int, version: int) -> Submission:
    found = await submissions(conn, application_id=application_id, version=version)
    if not found:
        raise _not_found(application_id)
    return found[0]


async def submissions(
    conn: Connection,
    *,
    application_id: int | None = None,
    version: int | None = None,
    applicant_id: int | None = None,
    decider_id: int | None = None,
    expert_id: int | None = None,
    kind: Kind | None = None,
    state: State | None = None,
) -> list[Submission]:
    """Submissions matching every filter given, by application and version. `decider_id` picks
    the scenarios that sector authority decides; `expert_id` what that expert was drawn for."""
    rows = await conn.fetch(
        "SELECT a.* FROM registration_applications a"
        " WHERE ($1::bigint IS NULL OR a.application_id = $1)"
        " AND ($2::int IS NULL OR a.version = $2)"
        " AND ($3::bigint IS NULL OR a.applicant_id = $3)"
        " AND ($4::bigint IS NULL OR a.decider_id = $4)"
        " AND ($5::bigint IS NULL OR EXISTS (SELECT 1 FROM expert_draws d"
        "  WHERE d.application_id = a.application_id AND d.version = a.version"
        "  AND $5 = ANY(d.drawn)))"
        " AND ($6::text IS NULL OR a.kind = $6) AND ($7::text IS NULL OR a.state = $7)"
        " ORDER BY a.application_id, a.version",
        application_id,
        version,
        applicant_id,
        decider_id,
        expert_id,
        None if kind is None else kind.value,
        None if state is None else state.value,
    )
    if not rows:
        return []
    ids = sorted({row["application_id"] for row in rows})
    reports = await _grouped(
        conn,
        "SELECT application_id, version, kind, issuer, reference, sha256_hex FROM project_reports"
        " WHERE application_id = ANY($1::bigint[]) ORDER BY txn_id, kind",
        ids,
    )
    draws = await _grouped(
        conn,
        "SELECT application_id, version, seed, field, panel_size, pool_version, candidates, drawn"
        " FROM expert_draws WHERE application_id = ANY($1::bigint[])",
        ids,
    )
    opinions = await _grouped(
        conn,
        "SELECT application_id, version, expert_id, approve, text, at FROM expert_opinions"
        " WHERE application_id = ANY($1::bigint[]) ORDER BY at, expert_id",
        ids,
    )
    history = await _grouped(
        conn,
        "SELECT application_id, version, seq, action, state, actor_id, detail, at"
        " FROM registration_events WHERE application_id = ANY($1::bigint[]) ORDER BY seq",
        ids,
    )
    out = []
    for row in rows:
        key = (row["application_id"], row["version"])
        current: dict[ReportKind, Report] = {}
        for r in reports[key]:
            current[ReportKind(r[0])] = Report(ReportKind(r[0]), r[1], r[2], r[3])
        drawn = [Draw(d[0], d[1], d[2], d[3], tuple(d[4]), tuple(d[5])) for d in draws[key]]
        out.append(
            Submission(
                application_id=row["application_id"],
                version=row["version"],
                kind=Kind(row["kind"]),
                applicant_id=row["applicant_id"],
                organisation=row["organisation"],
                sector=row["sector"],
                content=_content.decode(row["content"]),
                state=State(row["state"]),
                aggregator=row["aggregator"],
                decider_id=row["decider_id"],
                specification_id=row["specification_id"],
                verifier=row["verifier"],
                reports=tuple(current[k] for k in sorted(current)),
                draw=drawn[0] if drawn else None,
                opinions=tuple(Opinion(o[0], o[1], o[2], o[3]) for o in opinions[key]),
                reason=row["reason"],
                registered_as=row["registered_as"],
                history=tuple(
                    HistoryEntry(h[0], h[1], State(h[2]), h[3], h[4], h[5]) for h in history[key]
                ),
            )
        )
    return out


async def _grouped(
    conn: Connection, sql: str, ids: list[int]
) -> defaultdict[tuple[int, int], list[tuple[Any, ...]]]:
    """Rows of `sql` by (application, version): the rest of each row, as a tuple."""
    grouped: defaultdict[tuple[int, int], list[tuple[Any, ...]]] = defaultdict(list)
    for row in await conn.fetch(sql, ids):
        grouped[(row[0], row[1])].append(tuple(row)[2:])
    return grouped
