"""What the registers publish beside the expert pool and the labels (Arts. 11, 13, 27): the
methodology list, with each methodology's text and notes when it came through an application,
and the scenario evaluation specifications registered, the one in force per sector marked."""

from __future__ import annotations

import msgspec

from registration.values import (
    MethodologyContent,
    MethodologyEntry,
    SpecificationContent,
    SpecificationEntry,
)
from settlement.connection import Connection

_methodology = msgspec.json.Decoder(MethodologyContent)
_specification = msgspec.json.Decoder(SpecificationContent)


async def methodologies(conn: Connection) -> list[MethodologyEntry]:
    rows = await conn.fetch(
        "SELECT m.code, m.name, m.sector, a.application_id, a.content FROM methodologies m"
        " LEFT JOIN registration_applications a ON a.kind = 'methodology'"
        " AND a.state = 'registered' AND a.registered_as = m.code ORDER BY m.code"
    )
    out = []
    for code, name, sector, application_id, content in rows:
        text = None if content is None else _methodology.decode(content)
        out.append(
            MethodologyEntry(
                code,
                name,
                sector,
                application_id,
                None if text is None else text.text,
                None if text is None else text.notes,
            )
        )
    return out


async def specifications(conn: Connection) -> list[SpecificationEntry]:
    rows = await conn.fetch(
        "SELECT a.application_id, a.version, a.sector, a.content, n.name,"
        " s.specification_id IS NOT NULL FROM registration_applications a"
        " JOIN accounts n ON n.account_id = a.applicant_id"
        " LEFT JOIN scenario_sectors s ON s.specification_id = a.application_id"
        " WHERE a.kind = 'scenario_specification' AND a.state = 'registered'"
        " ORDER BY a.sector, a.application_id"
    )
    out = []
    for application_id, version, sector, content, authority, in_force in rows:
        spec = _specification.decode(content)
        out.append(
            SpecificationEntry(
                application_id, version, sector, spec.title, spec.text, authority, in_force
            )
        )
    return out
