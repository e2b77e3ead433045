"""The exchange's Python client: one WebSocket session, its requests and what the server pushes.

    async with connect("ws://127.0.0.1:8080/ws", key_id, secret) as client:
        order_id = await client.new_order("SZCER-2025", "c-1", Side.BUY, 10, 5_010)
        async for message in client.messages():
            ...

Each request gets a fresh `req_id` (1, 2, 3… in call order) and a future; one reader task
resolves the futures as the replies arrive, so any number of requests may be in flight at once
(`asyncio.gather` pipelines them) and throughput is bounded by the server, not by round trips.
A refusal raises `Refused` with the stable code; a connection that closes fails every request
still waiting with `ConnectionClosedError`.

The server journals orders, cancels, amends and cancel-alls of a session in the order they
arrive and answers them in that order; a ping, a subscription or a refusal decided before the
journal (a bad argument, a rate limit, a reservation the account cannot cover) may overtake
them. The execution reports an order causes reach its own session before its reply.

Everything else the server sends is decoded into its struct (`Push`) and kept, in arrival order,
for `receive()` / `messages()`; heartbeats only move `last_heard`. At most `buffer` messages are
kept: past that the oldest are dropped and counted in `dropped` (a book mirror sees the gap in
sequence numbers and resubscribes), so a client that never reads them cannot grow without bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import secrets
import time
from collections import deque
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import msgspec
from yarl import URL

from exchange.auth import HttpRequest, sign, sign_request
from exchange.errors import ErrorCode
from exchange.market_data import Bar, BookDelta, BookSnapshot, TradePrint
from exchange.protocol import Heartbeat
from exchange.reports import BalanceUpdate, ExecutionReport
from matching import OrderType, Side, StpMode, TimeInForce

log = logging.getLogger(__name__)

BUFFER = 100_000  # pushed messages kept for the reader; then the oldest go


Push = ExecutionReport | BalanceUpdate | BookSnapshot | BookDelta | TradePrint | Bar


class _Error(msgspec.Struct):
    code: str
    msg: str = ""
    retry_after_ms: int | None = None


class _Reply(msgspec.Struct):
    """A reply, or (with a `type`) a pushed message to decode again as what it is: replies, the
    most frequent frames, are read once."""

    type: str | None = None
    ok: bool = False
    req_id: int | str | None = None
    result: Any = None
    error: _Error | None = None


_reply = msgspec.json.Decoder(_Reply).decode
_push = msgspec.json.Decoder(Push | Heartbeat).decode
_encode = msgspec.json.Encoder().encode


class ClientError(Exception):
    """What the client raises about the exchange or the connection."""


class Refused(ClientError):  # noqa: N818 - an answer, not a failure: `except Refused`
    """The server refused a request. `code` is stable (see docs/protocol.md); `msg` is for
    people; `retry_after_ms` says when to try again, where that is known."""

    def __init__(self, code: str, msg: str, retry_after_ms: int | None = None) -> None:
        super().__init__(f"{code}: {msg}")
        self.code = code
        self.msg = msg
        self.retry_after_ms = retry_after_ms


class ConnectionClosedError(ClientError):
    """The connection closed; `code` is the WebSocket close code, if one was received."""

    def __init__(self, code: int | None) -> None:
        super().__init__(f"the connection is closed (code {code})")
        self.code = code


def rest_headers(key_id: str, secret: bytes, request: HttpRequest) -> dict[str, str]:
    """The headers that sign a REST request (docs/exchange.md, REST): the key, a fresh
    timestamp and nonce, and the signature over them and the request."""
    timestamp_ms, nonce = time.time_ns() // 1_000_000, secrets.token_hex(16)
    return {
        "X-CERX-Key": key_id,
        "X-CERX-Timestamp": str(timestamp_ms),
        "X-CERX-Nonce": nonce,
        "X-CERX-Signature": sign_request(secret, timestamp_ms, nonce, key_id, request),
    }


TOO_MANY_SESSIONS_STATUS = 429  # an upgrade refused for a cap on open sessions (docs/protocol.md)


class Client:
    """One WebSocket session. Make it with `connect`."""

    def __init__(
        self,
        http: aiohttp.ClientSession,
        ws: aiohttp.ClientWebSocketResponse[bool],
        url: URL,
        buffer: int,
    ) -> None:
        self.account_id: int | None = None
        self.last_heard = time.monotonic()  # when the server was last heard from
        self.dropped = 0  # pushed messages dropped because `buffer` were unread
        self._http = http
        self._ws = ws
        self._rest_base = url.with_scheme(
            {"ws": "http", "wss": "https"}.get(url.scheme, url.scheme)
        )
        self._key: tuple[str, bytes] | None = None
        self._req_ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[_Reply]] = {}
        self._inbox: deque[Push] = deque(maxlen=buffer)
        self._arrived = asyncio.Event()
        self._closed = False
        self._reader = asyncio.create_task(self._read(), name="cerx-client-reader")

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def close_code(self) -> int | None:
        return self._ws.close_code

    async def close(self) -> None:
        await self._ws.close()
        await self._reader

    # -- requests ------------------------------------------------------------------------------

    async def request(self, op: str, args: dict[str, Any]) -> Any:
        """Send one request and return its result; a refusal raises `Refused`."""
        req_id = next(self._req_ids)
        reply: asyncio.Future[_Reply] = asyncio.get_running_loop().create_future()
        self._pending[req_id] = reply
        try:
            if self._closed:  # the reader has stopped: nothing would answer
                raise ConnectionClosedError(self.close_code)
            try:
                await self._ws.send_bytes(_encode({"op": op, "req_id": req_id, "args": args}))
            except ConnectionResetError:
                raise ConnectionClosedError(self.close_code) from None
            answer = await reply
        finally:
            del self._pending[req_id]
        if answer.error is not None:
            error = answer.error
            raise Refused(error.code, error.msg, error.retry_after_ms)
        return answer.result

    async def login(self, key_id: str, secret: bytes) -> int:
        """Log in with an API key (signed as exchange/auth.py says); the account's id."""
        timestamp_ms, nonce = time.time_ns() // 1_000_000, secrets.token_hex(16)
        result = await self.request(
            "login",
            {
                "api_key": key_id,
                "timestamp_ms": timestamp_ms,
                "nonce": nonce,
                "signature": sign(secret, timestamp_ms, nonce, key_id),
            },
        )
        self.account_id = int(result["account_id"])
        self._key = (key_id, secret)
        return self.account_id

    async def new_order(
        self,
        symbol: str,
        cl_ord_id: str,
        side: Side,
        quantity: int,
        price: int | None = None,
        type: OrderType = OrderType.LIMIT,
        tif: TimeInForce = TimeInForce.GTC,
        post_only: bool = False,
        stp: StpMode = StpMode.CANCEL_NEWEST,
    ) -> int:
        """Enter an order (quantity in tonnes, price in fen per tonne); its order id. Sending
        the same `cl_ord_id` with the same order again returns the same id, once durable."""
        args: dict[str, Any] = {
            "symbol": symbol,
            "cl_ord_id": cl_ord_id,
            "side": side,
            "quantity": quantity,
            "type": type,
            "tif": tif,
            "post_only": post_only,
            "stp": stp,
        }
        if price is not None:
            args["price"] = price
        return int((await self.request("new_order", args))["order_id"])

    async def cancel(
        self, symbol: str, order_id: int | None = None, cl_ord_id: str | None = None
    ) -> int:
        """Cancel one of the account's orders, named by exactly one of its ids; its order id."""
        args = _named(symbol, order_id, cl_ord_id)
        return int((await self.request("cancel", args))["order_id"])

    async def amend(
        self,
        symbol: str,
        quantity: int,
        price: int | None = None,
        order_id: int | None = None,
        cl_ord_id: str | None = None,
    ) -> int:
        """Change a resting order's total quantity (filled included) and optionally its price;
        its order id. Quantity down at the same price keeps its place in the queue."""
        args = _named(symbol, order_id, cl_ord_id) | {"quantity": quantity}
        if price is not None:
            args["price"] = price
        return int((await self.request("amend", args))["order_id"])

    async def cancel_all(self, symbol: str) -> int:
        """Cancel every order the account has resting in `symbol`; how many were."""
        return int((await self.request("cancel_all", {"symbol": symbol}))["cancelled"])

    async def subscribe(self, *channels: str) -> list[str]:
        """Subscribe to public channels: `book:SYMBOL`, `trades:SYMBOL`, `bars:SYMBOL`. A book
        channel's snapshot is pushed before this returns; subscribing again sends a fresh one."""
        return list((await self.request("subscribe", {"channels": list(channels)}))["channels"])

    async def unsubscribe(self, *channels: str) -> list[str]:
        return list((await self.request("unsubscribe", {"channels": list(channels)}))["channels"])

    async def ping(self) -> None:
        """A round trip. Everything the session was sent before the reply has arrived by then."""
        await self.request("ping", {})

    async def rest_get(self, path: str) -> Any:
        """GET a signed REST path such as `/api/v1/account` with the login's key; its result."""
        if self._key is None:
            raise ClientError("log in first: REST requests are signed with the login's key")
        url = self._rest_base.with_path(path)
        headers = rest_headers(*self._key, HttpRequest("GET", url.raw_path_qs, b""))
        async with self._http.get(url, headers=headers) as response:
            answer = _reply(await response.read())
        if answer.error is not None:
            error = answer.error
            raise Refused(error.code, error.msg, error.retry_after_ms)
        return answer.result

    async def rest_post(self, path: str, body: Any, idempotency_key: str | None = None) -> Any:
        """POST `body` (as JSON) to a signed REST path with the login's key; its result. The
        write is recorded under `idempotency_key` (a fresh one if none): sending it again with
        the same key changes nothing and answers the same."""
        if self._key is None:
            raise ClientError("log in first: REST requests are signed with the login's key")
        url = self._rest_base.with_path(path)
        data = _encode(body)
        headers = rest_headers(*self._key, HttpRequest("POST", url.raw_path_qs, data))
        headers["Idempotency-Key"] = idempotency_key or secrets.token_hex(16)
        headers["Content-Type"] = "application/json"
        async with self._http.post(url, data=data, headers=headers) as response:
            answer = _reply(await response.read())
        if answer.error is not None:
            error = answer.error
            raise Refused(error.code, error.msg, error.retry_after_ms)
        return answer.result

    # -- pushed messages -----------------------------------------------------------------------

    async def receive(self) -> Push:
        """The next pushed message; `ConnectionClosedError` once the connection has closed and every
        message has been read."""
        while not self._inbox:
            if self._closed:
                raise ConnectionClosedError(self.close_code)
            self._arrived.clear()
            await self._arrived.wait()
        return self._inbox.popleft()

    async def messages(self) -> AsyncIterator[Push]:
        """Pushed messages in arrival order, until the connection has closed."""
        while True:
            try:
                message = await self.receive()
            except ConnectionClosedError:
                return
            yield message

    def received(self) -> list[Push]:
        """Every pushed message that has arrived and not been read, without waiting."""
        messages = list(self._inbox)
        self._inbox.clear()
        return messages

    async def _read(self) -> None:
        try:
            async for message in self._ws:
                if message.type is aiohttp.WSMsgType.ERROR:
                    break
                if message.type in (aiohttp.WSMsgType.BINARY, aiohttp.WSMsgType.TEXT):
                    self._dispatch(message.data)
        finally:
            self._closed = True
            closed = ConnectionClosedError(self.close_code)
            for reply in self._pending.values():
                if not reply.done():
                    reply.set_exception(closed)
            self._arrived.set()

    def _dispatch(self, data: bytes | str) -> None:
        self.last_heard = time.monotonic()
        try:
            answer = _reply(data)
            if answer.type is None:
                reply = self._pending.get(answer.req_id) if isinstance(answer.req_id, int) else None
                if reply is not None and not reply.done():
                    reply.set_result(answer)
                return
            message = _push(data)
        except msgspec.DecodeError as error:
            # a newer server's message kind, say: worth a line in the log, not the session
            log.warning("ignored a frame the client cannot read (%s): %.200r", error, data)
            return
        if isinstance(message, Heartbeat):
            return
        if len(self._inbox) == self._inbox.maxlen:
            self.dropped += 1
        self._inbox.append(message)
        self._arrived.set()


