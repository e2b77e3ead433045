"""The WebSocket endpoint: sessions that log in, place and cancel orders, and hear their fills.

Each session has one bounded send queue and one task draining it, so replies and execution
reports leave in the order they were made, and a client that stops reading fills only its own
queue: when it is full the session is closed (1013, try again later), never the engine slowed.
A session that has been sent nothing for a second is sent a heartbeat, so a client can tell a
quiet market from a dead connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import AsyncIterator, Callable

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


class Session:
    def __init__(self, ws: web.WebSocketResponse, exchange: Exchange) -> None:
        self.ws = ws
        self.exchange = exchange
        self.account_id: int | None = None
        self.id = next(_session_ids)
        limits = exchange.limits
        self.bucket = TokenBucket(limits.session_per_second, limits.session_burst)
        self._closing = False
        self.queue: asyncio.Queue[bytes] = asyncio.Queue(SEND_QUEUE)
        self.last_sent = asyncio.get_running_loop().time()
        exchange.queues.add(self.queue)
        exchange.metrics.connections.inc()
        self._unfollow: Callable[[], None] = _nothing

    def push(self, data: bytes) -> None:
        if self._closing:
            return
        try:
            self.queue.put_nowait(data)
        except asyncio.QueueFull:
            self._closing = True
            self.exchange.metrics.slow_consumers.inc()
            self._unfollow()
            self.exchange.market_data.drop(self.id)
            asyncio.get_running_loop().create_task(
                self.ws.close(code=WSCloseCode.TRY_AGAIN_LATER, message=b"slow consumer")
            )

    async def send_forever(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self.ws.send_bytes(await self.queue.get())
            self.last_sent = loop.time()

    def close(self) -> None:
        self._unfollow()
        self.exchange.market_data.drop(self.id)
        self.exchange.queues.discard(self.queue)
        self.exchange.metrics.connections.dec()

    async def handle(self, frame: bytes | str) -> bytes:
        request = protocol.decode(frame)
        wait_ms = self.bucket.take()
        if not wait_ms and self.account_id is not None:
            wait_ms = self.exchange.account_bucket(self.account_id).take()
        if wait_ms:
            op = "?" if isinstance(request, protocol.ProtocolError) else request.op
            reply = protocol.refused(
                request.req_id, ErrorCode.RATE_LIMITED, "too many requests", wait_ms
            )
        elif isinstance(request, protocol.ProtocolError):
            op = "?"
            reply = protocol.refused(request.req_id, request.error.code, request.error.msg)
        else:
            op = request.op
            reply = await self._serve(request)
        outcome = "ok" if reply.error is None else reply.error.code
        self.exchange.metrics.count_request(op, outcome)
        return protocol.encode(reply)

    async def _serve(self, request: protocol.Request) -> protocol.Reply:
        args, req_id = request.args, request.req_id
        try:
            if isinstance(args, protocol.Ping):
                return protocol.ok(req_id, "pong")
            if isinstance(args, protocol.Login):
                return protocol.ok(req_id, {"account_id": await self._login(args)})
            if isinstance(args, protocol.Subscribe | protocol.Unsubscribe):
                return self._subscription(req_id, args)
            account_id = self.account_id
            if account_id is None:
                raise ExchangeError(ErrorCode.AUTH_REQUIRED, "log in first")
            return await self._trade(req_id, account_id, args)
        except ExchangeError as error:
            return protocol.refused(req_id, error.code, error.message)
        except JournalError as error:
            return protocol.refused(req_id, ErrorCode.JOURNAL_UNAVAILABLE, str(error), 1_000)
        except UNREACHABLE as error:
            log.warning("request %r: the database is out of reach: %r", request.op, error)
            return protocol.refused(req_id, ErrorCode.DATABASE_UNAVAILABLE, UNREACHED, 1_000)
        except Exception:
            log.exception("request %r failed", request.op)
            return protocol.refused(
                req_id, ErrorCode.INTERNAL_ERROR, "the exchange could not serve this"
            )

    async def _trade(
        self,
        req_id: protocol.RequestId | None,
        account_id: int,
        args: protocol.NewOrder | protocol.Cancel | protocol.Amend | protocol.CancelAll,
    ) -> protocol.Reply:
        engine = self.exchange.engine
        if isinstance(args, protocol.NewOrder):
            order_id, events = await engine.new_order(account_id, _order_request(args))
            return _answer(req_id, events, {"order_id": order_id})
        if isinstance(args, protocol.Cancel | protocol.Amend):
            target = args.order_id
            if target is None and args.cl_ord_id is not None:
                target = engine.order_id_for(account_id, args.cl_ord_id)
            if target is None:
                return protocol.refused(
                    req_id, RejectCode.ORDER_MUST_EXIST.value, "no such cl_ord_id"
                )
            if isinstance(args, protocol.Amend):
                events = await engine.amend(
                    account_id, args.symbol, target, args.quantity, args.price
                )
            else:
                events = await engine.cancel(account_id, args.symbol, target)
            return _answer(req_id, events, {"order_id": target})
        events = await engine.operate(args.symbol, CancelAll(engine.now_ns(), account_id))
        return _answer(req_id, events, {"cancelled": sum(isinstance(e, Cancelled) for e in events)})

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

    async def _login(self, args: protocol.Login) -> int:
        account_id = await self.exchange.authenticate(
            args.api_key, args.timestamp_ms, args.nonce, args.signature
        )
        self.sign_in(account_id)
        return account_id

    def sign_in(self, account_id: int) -> None:
        self._unfollow()
        self.account_id = account_id
        self._unfollow = self.exchange.follow(account_id, self.push)


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
    session = Session(ws, request.app[EXCHANGE_KEY])
    browser = await _follow_browser(request, session)
    sessions = request.app[SESSIONS_KEY]
    sessions.add(session)
    sender = asyncio.create_task(session.send_forever())
    # Requests are served concurrently, so that one session's orders can share a journal commit;
    # each takes its sequence number before its first wait, so they still apply in arrival order.
    in_flight = asyncio.Semaphore(MAX_IN_FLIGHT)
    serving: set[asyncio.Task[None]] = set()

    async def serve(frame: bytes | str) -> None:
        try:
            session.push(await session.handle(frame))
        finally:
            in_flight.release()

    try:
        async for message in ws:
            if message.type in (WSMsgType.TEXT, WSMsgType.BINARY):
                await in_flight.acquire()  # past the limit, stop reading: TCP pushes back
                task = asyncio.create_task(serve(message.data))
                serving.add(task)
                task.add_done_callback(serving.discard)
            elif message.type is WSMsgType.ERROR and isinstance(message.data, WebSocketError):
                session.exchange.metrics.closes.labels(_close_reason(message.data)).inc()
    finally:
        # requests under way finish (an order may already be journaled); their replies go nowhere
        session.close()
        sessions.discard(session)
        sender.cancel()
        if browser is not None:
            browser.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionResetError):
            await sender
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
            quiet = [s for s in app[SESSIONS_KEY] if s.last_sent <= idle_since and s.queue.empty()]
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
