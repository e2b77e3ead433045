"""A REST endpoint: how one is declared (`Route`), and how a request to it is served.

One table of routes (`exchange.rest.ROUTES`) both registers the aiohttp handlers and builds the
OpenAPI document, so the two cannot drift apart. Serving a request, in this order, after its
body is read (at most `MAX_BODY` bytes, else 413 `BODY_TOO_LARGE`):

1. unless the route is public: the signature over the request (`exchange.auth`: method, target
   and body), or for a person in the web console the session cookie and, on a write, the
   session's CSRF token in `X-CSRF-Token` (`exchange.logins`); a token from the account's
   rate-limit bucket, then the route's role;
2. a POST writes, so it needs an `Idempotency-Key` header (1-64 of `A-Z a-z 0-9 _ . : -`),
   which becomes the ledger's key `api/{account_id}/{header}`: a repeat returns the first result
   and changes nothing;
3. path parameters, query and body decoded strictly into the route's structs (unknown fields
   refused, a query where the route takes none too, constraints checked, integers only for
   money and tonnes);
4. the handler, called with the `Call` and the decoded path, query and body, in that order, for
   those the route declares. What it returns is the result.

Replies are `{"ok": true, "result": ...}` or `{"ok": false, "error": {"code", "msg"}}`, with
the HTTP status of the code (`status_of`). Bad input is always a refusal with a code; an
unexpected exception is logged and answered 500 `INTERNAL_ERROR`.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any, Literal, NamedTuple

import msgspec
from aiohttp import web

from exchange import auth, logins
from exchange.errors import ErrorCode, ExchangeError
from exchange.journal import JournalError
from exchange.protocol import ErrorBody
from exchange.service import EXCHANGE_KEY, Exchange
from exchange.settler import UNREACHABLE
from matching import RejectCode
from offsets.errors import ErrorCode as OffsetCode
from offsets.errors import OffsetError
from registration.errors import ErrorCode as RegistrationCode
from registration.errors import RegistrationError
from settlement.errors import ErrorCode as LedgerCode
from settlement.errors import LedgerError
from settlement.values import Role

log = logging.getLogger(__name__)

SIGNATURE_HEADERS = ("X-CERX-Key", "X-CERX-Timestamp", "X-CERX-Nonce", "X-CERX-Signature")
SESSION_COOKIE = "cerx_session"
CSRF_HEADER = "X-CSRF-Token"
IDEMPOTENCY_HEADER = "Idempotency-Key"
IDEMPOTENCY_KEY = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
UNREACHED = "the database cannot be reached (restarting?); try again"
MAX_BODY = 1024 * 1024  # bytes of a request body; past it: 413 BODY_TOO_LARGE
TIMESTAMP = re.compile(r"[0-9]{1,16}")  # str.isdigit() admits "²", which int() refuses

PUBLIC: Literal["public"] = "public"
SIGNED: Literal["signed"] = "signed"
Access = Role | Literal["public", "signed"]
"""Who may call a route: anyone, any signed account, or a signed account with the role."""

Handler = Callable[..., Awaitable[Any]]


class Route(NamedTuple):
    method: str
    path: str
    handler: Handler
    result: Any  # the type of what the handler returns
    access: Access
    summary: str
    body: type[msgspec.Struct] | None = None
    query: type[msgspec.Struct] | None = None
    params: type[msgspec.Struct] | None = None  # the path's {parameters}

    @property
    def name(self) -> str:
        return f"{self.method} {self.path}"


class Call(NamedTuple):
    """Who is calling, and the key its write is recorded under."""

    exchange: Exchange
    account_id: int | None  # None on a public route
    idempotency_key: str | None  # the ledger's key, on a POST

    @property
    def caller(self) -> int:
        if self.account_id is None:
            raise AssertionError("a public route has no caller")
        return self.account_id

    @property
    def key(self) -> str:
        if self.idempotency_key is None:
            raise AssertionError("only a POST has an idempotency key")
        return self.idempotency_key


class Ok(msgspec.Struct, frozen=True):
    ok: Literal[True]
    result: Any


class Refusal(msgspec.Struct, frozen=True):
    ok: Literal[False]
    error: ErrorBody


_CONFLICTS = (
    ErrorCode.DUPLICATE_CL_ORD_ID,
    ErrorCode.INSTRUMENT_EXISTS,
    ErrorCode.LOGIN_TAKEN,
    LedgerCode.ACCOUNT_NAME_TAKEN,
    LedgerCode.METHODOLOGY_EXISTS,
    LedgerCode.PROJECT_EXISTS,
    LedgerCode.PROJECT_REGISTERED_UNDER_OTHER_SCHEME,
    LedgerCode.ISSUANCE_PERIOD_OVERLAPS,
    LedgerCode.INSUFFICIENT_CASH,
    LedgerCode.INSUFFICIENT_HOLDINGS,
    LedgerCode.ROLE_NOT_ALLOWED,
    LedgerCode.IDEMPOTENCY_KEY_REUSED,
    RejectCode.BOOK_MUST_BE_HALTED.value,
    RejectCode.BOOK_MUST_NOT_BE_HALTED.value,
    RejectCode.BOOK_MUST_BE_IN_AUCTION.value,
    RejectCode.BOOK_MUST_NOT_BE_IN_AUCTION.value,
    OffsetCode.RULES_VERSION_EXISTS,
    OffsetCode.OUTSIDE_SURRENDER_WINDOW,
    OffsetCode.ENTITY_CAP_EXCEEDED,
    OffsetCode.TOTAL_CAP_EXCEEDED,
    OffsetCode.RETIREMENT_ALREADY_CLAIMED,
    OffsetCode.APPLICATION_ALREADY_DECIDED,
    LedgerCode.RANGE_NOT_HELD,
    LedgerCode.AGGREGATOR_EXISTS,
    LedgerCode.INSUFFICIENT_POINTS,
    LedgerCode.REDEMPTION_EXCEEDS_BALANCE,
    LedgerCode.REDEMPTION_REFERENCE_REUSED,
    RegistrationCode.CODE_TAKEN,
    RegistrationCode.EXPERT_ALREADY_IN_POOL,
    RegistrationCode.APPLICATION_KIND_MISMATCH,
    RegistrationCode.APPLICATION_MUST_BE_SUBMITTED,
    RegistrationCode.APPLICATION_MUST_BE_UNDER_REVIEW,
    RegistrationCode.APPLICATION_MUST_BE_APPROVED,
    RegistrationCode.APPLICATION_MUST_BE_REJECTED,
    RegistrationCode.APPLICATION_MUST_BE_OPEN,
    RegistrationCode.NOT_ENOUGH_EXPERTS,
    RegistrationCode.OPINION_ALREADY_GIVEN,
    RegistrationCode.OPINIONS_PENDING,
    RegistrationCode.NOT_A_PROJECT_APPLICATION,
    RegistrationCode.THIRD_PARTY_REPORTS_REQUIRED,
    RegistrationCode.SECTOR_OF_ANOTHER_AUTHORITY,
    RegistrationCode.LABEL_MUST_BE_ACTIVE,
    RegistrationCode.LABEL_MUST_BE_SUSPENDED,
    RegistrationCode.LABEL_MUST_NOT_BE_WITHDRAWN,
)
_UNKNOWN = (
    ErrorCode.NO_SUCH_ROUTE,
    ErrorCode.UNKNOWN_INSTRUMENT,
    LedgerCode.ACCOUNT_NOT_FOUND,
    LedgerCode.PROJECT_NOT_FOUND,
    LedgerCode.METHODOLOGY_NOT_REGISTERED,
    OffsetCode.NO_OFFSET_RULES,
    OffsetCode.NO_VERIFIED_EMISSIONS,
    OffsetCode.RETIREMENT_NOT_FOUND,
    OffsetCode.APPLICATION_NOT_FOUND,
    OffsetCode.CERTIFICATE_NOT_FOUND,
    LedgerCode.POINT_USER_NOT_FOUND,
    LedgerCode.AGGREGATOR_NOT_REGISTERED,
    LedgerCode.NO_POINTS_RULE,
    RegistrationCode.APPLICATION_NOT_FOUND,
    RegistrationCode.EXPERT_NOT_IN_POOL,
    RegistrationCode.NO_EVALUATION_SPECIFICATION,
    RegistrationCode.LABEL_NOT_FOUND,
)
_FORBIDDEN = (
    ErrorCode.AUTH_FORBIDDEN,
    ErrorCode.AUTH_CSRF_TOKEN_INVALID,
    RegistrationCode.NOT_DRAWN,
    RegistrationCode.NOT_THE_SECTOR_AUTHORITY,
)
_UNAVAILABLE = (
    ErrorCode.EXCHANGE_NOT_READY,
    ErrorCode.EXCHANGE_HALTED,
    ErrorCode.JOURNAL_UNAVAILABLE,
    ErrorCode.SETTLEMENT_BEHIND,
    ErrorCode.DATABASE_UNAVAILABLE,
)
STATUS: dict[str, int] = (
    {str(code): 409 for code in _CONFLICTS}
    | {str(code): 404 for code in _UNKNOWN}
    | {str(code): 503 for code in _UNAVAILABLE}
    | {str(code): 403 for code in _FORBIDDEN}
    | {
        ErrorCode.RATE_LIMITED: 429,
        ErrorCode.TOO_MANY_SESSIONS: 429,
        ErrorCode.AUTH_LOCKED_OUT: 429,
    }
    | {ErrorCode.INTERNAL_ERROR: 500, ErrorCode.BODY_TOO_LARGE: 413}
    | {LedgerCode.POINTS_NOT_TRANSFERABLE: 403, LedgerCode.POINT_USER_NOT_AUTHORISED: 403}
)


def status_of(code: str) -> int:
    """The HTTP status of a refusal: 401 for authentication, 400 for what is not listed."""
    return STATUS.get(code, 401 if code.startswith("AUTH_") else 400)


class _Nothing(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    pass


_encode = msgspec.json.Encoder().encode


def serve(route: Route) -> Callable[[web.Request], Awaitable[web.Response]]:
    """The aiohttp handler of `route`."""
    body_decoder = msgspec.json.Decoder(route.body if route.body is not None else _Nothing)

    async def respond(request: web.Request) -> web.Response:
        exchange = request.app[EXCHANGE_KEY]
        try:
            body = await request.read()
            call = await _admit(route, request, exchange, body)
            inputs: list[Any] = []
            if route.params is not None:
                inputs.append(_convert(dict(request.match_info), route.params))
            if route.query is not None:
                inputs.append(_convert(dict(request.query), route.query))
            elif request.query:
                # ignored, `?account_id=7` would seem to choose whose data comes back
                raise ExchangeError(
                    ErrorCode.INVALID_ARGS, f"{route.name} takes no query: {request.query_string}"
                )
            # no body reads as {}: a route whose fields all have defaults needs none
            decoded = _decode(body_decoder, body if body.strip() else b"{}")
            if route.body is not None:
                inputs.append(decoded)
            reply: Ok | Refusal = Ok(True, await route.handler(call, *inputs))
        except (ExchangeError, LedgerError, OffsetError, RegistrationError) as error:
            retry_after_ms = error.retry_after_ms if isinstance(error, ExchangeError) else None
            reply = _refused(str(error.code), error.message, retry_after_ms)
        except JournalError as error:
            reply = _refused(ErrorCode.JOURNAL_UNAVAILABLE, str(error), 1_000)
        except UNREACHABLE as error:
            log.warning("%s: the database is out of reach: %r", route.name, error)
            reply = _refused(ErrorCode.DATABASE_UNAVAILABLE, UNREACHED, 1_000)
        except web.HTTPRequestEntityTooLarge as error:
            reply = _refused(ErrorCode.BODY_TOO_LARGE, error.text or "the body is too large")
        except Exception:
            log.exception("%s failed", route.name)
            reply = _refused(ErrorCode.INTERNAL_ERROR, "the exchange could not serve this")
        outcome = "ok" if isinstance(reply, Ok) else reply.error.code
        exchange.metrics.count_request(route.name, outcome)
        status = 200 if isinstance(reply, Ok) else status_of(reply.error.code)
        return web.Response(body=_encode(reply), status=status, content_type="application/json")

    return respond


NO_ROUTE = "no route"  # the op these requests are counted under: not their paths, unbounded


async def no_route(request: web.Request) -> web.Response:
    """Any other request under /api/: refused as a route refuses, in JSON with a code and
    counted, rather than with aiohttp's plain-text 404 or 405."""
    request.app[EXCHANGE_KEY].metrics.count_request(NO_ROUTE, ErrorCode.NO_SUCH_ROUTE)
    reply = _refused(
        ErrorCode.NO_SUCH_ROUTE,
        f"no route {request.method} {request.path}: the routes are listed at /openapi.json",
    )
    status = status_of(ErrorCode.NO_SUCH_ROUTE)
    return web.Response(body=_encode(reply), status=status, content_type="application/json")


