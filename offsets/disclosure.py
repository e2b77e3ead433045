"""Public disclosure (Art. 27): what was registered, issued, traded, surrendered and retired, by
vintage and methodology, each year's offset rules and the use of its cap, the low-carbon
scenario list and the expert pool list.

Only aggregates and what the registers publish anyway (methodologies, projects — their owners'
registered names are not included —, scenario labels with their operators, the experts in the
pool); no account's holdings or identity appear here.
"""

from __future__ import annotations

import datetime as dt

import msgspec

from offsets.certificate import SHANGHAI
from offsets.rules import Published, history
from registration import experts, scenarios
from registration.values import LabelEntry, PoolEntry
from settlement.connection import Connection


class MethodologyEntry(msgspec.Struct, frozen=True):
    code: str
    name: str
    sector: str


class ProjectEntry(msgspec.Struct, frozen=True):
    code: str
    methodology: str
    region: str
    issued_t: int


class Flow(msgspec.Struct, frozen=True):
    """Tonnes of one vintage and methodology: issued, traded (delivered by settlement),
    surrendered, retired."""

    vintage: int
    methodology: str
    issued_t: int
    traded_t: int
    surrendered_t: int
    retired_t: int


class YearUse(msgspec.Struct, frozen=True):
    year: int
    rules: list[Published]  # every version, oldest first
    total_cap_t: int  # of the newest version
    surrendered_t: int


class Disclosure(msgspec.Struct, frozen=True):
    as_of: dt.datetime
    methodologies: list[MethodologyEntry]
    projects: list[ProjectEntry]
    flows: list[Flow]
    years: list[YearUse]
    scenarios: list[LabelEntry] = []  # every label, in force on the day of `as_of` or not
    experts: list[PoolEntry] = []


_FLOWS = """
WITH moved AS (
    SELECT s.block_id, s.last_serial - s.first_serial + 1 AS tonnes,
           CASE WHEN s.from_state = 'locked' AND s.to_state = 'free'
                     AND s.from_account <> s.to_account THEN 'traded'
                ELSE s.to_state END AS kind
    FROM serial_entries s
    WHERE s.to_state IN ('surrendered', 'retired')
       OR (s.from_state = 'locked' AND s.to_state = 'free' AND s.from_account <> s.to_account)
)
SELECT b.vintage, p.methodology,
       (SELECT coalesce(sum(b2.quantity_t), 0)
        FROM blocks b2 JOIN projects p2 ON p2.code = b2.project
        WHERE b2.vintage = b.vintage AND p2.methodology = p.methodology)::bigint,
       coalesce(sum(m.tonnes) FILTER (WHERE m.kind = 'traded'), 0)::bigint,
       coalesce(sum(m.tonnes) FILTER (WHERE m.kind = 'surrendered'), 0)::bigint,
       coalesce(sum(m.tonnes) FILTER (WHERE m.kind = 'retired'), 0)::bigint
FROM blocks b JOIN projects p ON p.code = b.project
LEFT JOIN moved m ON m.block_id = b.block_id
GROUP BY b.vintage, p.methodology
ORDER BY b.vintage, p.methodology
"""


async def disclosure(conn: Connection) -> Disclosure:
    methodologies = [
        MethodologyEntry(*row)
        for row in await conn.fetch("SELECT code, name, sector FROM methodologies ORDER BY code")
    ]
    projects = [
        ProjectEntry(*row)
        for row in await conn.fetch(
            "SELECT p.code, p.methodology, p.region, coalesce(sum(b.quantity_t), 0)::bigint"
            " FROM projects p LEFT JOIN blocks b ON b.project = p.code"
            " GROUP BY p.code ORDER BY p.code"
        )
    ]
    flows = [Flow(*row) for row in await conn.fetch(_FLOWS)]
    published = await history(conn)
    used: dict[int, int] = {
        row[0]: row[1] for row in await conn.fetch("SELECT year, surrendered_t FROM offset_years")
    }
    years = []
    for year in sorted({p.rules.year for p in published}):
        versions = [p for p in published if p.rules.year == year]
        years.append(YearUse(year, versions, versions[-1].rules.total_cap_t, used.get(year, 0)))
    now = await conn.fetchval("SELECT now()")
    labels = await scenarios.published(conn, now.astimezone(SHANGHAI).date())
    pool = await experts.published(conn)
    return Disclosure(now, methodologies, projects, flows, years, labels, pool)
