"""Where each console page is served."""

from __future__ import annotations

from importlib import resources

from aiohttp import web

from exchange.console.holders import compliance_page, retire_page, trader_page, trades_csv
from exchange.console.public import (
    disclosure_page,
    home,
    market_page,
    verify_id,
    verify_page,
    verify_upload,
)
from exchange.console.signin import SIGN_INS, SignInWindows, language, login, login_page, logout
from exchange.console.staff import operator_page, regulator_page


def add_routes(app: web.Application) -> None:
    static = resources.files("exchange.console") / "static"
    app[SIGN_INS] = SignInWindows()
    app.router.add_get("/console", _to_home)
    app.router.add_get("/console/", home)
    app.router.add_get("/console/login", login_page)
    app.router.add_post("/console/login", login)
    app.router.add_post("/console/logout", logout)
    app.router.add_get("/console/lang/{lang:zh|en}", language)
    app.router.add_get("/console/disclosure", disclosure_page)
    app.router.add_get("/console/market", market_page)
    app.router.add_get("/console/market/{symbol}", market_page)
    app.router.add_get("/console/trader", trader_page)
    app.router.add_get("/console/trader/trades.csv", trades_csv)
    app.router.add_get("/console/verify", verify_page)
    app.router.add_post("/console/verify", verify_upload)
    app.router.add_get("/console/verify/id", verify_id)
    app.router.add_get("/console/operator", operator_page)
    app.router.add_get("/console/compliance", compliance_page)
    app.router.add_get("/console/retire", retire_page)
    app.router.add_get("/console/regulator", regulator_page)
    app.router.add_static("/console/static", str(static), append_version=True)


async def _to_home(request: web.Request) -> web.StreamResponse:
    raise web.HTTPSeeOther("/console/")
