"""A bare WebSocket client for the load generator: its own handshake and frames, one write for
everything sent in a loop iteration, and every frame a chunk holds read in one pass.

`exchange.client` is the client for people and programs; the benchmark needs one whose cost per
request is small beside the server's, so that the rate measured is the server's. aiohttp's
client writes each frame with a send() of its own and hands each received message through a
queue to a task; here the frames a loop iteration makes leave together, and each received
message is handed to a plain callback as it is parsed.

Frames from the client must be masked (RFC 6455, 5.3); this one masks with the key 0, which
leaves the payload unchanged. Masking protects proxies between browsers and servers from
payloads chosen by scripts; nothing stands between the benchmark and its server.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import struct
from collections.abc import Callable

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
BINARY, CLOSE, PING, PONG = 0x2, 0x8, 0x9, 0xA
_MASK0 = b"\x00\x00\x00\x00"
_SHORT = struct.Struct("!BB")
_MEDIUM = struct.Struct("!BBH")
_LONG = struct.Struct("!BBQ")


def client_frame(payload: bytes, opcode: int = BINARY) -> bytes:
    """One final, masked (with the key 0) frame carrying `payload`."""
    size, first = len(payload), 0x80 | opcode
    if size < 126:
        header = _SHORT.pack(first, 0x80 | size)
    elif size < 65_536:
        header = _MEDIUM.pack(first, 0x80 | 126, size)
    else:
        header = _LONG.pack(first, 0x80 | 127, size)
    return header + _MASK0 + payload


class Link(asyncio.Protocol):
    """One WebSocket connection. `on_message` gets each data message's payload as it is read;
    `on_close` gets the close code (None if the connection just went) once."""

    def __init__(
        self,
        on_message: Callable[[bytes], None],
        on_close: Callable[[int | None], None],
    ) -> None:
        self.on_message = on_message
        self.on_close = on_close
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self._key = base64.b64encode(os.urandom(16))
        self._open: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._buffer = b""
        self._upgraded = False
        self._outbox: list[bytes] = []
        self._parts: list[bytes] = []  # of a fragmented message

    # -- sending -------------------------------------------------------------------------------

    def send(self, payload: bytes) -> None:
        """Send `payload` in a binary frame, written with whatever else is sent before the loop
        runs again."""
        if not self._outbox:
            asyncio.get_running_loop().call_soon(self.flush)
        self._outbox.append(client_frame(payload))

    def flush(self) -> None:
        outbox, self._outbox = self._outbox, []
        if self.transport is not None and not self.closed and outbox:
            self.transport.write(b"".join(outbox))

    def close(self) -> None:
        """Send a close frame (1000) and end the connection."""
        if self.transport is not None and not self.closed:
            self.flush()
            self.transport.write(client_frame(struct.pack("!H", 1000), CLOSE))
            self.transport.close()
        self._went(1000)

    # -- the protocol --------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    async def handshake(self, host: str, port: int, path: str) -> None:
        assert self.transport is not None
        self.transport.write(
            f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {self._key.decode()}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        await self._open

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer + data if self._buffer else data
        at = 0 if self._upgraded else self._upgrade(buffer)
        if at < 0:
            self._buffer = buffer
            return
        end = len(buffer)
        on_message = self.on_message
        while end - at >= 2:
            first, second = buffer[at], buffer[at + 1]
            size, start = second & 0x7F, at + 2
            if size == 126:
                if end - at < 4:
                    break
                size, start = int.from_bytes(buffer[at + 2 : at + 4]), at + 4
            elif size == 127:
                if end - at < 10:
                    break
                size, start = int.from_bytes(buffer[at + 2 : at + 10]), at + 10
            if end - start < size:
                break
            at = start + size
            opcode = first & 0x0F
            if first & 0x80 and opcode in (BINARY, 0x1):
                on_message(buffer[start:at])
            else:
                self._other(first & 0x80, opcode, buffer[start:at])
        self._buffer = buffer[at:]

    def _upgrade(self, buffer: bytes) -> int:
        """Where the frames start after the server's 101 reply, or -1 until it is all read."""
        end = buffer.find(b"\r\n\r\n")
        if end < 0:
            return -1
        head = buffer[:end].decode("latin-1").split("\r\n")
        accept = base64.b64encode(hashlib.sha1(self._key + GUID).digest()).decode()
        fields = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in head[1:])}
        if not head[0].startswith("HTTP/1.1 101") or fields.get("sec-websocket-accept") != accept:
            self._open.set_exception(ConnectionError(f"the server refused: {head[0]}"))
            return -1
        self._upgraded = True
        self._open.set_result(None)
        return end + 4

    def _other(self, fin: int, opcode: int, payload: bytes) -> None:
        """A control frame or a fragment."""
        if opcode == PING and self.transport is not None:
            self.transport.write(client_frame(payload, PONG))
        elif opcode == CLOSE:
            self._went(int.from_bytes(payload[:2]) if len(payload) >= 2 else None)
            if self.transport is not None:
                self.transport.close()
        elif opcode in (0x0, 0x1, BINARY):
            self._parts.append(payload)
            if fin:
                message, self._parts = b"".join(self._parts), []
                self.on_message(message)

    def connection_lost(self, exc: Exception | None) -> None:
        self._went(None)
        if not self._open.done():
            self._open.set_exception(ConnectionError("the connection went"))

    def _went(self, code: int | None) -> None:
        if not self.closed:
            self.closed = True
            self.on_close(code)


async def connect(
    host: str,
    port: int,
    path: str,
    on_message: Callable[[bytes], None],
    on_close: Callable[[int | None], None],
) -> Link:
    """An open WebSocket connection to ws://host:port/path."""
    loop = asyncio.get_running_loop()
    _, link = await loop.create_connection(lambda: Link(on_message, on_close), host, port)
    await link.handshake(host, port, path)
    return link
