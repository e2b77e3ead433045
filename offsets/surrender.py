"""Compliance surrender (Art. 25): an entity offsets part of its verified emissions with CERs.

Every tonne is checked against the year's rules in effect; the entity's cap and the year's total
cap are checked and used while holding the year's row lock, so concurrent surrenders take turns
there and the last tonnes under a cap go to exactly one of them. The lock is taken after the
tonnes are moved (holding only the entity's own account lock until then), so what surrenders of a
year do one at a time is just the cap check. A refusal moves nothing. A surrender
is final: its tonnes are in the ledger's `surrendered` state and never move again.
"""

from __future__ import annotations

import datetime as dt

import msgspec

from offsets.errors import ErrorCode, OffsetError
from offsets.rules import BASIS_POINTS, OffsetRules, Published, in_effect, scopes
from settlement import moves
from settlement.accounts import get_account
from settlement.connection import Connection
from settlement.values import (
    ByQuantity,
    ByRanges,
    CerFilter,
    Role,
    Selection,
    SerialRange,
    TonneState,
)


class VerifiedEmissions(msgspec.Struct, frozen=True):
    year: int
    account_id: int
    version: int
    emissions_t: int
    allocation_t: int | None = None


class Surrendered(msgspec.Struct, frozen=True):
    surrender_id: int
    year: int
    account_id: int
    quantity_t: int
    ranges: tuple[SerialRange, ...]
    rules_version: int


class Position(msgspec.Struct, frozen=True):
    """Where an entity stands for a year: what it must cover, may still surrender, has done."""

    year: int
    account_id: int
    emissions_t: int
    allocation_t: int | None
    entity_cap_t: int
    surrendered_t: int
    entity_remaining_t: int
    year_cap_t: int
    year_surrendered_t: int
    year_remaining_t: int
    may_surrender_t: int  # the smaller of the two remainders
    coverage_bp: int  # surrendered as a share of verified emissions, basis points, rounded down
    rules_version: int


class BlockEligibility(msgspec.Struct, frozen=True):
    block_id: str
    free_t: int
    eligible: bool
    reason: str | None


async def record_emissions(
    conn: Connection,
    txn_id: int,
    year: int,
    account_id: int,
    emissions_t: int,
    allocation_t: int | None,
) -> VerifiedEmissions:
    """Record the entity's verified emissions for the year (a new version if recorded before)."""
    if emissions_t < 0 or (allocation_t is not None and allocation_t < 0):
        raise OffsetError(ErrorCode.EMISSIONS_INVALID, "tonnes are zero or more")
    account = await get_account(conn, account_id)
    if Role.COMPLIANCE_ENTITY not in account.roles:
        raise OffsetError(
            ErrorCode.NOT_A_COMPLIANCE_ENTITY, f"account {account_id} is not a compliance entity"
        )
    version = await conn.fetchval(
        "INSERT INTO verified_emissions (year, account_id, version, emissions_t, allocation_t,"
        " txn_id) SELECT $1, $2, coalesce(max(version), 0) + 1, $3, $4, $5"
        " FROM verified_emissions WHERE year = $1 AND account_id = $2 RETURNING version",
        year,
        account_id,
        emissions_t,
        allocation_t,
        txn_id,
    )
    return VerifiedEmissions(year, account_id, version, emissions_t, allocation_t)


async def emissions_of(conn: Connection, year: int, account_id: int) -> VerifiedEmissions:
    row = await conn.fetchrow(
        "SELECT version, emissions_t, allocation_t FROM verified_emissions"
        " WHERE year = $1 AND account_id = $2 ORDER BY version DESC LIMIT 1",
        year,
        account_id,
    )
    if row is None:
        raise OffsetError(
            ErrorCode.NO_VERIFIED_EMISSIONS,
            f"no verified emissions of account {account_id} for {year}",
        )
    return VerifiedEmissions(year, account_id, row[0], row[1], row[2])


async def position(conn: Connection, year: int, account_id: int, on: dt.date) -> Position:
    published = await in_effect(conn, year, on)
    emissions = await emissions_of(conn, year, account_id)
    used = await conn.fetchval(
        "SELECT coalesce(sum(quantity_t), 0)::bigint FROM surrenders"
        " WHERE year = $1 AND account_id = $2",
        year,
        account_id,
    )
    year_used = await conn.fetchval("SELECT surrendered_t FROM offset_years WHERE year = $1", year)
    return _position(published, emissions, used, year_used)


def _position(
    published: Published, emissions: VerifiedEmissions, used: int, year_used: int
) -> Position:
    rules = published.rules
    cap = rules.entity_cap_t(emissions.emissions_t, emissions.allocation_t)
    entity_left = max(cap - used, 0)
    year_left = max(rules.total_cap_t - year_used, 0)
    coverage = used * BASIS_POINTS // emissions.emissions_t if emissions.emissions_t else 0
    return Position(
        rules.year,
        emissions.account_id,
        emissions.emissions_t,
        emissions.allocation_t,
        cap,
        used,
        entity_left,
        rules.total_cap_t,
        year_used,
        year_left,
        min(entity_left, year_left),
        coverage,
        published.version,
    )


