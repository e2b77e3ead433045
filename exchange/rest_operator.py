"""The operator's REST writes: listing instruments, running the books, opening accounts and
their API keys, and moving cash in and out.

Every write runs under the caller's idempotency key in the ledger's transaction table, so one
key names one action whatever it does, and a repeat returns the first result. A listing is
written in the key's transaction and only then traded; a book command is journaled and applied
inside it, so a book's refusal (its `RejectCode`) leaves the key unused.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

import asyncpg
import msgspec

from exchange import keys
from exchange.endpoint import Call
from exchange.errors import ErrorCode, ExchangeError
from exchange.instruments import Instrument, list_instrument
from exchange.protocol import Fen, Symbol
from exchange.rest_fields import (
    PRINTABLE,
    AmountFen,
    Code,
    FeeBp,
    Id,
    InstrumentId,
    Tonnes,
    Vintage,
)
from exchange.rest_market import SymbolPath
from exchange.sessions import TradingHours
from matching import (
    ClosePriceRule,
    Command,
    EndOfDay,
    Event,
    Halt,
    InstrumentRules,
    Rejected,
    Resume,
    RulesError,
    StartAuction,
    TradingStatus,
    Uncross,
)
from settlement.connection import Connection
from settlement.values import HOLDER_ROLES, Account, CashMoved, CerFilter, Role


class Eligible(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Which CERs a seller may deliver; an empty list admits any."""

    vintages: Annotated[list[Vintage], msgspec.Meta(max_length=100)] = []
    methodologies: Annotated[list[Code], msgspec.Meta(max_length=100)] = []
    projects: Annotated[list[Code], msgspec.Meta(max_length=100)] = []


