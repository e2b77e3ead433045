"""Registration: an approved application enters its register, in the same transaction.

- A methodology enters the ledger's methodologies (`settlement.registry.register_methodology`),
  so from then on it can back a project (Art. 9) — registered and published (Art. 11).
- A project enters the ledger's projects (`register_project`, with its other-scheme
  registrations): only on a registered methodology (Art. 9), and no vintage of its monitoring
  period under another scheme (Art. 22, checked again as at submission; issuance checks it a
  third time). A small enterprise's project needs the third-party validation and verification
  reports (Art. 21 ¶2); an aggregator's was verified by the third party the regulator
  commissioned at the start of the review (Art. 21 ¶1).
- A scenario evaluation specification becomes the one in force for its sector, whose scenarios
  its authority then decides (Art. 13: registered by the authority with the regulator).
- A scenario is granted its label (Art. 14), valid for the period the regulator gives.

The regulator registers every kind: the unified platform's registers are its (Arts. 4-5, 14).
Registration does not issue CERs: issuance stays the regulator's separate act, per period.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import msgspec

from registration import scenarios
from registration.applications import check_project, event, latest, submission
from registration.errors import ErrorCode, RegistrationError
from registration.values import (
    Content,
    Kind,
    MethodologyContent,
    ProjectContent,
    ReportKind,
    ScenarioContent,
    State,
    Submission,
)
from settlement import registry
from settlement.accounts import lock_accounts, require_role
from settlement.connection import Connection
from settlement.values import Methodology, Project, Role

_content = msgspec.json.Decoder(Content)


async def register(
    conn: Connection,
    txn_id: int,
    regulator_id: int,
    application_id: int,
    valid_from: dt.date | None = None,
    valid_until: dt.date | None = None,
) -> Submission:
    """Register an approved application; a scenario's label is valid `valid_from..valid_until`
    (given for scenarios only)."""
    row = await latest(conn, application_id)
    roles = await lock_accounts(conn, [regulator_id])
    require_role(roles, regulator_id, [Role.REGULATOR], "register applications")
    if row["state"] != State.APPROVED:
        raise RegistrationError(
            ErrorCode.APPLICATION_MUST_BE_APPROVED,
            f"application {application_id} version {row['version']} is {row['state']}",
        )
    kind, version = Kind(row["kind"]), row["version"]
    scenario = kind is Kind.SCENARIO
    if scenario != (valid_from is not None and valid_until is not None) or (
        valid_from is not None and valid_until is not None and valid_from > valid_until
    ):
        raise RegistrationError(
            ErrorCode.PERIOD_INVALID,
            "a scenario's label needs valid_from <= valid_until; other kinds take no period",
        )
    content = _content.decode(row["content"])
    match content:
        case MethodologyContent():
            methodology = Methodology(content.code, content.name, content.sector)
            await registry.register_methodology(conn, txn_id, regulator_id, methodology)
            registered_as = content.code
        case ProjectContent():
            await _reports_in_hand(conn, application_id, version, row["aggregator"])
            check_project(content)
            project = Project(
                content.code,
                row["applicant_id"],
                content.methodology,
                content.region,
                content.other_schemes,
            )
            await registry.register_project(conn, txn_id, regulator_id, project)
            registered_as = content.code
        case ScenarioContent():
            assert valid_from is not None and valid_until is not None
            registered_as = await scenarios.grant(
                conn,
                txn_id,
                regulator_id,
                application_id,
                version,
                row["applicant_id"],
                row["decider_id"],
                content,
                valid_from,
                valid_until,
            )
        case _:
            registered_as = await _specification(conn, txn_id, row)
    await conn.execute(
        "UPDATE registration_applications SET state = 'registered', registered_as = $3"
        " WHERE application_id = $1 AND version = $2",
        application_id,
        version,
        registered_as,
    )
    await event(
        conn,
        txn_id,
        application_id,
        version,
        "registered",
        State.REGISTERED,
        regulator_id,
        registered_as,
    )
    return await submission(conn, application_id, version)


async def _reports_in_hand(
    conn: Connection, application_id: int, version: int, aggregator: bool
) -> None:
    if aggregator:
        return
    kinds = {
        ReportKind(r[0])
        for r in await conn.fetch(
            "SELECT DISTINCT kind FROM project_reports WHERE application_id = $1 AND version = $2",
            application_id,
            version,
        )
    }
    if missing := sorted(set(ReportKind) - kinds):
        raise RegistrationError(
            ErrorCode.THIRD_PARTY_REPORTS_REQUIRED,
            f"a small enterprise's project needs a third party's validation and verification"
            f" reports (Art. 21); missing: {', '.join(missing)}",
        )


async def _specification(conn: Connection, txn_id: int, row: Any) -> str:
    sector, authority_id = row["sector"], row["applicant_id"]
    # One statement claims a new sector or updates the owner's: two authorities registering
    # specifications of one new sector at once cannot both have it.
    claimed = await conn.fetchval(
        "INSERT INTO scenario_sectors (sector, authority_id, specification_id, txn_id)"
        " VALUES ($1, $2, $3, $4) ON CONFLICT (sector) DO UPDATE"
        " SET specification_id = $3, txn_id = $4 WHERE scenario_sectors.authority_id = $2"
        " RETURNING sector",
        sector,
        authority_id,
        row["application_id"],
        txn_id,
    )
    if claimed is None:
        raise RegistrationError(
            ErrorCode.SECTOR_OF_ANOTHER_AUTHORITY,
            f"sector {sector!r} was claimed by another authority's specification",
        )
    return str(sector)
