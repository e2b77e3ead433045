"""The load's clients, made for locust's world: a WebSocket session and signed REST calls, each
request reported to locust under its kind, each refusal under its code.

Locust runs every user as a greenlet on one thread, with the standard library patched by gevent
so that blocking sockets yield to the other users. `exchange.client` cannot live there: it is
asyncio, and asyncio keeps one running loop per thread, so a second user calling `asyncio.run`
in its greenlet is refused ("cannot be called from a running event loop"); one loop on a thread
of its own would put a thread hop on every request's measured latency. So the WebSocket session
here is `websocket-client`, a plain synchronous client that gevent's sockets make cooperative,
with one reader greenlet per session that hands replies to their waiting requests by `req_id`
and pushed messages to the user. REST calls go through locust's `FastHttpSession`
(geventhttpclient), signed as `exchange.client.rest_headers` signs them.

A lost connection fails every request still waiting for its reply with `Lost`: whether the server
took such a request is unknown, and the caller decides what to send again (a new order, with its
client order id, is safe to send again; a REST write, with its idempotency key).
"""

from __future__ import annotations

import itertools
import secrets
import socket
import time
from collections.abc import Callable
from typing import Any

import gevent
import gevent.event
import msgspec
import websocket
from locust.env import Environment
from locust.exception import CatchResponseError

from exchange.auth import HttpRequest, sign
from exchange.client import Push, Refused, rest_headers
from exchange.protocol import Heartbeat
from load.cast import Key

CONNECT_S = 5.0
SILENCE_S = 5.0  # the server sends a heartbeat every idle second: this much silence is a dead link
REPLY_S = 30.0
LOST = "CONNECTION_LOST"  # the code under which a request is reported when its link went
WRITE_S = 60.0  # how long a REST write is sent again while it cannot get through
RETRY_S = (0.05, 1.0)  # first and longest pause between its attempts
WAIT_CODES = frozenset({"EXCHANGE_NOT_READY", "JOURNAL_UNAVAILABLE", "SETTLEMENT_BEHIND"})


class Lost(Exception):  # noqa: N818 - an outcome to handle, as `exchange.client.Refused`
    """The connection went before the reply came: the request may or may not have been taken."""


class _Frames:
    """The server's frames, read from the socket in large chunks. websocket-client reads each
    frame's header and payload in small reads of their own: under a busy book those reads cost
    the load generator more than the rest of a trader together. Control frames come back as
    they are (a ping is the caller's to answer); a fragmented message comes back whole."""

    CHUNK = 65_536

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._buffer = bytearray()
        self._at = 0

    def _have(self, size: int) -> None:
        while len(self._buffer) - self._at < size:
            chunk = self._sock.recv(self.CHUNK)
            if not chunk:
                raise websocket.WebSocketConnectionClosedException("the server closed")
            self._buffer += chunk

    def _frame(self) -> tuple[bool, int, bytes]:
        self._have(2)
        first, second = self._buffer[self._at], self._buffer[self._at + 1]
        size, header = second & 0x7F, 2
        if size == 126:
            self._have(4)
            size, header = int.from_bytes(self._buffer[self._at + 2 : self._at + 4]), 4
        elif size == 127:
            self._have(10)
            size, header = int.from_bytes(self._buffer[self._at + 2 : self._at + 10]), 10
        if second & 0x80:
            raise websocket.WebSocketProtocolException("a masked frame from the server")
        self._have(header + size)
        start = self._at + header
        payload = bytes(self._buffer[start : start + size])
        self._at = start + size
        if self._at > self.CHUNK:  # drop what has been read, now and then
            del self._buffer[: self._at]
            self._at = 0
        return bool(first & 0x80), first & 0x0F, payload

    def next(self) -> tuple[int, bytes]:
        """The next message's opcode and payload."""
        fin, opcode, payload = self._frame()
        parts = [payload]
        while not fin:
            fin, _, more = self._frame()
            parts.append(more)
        return opcode, b"".join(parts)


class _Error(msgspec.Struct):
    code: str
    msg: str = ""


class _Reply(msgspec.Struct):
    type: str | None = None
    ok: bool = False
    req_id: int | str | None = None
    result: Any = None
    error: _Error | None = None


_reply = msgspec.json.Decoder(_Reply).decode
_push = msgspec.json.Decoder(Push | Heartbeat).decode
_encode = msgspec.json.Encoder().encode


def report(
    environment: Environment,
    request_type: str,
    name: str,
    started: float,
    length: int,
    code: str | None,
) -> None:
    """Tell locust of one request: its kind as name, a refusal's code as the failure."""
    environment.events.request.fire(  # type: ignore[no-untyped-call]
        request_type=request_type,
        name=name,
        response_time=(time.perf_counter() - started) * 1_000,
        response_length=length,
        exception=None if code is None else CatchResponseError(code),
        context={},
    )


