"""The web console: pages for people, rendered by the server from the REST API's own routes.

A page reads through `exchange.endpoint.read_as`, which applies the same access and role checks
as an HTTP request; a form writes by sending the REST request itself from the browser
(`static/console.js`), with the session cookie and the session's CSRF token, so the console has
no path of its own around the API. Forms that come before a session (sign-in, certificate
upload) carry a token that must equal a cookie the page set (double submit).

Every page is escaped by the template engine, loads nothing from elsewhere, and is sent with a
content security policy that admits only this origin's scripts and styles.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import secrets
import urllib.parse
from collections.abc import Awaitable, Callable
from enum import Enum
from importlib import resources
from typing import Any, NamedTuple

import jinja2
import msgspec
from aiohttp import web

from exchange import logins
from exchange.console.catalogue import JS_KEYS, MESSAGES
from exchange.console.forms import forms
from exchange.console.i18n import LANG_COOKIE, Lang, chosen, shanghai, tonnes, translate, yuan
from exchange.endpoint import SESSION_COOKIE, read_as
from exchange.errors import ErrorCode, ExchangeError
from exchange.rest import ROUTES
from exchange.rest_account import TradesQuery
from exchange.rest_certificates import StateQuery
from exchange.rest_offsets import Preview, YearPath, YearQuery, today
from exchange.rest_registration import QueueQuery
from exchange.service import EXCHANGE_KEY, Exchange
from offsets.errors import OffsetError
from offsets.signing import verify_bytes
from registration.values import OPEN_STATES
from settlement.values import HOLDER_ROLES, Holding, Role, SerialRange, TonneState

ROUTE = {route.name: route for route in ROUTES}
FORM_COOKIE = "cerx_form"
FORM_FIELD = "form_token"
MAX_UPLOAD = 64 * 1024  # a certificate file is a few kB
YEAR_S = 365 * 24 * 3600

TEMPLATES = jinja2.Environment(
    loader=jinja2.PackageLoader("exchange.console", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def _value(member: object) -> str:
    """An enum member's wire value, for message keys: `status.open`, `side.buy`."""
    return str(member.value) if isinstance(member, Enum) else str(member).lower()


def _facts(struct: msgspec.Struct) -> list[tuple[str, object]]:
    """A struct's fields and values, in order, for a list of facts (an application's content)."""
    return [(name, getattr(struct, name)) for name in struct.__struct_fields__]


TEMPLATES.filters.update(yuan=yuan, tonnes=tonnes, shanghai=shanghai, v=_value, facts=_facts)
FORMS = forms(ROUTES)

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
        " connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


class Viewer(NamedTuple):
    """The person signed in: their account, its roles, and the session's CSRF token."""

    account_id: int
    name: str
    roles: frozenset[Role]
    csrf_token: str

    def has(self, role: Role) -> bool:
        return role in self.roles

    @property
    def holds(self) -> bool:
        return bool(self.roles & HOLDER_ROLES)


async def viewer_of(request: web.Request) -> Viewer | None:
    if SESSION_COOKIE not in request.cookies:
        return None
    exchange = request.app[EXCHANGE_KEY]
    try:
        async with exchange.database.pool.acquire() as conn:
            session = await logins.session(
                conn, request.cookies[SESSION_COOKIE], dt.datetime.now(dt.UTC)
            )
    except ExchangeError:
        return None
    account = await exchange.ledger.account(session.account_id)
    return Viewer(account.account_id, account.name, frozenset(account.roles), session.csrf_token)


def render(
    request: web.Request,
    template: str,
    viewer: Viewer | None,
    status: int = 200,
    **context: Any,
) -> web.Response:
    lang = chosen(request)

    def t(key: str) -> str:
        return translate(lang, key)

    js_messages = {key: t(key) for key in JS_KEYS} | {
        key: t(key) for key in MESSAGES if key.startswith("error.")
    }
    body = TEMPLATES.get_template(template).render(
        t=t,
        js_messages=js_messages,
        lang=lang.value,
        other_lang=(Lang.EN if lang is Lang.ZH else Lang.ZH).value,
        here=request.path_qs,
        viewer=viewer,
        Role=Role,
        **context,
    )
    response = web.Response(text=body, status=status, content_type="text/html")
    response.headers.update(SECURITY_HEADERS)
    return response


Page = Callable[[web.Request, Viewer], Awaitable[web.StreamResponse]]


