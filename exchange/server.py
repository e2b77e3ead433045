"""The WebSocket endpoint: sessions that log in, place and cancel orders, and hear their fills.

Each session has one send queue (its outbox), so replies and execution reports leave in the
order they were made. Whatever a loop iteration pushes leaves in one write at its end: the session
frames the messages itself (binary, unmasked, uncompressed, as aiohttp's writer would) and hands
them to the transport together, as a send() per frame cost the server more than serving the
requests. Messages stay in the outbox only while the transport is over its high-water mark,
that is while the client has not read what it was sent; past SEND_QUEUE of them the session is
closed (1013, try again later), never the engine slowed, so a client that stops reading costs
the server a bounded amount and no one else anything.
A session that has been sent nothing for a second is sent a heartbeat, so a client can tell a
quiet market from a dead connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import struct
import time
from collections.abc import AsyncIterator, Callable, Coroutine

import msgspec
from aiohttp import WebSocketError, WSCloseCode, WSMsgType, web
from prometheus_client import CONTENT_TYPE_LATEST

from exchange import protocol, public_pages, rest
from exchange.admission import Admission
from exchange.console import routes as console
from exchange.endpoint import MAX_BODY, SESSION_COOKIE, UNREACHED, browser_session
from exchange.engine import OrderRequest
from exchange.errors import ErrorCode, ExchangeError
from exchange.journal import JournalError
from exchange.limits import TokenBucket
from exchange.service import EXCHANGE_KEY, Exchange
from exchange.settler import UNREACHABLE
from matching import CancelAll, Cancelled, Event, RejectCode, Rejected

log = logging.getLogger(__name__)
_encode = msgspec.json.Encoder().encode
_session_ids = itertools.count(1)

MAX_FRAME = 16 * 1024
SEND_QUEUE = 1_024
MAX_IN_FLIGHT = 256  # requests of one session being served at once
HEARTBEAT_S = 1.0
BROWSER_CHECK_S = 10.0
# isinstance with tuples: a union written inline is built again on each request
_SUBSCRIPTIONS = (protocol.Subscribe, protocol.Unsubscribe)
_ONE_ORDER = (protocol.Cancel, protocol.Amend)


class Session:
    def __init__(self, ws: web.WebSocketResponse, exchange: Exchange, request: web.Request) -> None:
        self.ws = ws
        self.exchange = exchange
        self.account_id: int | None = None
        self.id = next(_session_ids)
        limits = exchange.limits
        self.bucket = TokenBucket(limits.session_per_second, limits.session_burst)
        self._account_bucket: TokenBucket | None = None  # the logged-in account's
        self._closing = False
        self._loop = asyncio.get_running_loop()
        self.request = request
        self.outbox: list[bytes] = []  # messages not yet handed to the transport
        self._flushing = False  # a flush is scheduled, or waits for the transport to drain
        self._drainer: asyncio.Task[None] | None = None
        self.in_flight = 0  # requests handed to the engine, not yet answered
        self._fewer: asyncio.Future[None] | None = None  # the reader waits for in_flight to fall
        self.last_sent = self._loop.time()
        exchange.queues[self.id] = self.outbox
        exchange.metrics.connections.inc()
        self._unfollow: Callable[[], None] = _nothing

    def push(self, data: bytes) -> None:
        """Send `data` in a frame, after everything pushed before it."""
        if self._closing:
            return
        outbox = self.outbox
        outbox.append(data)
        if self._drainer is not None:
            if len(outbox) > SEND_QUEUE:
                self._slow_consumer()
        elif not self._flushing:
            self._flushing = True
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        """Write the outbox in one go, unless the transport must drain first: the client has
        not read what it was sent. What waits for it then is bounded by SEND_QUEUE."""
        self._drainer = None
        transport = self.request.transport
        if transport is None or transport.is_closing() or self._closing:
            self.outbox.clear()  # the connection is going: nothing more is sent
            self._flushing = False
            return
        if self.request.protocol.writing_paused:
            if len(self.outbox) > SEND_QUEUE:
                self._slow_consumer()
            else:
                self._drainer = self._loop.create_task(self._drain())
            return
        self._flushing = False
        transport.write(frames(self.outbox))
        self.outbox.clear()
        self.last_sent = self._loop.time()

    async def _drain(self) -> None:
        with contextlib.suppress(ConnectionError):
            await self.request.writer.drain()
        self._flush()

    def _slow_consumer(self) -> None:
        self._closing = True
        self.outbox.clear()
        self.exchange.metrics.slow_consumers.inc()
        self._unfollow()
        self.exchange.market_data.drop(self.id)
        self._loop.create_task(
            self.ws.close(code=WSCloseCode.TRY_AGAIN_LATER, message=b"slow consumer")
        )

    def close(self) -> None:
        self._unfollow()
        self.exchange.market_data.drop(self.id)
        self.exchange.queues.pop(self.id, None)
        self.exchange.metrics.connections.dec()
        if self._drainer is not None:
            self._drainer.cancel()

    def serve(self, frame: bytes | str) -> Coroutine[None, None, None] | None:
        """Serve one request: answered at once, or by the engine once it has applied the input.
        A login is returned to be awaited: the session's next requests wait for it."""
        request = protocol.decode(frame)
        wait_ms = self.bucket.take()
        if not wait_ms and self._account_bucket is not None:
            wait_ms = self._account_bucket.take()
        if wait_ms:
            op = "?" if isinstance(request, protocol.ProtocolError) else request.op
            self._reply(
                op,
                protocol.refused(
                    request.req_id, ErrorCode.RATE_LIMITED, "too many requests", wait_ms
                ),
            )
        elif isinstance(request, protocol.ProtocolError):
            self._reply(
                "?", protocol.refused(request.req_id, request.error.code, request.error.msg)
            )
        elif isinstance(request.args, protocol.Login):
            return self._login(request.req_id, request.args)
        else:
            try:
                reply = self._serve(request)
            except Exception as error:
                reply = _refusal(request.req_id, request.op, error)
            if reply is not None:
                self._reply(request.op, reply)
        return None

    def _reply(self, op: str, reply: protocol.Reply) -> None:
        outcome = "ok" if reply.error is None else reply.error.code
        self.exchange.metrics.count_request(op, outcome)
        self.push(protocol.encode(reply))

    def _serve(self, request: protocol.Request) -> protocol.Reply | None:
        """The reply, or None if the engine will answer (`_answered`)."""
        args, req_id = request.args, request.req_id
        if isinstance(args, protocol.Ping):
            return protocol.ok(req_id, "pong")
        if isinstance(args, _SUBSCRIPTIONS):
            return self._subscription(req_id, args)
        account_id = self.account_id
        if account_id is None:
            raise ExchangeError(ErrorCode.AUTH_REQUIRED, "log in first")
        engine = self.exchange.engine
        answer = _Answer(self, req_id, request.op)
        if isinstance(args, protocol.NewOrder):
            order_id = engine.submit_order(account_id, _order_request(args), answer)
            answer.result = {"order_id": order_id}
        elif isinstance(args, _ONE_ORDER):
            target = args.order_id
            if target is None and args.cl_ord_id is not None:
                target = engine.order_id_for(account_id, args.cl_ord_id)
            if target is None:
                return protocol.refused(
                    req_id, RejectCode.ORDER_MUST_EXIST.value, "no such cl_ord_id"
                )
            if isinstance(args, protocol.Amend):
                engine.submit_amend(
                    account_id, args.symbol, target, args.quantity, args.price, answer
                )
            else:
                engine.submit_cancel(account_id, args.symbol, target, answer)
            answer.result = {"order_id": target}
        elif isinstance(args, protocol.CancelAll):
            engine.submit(args.symbol, CancelAll(engine.now_ns(), account_id), answer)
        self.in_flight += 1
        return None

    def _answered(self, answer: _Answer, events: list[Event], error: Exception | None) -> None:
        """The engine has applied (or could not journal) a request of this session's."""
        self.in_flight -= 1
        if error is not None:
            reply = _refusal(answer.req_id, answer.op, error)
        elif answer.result is None:  # a cancel-all
            cancelled = sum(isinstance(e, Cancelled) for e in events)
            reply = _answer(answer.req_id, events, {"cancelled": cancelled})
        else:
            reply = _answer(answer.req_id, events, answer.result)
        self._reply(answer.op, reply)
        fewer = self._fewer
        if fewer is not None and self.in_flight < MAX_IN_FLIGHT:
            self._fewer = None
            if not fewer.done():
                fewer.set_result(None)

    async def fewer_in_flight(self) -> None:
        """Return once fewer than MAX_IN_FLIGHT requests wait for the engine."""
        while self.in_flight >= MAX_IN_FLIGHT:
            self._fewer = self._loop.create_future()
            await self._fewer

    def _subscription(
        self, req_id: protocol.RequestId | None, args: protocol.Subscribe | protocol.Unsubscribe
    ) -> protocol.Reply:
        market_data = self.exchange.market_data
        unknown = [name for name in args.channels if market_data.channel_of(name) is None]
        if unknown:
            return protocol.refused(
                req_id,
                ErrorCode.UNKNOWN_CHANNEL,
                f"no channel {unknown[0]!r}; channels are book:, trades: and bars: SYMBOL",
            )
        for name in args.channels:
            if isinstance(args, protocol.Subscribe):
                market_data.subscribe(name, self.id, self.push)
            else:
                market_data.unsubscribe(name, self.id)
        return protocol.ok(req_id, {"channels": args.channels})

    async def _login(self, req_id: protocol.RequestId | None, args: protocol.Login) -> None:
        try:
            account_id = await self.exchange.authenticate(
                args.api_key, args.timestamp_ms, args.nonce, args.signature
            )
        except Exception as error:
            self._reply("login", _refusal(req_id, "login", error))
            return
        self.sign_in(account_id)
        self._reply("login", protocol.ok(req_id, {"account_id": account_id}))

    def sign_in(self, account_id: int) -> None:
        self._unfollow()
        self.account_id = account_id
        self._account_bucket = self.exchange.account_bucket(account_id)
        self._unfollow = self.exchange.follow(account_id, self.push)


