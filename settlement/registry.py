"""The registry: methodologies, projects and their other-scheme registrations, and issuance.

Issuance creates a serial block `SZCER-<project>-<vintage>-<batch>` numbered 1..N, held free by the
project's owner. It is refused when the project is registered under another scheme for the vintage
(Art. 22: the same reductions are never issued twice) or when its monitoring period overlaps an
earlier issuance of the project.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable

import asyncpg

from settlement.accounts import lock_accounts, require_role
from settlement.connection import Connection
from settlement.errors import ErrorCode, LedgerError
from settlement.values import (
    HOLDER_ROLES,
    Block,
    Methodology,
    Project,
    Role,
    Scheme,
    SchemeRegistration,
)

CODE = re.compile(r"[A-Z0-9]{1,16}")
"""Methodology and project codes: short, upper-case, no hyphen (block ids are hyphen-joined)."""
FIRST_VINTAGE, LAST_VINTAGE = 2000, 2100


def block_id(project: str, vintage: int, batch: int) -> str:
    """
    >>> block_id("P0001", 2025, 1)
    'SZCER-P0001-2025-1'
    """
    return f"SZCER-{project}-{vintage}-{batch}"


def _check_code(kind: str, code: str) -> None:
    if not CODE.fullmatch(code):
        raise LedgerError(
            ErrorCode.MALFORMED_ID, f"{kind} code {code!r}: 1-16 characters A-Z and 0-9"
        )


def _check_text(kind: str, text: str) -> None:
    if not text.strip() or len(text) > 200:
        raise LedgerError(ErrorCode.MALFORMED_ID, f"{kind}: 1-200 characters")


async def register_methodology(
    conn: Connection, txn_id: int, actor_id: int, methodology: Methodology
) -> Methodology:
    require_role(await lock_accounts(conn, [actor_id]), actor_id, [Role.REGULATOR], "register")
    _check_code("methodology", methodology.code)
    _check_text("methodology name", methodology.name)
    _check_text("sector", methodology.sector)
    inserted = await conn.fetchval(
        "INSERT INTO methodologies (code, name, sector, txn_id) VALUES ($1, $2, $3, $4)"
        " ON CONFLICT DO NOTHING RETURNING code",
        methodology.code,
        methodology.name,
        methodology.sector,
        txn_id,
    )
    if inserted is None:
        raise LedgerError(
            ErrorCode.METHODOLOGY_EXISTS, f"methodology {methodology.code} is registered"
        )
    return methodology


async def register_project(
    conn: Connection, txn_id: int, actor_id: int, project: Project
) -> Project:
    roles = await lock_accounts(conn, [actor_id, project.owner_id])
    require_role(roles, actor_id, [Role.REGULATOR], "register")
    require_role(roles, project.owner_id, [Role.PARTICIPANT], "own a project")
    _check_code("project", project.code)
    _check_text("region", project.region)
    for other in project.other_schemes:
        if not FIRST_VINTAGE <= other.first_year <= other.last_year <= LAST_VINTAGE:
            raise LedgerError(
                ErrorCode.MALFORMED_PERIOD,
                f"{other.scheme} registration {other.first_year}..{other.last_year}",
            )
    await get_methodology(conn, project.methodology)
    inserted = await conn.fetchval(
        "INSERT INTO projects (code, owner_id, methodology, region, txn_id)"
        " VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING RETURNING code",
        project.code,
        project.owner_id,
        project.methodology,
        project.region,
        txn_id,
    )
    if inserted is None:
        raise LedgerError(ErrorCode.PROJECT_EXISTS, f"project {project.code} is registered")
    try:
        await conn.executemany(
            "INSERT INTO project_schemes (project, scheme, first_year, last_year)"
            " VALUES ($1, $2, $3, $4)",
            [
                (project.code, o.scheme.value, o.first_year, o.last_year)
                for o in project.other_schemes
            ],
        )
    except asyncpg.UniqueViolationError:
        raise LedgerError(
            ErrorCode.MALFORMED_PERIOD, "a scheme registration is listed twice"
        ) from None
    return project


async def get_methodology(conn: Connection, code: str) -> Methodology:
    """The registered methodology `code`: only these back projects (Art. 9)."""
    row = await conn.fetchrow("SELECT code, name, sector FROM methodologies WHERE code = $1", code)
    if row is None:
        raise LedgerError(
            ErrorCode.METHODOLOGY_NOT_REGISTERED, f"methodology {code!r} is not registered"
        )
    return Methodology(row["code"], row["name"], row["sector"])


def require_not_registered_elsewhere(
    project_code: str, others: Iterable[SchemeRegistration], vintage: int
) -> None:
    """Refuse reductions of `vintage` that another scheme covers (Art. 22: never issued twice)."""
    for other in others:
        if other.first_year <= vintage <= other.last_year:
            raise LedgerError(
                ErrorCode.PROJECT_REGISTERED_UNDER_OTHER_SCHEME,
                f"project {project_code} is registered under {other.scheme} for"
                f" {other.first_year}..{other.last_year}; vintage {vintage} cannot be issued"
                " again (Art. 22)",
            )


async def get_project(conn: Connection, code: str) -> Project:
    row = await conn.fetchrow(
        "SELECT code, owner_id, methodology, region FROM projects WHERE code = $1", code
    )
    if row is None:
        raise LedgerError(ErrorCode.PROJECT_NOT_FOUND, f"no project {code!r}")
    schemes = await conn.fetch(
        "SELECT scheme, first_year, last_year FROM project_schemes WHERE project = $1"
        " ORDER BY scheme, first_year",
        code,
    )
    return Project(
        row["code"],
        row["owner_id"],
        row["methodology"],
        row["region"],
        tuple(SchemeRegistration(s["scheme"], s["first_year"], s["last_year"]) for s in schemes),
    )


async def issue(
    conn: Connection,
    txn_id: int,
    actor_id: int,
    project_code: str,
    quantity_t: int,
    period_start: dt.date,
    period_end: dt.date,
) -> Block:
    """Issue a batch for the reductions of `period_start..period_end` (one vintage year)."""
    require_role(await lock_accounts(conn, [actor_id]), actor_id, [Role.REGULATOR], "issue CERs")
    if quantity_t <= 0:
        raise LedgerError(ErrorCode.QUANTITY_MUST_BE_POSITIVE, f"quantity {quantity_t} t")
    if period_start > period_end or period_start.year != period_end.year:
        raise LedgerError(
            ErrorCode.MALFORMED_PERIOD,
            f"{period_start}..{period_end}: a batch covers part of one year, its vintage",
        )
    vintage = period_end.year
    if not FIRST_VINTAGE <= vintage <= LAST_VINTAGE:
        raise LedgerError(ErrorCode.VINTAGE_OUT_OF_RANGE, f"vintage {vintage}")
    # The project row lock serialises issuances of one project, so batch numbers and the overlap
    # check cannot race.
    row = await conn.fetchrow(
        "SELECT owner_id FROM projects WHERE code = $1 FOR UPDATE", project_code
    )
    if row is None:
        raise LedgerError(ErrorCode.PROJECT_NOT_FOUND, f"no project {project_code!r}")
    owner_id = row["owner_id"]
    require_role(await lock_accounts(conn, [owner_id]), owner_id, HOLDER_ROLES, "receive CERs")
    others = await conn.fetch(
        "SELECT scheme, first_year, last_year FROM project_schemes WHERE project = $1"
        " ORDER BY scheme, first_year",
        project_code,
    )
    require_not_registered_elsewhere(
        project_code, (SchemeRegistration(Scheme(o[0]), o[1], o[2]) for o in others), vintage
    )
    earlier = await conn.fetchval(
        "SELECT block_id FROM blocks WHERE project = $1"
        " AND period_start <= $3 AND $2 <= period_end LIMIT 1",
        project_code,
        period_start,
        period_end,
    )
    if earlier is not None:
        raise LedgerError(
            ErrorCode.ISSUANCE_PERIOD_OVERLAPS,
            f"{period_start}..{period_end} overlaps the period of {earlier}",
        )
    batch = await conn.fetchval(
        "SELECT coalesce(max(batch), 0) + 1 FROM blocks WHERE project = $1 AND vintage = $2",
        project_code,
        vintage,
    )
    block = Block(
        block_id(project_code, vintage, batch),
        project_code,
        vintage,
        batch,
        quantity_t,
        period_start,
        period_end,
        owner_id,
    )
    await conn.execute(
        "INSERT INTO blocks (block_id, project, vintage, batch, quantity_t, period_start,"
        " period_end, issued_to, txn_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        block.block_id,
        project_code,
        vintage,
        batch,
        quantity_t,
        period_start,
        period_end,
        owner_id,
        txn_id,
    )
    await conn.execute(
        "INSERT INTO holdings (block_id, first_serial, last_serial, account_id, state)"
        " VALUES ($1, 1, $2, $3, 'free')",
        block.block_id,
        quantity_t,
        owner_id,
    )
    await conn.execute(
        "INSERT INTO serial_entries (txn_id, block_id, first_serial, last_serial, to_account,"
        " to_state) VALUES ($1, $2, 1, $3, $4, 'free')",
        txn_id,
        block.block_id,
        quantity_t,
        owner_id,
    )
    return block