class Listing(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    instrument_id: InstrumentId
    symbol: Symbol
    reference_price_fen: Fen
    eligible: Eligible = Eligible()
    tick_fen: Fen = 1
    lot_t: Tonnes = 1
    min_quantity_t: Tonnes = 1
    max_quantity_t: Tonnes = 1_000_000
    band_bp: Annotated[int, msgspec.Meta(ge=0, le=9_999)] = 1_000
    close_rule: ClosePriceRule = ClosePriceRule.LAST_TRADE
    buyer_fee_bp: FeeBp = 0
    seller_fee_bp: FeeBp = 0
    hours: TradingHours | None = None  # local times of the auction, open and close; None: 24 h


class AccountPath(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    account_id: Id


class HaltBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    cancel_resting: bool = False


class NewAccount(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=100, pattern=PRINTABLE)]
    roles: Annotated[list[Role], msgspec.Meta(min_length=1, max_length=8)]


class CashBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    account_id: Id
    amount_fen: AmountFen


class BookOutcome(msgspec.Struct, frozen=True):
    """What a book did with an operator's command: its status after, and its events."""

    symbol: str
    status: TradingStatus
    reference_price_fen: int
    events: list[Event]


class KeyCreated(msgspec.Struct, frozen=True):
    account_id: int
    key_id: str


class NewKey(msgspec.Struct, frozen=True):
    account_id: int
    key_id: str
    secret_hex: str | None  # shown once: None when the request is a repeat


# -- instruments -----------------------------------------------------------------------------


async def list_new_instrument(call: Call, body: Listing) -> Instrument:
    """List an instrument and open its book; its symbol and number must both be new."""
    try:
        rules = InstrumentRules(
            symbol=body.symbol,
            tick_fen=body.tick_fen,
            lot_t=body.lot_t,
            min_quantity_t=body.min_quantity_t,
            max_quantity_t=body.max_quantity_t,
            band_bp=body.band_bp,
            close_rule=body.close_rule,
        )
    except RulesError as error:
        raise ExchangeError(ErrorCode.INVALID_ARGS, str(error)) from None
    eligible = body.eligible
    instrument = Instrument(
        body.instrument_id,
        body.symbol,
        rules,
        body.reference_price_fen,
        CerFilter(
            tuple(eligible.vintages), tuple(eligible.methodologies), tuple(eligible.projects)
        ),
        body.buyer_fee_bp,
        body.seller_fee_bp,
        body.hours,
    )
    engine = call.exchange.engine

    async def action(conn: Connection, _txn_id: int) -> Instrument:
        taken = any(
            i.instrument_id == instrument.instrument_id for i in engine.instruments.values()
        )
        if instrument.symbol in engine.instruments or taken:
            raise _exists(instrument)
        try:
            if not await list_instrument(conn, instrument):
                raise _exists(instrument)
        except asyncpg.UniqueViolationError:
            raise _exists(instrument) from None
        return instrument

    listed = await call.exchange.ledger.keyed(
        "list_instrument", call.key, (instrument,), Instrument, action
    )
    if listed.symbol not in engine.instruments:  # else a repeat: it trades already
        engine.add_instrument(listed)
        if listed.hours is not None:
            call.exchange.sessions.hours[listed.symbol] = listed.hours
    return listed


def _exists(instrument: Instrument) -> ExchangeError:
    return ExchangeError(
        ErrorCode.INSTRUMENT_EXISTS,
        f"symbol {instrument.symbol} or number {instrument.instrument_id} is listed already",
    )


async def halt(call: Call, path: SymbolPath, body: HaltBody) -> BookOutcome:
    """Halt trading; with cancel_resting, cancel every resting order too."""
    cancel = body.cancel_resting
    return await _operate(call, path.symbol, ("halt", cancel), lambda ts: Halt(ts, cancel))


async def resume(call: Call, path: SymbolPath) -> BookOutcome:
    """Leave a halt for the status the book had before it."""
    return await _operate(call, path.symbol, ("resume",), Resume)


async def start_auction(call: Call, path: SymbolPath) -> BookOutcome:
    """Start a call auction: orders rest without matching until the uncross."""
    return await _operate(call, path.symbol, ("start_auction",), StartAuction)


async def uncross(call: Call, path: SymbolPath) -> BookOutcome:
    """Execute the call auction at its single price, then open continuous trading."""
    return await _operate(call, path.symbol, ("uncross",), Uncross)


async def end_of_day(call: Call, path: SymbolPath) -> BookOutcome:
    """Expire DAY orders and close the session; its close is the next reference price."""
    return await _operate(call, path.symbol, ("end_of_day",), EndOfDay)


async def _operate(
    call: Call, symbol: str, request: tuple[object, ...], command: Callable[[int], Command]
) -> BookOutcome:
    """Apply `command(ts_ns)` to the book under the call's key; `request` is what a repeat
    must match (the command's time is taken when it runs)."""
    engine = call.exchange.engine
    if symbol not in engine.books:
        raise ExchangeError(ErrorCode.UNKNOWN_INSTRUMENT, f"no instrument {symbol!r}")

    async def action(_conn: Connection, _txn_id: int) -> BookOutcome:
        events = await engine.operate(symbol, command(engine.now_ns()))
        for event in events:
            if isinstance(event, Rejected):
                raise ExchangeError(event.code.value, f"the {symbol} book refused {request[0]}")
        book = engine.books[symbol]
        return BookOutcome(symbol, book.status, book.reference_price_fen, events)

    return await call.exchange.ledger.keyed(
        "operate", call.key, (symbol, *request), BookOutcome, action
    )


# -- accounts and cash -----------------------------------------------------------------------


# Regulator and operator accounts and their keys are made on the platform, not by an operator
# over the API: an operator who could would make itself a regulator.
_HOLDERS_ONLY = "an operator serves participant, trader and compliance-entity accounts only"


async def open_account(call: Call, body: NewAccount) -> Account:
    """Open a participant, trader or compliance-entity account."""
    if not set(body.roles) <= HOLDER_ROLES:
        raise ExchangeError(ErrorCode.AUTH_FORBIDDEN, _HOLDERS_ONLY)
    return await call.exchange.ledger.open_account(call.key, body.name, body.roles)


async def create_key(call: Call, path: AccountPath) -> NewKey:
    """A new API key for a participant, trader or compliance entity; its secret is in this
    reply only."""
    account = await call.exchange.ledger.account(path.account_id)
    if not set(account.roles) <= HOLDER_ROLES:
        raise ExchangeError(ErrorCode.AUTH_FORBIDDEN, _HOLDERS_ONLY)
    secret: bytes | None = None

    async def action(conn: Connection, _txn_id: int) -> KeyCreated:
        nonlocal secret
        key = await keys.create(conn, account.account_id)
        secret = key.secret
        return KeyCreated(key.account_id, key.key_id)

    # the ledger keeps the result for repeats: the key's id, never its secret
    created = await call.exchange.ledger.keyed(
        "create_api_key", call.key, (account.account_id,), KeyCreated, action
    )
    return NewKey(created.account_id, created.key_id, None if secret is None else secret.hex())


async def deposit(call: Call, body: CashBody) -> CashMoved:
    """Cash in: the account may spend it at once."""
    return await call.exchange.deposit(call.key, body.account_id, body.amount_fen)


async def withdraw(call: Call, body: CashBody) -> CashMoved:
    """Cash out, from what the account's orders have not reserved."""
    return await call.exchange.withdraw(call.key, body.account_id, body.amount_fen)