class _Answer:
    """What the engine tells once it has applied a request: the session to reply in, and the
    reply's id, op and result (None: a cancel-all's count, known only then)."""

    __slots__ = ("op", "req_id", "result", "session")

    def __init__(self, session: Session, req_id: protocol.RequestId | None, op: str) -> None:
        self.session = session
        self.req_id = req_id
        self.op = op
        self.result: dict[str, int] | None = None

    def __call__(self, events: list[Event], error: Exception | None) -> None:
        self.session._answered(self, events, error)


def _refusal(req_id: protocol.RequestId | None, op: str, error: Exception) -> protocol.Reply:
    """The reply to a request that raised `error` (or that the engine failed with it)."""
    if isinstance(error, ExchangeError):
        return protocol.refused(req_id, error.code, error.message)
    if isinstance(error, JournalError):
        return protocol.refused(req_id, ErrorCode.JOURNAL_UNAVAILABLE, str(error), 1_000)
    if isinstance(error, UNREACHABLE):
        log.warning("request %r: the database is out of reach: %r", op, error)
        return protocol.refused(req_id, ErrorCode.DATABASE_UNAVAILABLE, UNREACHED, 1_000)
    log.error("request %r failed", op, exc_info=error)
    return protocol.refused(req_id, ErrorCode.INTERNAL_ERROR, "the exchange could not serve this")