def _named(symbol: str, order_id: int | None, cl_ord_id: str | None) -> dict[str, Any]:
    args: dict[str, Any] = {"symbol": symbol}
    if order_id is not None:
        args["order_id"] = order_id
    if cl_ord_id is not None:
        args["cl_ord_id"] = cl_ord_id
    return args


@contextlib.asynccontextmanager
async def connect(
    url: str | URL,
    key_id: str | None = None,
    secret: bytes | None = None,
    *,
    http: aiohttp.ClientSession | None = None,
    buffer: int = BUFFER,
) -> AsyncIterator[Client]:
    """A session with the server at `url` (`ws://HOST:PORT/ws`), logged in if a key is given
    (public market data needs none). `http` shares one aiohttp session among many clients."""
    async with contextlib.AsyncExitStack() as stack:
        if http is None:
            http = await stack.enter_async_context(aiohttp.ClientSession())
        try:
            ws = await http.ws_connect(url, max_msg_size=0, decode_text=False)
        except aiohttp.WSServerHandshakeError as error:
            if error.status != TOO_MANY_SESSIONS_STATUS:
                raise
            # the refusal's JSON body does not reach a handshake error; its status says it all
            after_s = error.headers.get("Retry-After", "") if error.headers else ""
            retry_after_ms = (
                1_000 * int(after_s) if after_s.isascii() and after_s.isdigit() else 1_000
            )
            raise Refused(
                ErrorCode.TOO_MANY_SESSIONS, "too many sessions open; try again", retry_after_ms
            ) from None
        client = Client(http, ws, URL(url), buffer)
        stack.push_async_callback(client.close)
        if key_id is not None:
            if secret is None:
                raise ValueError("a key id needs its secret")
            await client.login(key_id, secret)
        yield client
