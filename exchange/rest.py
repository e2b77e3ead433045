"""The REST API: one table of every route, which registers them and generates their OpenAPI
document (`GET /openapi.json`).

Who may call what: public reads for anyone; the caller's own reads for any signed account. How
a request is checked, decoded and answered: `exchange.endpoint`.
"""

from __future__ import annotations

import functools

import msgspec
from aiohttp import web

from exchange import openapi, rest_account, rest_market
from exchange.endpoint import PUBLIC, SIGNED, Route, serve
from exchange.reports import OpenOrder
from exchange.rest_account import AccountView, HoldingsView, TradesPage, TradesQuery
from exchange.rest_market import InstrumentView, MarketView

ROUTES = (
    Route(
        "GET",
        "/api/v1/instruments",
        rest_market.instruments,
        list[InstrumentView],
        PUBLIC,
        "Listed instruments: status, rules, band, eligible CERs, fees",
    ),
    Route(
        "GET",
        "/api/v1/market",
        rest_market.market,
        list[MarketView],
        PUBLIC,
        "Each book now: best prices, and its session so far",
    ),
    Route(
        "GET",
        "/api/v1/account",
        rest_account.account,
        AccountView,
        SIGNED,
        "The caller's cash: the ledger's balance and what buys may still reserve",
    ),
    Route(
        "GET",
        "/api/v1/holdings",
        rest_account.holdings,
        HoldingsView,
        SIGNED,
        "The caller's serial ranges",
    ),
    Route(
        "GET",
        "/api/v1/orders",
        rest_account.orders,
        list[OpenOrder],
        SIGNED,
        "The caller's open orders",
    ),
    Route(
        "GET",
        "/api/v1/trades",
        rest_account.trades,
        TradesPage,
        SIGNED,
        "The caller's settled trades, newest first",
        query=TradesQuery,
    ),
)


@functools.cache
def _document() -> bytes:
    return msgspec.json.encode(openapi.document(ROUTES))


async def openapi_json(_request: web.Request) -> web.Response:
    return web.Response(body=_document(), content_type="application/json")


def add_routes(app: web.Application) -> None:
    for route in ROUTES:
        app.router.add_route(route.method, route.path, serve(route))
    app.router.add_get("/openapi.json", openapi_json)
