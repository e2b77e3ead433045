"""Signing in and out of the console, and choosing its language.

Each address may try to sign in `SIGN_INS_PER_MINUTE` times a minute, whichever logins it
tries: with the lock-out of a login after five failures (`exchange.logins`), guessing, or
locking people out, takes many addresses."""

from __future__ import annotations

import collections
import datetime as dt
import time

from aiohttp import web

from exchange import logins
from exchange.console.i18n import LANG_COOKIE, Lang
from exchange.console.rendering import (
    YEAR_S,
    check_form_token,
    form_token,
    next_page,
    refused,
    render,
    see_other,
    viewer_of,
    with_form_cookie,
)
from exchange.endpoint import SESSION_COOKIE
from exchange.errors import ErrorCode, ExchangeError
from exchange.service import EXCHANGE_KEY

SIGN_INS_PER_MINUTE = 10
_ADDRESSES = 10_000  # remembered at most; past that the oldest windows are dropped


class SignInWindows:
    """The sign-in attempts of each address in the last minute."""

    def __init__(self) -> None:
        self._attempts: collections.OrderedDict[str, collections.deque[float]] = (
            collections.OrderedDict()
        )

    def admit(self, address: str, now_s: float) -> int:
        """0 if the address may try now (the attempt is counted), else the milliseconds until
        it may."""
        attempts = self._attempts.pop(address, None) or collections.deque()
        while attempts and attempts[0] <= now_s - 60:
            attempts.popleft()
        self._attempts[address] = attempts
        if len(self._attempts) > _ADDRESSES:
            self._attempts.popitem(last=False)
        if len(attempts) >= SIGN_INS_PER_MINUTE:
            return int((attempts[0] + 60 - now_s) * 1000) + 1
        attempts.append(now_s)
        return 0


SIGN_INS = web.AppKey("sign_ins", SignInWindows)


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
    return with_form_cookie(request, response, token)


async def login(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    exchange = request.app[EXCHANGE_KEY]
    token = form_token(request)
    after = next_page(form.get("next"))
    try:
        check_form_token(request, form)
        wait_ms = request.app[SIGN_INS].admit(request.remote or "", time.monotonic())
        if wait_ms:
            raise ExchangeError(ErrorCode.RATE_LIMITED, "too many sign-ins from here", wait_ms)
        name, password = form.get("login"), form.get("password")
        if not isinstance(name, str) or not isinstance(password, str):
            raise ExchangeError(ErrorCode.AUTH_LOGIN_FAILED, "wrong login or password")
        now = dt.datetime.now(dt.UTC)
        async with exchange.database.pool.acquire() as conn:
            opened = await logins.sign_in(conn, name, password, now)
            if SESSION_COOKIE in request.cookies:  # one person, one session in this browser
                await logins.sign_out(conn, request.cookies[SESSION_COOKIE], now)
    except ExchangeError as error:
        status = {
            ErrorCode.AUTH_LOCKED_OUT: 429,
            ErrorCode.RATE_LIMITED: 429,
            ErrorCode.AUTH_CSRF_TOKEN_INVALID: 403,
        }
        response = render(
            request,
            "login.html",
            None,
            status.get(ErrorCode(error.code), 401),
            form_token=token,
            next=after,
            error=error,
            wait_minutes=-(-(error.retry_after_ms or 0) // 60_000),
        )
        return with_form_cookie(request, response, token)
    redirect = see_other(after)
    # no max_age: the cookie ends with the browser; the server ends the session sooner
    redirect.set_cookie(
        SESSION_COOKIE,
        opened.token,
        httponly=True,
        samesite="Strict",
        secure=request.secure,
        path="/",
    )
    return redirect


async def logout(request: web.Request) -> web.StreamResponse:
    viewer = await viewer_of(request)
    if viewer is None:
        # nobody signed in, or a form of another site (a Strict cookie does not come with
        # it): nothing to end, and the browser's cookies are left alone
        return see_other("/console/login")
    form = await request.post()
    field = form.get("csrf_token")
    try:
        logins.check_csrf(viewer.session, field if isinstance(field, str) else None)
    except ExchangeError as error:
        return refused(request, viewer, error)
    async with request.app[EXCHANGE_KEY].database.pool.acquire() as conn:
        await logins.sign_out(conn, request.cookies[SESSION_COOKIE], dt.datetime.now(dt.UTC))
    redirect = see_other("/console/login")
    redirect.del_cookie(SESSION_COOKIE, path="/")
    return redirect


async def language(request: web.Request) -> web.StreamResponse:
    """Switch the language and go back to the page it was switched on. A link, not a form: it
    changes a preference of this browser only, nothing on the platform."""
    to = request.match_info["lang"]
    redirect = see_other(next_page(request.query.get("back")))
    redirect.set_cookie(LANG_COOKIE, Lang(to).value, max_age=YEAR_S, samesite="Lax", path="/")
    return redirect