def signed_in(page: Page) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """A page for a signed-in person: without a session, the sign-in page, then back here."""

    async def handler(request: web.Request) -> web.StreamResponse:
        viewer = await viewer_of(request)
        if viewer is None:
            back = urllib.parse.quote(request.path_qs, safe="")
            raise web.HTTPSeeOther(f"/console/login?next={back}")
        try:
            return await page(request, viewer)
        except ExchangeError as error:
            if error.code != ErrorCode.AUTH_FORBIDDEN:
                raise
            return render(request, "forbidden.html", viewer, 403, code=error.code)

    return handler


def _form_token(request: web.Request) -> str:
    return request.cookies.get(FORM_COOKIE) or secrets.token_urlsafe(32)


def _with_form_cookie(response: web.Response, token: str) -> web.Response:
    response.set_cookie(
        FORM_COOKIE, token, httponly=True, samesite="Strict", path="/console", max_age=3600
    )
    return response


def _check_form_token(request: web.Request, form: Any) -> None:
    cookie, field = request.cookies.get(FORM_COOKIE), form.get(FORM_FIELD)
    if not cookie or not isinstance(field, str) or not secrets.compare_digest(cookie, field):
        raise ExchangeError(ErrorCode.AUTH_CSRF_TOKEN_INVALID, "the form's token is missing")


def _next_page(value: object) -> str:
    """Where to go after signing in: only a page of the console, never another site."""
    if isinstance(value, str) and value.startswith("/console/") and "//" not in value:
        return value
    return "/console/"


def _see_other(location: str) -> web.Response:
    """A redirect that sets cookies (a raised HTTPSeeOther would lose them)."""
    return web.Response(status=303, headers={"Location": location})


# -- signing in and out ----------------------------------------------------------------------


async def login_page(request: web.Request) -> web.Response:
    token = _form_token(request)
    response = render(
        request,
        "login.html",
        None,
        form_token=token,
        next=_next_page(request.query.get("next")),
        error=None,
    )
    return _with_form_cookie(response, token)