class WsSession:
    """One WebSocket session; `on_push` is called, on the reader greenlet, with every pushed
    message other than heartbeats."""

    def __init__(self, environment: Environment, url: str, on_push: Callable[[Push], None]) -> None:
        self.environment = environment
        self.url = url
        self.on_push = on_push
        self.closed = True
        self._ws: websocket.WebSocket | None = None
        self._ids = itertools.count(1)
        self._pending: dict[int, gevent.event.AsyncResult[_Reply]] = {}
        self._reader: gevent.Greenlet[[websocket.WebSocket], None] | None = None

    def open(self, key: Key) -> int:
        """Connect and log in; the account's id. Raises `Lost` or `Refused`."""
        self.close()
        started = time.perf_counter()
        try:
            self._ws = websocket.create_connection(
                self.url, timeout=CONNECT_S, enable_multithread=True
            )
        except (OSError, websocket.WebSocketException):
            report(self.environment, "WS", "connect", started, 0, LOST)
            raise Lost(f"cannot connect to {self.url}") from None
        report(self.environment, "WS", "connect", started, 0, None)
        self._ws.settimeout(SILENCE_S)
        self.closed = False
        self._reader = gevent.spawn(self._read, self._ws)
        timestamp_ms, nonce = time.time_ns() // 1_000_000, secrets.token_hex(16)
        signature = sign(key.secret, timestamp_ms, nonce, key.key_id)
        args = {
            "api_key": key.key_id,
            "timestamp_ms": timestamp_ms,
            "nonce": nonce,
            "signature": signature,
        }
        return int(self.request("login", args)["account_id"])

    def close(self) -> None:
        ws, self._ws = self._ws, None
        if ws is not None:
            ws.abort()  # type: ignore[no-untyped-call]
            ws.close(timeout=0)
        if self._reader is not None:
            self._reader.join(timeout=CONNECT_S)
            self._reader = None
        self._fail_pending()

    def request(self, op: str, args: dict[str, Any]) -> Any:
        """Send one request and wait for its reply; its result. Reported to locust as `op`."""
        ws = self._ws
        if ws is None or self.closed:
            raise Lost("not connected")
        req_id = next(self._ids)
        waiter: gevent.event.AsyncResult[_Reply] = gevent.event.AsyncResult()
        self._pending[req_id] = waiter
        frame = _encode({"op": op, "req_id": req_id, "args": args})
        started = time.perf_counter()
        try:
            ws.send_binary(frame)
            answer = waiter.get(timeout=REPLY_S)
            if answer is None:
                raise Lost("no reply")
        except (Lost, OSError, websocket.WebSocketException, gevent.Timeout):
            report(self.environment, "WS", op, started, len(frame), LOST)
            self.close()
            raise Lost(f"{op}: no reply") from None
        finally:
            self._pending.pop(req_id, None)
        error = answer.error
        report(self.environment, "WS", op, started, len(frame), error.code if error else None)
        if error is not None:
            raise Refused(error.code, error.msg)
        return answer.result

    def _read(self, ws: websocket.WebSocket) -> None:
        try:
            if ws.sock is None:
                return  # closed before the reader started
            frames = _Frames(ws.sock)
            while True:
                opcode, data = frames.next()
                if opcode == websocket.ABNF.OPCODE_CLOSE:
                    break
                if opcode == websocket.ABNF.OPCODE_PING:
                    ws.pong(data)
                elif opcode in (websocket.ABNF.OPCODE_BINARY, websocket.ABNF.OPCODE_TEXT):
                    self._dispatch(data)
        except (OSError, websocket.WebSocketException):
            pass  # the link is gone, or being closed: the waiters learn it below
        finally:
            self.closed = True
            self._fail_pending()

    def _dispatch(self, data: bytes) -> None:
        # the server writes a pushed message's tag first: most frames are decoded once
        if not data.startswith(b'{"type":'):
            answer = _reply(data)
            if answer.type is None:
                waiter = (
                    self._pending.get(answer.req_id) if isinstance(answer.req_id, int) else None
                )
                if waiter is not None:
                    waiter.set(answer)
                return
        message = _push(data)
        if not isinstance(message, Heartbeat):
            self.on_push(message)

    def _fail_pending(self) -> None:
        for waiter in list(self._pending.values()):
            if not waiter.ready():
                waiter.set_exception(Lost("the connection closed"))


class _RestReply(msgspec.Struct):
    ok: bool
    result: Any = None
    error: _Error | None = None


_rest_reply = msgspec.json.Decoder(_RestReply).decode


def rest_call(
    client: Any,  # locust's FastHttpSession
    key: Key | None,
    method: str,
    path_qs: str,
    name: str,
    body: object = None,
    idempotency_key: str | None = None,
) -> Any:
    """One signed REST request through locust's `FastHttpSession`, reported as `name`; its
    result. A refusal raises `Refused`, a failed connection `Lost`."""
    data = b"" if body is None else _encode(body)
    headers = {"Content-Type": "application/json"}
    if key is not None:
        headers |= rest_headers(key.key_id, key.secret, HttpRequest(method, path_qs, data))
    if idempotency_key is not None:
        headers["Idempotency-Key"] = idempotency_key
    with client.request(
        method, path_qs, name=name, data=data or None, headers=headers, catch_response=True
    ) as response:
        if not response.status_code:
            response.failure(LOST)
            raise Lost(f"{method} {path_qs}: {response.error!r}")
        try:
            reply = _rest_reply(response.content or b"")
        except msgspec.DecodeError:
            code = f"HTTP_{response.status_code}"
            response.failure(code)
            raise Refused(code, "not a CERX reply") from None
        if reply.error is not None:
            response.failure(reply.error.code)
            raise Refused(reply.error.code, reply.error.msg)
        response.success()
        return reply.result


def rest_write(
    client: Any,  # locust's FastHttpSession
    key: Key,
    path_qs: str,
    name: str,
    body: object,
    idempotency_key: str,
) -> Any:
    """A signed REST write, sent again under the same idempotency key — so at most once —
    while the link is lost or the server says to wait, for up to `WRITE_S`; its result."""
    deadline = time.monotonic() + WRITE_S
    pause_s = RETRY_S[0]
    while True:
        try:
            return rest_call(client, key, "POST", path_qs, name, body, idempotency_key)
        except Refused as refused:
            if refused.code not in WAIT_CODES or time.monotonic() > deadline:
                raise
        except Lost:
            if time.monotonic() > deadline:
                raise
        gevent.sleep(pause_s)
        pause_s = min(2 * pause_s, RETRY_S[1])