def _refused(code: str, msg: str, retry_after_ms: int | None = None) -> Refusal:
    return Refusal(False, ErrorBody(code, msg, retry_after_ms))


async def _admit(route: Route, request: web.Request, exchange: Exchange, body: bytes) -> Call:
    if route.access == PUBLIC:
        return Call(exchange, None, None)
    account_id = await _authenticate(request, exchange, body)
    wait_ms = exchange.account_bucket(account_id).take()
    if wait_ms:
        raise ExchangeError(ErrorCode.RATE_LIMITED, "too many requests", wait_ms)
    await _check_role(route, exchange, account_id)
    if route.method != "POST":
        return Call(exchange, account_id, None)
    header = request.headers.get(IDEMPOTENCY_HEADER)
    if header is None or not IDEMPOTENCY_KEY.fullmatch(header):
        raise ExchangeError(
            ErrorCode.IDEMPOTENCY_KEY_REQUIRED,
            f"a write needs an {IDEMPOTENCY_HEADER} header: 1-64 of A-Z a-z 0-9 _ . : -",
        )
    return Call(exchange, account_id, f"api/{account_id}/{header}")


async def _check_role(route: Route, exchange: Exchange, account_id: int) -> None:
    if route.access != SIGNED and route.access not in await exchange.roles(account_id):
        raise ExchangeError(ErrorCode.AUTH_FORBIDDEN, f"{route.name} is for the {route.access}")


