"""REST for offsets (Art. 25), retirement (Art. 26) and disclosure (Art. 27).

The regulator publishes each year's offset rules and records verified emissions; a compliance
entity previews and surrenders; any holder retires; anyone reads the rules and the disclosure.
Surrenders and retirements take tonnes out of trading through the running exchange
(`Exchange.take_out`), so its risk view never offers tonnes the ledger has finished. Dates are
the exchange's local dates (Asia/Shanghai).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import msgspec

from exchange.endpoint import Call
from exchange.errors import ErrorCode, ExchangeError
from exchange.protocol import END
from exchange.rest_fields import Code, Id, Text, Tonnes, Vintage
from exchange.sessions import TIMEZONE
from offsets.disclosure import Disclosure, disclosure
from offsets.retirement import Retired
from offsets.rules import Basis, OffsetRules, Published
from offsets.surrender import BlockEligibility, Position, Surrendered, VerifiedEmissions
from settlement.values import ByQuantity, ByRanges, Selection, SerialRange

Year = Annotated[int, msgspec.Meta(ge=2000, le=2100)]
BigTonnes = Annotated[int, msgspec.Meta(ge=0, le=10**12)]
Serial = Annotated[int, msgspec.Meta(ge=1, le=10**12)]
BlockId = Annotated[str, msgspec.Meta(pattern=r"^[A-Z0-9-]{1,64}" + END)]


def today() -> dt.date:
    return dt.datetime.now(TIMEZONE).date()


class YearPath(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    year: Year


class YearQuery(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    year: Year | None = None


class RangeBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    block_id: BlockId
    first: Serial
    last: Serial


class Tonnage(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Exactly one of: so many tonnes (oldest vintage first, of those that qualify), or named
    serial ranges."""

    quantity_t: Tonnes | None = None
    ranges: Annotated[list[RangeBody], msgspec.Meta(max_length=1_000)] | None = None

    def selection(self) -> Selection:
        if (self.quantity_t is None) == (self.ranges is None):
            raise ExchangeError(ErrorCode.INVALID_ARGS, "give exactly one of quantity_t or ranges")
        if self.quantity_t is not None:
            return ByQuantity(self.quantity_t)
        assert self.ranges is not None
        if not self.ranges:
            raise ExchangeError(ErrorCode.INVALID_ARGS, "name at least one serial range")
        backwards = next((r for r in self.ranges if r.last < r.first), None)
        if backwards is not None:  # it would count as fewer than no tonnes
            raise ExchangeError(
                ErrorCode.INVALID_ARGS,
                f"range {backwards.block_id}:{backwards.first}-{backwards.last} ends before it"
                " starts",
            )
        return ByRanges(tuple(SerialRange(r.block_id, r.first, r.last) for r in self.ranges))


class RetirementBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    beneficiary: Text
    purpose: Text
    quantity_t: Tonnes | None = None
    ranges: Annotated[list[RangeBody], msgspec.Meta(max_length=1_000)] | None = None

    def selection(self) -> Selection:
        return Tonnage(self.quantity_t, self.ranges).selection()


class RulesBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A compliance year's offset rules; an empty list admits anything on that count."""

    year: Year
    effective_from: dt.date
    window_opens: dt.date
    window_closes: dt.date
    total_cap_t: BigTonnes
    entity_cap_bp: Annotated[int, msgspec.Meta(ge=0, le=10_000)]
    basis: Basis = Basis.EMISSIONS
    vintages: Annotated[list[Vintage], msgspec.Meta(max_length=100)] = []
    methodologies: Annotated[list[Code], msgspec.Meta(max_length=100)] = []
    sectors: Annotated[list[Text], msgspec.Meta(max_length=100)] = []
    regions: Annotated[list[Text], msgspec.Meta(max_length=100)] = []
    excluded_projects: Annotated[list[Code], msgspec.Meta(max_length=1_000)] = []


class EmissionsBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    year: Year
    account_id: Id
    emissions_t: BigTonnes
    allocation_t: BigTonnes | None = None


class Preview(msgspec.Struct, frozen=True):
    position: Position
    blocks: list[BlockEligibility]


# -- the regulator -----------------------------------------------------------------------------


async def publish_rules(call: Call, body: RulesBody) -> Published:
    """Publish the next version of a year's rules; versions never change once published."""
    rules = OffsetRules(
        body.year,
        body.effective_from,
        body.window_opens,
        body.window_closes,
        body.total_cap_t,
        body.entity_cap_bp,
        body.basis,
        tuple(body.vintages),
        tuple(body.methodologies),
        tuple(body.sectors),
        tuple(body.regions),
        tuple(body.excluded_projects),
    )
    return await call.exchange.offsets.publish_rules(call.key, call.caller, rules)


async def record_emissions(call: Call, body: EmissionsBody) -> VerifiedEmissions:
    """Record a compliance entity's verified emissions for a year (again: a new version)."""
    return await call.exchange.offsets.record_emissions(
        call.key, call.caller, body.year, body.account_id, body.emissions_t, body.allocation_t
    )


# -- compliance entities -----------------------------------------------------------------------


async def position(call: Call, path: YearPath) -> Position:
    """What the caller must cover for the year, may still surrender, and has surrendered."""
    return await call.exchange.offsets.position(path.year, call.caller, today())


async def preview(call: Call, path: YearPath) -> Preview:
    """Per block of the caller's free tonnes, whether the year's rules admit it; and its caps."""
    standing, blocks = await call.exchange.offsets.preview(path.year, call.caller, today())
    return Preview(standing, blocks)


async def surrender(call: Call, path: YearPath, body: Tonnage) -> Surrendered:
    """Surrender tonnes against the year's obligation: every tonne in scope, within the
    entity's and the year's caps, in the surrender window; final."""
    exchange, account, year, on = call.exchange, call.caller, path.year, today()
    selection = body.selection()
    risk = exchange.engine.risk
    held = list(risk.free_by_block(account)) if risk is not None else []
    eligible = await exchange.offsets.eligible_blocks(year, on, held)
    return await exchange.take_out(
        call.key,
        account,
        selection,
        lambda named: exchange.offsets.surrender(call.key, account, year, selection, on, named),
        eligible.__contains__,
    )


async def surrenders(call: Call, query: YearQuery) -> list[Surrendered]:
    """The caller's surrenders, with their serial ranges."""
    return await call.exchange.offsets.surrenders(call.caller, query.year)


# -- holders -----------------------------------------------------------------------------------


async def retire(call: Call, body: RetirementBody) -> Retired:
    """Retire tonnes for good, naming a beneficiary and a purpose."""
    exchange, account = call.exchange, call.caller
    selection = body.selection()
    return await exchange.take_out(
        call.key,
        account,
        selection,
        lambda named: exchange.offsets.retire(
            call.key, account, selection, body.beneficiary, body.purpose, named
        ),
    )


async def retirements(call: Call) -> list[Retired]:
    """The caller's retirements, with their serial ranges."""
    return await call.exchange.offsets.retirements(call.caller)


# -- the public --------------------------------------------------------------------------------


async def offset_rules(call: Call, query: YearQuery) -> list[Published]:
    """Every published version of the offset rules (of one year, if given), oldest first."""
    return await call.exchange.offsets.rules_history(query.year)


async def public_disclosure(call: Call) -> Disclosure:
    """Methodologies, projects, and issuance, trading, surrender and retirement by vintage and
    methodology; each year's rules and the use of its cap."""
    async with call.exchange.database.pool.acquire() as conn:
        return await disclosure(conn)
