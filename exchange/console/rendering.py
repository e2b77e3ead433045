"""How the console's pages are made: templates, the person signed in, security headers, and
the checks a page makes before it is shown (signed in, the role, a form's token).

A page reads through `exchange.endpoint.read_as`, which applies the same access and role checks
as an HTTP request; a form writes by sending the REST request itself from the browser
(`static/console.js`), with the session cookie and the session's CSRF token, so the console has
no path of its own around the API. Forms that come before a session (sign-in, certificate
upload) carry a token that must equal a cookie the page set (double submit).

Every page is escaped by the template engine, loads nothing from elsewhere, and is sent with a
content security policy that admits only this origin's scripts and styles.
"""

from __future__ import annotations

import datetime as dt
import secrets
import urllib.parse
from collections.abc import Awaitable, Callable
from enum import Enum
from typing import Any, NamedTuple

import jinja2
import msgspec
from aiohttp import web
from multidict import MultiDictProxy

from exchange import logins
from exchange.console.catalogue import JS_KEYS, MESSAGES
from exchange.console.i18n import Lang, chosen, serials, shanghai, tonnes, translate, yuan
from exchange.endpoint import SESSION_COOKIE, browser_session, status_of
from exchange.errors import ErrorCode, ExchangeError
from exchange.rest import ROUTES
from exchange.service import EXCHANGE_KEY
from settlement.values import HOLDER_ROLES, Role

ROUTE = {route.name: route for route in ROUTES}
FORM_COOKIE = "cerx_form"
FORM_FIELD = "form_token"
MAX_UPLOAD_BYTES = 64 * 1024  # a certificate file is a few kB
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


def _facts(struct: msgspec.Struct) -> list[tuple[str, str]]:
    """A struct's fields and values, in order, as text for a list of facts (an application's
    content): integers with separators, lists and nested structs as their JSON."""
    facts = []
    for name in struct.__struct_fields__:
        value = getattr(struct, name)
        if isinstance(value, int) and not isinstance(value, bool):
            text = tonnes(value)
        elif isinstance(value, str | dt.date):
            text = str(value)
        else:
            text = msgspec.json.encode(value).decode()
        facts.append((name, text))
    return facts


TEMPLATES.filters.update(
    yuan=yuan,
    tonnes=tonnes,
    count=tonnes,
    serials=serials,
    shanghai=shanghai,
    v=_value,
    facts=_facts,
)
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
    """The person signed in: their account, its roles, and their session."""

    account_id: int
    name: str
    roles: frozenset[Role]
    session: logins.Session

    @property
    def csrf_token(self) -> str:
        return self.session.csrf_token

    def has(self, role: Role) -> bool:
        return role in self.roles

    @property
    def holds(self) -> bool:
        return bool(self.roles & HOLDER_ROLES)


async def viewer_of(request: web.Request) -> Viewer | None:
    """The person whose session cookie came with the request, if the session is live."""
    if SESSION_COOKIE not in request.cookies:
        return None
    exchange = request.app[EXCHANGE_KEY]
    try:
        session = await browser_session(request, exchange)
    except ExchangeError:
        return None
    account = await exchange.ledger.account(session.account_id)
    return Viewer(account.account_id, account.name, frozenset(account.roles), session)


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
        known=MESSAGES,
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
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def signed_in(page: Page) -> Handler:
    """A page for a signed-in person: without a session, the sign-in page, then back here.
    Each view takes a token from the account's rate-limit bucket, as an API request does."""

    async def handler(request: web.Request) -> web.StreamResponse:
        viewer = await viewer_of(request)
        if viewer is None:
            back = urllib.parse.quote(request.path_qs, safe="")
            raise web.HTTPSeeOther(f"/console/login?next={back}")
        try:
            wait_ms = request.app[EXCHANGE_KEY].account_bucket(viewer.account_id).take()
            if wait_ms:
                raise ExchangeError(ErrorCode.RATE_LIMITED, "too many requests", wait_ms)
            return await page(request, viewer)
        except ExchangeError as error:
            return refused(request, viewer, error)

    return handler


def public(page: Handler) -> Handler:
    """A page for anyone; a refusal is shown as a page with its code."""

    async def handler(request: web.Request) -> web.StreamResponse:
        try:
            return await page(request)
        except ExchangeError as error:
            return refused(request, await viewer_of(request), error)

    return handler


def refused(request: web.Request, viewer: Viewer | None, error: ExchangeError) -> web.Response:
    """The page of a refusal: its code, in words, with the API's status."""
    return render(
        request,
        "refused.html",
        viewer,
        status_of(error.code),
        code=error.code,
        message=error.message,
    )


def form_token(request: web.Request) -> str:
    return request.cookies.get(FORM_COOKIE) or secrets.token_urlsafe(32)


def with_form_cookie(request: web.Request, response: web.Response, token: str) -> web.Response:
    response.set_cookie(
        FORM_COOKIE,
        token,
        httponly=True,
        samesite="Strict",
        secure=request.secure,
        path="/console",
        max_age=3600,
    )
    return response


FormData = MultiDictProxy[str | bytes | bytearray | web.FileField]


def check_form_token(request: web.Request, form: FormData) -> None:
    cookie, field = request.cookies.get(FORM_COOKIE), form.get(FORM_FIELD)
    if (
        not cookie
        or not isinstance(field, str)
        # bytes: compare_digest refuses a str with characters beyond ASCII
        or not secrets.compare_digest(cookie.encode(), field.encode())
    ):
        raise ExchangeError(ErrorCode.AUTH_CSRF_TOKEN_INVALID, "the form's token is missing")


def next_page(value: object) -> str:
    """Where to go after signing in: only a page of the console, never another site, and
    nothing a Location header cannot carry."""
    if (
        isinstance(value, str)
        and value.startswith("/console/")
        and "//" not in value
        and "\\" not in value
        and value.isprintable()
        and value.isascii()
    ):
        return value
    return "/console/"


def see_other(location: str) -> web.Response:
    """A redirect that sets cookies (a raised HTTPSeeOther would lose them)."""
    return web.Response(status=303, headers={"Location": location})


def for_role(viewer: Viewer, role: Role) -> None:
    if not viewer.has(role):
        raise ExchangeError(ErrorCode.AUTH_FORBIDDEN, f"this page is for the {role}")
