"""Signing in and out of the console, and choosing its language."""

from __future__ import annotations

import datetime as dt
import secrets

from aiohttp import web

from exchange import logins
from exchange.console.i18n import LANG_COOKIE, Lang
from exchange.console.rendering import (
    YEAR_S,
    check_form_token,
    form_token,
    next_page,
    render,
    see_other,
    viewer_of,
    with_form_cookie,
)
from exchange.endpoint import SESSION_COOKIE
from exchange.errors import ErrorCode, ExchangeError
from exchange.service import EXCHANGE_KEY


async def login_page(request: web.Request) -> web.Response:
    token = form_token(request)
    response = render(
        request,
        "login.html",
        None,
        form_token=token,
        next=next_page(request.query.get("next")),
        error=None,
    )
    return with_form_cookie(response, token)


async def login(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    exchange = request.app[EXCHANGE_KEY]
    token = form_token(request)
    after = next_page(form.get("next"))
    try:
        check_form_token(request, form)
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
            next=after,
            error=error,
        )
        return with_form_cookie(response, token)
    redirect = see_other(after)
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
    redirect = see_other("/console/login")
    redirect.del_cookie(SESSION_COOKIE, path="/")
    return redirect


async def language(request: web.Request) -> web.StreamResponse:
    """Switch the language and go back to the page it was switched on."""
    to = request.match_info["lang"]
    redirect = see_other(next_page(request.query.get("back")))
    redirect.set_cookie(LANG_COOKIE, Lang(to).value, max_age=YEAR_S, samesite="Lax", path="/")
    return redirect


# -- pages -----------------------------------------------------------------------------------
