"""A small asyncio REST client for the set-up and the crash campaign's operator: signed
requests (`exchange.client.rest_headers`), an idempotency key on every write, refusals raised
with their stable code, and the server's Prometheus metrics read as numbers."""

from __future__ import annotations

import re
from typing import Any

import aiohttp
import msgspec
from yarl import URL

from exchange.auth import HttpRequest
from exchange.client import rest_headers
from load.cast import Key

TIMEOUT_S = 30
_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?) (\S+)$")


class RestRefusedError(Exception):
    """The server refused a request: `code` is its stable code, `status` the HTTP status."""

    def __init__(self, status: int, code: str, msg: str) -> None:
        super().__init__(f"{status} {code}: {msg}")
        self.status = status
        self.code = code


class _Error(msgspec.Struct):
    code: str
    msg: str = ""


class _Reply(msgspec.Struct):
    ok: bool
    result: Any = None
    error: _Error | None = None


_decode = msgspec.json.Decoder(_Reply).decode


class Rest:
    def __init__(self, http: aiohttp.ClientSession, base_url: str) -> None:
        self.http = http
        self.base = URL(base_url)

    async def get(self, path_qs: str, key: Key | None = None) -> Any:
        return await self.call("GET", path_qs, key)

    async def post(self, path_qs: str, key: Key, body: object, idempotency_key: str) -> Any:
        return await self.call("POST", path_qs, key, body, idempotency_key)

    async def call(
        self,
        method: str,
        path_qs: str,
        key: Key | None,
        body: object = None,
        idempotency_key: str | None = None,
    ) -> Any:
        """The result of a request; a refusal raises `RestRefusedError`."""
        url = URL(str(self.base) + path_qs, encoded=True)
        data = b"" if body is None else msgspec.json.encode(body)
        headers = {"Content-Type": "application/json"}
        if key is not None:
            signed = HttpRequest(method, url.raw_path_qs, data)
            headers |= rest_headers(key.key_id, key.secret, signed)
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        timeout = aiohttp.ClientTimeout(total=TIMEOUT_S)
        async with self.http.request(
            method, url, data=data or None, headers=headers, timeout=timeout
        ) as response:
            raw = await response.read()
            status = response.status
        try:
            reply = _decode(raw)
        except msgspec.DecodeError:
            text = raw[:200].decode(errors="replace")
            raise RestRefusedError(status, f"HTTP_{status}", text) from None
        if reply.error is not None:
            raise RestRefusedError(status, reply.error.code, reply.error.msg)
        return reply.result

    async def metrics(self) -> dict[str, float]:
        """The server's metrics: each sample's name with its labels, as in the text format
        (`cerx_requests_total{op="new_order",outcome="ok"}`), to its value."""
        timeout = aiohttp.ClientTimeout(total=TIMEOUT_S)
        async with self.http.get(self.base / "metrics", timeout=timeout) as response:
            text = await response.text()
        samples = {}
        for line in text.splitlines():
            if (m := _SAMPLE.match(line)) is not None:
                samples[m[1]] = float(m[2])
        return samples