def _nothing() -> None:
    pass


def _order_request(args: protocol.NewOrder) -> OrderRequest:
    return OrderRequest(
        args.symbol,
        args.cl_ord_id,
        args.side,
        args.quantity,
        args.price,
        args.type,
        args.tif,
        args.post_only,
        args.stp,
    )


def _answer(
    req_id: protocol.RequestId | None, events: list[Event], result: object
) -> protocol.Reply:
    """The reply to an order command: refused with the book's code if the book refused it."""
    for event in events:
        if isinstance(event, Rejected):
            return protocol.refused(req_id, event.code.value, "refused by the book")
    return protocol.ok(req_id, result)


async def websocket(request: web.Request) -> web.StreamResponse:
    """A session, if the caps on open sessions admit one from the caller's address."""
    admission, address = request.app[ADMISSION_KEY], request.remote or ""
    refusal = admission.enter(address)
    if refusal is not None:
        return refusal
    try:
        return await _session(request)
    finally:
        admission.leave(address)


async def _session(request: web.Request) -> web.WebSocketResponse:
    # aiohttp refuses a frame whose size reaches max_msg_size, so one more lets MAX_FRAME itself
    # through; without compression the limit counts the bytes on the wire, and no client makes
    # the server inflate its frames or deflate every message it is sent
    ws = web.WebSocketResponse(max_msg_size=MAX_FRAME + 1, heartbeat=30, compress=False)
    await ws.prepare(request)
    session = Session(ws, request.app[EXCHANGE_KEY], request)
    browser = await _follow_browser(request, session)
    sessions = request.app[SESSIONS_KEY]
    sessions.add(session)
    # Requests are read and handed to the engine one after another, without waiting for their
    # replies, so that a session's orders share journal commits; the engine answers each once
    # its group is durable and applied. Past MAX_IN_FLIGHT unanswered, reading stops and TCP
    # pushes back.
    try:
        async for message in ws:
            if message.type in (WSMsgType.TEXT, WSMsgType.BINARY):
                login = session.serve(message.data)
                if login is not None:
                    await login
                if session.in_flight >= MAX_IN_FLIGHT:
                    await session.fewer_in_flight()
            elif message.type is WSMsgType.ERROR and isinstance(message.data, WebSocketError):
                session.exchange.metrics.closes.labels(_close_reason(message.data)).inc()
    finally:
        # requests under way finish (an order may already be journaled); their replies go nowhere
        session.close()
        sessions.discard(session)
        if browser is not None:
            browser.cancel()
    return ws