async def read_as(route: Route, exchange: Exchange, account_id: int | None, *inputs: Any) -> Any:
    """What a GET `route` answers the account (None: nobody signed in), after the same checks
    of access and role as over HTTP: how the web console's pages read."""
    if route.method != "GET":
        raise AssertionError(f"{route.name} writes: the console sends it over HTTP")
    if route.access != PUBLIC:
        if account_id is None:
            raise ExchangeError(ErrorCode.AUTH_REQUIRED, "sign in first")
        await _check_role(route, exchange, account_id)
    return await route.handler(Call(exchange, account_id, None), *inputs)


async def _authenticate(request: web.Request, exchange: Exchange, body: bytes) -> int:
    values = [request.headers.get(name) for name in SIGNATURE_HEADERS]
    if all(value is None for value in values) and SESSION_COOKIE in request.cookies:
        return await _from_browser(request, exchange)
    if any(value is None for value in values):
        raise ExchangeError(
            ErrorCode.AUTH_REQUIRED, f"sign the request: {', '.join(SIGNATURE_HEADERS)}"
        )
    key_id, timestamp, nonce, signature = (str(value) for value in values)
    if not TIMESTAMP.fullmatch(timestamp):
        raise ExchangeError(ErrorCode.AUTH_STALE_TIMESTAMP, "X-CERX-Timestamp is milliseconds")
    signed = auth.HttpRequest(request.method, request.raw_path, body)
    return await exchange.authenticate(key_id, int(timestamp), nonce, signature, signed)