async def preview(
    conn: Connection, year: int, account_id: int, on: dt.date
) -> tuple[Position, list[BlockEligibility]]:
    """Per block of the entity's free tonnes, whether it may offset and why not; and its caps."""
    published = await in_effect(conn, year, on)
    free = await conn.fetch(
        "SELECT block_id, sum(last_serial - first_serial + 1)::bigint FROM holdings"
        " WHERE account_id = $1 AND state = 'free' GROUP BY 1 ORDER BY 1",
        account_id,
    )
    found = await scopes(conn, [row[0] for row in free])
    blocks = []
    for block_id, tonnes in free:
        reason = published.rules.admits(found[block_id])
        blocks.append(BlockEligibility(block_id, tonnes, reason is None, reason))
    return await position(conn, year, account_id, on), blocks


async def surrender(
    conn: Connection, txn_id: int, year: int, account_id: int, selection: Selection, on: dt.date
) -> Surrendered:
    """Surrender the selected tonnes against `year`'s obligation, within both caps, or refuse."""
    published = await in_effect(conn, year, on)
    rules = published.rules
    if not rules.window_opens <= on <= rules.window_closes:
        raise OffsetError(
            ErrorCode.OUTSIDE_SURRENDER_WINDOW,
            f"surrenders for {year} are taken {rules.window_opens} to {rules.window_closes}",
        )
    emissions = await emissions_of(conn, year, account_id)
    selection = await _in_scope(conn, rules, selection)
    moved = await moves.finish(conn, txn_id, account_id, TonneState.SURRENDERED, selection)
    # the year's row lock is taken last, so surrenders of a year queue only for the cap check
    year_used = await conn.fetchval(
        "SELECT surrendered_t FROM offset_years WHERE year = $1 FOR UPDATE", year
    )
    used = await conn.fetchval(
        "SELECT coalesce(sum(quantity_t), 0)::bigint FROM surrenders"
        " WHERE year = $1 AND account_id = $2",
        year,
        account_id,
    )
    standing = _position(published, emissions, used, year_used)
    if moved.quantity_t > standing.entity_remaining_t:
        raise OffsetError(
            ErrorCode.ENTITY_CAP_EXCEEDED,
            f"{moved.quantity_t} t asked, {standing.entity_remaining_t} t left of the entity's"
            f" cap of {standing.entity_cap_t} t for {year}",
        )
    if moved.quantity_t > standing.year_remaining_t:
        raise OffsetError(
            ErrorCode.TOTAL_CAP_EXCEEDED,
            f"{moved.quantity_t} t asked, {standing.year_remaining_t} t left of the {year}"
            f" total cap of {rules.total_cap_t} t",
        )
    await conn.execute(
        "UPDATE offset_years SET surrendered_t = surrendered_t + $2 WHERE year = $1",
        year,
        moved.quantity_t,
    )
    surrender_id = await conn.fetchval(
        "INSERT INTO surrenders (txn_id, year, account_id, quantity_t, rules_version)"
        " VALUES ($1, $2, $3, $4, $5) RETURNING surrender_id",
        txn_id,
        year,
        account_id,
        moved.quantity_t,
        published.version,
    )
    return Surrendered(
        surrender_id, year, account_id, moved.quantity_t, moved.ranges, published.version
    )


async def _in_scope(conn: Connection, rules: OffsetRules, selection: Selection) -> Selection:
    """The selection, checked tonne by tonne against the rules (a quantity is taken only from
    blocks in scope)."""
    if isinstance(selection, ByQuantity):
        only = selection.only
        projects = [p for p in await _eligible_projects(conn, rules) if _among(p, only.projects)]
        vintages = [v for v in rules.vintages or only.vintages if _among(v, only.vintages)]
        # an empty list in a filter admits anything: where nothing qualifies, name what cannot be
        return ByQuantity(
            selection.quantity_t,
            CerFilter(
                vintages=tuple(vintages) or ((-1,) if rules.vintages or only.vintages else ()),
                methodologies=only.methodologies,
                projects=tuple(projects) or ("",),
            ),
        )
    named = (
        [r.block_id for r in selection.ranges]
        if isinstance(selection, ByRanges)
        else [block for block, _ in selection.quantities]
    )
    found = await scopes(conn, sorted(set(named)))
    for block_id in named:
        scope = found.get(block_id)
        reason = "no such block" if scope is None else rules.admits(scope)
        if reason is not None:
            raise OffsetError(ErrorCode.OUT_OF_SCOPE, f"{block_id}: {reason}")
    return selection


def _among(value: object, allowed: tuple[object, ...]) -> bool:
    return not allowed or value in allowed


async def _eligible_projects(conn: Connection, rules: OffsetRules) -> list[str]:
    rows = await conn.fetch(
        "SELECT p.code FROM projects p JOIN methodologies m ON m.code = p.methodology"
        " WHERE (cardinality($1::text[]) = 0 OR p.methodology = ANY($1::text[]))"
        " AND (cardinality($2::text[]) = 0 OR m.sector = ANY($2::text[]))"
        " AND (cardinality($3::text[]) = 0 OR p.region = ANY($3::text[]))"
        " AND NOT p.code = ANY($4::text[]) ORDER BY 1",
        list(rules.methodologies),
        list(rules.sectors),
        list(rules.regions),
        list(rules.excluded_projects),
    )
    return [row[0] for row in rows]
