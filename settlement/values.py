"""The ledger's value types: roles, tonne states, schemes, and the structs it takes and returns.

Structs are msgspec structs so the exchange can put them on the wire as they are. Quantities are
whole tonnes, money is fen, both `int`.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

import msgspec


class Role(StrEnum):
    REGULATOR = "regulator"
    OPERATOR = "operator"
    PARTICIPANT = "participant"
    TRADER = "trader"
    COMPLIANCE_ENTITY = "compliance_entity"
    AGGREGATOR = "aggregator"  # a data-aggregation platform acting for households (Art. 20)
    EXPERT = "expert"  # a member of the expert pool (Art. 6)
    SCENARIO_OPERATOR = "scenario_operator"  # runs a low-carbon scenario (Art. 12)
    SECTOR_AUTHORITY = "sector_authority"  # the scenario's competent department (Art. 13)
    # system accounts, opened by the first migration
    FEES = "fees"
    EXTERNAL = "external"


HOLDER_ROLES = frozenset({Role.PARTICIPANT, Role.TRADER, Role.COMPLIANCE_ENTITY})
"""Roles that may hold CERs and cash."""

EXTERNAL_ACCOUNT_ID = 1
"""The world outside the ledger: deposits come from it and withdrawals go to it, so every cash
movement is balanced. Its balance is the negative of all money held inside."""
FEE_ACCOUNT_ID = 2


class TonneState(StrEnum):
    FREE = "free"
    LOCKED = "locked"
    RETIRED = "retired"
    SURRENDERED = "surrendered"
    CANCELLED = "cancelled"
    CONVERTED = "converted"  # turned into carbon points (Art. 16): never traded again


TERMINAL_STATES = frozenset(
    {TonneState.RETIRED, TonneState.SURRENDERED, TonneState.CANCELLED, TonneState.CONVERTED}
)


class Scheme(StrEnum):
    """Other schemes a project may be registered under (Art. 22: never issued twice)."""

    CCER = "CCER"
    GREEN_POWER = "GREEN_POWER"
    GREEN_CERTIFICATE = "GREEN_CERTIFICATE"


class CashBucket(StrEnum):
    AVAILABLE = "available"
    LOCKED = "locked"


class Account(msgspec.Struct, frozen=True):
    account_id: int
    name: str
    roles: tuple[Role, ...]


class SchemeRegistration(msgspec.Struct, frozen=True):
    scheme: Scheme
    first_year: int
    last_year: int


class Methodology(msgspec.Struct, frozen=True):
    code: str
    name: str
    sector: str


class Project(msgspec.Struct, frozen=True):
    code: str
    owner_id: int
    methodology: str
    region: str
    other_schemes: tuple[SchemeRegistration, ...] = ()


class Block(msgspec.Struct, frozen=True):
    """An issuance: serials 1..quantity_t of `block_id`."""

    block_id: str
    project: str
    vintage: int
    batch: int
    quantity_t: int
    period_start: dt.date
    period_end: dt.date
    issued_to: int


class SerialRange(msgspec.Struct, frozen=True, order=True):
    """Serials first..last (inclusive) of one block."""

    block_id: str
    first: int
    last: int

    @property
    def quantity_t(self) -> int:
        return self.last - self.first + 1


class CerFilter(msgspec.Struct, frozen=True):
    """Which serial ranges qualify: empty tuples mean any."""

    vintages: tuple[int, ...] = ()
    methodologies: tuple[str, ...] = ()
    projects: tuple[str, ...] = ()

    def admits(self, block: BlockInfo) -> bool:
        return (
            (not self.vintages or block.vintage in self.vintages)
            and (not self.methodologies or block.methodology in self.methodologies)
            and (not self.projects or block.project in self.projects)
        )


class BlockInfo(msgspec.Struct, frozen=True):
    """What a filter looks at in a block."""

    vintage: int
    methodology: str
    project: str


ANY_CER = CerFilter()


class ByQuantity(msgspec.Struct, frozen=True, tag="quantity"):
    """So many tonnes of the holder's free ranges passing `only`, oldest vintage first."""

    quantity_t: int
    only: CerFilter = ANY_CER


class ByRanges(msgspec.Struct, frozen=True, tag="ranges"):
    """Exactly these serials, each of which the holder must hold free."""

    ranges: tuple[SerialRange, ...]


class ByBlocks(msgspec.Struct, frozen=True, tag="blocks"):
    """So many free tonnes of each named block (any serials of it): how a service that keeps
    its own per-block view of free tonnes names exactly the tonnes it has set aside."""

    quantities: tuple[tuple[str, int], ...]  # (block id, tonnes), each block once


Selection = ByQuantity | ByRanges | ByBlocks


class Holding(msgspec.Struct, frozen=True):
    """A run of serials in one place, with what the holder wants to know about its block."""

    block_id: str
    first: int
    last: int
    quantity_t: int
    state: TonneState
    order_id: int | None
    project: str
    methodology: str
    vintage: int


class CashBalance(msgspec.Struct, frozen=True):
    account_id: int
    available_fen: int
    locked_fen: int


class Moved(msgspec.Struct, frozen=True):
    """What a transfer, lock, release or terminal move did: the ranges and their total."""

    txn_id: int
    ranges: tuple[SerialRange, ...]
    quantity_t: int


class CashMoved(msgspec.Struct, frozen=True):
    txn_id: int
    account_id: int
    amount_fen: int
    balance: CashBalance


class Released(msgspec.Struct, frozen=True):
    order_id: int
    ranges: tuple[SerialRange, ...]
    quantity_t: int
    cash_fen: int


class TradeToSettle(msgspec.Struct, frozen=True):
    """One trade as the exchange hands it over; fee rates in basis points per side."""

    trade_id: int
    buy_order_id: int
    sell_order_id: int
    buyer_id: int
    seller_id: int
    price_fen: int
    quantity_t: int
    buyer_fee_bp: int = 0
    seller_fee_bp: int = 0


class SettlementReport(msgspec.Struct, frozen=True):
    """Which trades this call settled and which had been settled before (and were left alone)."""

    settled: tuple[int, ...]
    already_settled: tuple[int, ...]
    txn_id: int | None