async def _follow_browser(request: web.Request, session: Session) -> asyncio.Task[None] | None:
    """Sign the web console's person in, when the upgrade comes from a page of this exchange
    with a live session cookie (a page of another site may open the socket, but its Origin
    gives it away); then close the socket, 1008, within `BROWSER_CHECK_S` of that session
    ending: signed out, a new password, expired. While the page is open its session is in use.
    The task that watches, or None."""
    exchange = request.app[EXCHANGE_KEY]
    origins = {f"{request.scheme}://{request.host}"}
    if exchange.certifier is not None:  # the address people reach it at, behind a proxy
        origins.add(exchange.certifier.public_url.rstrip("/"))
    if SESSION_COOKIE not in request.cookies or request.headers.get("Origin") not in origins:
        return None
    try:
        account_id = (await browser_session(request, exchange)).account_id
    except (ExchangeError, *UNREACHABLE):
        return None
    session.sign_in(account_id)

    async def watch() -> None:
        while True:
            await asyncio.sleep(BROWSER_CHECK_S)
            try:
                await browser_session(request, exchange)
            except UNREACHABLE:
                continue  # the database is restarting: the session is checked again later
            except ExchangeError:
                await session.ws.close(
                    code=WSCloseCode.POLICY_VIOLATION, message=b"the session ended: sign in"
                )
                return

    return asyncio.create_task(watch(), name=f"browser-{session.id}")


def _close_reason(error: WebSocketError) -> str:
    """Why aiohttp closed a session for what it read: a frame over MAX_FRAME (1009), or one
    that breaks the WebSocket protocol (1002, 1007)."""
    return "frame_too_big" if error.code == WSCloseCode.MESSAGE_TOO_BIG else "protocol_error"


_SHORT, _MEDIUM, _LONG = struct.Struct("!BB"), struct.Struct("!BBH"), struct.Struct("!BBQ")
_BINARY_FINAL = 0x82


def frames(messages: list[bytes]) -> bytes:
    """`messages` as consecutive binary WebSocket frames, as a server sends them (RFC 6455 5.2:
    final, unmasked; the length in 7, 16 or 64 bits).

    >>> frames([b"ab", b""])
    b'\\x82\\x02ab\\x82\\x00'
    """
    parts = []
    for data in messages:
        size = len(data)
        if size < 126:
            parts.append(_SHORT.pack(_BINARY_FINAL, size))
        elif size < 65_536:
            parts.append(_MEDIUM.pack(_BINARY_FINAL, 126, size))
        else:
            parts.append(_LONG.pack(_BINARY_FINAL, 127, size))
        parts.append(data)
    return b"".join(parts)


async def metrics(request: web.Request) -> web.Response:
    body = request.app[EXCHANGE_KEY].metrics.render()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def heartbeats(app: web.Application) -> AsyncIterator[None]:
    """Every second, a heartbeat to each session that has been sent nothing for a second."""

    async def beat() -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(HEARTBEAT_S / 2)
            idle_since = loop.time() - HEARTBEAT_S
            quiet = [s for s in app[SESSIONS_KEY] if s.last_sent <= idle_since and not s.outbox]
            if quiet:
                message = _encode(protocol.Heartbeat(time.time_ns()))
                for session in quiet:
                    session.push(message)

    task = asyncio.create_task(beat(), name="heartbeats")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


SESSIONS_KEY = web.AppKey("sessions", set[Session])
ADMISSION_KEY = web.AppKey("admission", Admission)


def build_app(exchange: Exchange) -> web.Application:
    app = web.Application(client_max_size=MAX_BODY)
    app[EXCHANGE_KEY] = exchange
    app[SESSIONS_KEY] = set()
    app[ADMISSION_KEY] = Admission(exchange.limits, exchange.metrics)
    app.cleanup_ctx.append(heartbeats)
    app.router.add_get("/ws", websocket)
    app.router.add_get("/metrics", metrics)
    rest.add_routes(app)
    public_pages.add_routes(app)
    console.add_routes(app)
    return app