async def browser_session(request: web.Request, exchange: Exchange) -> logins.Session:
    """The session of the web console's cookie, or AUTH_SESSION_EXPIRED."""
    async with exchange.database.pool.acquire() as conn:
        return await logins.session(
            conn, request.cookies.get(SESSION_COOKIE, ""), dt.datetime.now(dt.UTC)
        )


async def _from_browser(request: web.Request, exchange: Exchange) -> int:
    session = await browser_session(request, exchange)
    if request.method != "GET":
        logins.check_csrf(session, request.headers.get(CSRF_HEADER))
    return session.account_id


def _convert(values: dict[str, str], kind: type[msgspec.Struct]) -> Any:
    try:
        # not strict: path and query values are text, and integers are parsed from it
        return msgspec.convert(values, kind, strict=False)
    except msgspec.ValidationError as error:
        raise ExchangeError(ErrorCode.INVALID_ARGS, str(error)) from None


def _decode(decoder: msgspec.json.Decoder[Any], body: bytes) -> Any:
    try:
        return decoder.decode(body)
    except msgspec.ValidationError as error:
        raise ExchangeError(ErrorCode.INVALID_ARGS, str(error)) from None
    except msgspec.DecodeError as error:
        raise ExchangeError(ErrorCode.MALFORMED_JSON, str(error)) from None
