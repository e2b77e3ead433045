"""Carbon-neutrality certification (Art. 26): an application resting on retirements, the
regulator's decision, and on approval the signed certificate.

    submitted ──approve──▶ approved (certificate issued, in the same transaction)
        └─────reject───▶ rejected (with a reason; its retirements are free for a new application)

An application claims its retirements when submitted, so no retirement backs two live
applications, nor two certificates; the claim is taken row by row under lock, so two applications
racing for one retirement cannot both have it. Coverage must be complete: the retirements'
tonnes at least the subject's emissions. Every transition is an event with who, when and why.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import msgspec

from offsets.certificate import (
    SHANGHAI,
    Certificate,
    SignedCertificate,
    SubjectKind,
    certified_ranges,
    dump_signed,
    load_signed,
)
from offsets.errors import ErrorCode, OffsetError
from offsets.retirement import check_text, ranges_of
from offsets.signing import PlatformKey, sign
from settlement.connection import Connection
from settlement.values import SerialRange

ISSUER = "深圳市碳普惠统一平台 Shenzhen Carbon Inclusion Unified Platform"


class Application(msgspec.Struct, frozen=True):
    application_id: int
    account_id: int
    beneficiary: str
    subject_kind: SubjectKind
    subject: str
    emissions_t: int
    purpose: str
    retirement_ids: tuple[int, ...]
    retired_t: int
    applied_on: dt.date
    state: str  # submitted, approved, rejected
    reason: str | None = None
    certificate_id: str | None = None


class IssuedCertificate(msgspec.Struct, frozen=True):
    """A line of the public register of certificates."""

    certificate_id: str
    beneficiary: str
    subject: str
    emissions_t: int
    retired_t: int
    issued_at: dt.datetime


async def submit(
    conn: Connection,
    txn_id: int,
    account_id: int,
    beneficiary: str,
    subject_kind: SubjectKind,
    subject: str,
    emissions_t: int,
    purpose: str,
    retirement_ids: Sequence[int],
    on: dt.date,
) -> Application:
    beneficiary, subject = check_text("beneficiary", beneficiary), check_text("subject", subject)
    purpose = check_text("purpose", purpose)
    ids = sorted(set(retirement_ids))
    if emissions_t <= 0 or not ids:
        raise OffsetError(
            ErrorCode.COVERAGE_INCOMPLETE, "name the emissions (t > 0) and the retirements"
        )
    rows = await conn.fetch(
        "SELECT retirement_id, quantity_t, claimed_by FROM retirements"
        " WHERE retirement_id = ANY($1::bigint[]) AND account_id = $2 ORDER BY 1 FOR UPDATE",
        ids,
        account_id,
    )
    found = {row[0] for row in rows}
    if missing := [i for i in ids if i not in found]:
        raise OffsetError(
            ErrorCode.RETIREMENT_NOT_FOUND, f"no retirements {missing} of account {account_id}"
        )
    if claimed := [row[0] for row in rows if row[2] is not None]:
        raise OffsetError(
            ErrorCode.RETIREMENT_ALREADY_CLAIMED,
            f"retirements {claimed} already back another application",
        )
    retired = sum(row[1] for row in rows)
    if retired < emissions_t:
        raise OffsetError(
            ErrorCode.COVERAGE_INCOMPLETE,
            f"the retirements hold {retired} t; the subject emitted {emissions_t} t",
        )
    application_id = await conn.fetchval(
        "INSERT INTO certificate_applications (account_id, beneficiary, subject_kind, subject,"
        " emissions_t, purpose, retirement_ids, applied_on, state)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'submitted') RETURNING application_id",
        account_id,
        beneficiary,
        subject_kind.value,
        subject,
        emissions_t,
        purpose,
        ids,
        on,
    )
    await conn.execute(
        "UPDATE retirements SET claimed_by = $1 WHERE retirement_id = ANY($2::bigint[])",
        application_id,
        ids,
    )
    await _event(conn, txn_id, application_id, "submitted", account_id, None)
    return await application(conn, application_id)


async def decide(
    conn: Connection,
    txn_id: int,
    application_id: int,
    regulator_id: int,
    approve: bool,
    reason: str | None,
    key: PlatformKey,
    verify_base_url: str,
    now: dt.datetime,
) -> Application:
    """Approve (and issue the certificate) or reject (with a reason) a submitted application."""
    row = await conn.fetchrow(
        "SELECT state FROM certificate_applications WHERE application_id = $1 FOR UPDATE",
        application_id,
    )
    if row is None:
        raise OffsetError(ErrorCode.APPLICATION_NOT_FOUND, f"no application {application_id}")
    if row[0] != "submitted":
        raise OffsetError(
            ErrorCode.APPLICATION_ALREADY_DECIDED, f"application {application_id} is {row[0]}"
        )
    if not approve:
        why = check_text("reason", reason or "")
        await conn.execute(
            "UPDATE certificate_applications SET state = 'rejected', reason = $2"
            " WHERE application_id = $1",
            application_id,
            why,
        )
        await conn.execute(
            "UPDATE retirements SET claimed_by = NULL WHERE claimed_by = $1", application_id
        )
        await _event(conn, txn_id, application_id, "rejected", regulator_id, why)
        return await application(conn, application_id)
    pending = await application(conn, application_id)
    number = await conn.fetchval("SELECT nextval('certificate_numbers')")
    issued_at = now.astimezone(dt.UTC).replace(microsecond=0)
    approved_on = issued_at.astimezone(SHANGHAI).date()
    certificate_id = f"SZCN-{approved_on.year}-{number:06d}"
    signed = sign(
        Certificate(
            certificate_id=certificate_id,
            beneficiary=pending.beneficiary,
            subject_kind=pending.subject_kind,
            subject=pending.subject,
            emissions_t=pending.emissions_t,
            retired_t=pending.retired_t,
            ranges=certified_ranges(await _ranges(conn, pending.retirement_ids)),
            retirement_ids=pending.retirement_ids,
            purpose=pending.purpose,
            applied_on=pending.applied_on,
            approved_on=approved_on,
            issued_at=issued_at,
            issuer=ISSUER,
            verify_url=f"{verify_base_url.rstrip('/')}/certificates/{certificate_id}",
        ),
        key,
    )
    await conn.execute(
        "INSERT INTO certificates (certificate_id, application_id, account_id, body, issued_at,"
        " txn_id) VALUES ($1, $2, $3, $4, $5, $6)",
        certificate_id,
        application_id,
        pending.account_id,
        dump_signed(signed),
        issued_at,
        txn_id,
    )
    await conn.execute(
        "UPDATE certificate_applications SET state = 'approved', certificate_id = $2"
        " WHERE application_id = $1",
        application_id,
        certificate_id,
    )
    await _event(conn, txn_id, application_id, "approved", regulator_id, reason)
    return await application(conn, application_id)


async def application(conn: Connection, application_id: int) -> Application:
    found = await applications(conn, application_id=application_id)
    if not found:
        raise OffsetError(ErrorCode.APPLICATION_NOT_FOUND, f"no application {application_id}")
    return found[0]


async def applications(
    conn: Connection,
    *,
    application_id: int | None = None,
    account_id: int | None = None,
    state: str | None = None,
) -> list[Application]:
    rows = await conn.fetch(
        "SELECT a.application_id, a.account_id, a.beneficiary, a.subject_kind, a.subject,"
        " a.emissions_t, a.purpose, a.retirement_ids,"
        " (SELECT coalesce(sum(quantity_t), 0)::bigint FROM retirements"
        "  WHERE retirement_id = ANY(a.retirement_ids)),"
        " a.applied_on, a.state, a.reason, a.certificate_id FROM certificate_applications a"
        " WHERE ($1::bigint IS NULL OR a.application_id = $1)"
        " AND ($2::bigint IS NULL OR a.account_id = $2) AND ($3::text IS NULL OR a.state = $3)"
        " ORDER BY a.application_id",
        application_id,
        account_id,
        state,
    )
    return [
        Application(
            row[0],
            row[1],
            row[2],
            SubjectKind(row[3]),
            row[4],
            row[5],
            row[6],
            tuple(row[7]),
            row[8],
            row[9],
            row[10],
            row[11],
            row[12],
        )
        for row in rows
    ]


async def certificate(conn: Connection, certificate_id: str) -> SignedCertificate:
    body = await conn.fetchval(
        "SELECT body FROM certificates WHERE certificate_id = $1", certificate_id
    )
    if body is None:
        raise OffsetError(ErrorCode.CERTIFICATE_NOT_FOUND, f"no certificate {certificate_id}")
    return load_signed(bytes(body))


async def register(conn: Connection) -> list[IssuedCertificate]:
    """Every certificate issued, newest first: what a beneficiary's certificate publishes."""
    rows = await conn.fetch("SELECT body FROM certificates ORDER BY issued_at DESC, 1 DESC")
    out = []
    for row in rows:
        c = load_signed(bytes(row[0])).certificate
        out.append(
            IssuedCertificate(
                c.certificate_id, c.beneficiary, c.subject, c.emissions_t, c.retired_t, c.issued_at
            )
        )
    return out


async def _ranges(conn: Connection, retirement_ids: Sequence[int]) -> list[SerialRange]:
    txns = [
        row[0]
        for row in await conn.fetch(
            "SELECT txn_id FROM retirements WHERE retirement_id = ANY($1::bigint[])",
            list(retirement_ids),
        )
    ]
    by_txn = await ranges_of(conn, txns)
    return [r for ranges in by_txn.values() for r in ranges]


async def _event(
    conn: Connection,
    txn_id: int,
    application_id: int,
    state: str,
    actor_id: int,
    reason: str | None,
) -> None:
    await conn.execute(
        "INSERT INTO application_events (application_id, seq, state, actor_id, reason, txn_id)"
        " SELECT $1, coalesce(max(seq), 0) + 1, $2, $3, $4, $5 FROM application_events"
        " WHERE application_id = $1",
        application_id,
        state,
        actor_id,
        reason,
        txn_id,
    )
