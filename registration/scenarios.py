"""Low-carbon scenario labels (Arts. 14-15) and the published list of them.

A label is granted when the regulator registers an approved scenario application: an id
`SZLCS-<year of valid_from>-<number>`, the sector, the place, the validity period, and the
sector authority that decided it. That authority manages it (Art. 15): it suspends it, reinstates
a suspended one, or withdraws it for good, each with a reason. Every status is an event in
`label_events`; `scenario_labels.status` is their projection.

    active ──suspend──▶ suspended ──reinstate──▶ active
       └──────withdraw──────┴──────▶ withdrawn (final)
"""

from __future__ import annotations

import datetime as dt

from registration.errors import ErrorCode, RegistrationError
from registration.text import check_reason
from registration.values import Label, LabelEntry, LabelEvent, LabelStatus, ScenarioContent
from settlement.connection import Connection

_FROM: dict[LabelStatus, tuple[frozenset[LabelStatus], ErrorCode]] = {
    LabelStatus.SUSPENDED: (frozenset({LabelStatus.ACTIVE}), ErrorCode.LABEL_MUST_BE_ACTIVE),
    LabelStatus.ACTIVE: (frozenset({LabelStatus.SUSPENDED}), ErrorCode.LABEL_MUST_BE_SUSPENDED),
    LabelStatus.WITHDRAWN: (
        frozenset({LabelStatus.ACTIVE, LabelStatus.SUSPENDED}),
        ErrorCode.LABEL_MUST_NOT_BE_WITHDRAWN,
    ),
}
"""The statuses each status can be reached from, and the code when it cannot."""


async def grant(
    conn: Connection,
    txn_id: int,
    regulator_id: int,
    application_id: int,
    version: int,
    operator_id: int,
    authority_id: int,
    content: ScenarioContent,
    valid_from: dt.date,
    valid_until: dt.date,
) -> str:
    number = await conn.fetchval("SELECT nextval('scenario_label_numbers')")
    label_id = f"SZLCS-{valid_from.year}-{number:06d}"
    await conn.execute(
        "INSERT INTO scenario_labels (label_id, application_id, version, operator_id,"
        " authority_id, name, sector, place, valid_from, valid_until, status, txn_id)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'active', $11)",
        label_id,
        application_id,
        version,
        operator_id,
        authority_id,
        content.name,
        content.sector,
        content.place,
        valid_from,
        valid_until,
        txn_id,
    )
    await _event(conn, txn_id, label_id, LabelStatus.ACTIVE, regulator_id, None)
    return label_id


async def set_status(
    conn: Connection,
    txn_id: int,
    authority_id: int,
    label_id: str,
    status: LabelStatus,
    reason: str,
) -> Label:
    """Suspend, reinstate (status active) or withdraw a label of the authority's sector."""
    row = await conn.fetchrow(
        "SELECT authority_id, status FROM scenario_labels WHERE label_id = $1 FOR UPDATE",
        label_id,
    )
    if row is None:
        raise RegistrationError(ErrorCode.LABEL_NOT_FOUND, f"no label {label_id!r}")
    if row["authority_id"] != authority_id:
        raise RegistrationError(
            ErrorCode.NOT_THE_SECTOR_AUTHORITY,
            f"label {label_id} is managed by its sector's authority, account {row['authority_id']}",
        )
    allowed, code = _FROM[status]
    if row["status"] not in allowed:
        raise RegistrationError(code, f"label {label_id} is {row['status']}")
    why = check_reason(reason, f"make a label {status}")
    await conn.execute(
        "UPDATE scenario_labels SET status = $2 WHERE label_id = $1", label_id, status.value
    )
    await _event(conn, txn_id, label_id, status, authority_id, why)
    return await label(conn, label_id)


async def _event(
    conn: Connection,
    txn_id: int,
    label_id: str,
    status: LabelStatus,
    actor_id: int,
    reason: str | None,
) -> None:
    await conn.execute(
        "INSERT INTO label_events (label_id, seq, status, actor_id, reason, txn_id)"
        " SELECT $1, coalesce(max(seq), 0) + 1, $2, $3, $4, $5 FROM label_events"
        " WHERE label_id = $1",
        label_id,
        status.value,
        actor_id,
        reason,
        txn_id,
    )


async def label(conn: Connection, label_id: str) -> Label:
    found = await labels(conn, label_id=label_id)
    if not found:
        raise RegistrationError(ErrorCode.LABEL_NOT_FOUND, f"no label {label_id!r}")
    return found[0]


async def labels(
    conn: Connection, *, label_id: str | None = None, authority_id: int | None = None
) -> list[Label]:
    rows = await conn.fetch(
        "SELECT label_id, application_id, version, operator_id, authority_id, name, sector,"
        " place, valid_from, valid_until, status FROM scenario_labels"
        " WHERE ($1::text IS NULL OR label_id = $1) AND ($2::bigint IS NULL OR authority_id = $2)"
        " ORDER BY label_id",
        label_id,
        authority_id,
    )
    events = await conn.fetch(
        "SELECT label_id, seq, status, actor_id, reason, at FROM label_events"
        " WHERE label_id = ANY($1::text[]) ORDER BY label_id, seq",
        [row[0] for row in rows],
    )
    history: dict[str, list[LabelEvent]] = {row[0]: [] for row in rows}
    for e in events:
        history[e[0]].append(LabelEvent(e[1], LabelStatus(e[2]), e[3], e[4], e[5]))
    return [
        Label(
            label_id=row[0],
            application_id=row[1],
            version=row[2],
            operator_id=row[3],
            authority_id=row[4],
            name=row[5],
            sector=row[6],
            place=row[7],
            valid_from=row[8],
            valid_until=row[9],
            status=LabelStatus(row[10]),
            history=tuple(history[row[0]]),
        )
        for row in rows
    ]


async def published(conn: Connection, on: dt.date) -> list[LabelEntry]:
    """The published list of labels (Art. 27), each with whether it is in force on `on`."""
    rows = await conn.fetch(
        "SELECT l.label_id, a.name, l.name, l.sector, l.place, l.valid_from, l.valid_until,"
        " l.status FROM scenario_labels l JOIN accounts a ON a.account_id = l.operator_id"
        " ORDER BY l.label_id"
    )
    return [
        LabelEntry(
            r[0],
            r[1],
            r[2],
            r[3],
            r[4],
            r[5],
            r[6],
            LabelStatus(r[7]),
            r[7] == LabelStatus.ACTIVE and r[5] <= on <= r[6],
        )
        for r in rows
    ]
