"""REST reads: instruments (public), and the caller's account and holdings (signed).

A signed request carries the login's four values as headers — `X-CERX-Key`, `X-CERX-Timestamp`
(ms), `X-CERX-Nonce`, `X-CERX-Signature` — checked exactly as a WebSocket login is. Replies use
the WebSocket's shape: `{"ok": true, "result": …}` or `{"ok": false, "error": {"code", "msg"}}`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from aiohttp import web

from exchange import protocol
from exchange.errors import ErrorCode, ExchangeError
from exchange.service import EXCHANGE_KEY
from matching import TradingStatus
from settlement.errors import ErrorCode as SettlementCode
from settlement.errors import LedgerError
from settlement.values import CashBalance, CerFilter, Holding

HEADERS = ("X-CERX-Key", "X-CERX-Timestamp", "X-CERX-Nonce", "X-CERX-Signature")
STATUS: dict[str, int] = {
    ErrorCode.RATE_LIMITED: 429,
    ErrorCode.UNKNOWN_INSTRUMENT: 404,
    SettlementCode.ACCOUNT_NOT_FOUND: 404,
}


class InstrumentView(msgspec.Struct, frozen=True):
    symbol: str
    status: TradingStatus
    tick_fen: int
    lot_t: int
    min_quantity_t: int
    max_quantity_t: int
    band_bp: int
    band_fen: tuple[int, int]
    reference_price_fen: int
    eligible: CerFilter
    buyer_fee_bp: int
    seller_fee_bp: int


class AccountView(msgspec.Struct, frozen=True):
    account_id: int
    ledger: CashBalance
    tradable_fen: int  # what new buy orders may still reserve now


class HoldingsView(msgspec.Struct, frozen=True):
    account_id: int
    holdings: list[Holding]


def _reply(body: protocol.Reply, status: int = 200) -> web.Response:
    return web.Response(body=protocol.encode(body), status=status, content_type="application/json")


def _refusal(error: ExchangeError | LedgerError) -> web.Response:
    code = str(error.code)
    status = 401 if code.startswith("AUTH_") else STATUS.get(code, 400)
    retry_after_ms = error.retry_after_ms if isinstance(error, ExchangeError) else None
    return _reply(protocol.refused(None, code, error.message, retry_after_ms), status)


async def _caller(request: web.Request) -> int:
    values = [request.headers.get(name) for name in HEADERS]
    if any(value is None for value in values):
        raise ExchangeError(ErrorCode.AUTH_REQUIRED, f"sign the request: {', '.join(HEADERS)}")
    key_id, timestamp, nonce, signature = (str(value) for value in values)
    if not timestamp.isdigit():
        raise ExchangeError(ErrorCode.AUTH_STALE_TIMESTAMP, "X-CERX-Timestamp is milliseconds")
    exchange = request.app[EXCHANGE_KEY]
    account_id = await exchange.authenticate(key_id, int(timestamp), nonce, signature)
    wait_ms = exchange.account_bucket(account_id).take()
    if wait_ms:
        raise ExchangeError(ErrorCode.RATE_LIMITED, "too many requests", wait_ms)
    return account_id


Handler = Callable[[web.Request], Awaitable[Any]]


def _json(handler: Handler) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def respond(request: web.Request) -> web.Response:
        try:
            return _reply(protocol.ok(None, await handler(request)))
        except (ExchangeError, LedgerError) as error:
            return _refusal(error)

    return respond


@_json
async def instruments(request: web.Request) -> list[InstrumentView]:
    exchange = request.app[EXCHANGE_KEY]
    views = []
    for symbol, instrument in exchange.engine.instruments.items():
        book, rules = exchange.engine.books[symbol], instrument.rules
        views.append(
            InstrumentView(
                symbol,
                book.status,
                rules.tick_fen,
                rules.lot_t,
                rules.min_quantity_t,
                rules.max_quantity_t,
                rules.band_bp,
                book.band,
                book.reference_price_fen,
                instrument.only,
                instrument.buyer_fee_bp,
                instrument.seller_fee_bp,
            )
        )
    return views


@_json
async def account(request: web.Request) -> AccountView:
    account_id = await _caller(request)
    exchange = request.app[EXCHANGE_KEY]
    risk = exchange.engine.risk
    tradable = risk.available_fen(account_id) if risk is not None else 0
    return AccountView(account_id, await exchange.ledger.balance(account_id), tradable)


@_json
async def holdings(request: web.Request) -> HoldingsView:
    account_id = await _caller(request)
    return HoldingsView(account_id, await request.app[EXCHANGE_KEY].ledger.holdings(account_id))


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/instruments", instruments)
    app.router.add_get("/api/v1/account", account)
    app.router.add_get("/api/v1/holdings", holdings)
