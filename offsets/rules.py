"""A compliance year's offset rules (Art. 25): which CERs may offset, how many in all and per
entity, and when. Published versions are never changed; a later version takes effect from its
date, and every version stays readable.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

import msgspec

from offsets.errors import ErrorCode, OffsetError
from settlement.connection import Connection

BASIS_POINTS = 10_000


class Basis(StrEnum):
    """What the per-entity cap is a share of."""

    EMISSIONS = "emissions"  # the entity's verified emissions (Shenzhen's earlier rules: 10%)
    ALLOCATION = "allocation"  # the allowances it was allocated (the national ETS: 5%)
    SHORTFALL = "shortfall"  # emissions beyond its allocation


class OffsetRules(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """An empty scope list admits anything on that count."""

    year: int
    effective_from: dt.date
    window_opens: dt.date
    window_closes: dt.date
    total_cap_t: int
    entity_cap_bp: int  # share of the basis, in basis points (1,000 = 10%)
    basis: Basis = Basis.EMISSIONS
    vintages: tuple[int, ...] = ()
    methodologies: tuple[str, ...] = ()
    sectors: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()
    excluded_projects: tuple[str, ...] = ()

    def check(self) -> None:
        problems = []
        if not 2000 <= self.year <= 2100:
            problems.append(f"year {self.year}")
        if self.window_opens > self.window_closes:
            problems.append("the window closes before it opens")
        if self.total_cap_t < 0:
            problems.append(f"total cap {self.total_cap_t} t")
        if not 0 <= self.entity_cap_bp <= BASIS_POINTS:
            problems.append(f"entity cap {self.entity_cap_bp} bp (0..{BASIS_POINTS})")
        if problems:
            raise OffsetError(ErrorCode.RULES_INVALID, "; ".join(problems))

    def admits(self, block: BlockScope) -> str | None:
        """Why a tonne of `block` may not offset under these rules, or None if it may."""
        if self.vintages and block.vintage not in self.vintages:
            return f"vintage {block.vintage} is not among {list(self.vintages)}"
        if self.methodologies and block.methodology not in self.methodologies:
            return f"methodology {block.methodology} is not among {list(self.methodologies)}"
        if self.sectors and block.sector not in self.sectors:
            return f"sector {block.sector} is not among {list(self.sectors)}"
        if self.regions and block.region not in self.regions:
            return f"region {block.region} is not among {list(self.regions)}"
        if block.project in self.excluded_projects:
            return f"project {block.project} is excluded"
        return None

    def entity_cap_t(self, emissions_t: int, allocation_t: int | None) -> int:
        """The entity's cap in tonnes, rounded down: a cap is never exceeded by rounding."""
        if self.basis is Basis.EMISSIONS:
            base = emissions_t
        elif allocation_t is None:
            base = 0  # an allocation basis with no allocation recorded allows nothing
        elif self.basis is Basis.ALLOCATION:
            base = allocation_t
        else:
            base = max(emissions_t - allocation_t, 0)
        return base * self.entity_cap_bp // BASIS_POINTS


class BlockScope(msgspec.Struct, frozen=True):
    """What the rules look at in a block: its vintage and its project's particulars."""

    block_id: str
    project: str
    vintage: int
    methodology: str
    sector: str
    region: str


class Published(msgspec.Struct, frozen=True):
    version: int
    rules: OffsetRules
    published_at: dt.datetime


_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder(OffsetRules).decode


async def publish(conn: Connection, txn_id: int, rules: OffsetRules) -> Published:
    """Publish the next version of the year's rules; it cannot take effect before the last."""
    rules.check()
    await conn.execute(
        "INSERT INTO offset_years (year) VALUES ($1) ON CONFLICT DO NOTHING", rules.year
    )
    # the year's row orders publications (and surrenders) of the year one after another
    await conn.execute("SELECT 1 FROM offset_years WHERE year = $1 FOR UPDATE", rules.year)
    last = await conn.fetchrow(
        "SELECT version, effective_from FROM offset_rules WHERE year = $1"
        " ORDER BY version DESC LIMIT 1",
        rules.year,
    )
    if last is not None and rules.effective_from < last["effective_from"]:
        raise OffsetError(
            ErrorCode.RULES_INVALID,
            f"version {last['version'] + 1} would take effect on {rules.effective_from},"
            f" before version {last['version']} ({last['effective_from']})",
        )
    row = await conn.fetchrow(
        "INSERT INTO offset_rules (year, version, effective_from, rules, txn_id)"
        " VALUES ($1, $2, $3, $4, $5) RETURNING version, published_at",
        rules.year,
        1 if last is None else last["version"] + 1,
        rules.effective_from,
        _encode(rules),
        txn_id,
    )
    assert row is not None  # an INSERT … RETURNING returns its row
    return Published(row["version"], rules, row["published_at"])


async def in_effect(conn: Connection, year: int, on: dt.date) -> Published:
    """The newest version of `year`'s rules in effect on `on`."""
    row = await conn.fetchrow(
        "SELECT version, rules, published_at FROM offset_rules"
        " WHERE year = $1 AND effective_from <= $2 ORDER BY version DESC LIMIT 1",
        year,
        on,
    )
    if row is None:
        raise OffsetError(
            ErrorCode.NO_OFFSET_RULES, f"no offset rules for {year} in effect on {on}"
        )
    return Published(row["version"], _decode(row["rules"]), row["published_at"])


async def history(conn: Connection, year: int | None = None) -> list[Published]:
    rows = await conn.fetch(
        "SELECT version, rules, published_at FROM offset_rules"
        " WHERE $1::int IS NULL OR year = $1 ORDER BY year, version",
        year,
    )
    return [Published(row["version"], _decode(row["rules"]), row["published_at"]) for row in rows]


async def scopes(conn: Connection, block_ids: list[str]) -> dict[str, BlockScope]:
    rows = await conn.fetch(
        "SELECT b.block_id, b.project, b.vintage, p.methodology, m.sector, p.region"
        " FROM blocks b JOIN projects p ON p.code = b.project"
        " JOIN methodologies m ON m.code = p.methodology WHERE b.block_id = ANY($1::text[])",
        block_ids,
    )
    return {row[0]: BlockScope(*row) for row in rows}
