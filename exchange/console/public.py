"""The console's public pages: home, market, disclosure, certificate verification."""

from __future__ import annotations

import urllib.parse
from typing import NamedTuple

from aiohttp import web

from exchange.console.rendering import (
    MAX_UPLOAD_BYTES,
    ROUTE,
    check_form_token,
    form_token,
    public,
    render,
    viewer_of,
    with_form_cookie,
)
from exchange.endpoint import read_as
from exchange.errors import ErrorCode, ExchangeError
from exchange.service import EXCHANGE_KEY, Exchange
from offsets.signing import verify_bytes


@public
async def home(request: web.Request) -> web.Response:
    viewer = await viewer_of(request)
    exchange = request.app[EXCHANGE_KEY]
    market = await read_as(ROUTE["GET /api/v1/market"], exchange, None)
    return render(request, "home.html", viewer, market=market)


@public
async def disclosure_page(request: web.Request) -> web.Response:
    """Art. 27 for people: the public registers and the use of every tonne and point, with
    charts where a person would rather look than read; from the public routes only."""
    exchange = request.app[EXCHANGE_KEY]
    public = await read_as(ROUTE["GET /api/v1/public/disclosure"], exchange, None)
    points = await read_as(ROUTE["GET /api/v1/public/points"], exchange, None)
    certificates = await read_as(ROUTE["GET /api/v1/public/certificates"], exchange, None)
    by_vintage: dict[int, list[int]] = {}
    for flow in public.flows:
        row = by_vintage.setdefault(flow.vintage, [0, 0, 0, 0])
        for i, tonnes_t in enumerate(
            (flow.issued_t, flow.traded_t, flow.surrendered_t, flow.retired_t)
        ):
            row[i] += tonnes_t
    by_month: dict[str, list[int]] = {}
    for month in points:
        row = by_month.setdefault(month.month, [0, 0, 0])
        for i, count in enumerate((month.issued, month.distributed, month.cancelled)):
            row[i] += count
    charts = {
        "vintages": [[vintage, *row] for vintage, row in sorted(by_vintage.items())],
        "years": [[y.year, y.total_cap_t, y.surrendered_t] for y in public.years],
        "points": [[month, *row] for month, row in sorted(by_month.items())],
    }
    return render(
        request,
        "disclosure.html",
        await viewer_of(request),
        public=public,
        certificates=certificates,
        charts=charts,
    )


@public
async def market_page(request: web.Request) -> web.Response:
    viewer = await viewer_of(request)
    exchange = request.app[EXCHANGE_KEY]
    instruments = await read_as(ROUTE["GET /api/v1/instruments"], exchange, None)
    markets = {m.symbol: m for m in await read_as(ROUTE["GET /api/v1/market"], exchange, None)}
    symbol = request.match_info.get("symbol") or next(iter(markets), None)
    chosen_instrument = next((i for i in instruments if i.symbol == symbol), None)
    if symbol is not None and chosen_instrument is None:
        raise ExchangeError(ErrorCode.UNKNOWN_INSTRUMENT, f"no instrument {symbol}")
    return render(
        request,
        "market.html",
        viewer,
        instruments=instruments,
        instrument=chosen_instrument,
        market=markets.get(symbol) if symbol else None,
    )


@public
async def verify_page(request: web.Request) -> web.Response:
    token = form_token(request)
    return with_form_cookie(
        request,
        render(request, "verify.html", await viewer_of(request), form_token=token, result=None),
        token,
    )


async def verify_id(request: web.Request) -> web.StreamResponse:
    """The certificate's own public page, which checks it against the platform key."""
    certificate_id = request.query.get("certificate_id", "").strip().upper()
    raise web.HTTPSeeOther(f"/certificates/{urllib.parse.quote(certificate_id, safe='')}")


class Checked(NamedTuple):
    verdict: str  # valid, tampered or unknown
    reason: str


@public
async def verify_upload(request: web.Request) -> web.Response:
    """Check an uploaded certificate file against the platform key, as the CLI does offline."""
    exchange, viewer = request.app[EXCHANGE_KEY], await viewer_of(request)
    token = form_token(request)
    form = await request.post()
    try:
        check_form_token(request, form)
    except ExchangeError as error:
        response = render(
            request, "verify.html", viewer, 403, form_token=token, result=None, error=error
        )
        return with_form_cookie(request, response, token)
    upload = form.get("file")
    data = upload.file.read(MAX_UPLOAD_BYTES + 1) if isinstance(upload, web.FileField) else b""
    result = _check_file(exchange, data)
    return with_form_cookie(
        request, render(request, "verify.html", viewer, form_token=token, result=result), token
    )


def _check_file(exchange: Exchange, data: bytes) -> Checked:
    if exchange.certifier is None:
        return Checked("unknown", "this platform signs no certificates")
    verdict = verify_bytes(data, exchange.certifier.key.public_key)
    if verdict.valid:
        return Checked("valid", verdict.message)
    return Checked("tampered", f"{verdict.reason}: {verdict.message}")
