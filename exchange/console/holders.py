"""Pages of holders of CERs: trading, offsetting (compliance entities), retirement and
certificates."""

from __future__ import annotations

import csv
import io
from typing import NamedTuple

import msgspec
from aiohttp import web

from exchange.console.i18n import yuan
from exchange.console.rendering import (
    ROUTE,
    Viewer,
    for_role,
    render,
    signed_in,
)
from exchange.endpoint import read_as
from exchange.errors import ErrorCode, ExchangeError
from exchange.rest_account import TradesQuery
from exchange.rest_offsets import Preview, YearPath, YearQuery, today
from exchange.service import EXCHANGE_KEY
from offsets.errors import OffsetError
from settlement.values import Holding, Role, SerialRange, TonneState


@signed_in
async def trader_page(request: web.Request, viewer: Viewer) -> web.Response:
    exchange = request.app[EXCHANGE_KEY]
    account = await read_as(ROUTE["GET /api/v1/account"], exchange, viewer.account_id)
    holdings = await read_as(ROUTE["GET /api/v1/holdings"], exchange, viewer.account_id)
    orders = await read_as(ROUTE["GET /api/v1/orders"], exchange, viewer.account_id)
    trades = await read_as(
        ROUTE["GET /api/v1/trades"], exchange, viewer.account_id, TradesQuery(limit=50)
    )
    instruments = await read_as(ROUTE["GET /api/v1/instruments"], exchange, None)
    markets = {m.symbol: m for m in await read_as(ROUTE["GET /api/v1/market"], exchange, None)}
    # the book beside the ticket: the one asked for, else the first listed
    symbol = request.query.get("symbol") or next(iter(markets), None)
    if symbol is not None and symbol not in markets:
        raise ExchangeError(ErrorCode.UNKNOWN_INSTRUMENT, f"no instrument {symbol}")
    return render(
        request,
        "trader.html",
        viewer,
        symbol=symbol,
        market=markets.get(symbol) if symbol is not None else None,
        account=account,
        holdings=holdings.holdings,
        orders=orders,
        trades=trades.trades,
        instruments=instruments,
        instruments_json=msgspec.json.encode(instruments).decode(),
    )


@signed_in
async def trades_csv(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    """Every trade of the account, newest first, as CSV: yuan as text with two decimals."""
    exchange, route = request.app[EXCHANGE_KEY], ROUTE["GET /api/v1/trades"]
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["trade_id", "symbol", "side", "order_id", "price_yuan", "quantity_t",
                     "fee_yuan"])  # fmt: skip
    before: int | None = None
    while True:
        page = await read_as(route, exchange, viewer.account_id, TradesQuery(before=before))
        for trade in page.trades:
            writer.writerow(
                [trade.trade_id, trade.symbol, trade.side.value, trade.order_id,
                 yuan(trade.price_fen).replace(",", ""), trade.quantity_t,
                 yuan(trade.fee_fen).replace(",", "")]
            )  # fmt: skip
        if page.next_before is None:
            break
        before = page.next_before
    return web.Response(
        text=out.getvalue(),
        content_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="trades-{viewer.account_id}.csv"'},
    )


class Planned(NamedTuple):
    """Serial ranges a surrender of so many tonnes would consume, named before it is sent."""

    ranges: list[SerialRange]
    short_t: int  # what the eligible free tonnes could not cover


def plan_surrender(holdings: list[Holding], eligible: set[str], quantity_t: int) -> Planned:
    """The first `quantity_t` free tonnes of eligible blocks, oldest vintage first: the console
    shows these, then sends exactly these ranges, so what a person confirms is what moves."""
    free = sorted(
        (h for h in holdings if h.state is TonneState.FREE and h.block_id in eligible),
        key=lambda h: (h.vintage, h.block_id, h.first),
    )
    ranges, wanted = [], quantity_t
    for holding in free:
        if wanted == 0:
            break
        take = min(wanted, holding.quantity_t)
        ranges.append(SerialRange(holding.block_id, holding.first, holding.first + take - 1))
        wanted -= take
    return Planned(ranges, wanted)


def _year(text: str) -> int:
    try:
        if not (text.isascii() and text.isdigit()):
            raise ValueError(text)
        return msgspec.convert({"year": int(text)}, YearPath).year
    except (ValueError, msgspec.ValidationError):
        raise ExchangeError(ErrorCode.INVALID_ARGS, "year: 2000-2100") from None


@signed_in
async def compliance_page(request: web.Request, viewer: Viewer) -> web.Response:
    """A compliance entity's year: its obligation, what both caps still allow, its eligible
    holdings, a surrender in two steps (quantity, then the exact ranges to confirm), and its
    record."""
    for_role(viewer, Role.COMPLIANCE_ENTITY)
    exchange = request.app[EXCHANGE_KEY]
    year = _year(request.query.get("year") or str(today().year))
    refusal: ExchangeError | OffsetError | None = None
    preview: Preview | None = None
    try:
        preview = await read_as(
            ROUTE["GET /api/v1/offsets/{year}/preview"], exchange, viewer.account_id, YearPath(year)
        )
    except OffsetError as error:  # no rules for the year yet, no verified emissions
        refusal = error
    surrendered = await read_as(
        ROUTE["GET /api/v1/offsets/surrenders"], exchange, viewer.account_id, YearQuery(year)
    )
    planned: Planned | None = None
    wanted = request.query.get("quantity_t", "")
    if preview is not None and wanted:
        if not wanted.isascii() or not wanted.isdigit() or not 0 < int(wanted) <= 10**9:
            refusal = ExchangeError(ErrorCode.INVALID_ARGS, "quantity_t: a whole number of tonnes")
        else:
            holdings = await read_as(ROUTE["GET /api/v1/holdings"], exchange, viewer.account_id)
            eligible = {b.block_id for b in preview.blocks if b.eligible}
            planned = plan_surrender(holdings.holdings, eligible, int(wanted))
    return render(
        request,
        "compliance.html",
        viewer,
        year=year,
        preview=preview,
        refusal=refusal,
        surrendered=surrendered,
        planned=planned,
        planned_json=(
            "" if planned is None else msgspec.json.encode({"ranges": planned.ranges}).decode()
        ),
    )


@signed_in
async def retire_page(request: web.Request, viewer: Viewer) -> web.Response:
    """A holder retires tonnes, applies for a neutrality certificate on its retirements, follows
    the application, and downloads the certificate once issued."""
    if not viewer.holds:
        raise ExchangeError(ErrorCode.AUTH_FORBIDDEN, "this page is for holders of CERs")
    exchange = request.app[EXCHANGE_KEY]
    return render(
        request,
        "retire.html",
        viewer,
        retirements=await read_as(ROUTE["GET /api/v1/retirements"], exchange, viewer.account_id),
        applications=await read_as(
            ROUTE["GET /api/v1/certificate-applications"], exchange, viewer.account_id
        ),
    )