async def login(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    exchange = request.app[EXCHANGE_KEY]
    token = _form_token(request)
    next_page = _next_page(form.get("next"))
    try:
        _check_form_token(request, form)
        name, password = form.get("login"), form.get("password")
        if not isinstance(name, str) or not isinstance(password, str):
            raise ExchangeError(ErrorCode.AUTH_LOGIN_FAILED, "wrong login or password")
        async with exchange.database.pool.acquire() as conn:
            opened = await logins.sign_in(conn, name, password, dt.datetime.now(dt.UTC))
    except ExchangeError as error:
        status = {ErrorCode.AUTH_LOCKED_OUT: 429, ErrorCode.AUTH_CSRF_TOKEN_INVALID: 403}
        response = render(
            request,
            "login.html",
            None,
            status.get(ErrorCode(error.code), 401),
            form_token=token,
            next=next_page,
            error=error,
        )
        return _with_form_cookie(response, token)
    redirect = _see_other(next_page)
    # no max_age: the cookie ends with the browser; the server ends the session sooner
    redirect.set_cookie(SESSION_COOKIE, opened.token, httponly=True, samesite="Strict", path="/")
    return redirect


async def logout(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    viewer = await viewer_of(request)
    if viewer is not None:
        field = form.get("csrf_token")
        if not isinstance(field, str) or not secrets.compare_digest(field, viewer.csrf_token):
            # another site's form must not sign a person out either
            code = ErrorCode.AUTH_CSRF_TOKEN_INVALID
            return render(request, "forbidden.html", viewer, 403, code=code)
        async with request.app[EXCHANGE_KEY].database.pool.acquire() as conn:
            await logins.sign_out(conn, request.cookies[SESSION_COOKIE], dt.datetime.now(dt.UTC))
    redirect = _see_other("/console/login")
    redirect.del_cookie(SESSION_COOKIE, path="/")
    return redirect


async def language(request: web.Request) -> web.StreamResponse:
    """Switch the language and go back to the page it was switched on."""
    to = request.match_info["lang"]
    redirect = _see_other(_next_page(request.query.get("back")))
    redirect.set_cookie(LANG_COOKIE, Lang(to).value, max_age=YEAR_S, samesite="Lax", path="/")
    return redirect


# -- pages -----------------------------------------------------------------------------------


async def home(request: web.Request) -> web.Response:
    viewer = await viewer_of(request)
    exchange = request.app[EXCHANGE_KEY]
    market = await read_as(ROUTE["GET /api/v1/market"], exchange, None)
    return render(request, "home.html", viewer, market=market)


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


async def market_page(request: web.Request) -> web.Response:
    viewer = await viewer_of(request)
    exchange = request.app[EXCHANGE_KEY]
    instruments = await read_as(ROUTE["GET /api/v1/instruments"], exchange, None)
    markets = {m.symbol: m for m in await read_as(ROUTE["GET /api/v1/market"], exchange, None)}
    symbol = request.match_info.get("symbol") or next(iter(markets), None)
    chosen_instrument = next((i for i in instruments if i.symbol == symbol), None)
    if symbol is not None and chosen_instrument is None:
        raise web.HTTPNotFound(text="no such instrument")
    return render(
        request,
        "market.html",
        viewer,
        instruments=instruments,
        instrument=chosen_instrument,
        market=markets.get(symbol) if symbol else None,
    )


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
    return render(
        request,
        "trader.html",
        viewer,
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
                [trade.trade_id, trade.symbol, trade.side, trade.order_id,
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


async def verify_page(request: web.Request) -> web.Response:
    token = _form_token(request)
    return _with_form_cookie(
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


async def verify_upload(request: web.Request) -> web.Response:
    """Check an uploaded certificate file against the platform key, as the CLI does offline."""
    exchange, viewer = request.app[EXCHANGE_KEY], await viewer_of(request)
    token = _form_token(request)
    form = await request.post()
    try:
        _check_form_token(request, form)
    except ExchangeError as error:
        response = render(
            request, "verify.html", viewer, 403, form_token=token, result=None, error=error
        )
        return _with_form_cookie(response, token)
    upload = form.get("file")
    data = upload.file.read(MAX_UPLOAD + 1) if isinstance(upload, web.FileField) else b""
    result = _check_file(exchange, data)
    return _with_form_cookie(
        render(request, "verify.html", viewer, form_token=token, result=result), token
    )


def _check_file(exchange: Exchange, data: bytes) -> Checked:
    if exchange.certifier is None:
        return Checked("unknown", "this platform signs no certificates")
    verdict = verify_bytes(data, exchange.certifier.key.public_key)
    if verdict.valid:
        return Checked("valid", verdict.message)
    return Checked("tampered", f"{verdict.reason}: {verdict.message}")


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


@signed_in
async def compliance_page(request: web.Request, viewer: Viewer) -> web.Response:
    """A compliance entity's year: its obligation, what both caps still allow, its eligible
    holdings, a surrender in two steps (quantity, then the exact ranges to confirm), and its
    record."""
    _for(viewer, Role.COMPLIANCE_ENTITY)
    exchange = request.app[EXCHANGE_KEY]
    try:
        year = YearPath(int(request.query.get("year") or today().year)).year
    except (ValueError, msgspec.ValidationError):
        raise web.HTTPBadRequest(text="year: 2000-2100") from None
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


def _for(viewer: Viewer, role: Role) -> None:
    if not viewer.has(role):
        raise ExchangeError(ErrorCode.AUTH_FORBIDDEN, f"this page is for the {role}")


@signed_in
async def operator_page(request: web.Request, viewer: Viewer) -> web.Response:
    _for(viewer, Role.OPERATOR)
    exchange = request.app[EXCHANGE_KEY]
    return render(
        request,
        "operator.html",
        viewer,
        instruments=await read_as(ROUTE["GET /api/v1/instruments"], exchange, None),
        lag_items=exchange.settler.lag,
        settled_items=exchange.settler.applied_items,
        settler_error=exchange.settler.error,
        forms_of=FORMS,
    )


@signed_in
async def regulator_page(request: web.Request, viewer: Viewer) -> web.Response:
    _for(viewer, Role.REGULATOR)
    exchange = request.app[EXCHANGE_KEY]
    queue = await read_as(
        ROUTE["GET /api/v1/regulator/certificate-applications"],
        exchange,
        viewer.account_id,
        StateQuery(state="submitted"),
    )
    submissions = [
        submission
        for submission in await read_as(
            ROUTE["GET /api/v1/regulator/applications"], exchange, viewer.account_id, QueueQuery()
        )
        if submission.state in OPEN_STATES and submission.decider_id is None
    ]
    return render(
        request,
        "regulator.html",
        viewer,
        applications=queue,
        submissions=submissions,
        forms_of=FORMS,
    )


def add_routes(app: web.Application) -> None:
    static = resources.files("exchange.console") / "static"
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
