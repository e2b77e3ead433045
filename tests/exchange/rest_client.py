"""A REST client for the tests: signs as a real client would (`exchange.auth.sign_request` over
the target aiohttp sends), and accounts with the roles the operator and regulator routes need."""

from __future__ import annotations

import itertools
import time
from typing import Any

import aiohttp
import msgspec
from aiohttp.test_utils import TestServer

from exchange import keys
from exchange.auth import HttpRequest, sign_request
from exchange.keys import ApiKey
from exchange.service import Exchange
from settlement.values import Role

_nonces = itertools.count(1)
_tags = itertools.count(1)
_idempotency = itertools.count(1)


def signed(
    key: ApiKey, method: str, path_qs: str, body: bytes = b"", **override: str
) -> dict[str, str]:
    ts, nonce = time.time_ns() // 1_000_000, f"rest-nonce-{next(_nonces)}"
    signature = sign_request(key.secret, ts, nonce, key.key_id, HttpRequest(method, path_qs, body))
    headers = {
        "X-CERX-Key": key.key_id,
        "X-CERX-Timestamp": str(ts),
        "X-CERX-Nonce": nonce,
        "X-CERX-Signature": signature,
    }
    return headers | override


def fresh_key() -> str:
    """An idempotency key not used before."""
    return f"test-{next(_idempotency)}"


class Rest:
    def __init__(self, server: TestServer, http: aiohttp.ClientSession) -> None:
        self.server = server
        self.http = http

    async def get(self, path_qs: str, key: ApiKey | None = None, **headers: str) -> tuple[int, Any]:
        return await self.send("GET", path_qs, None, key, headers)

    async def post(
        self,
        path_qs: str,
        body: object,
        key: ApiKey,
        idempotency_key: str | None = "",
        **headers: str,
    ) -> tuple[int, Any]:
        """POST `body` (bytes as they are, anything else as JSON) under `idempotency_key`: a
        fresh one when empty, none when None."""
        if idempotency_key == "":
            idempotency_key = fresh_key()
        if idempotency_key is not None:
            headers = {"Idempotency-Key": idempotency_key} | headers
        return await self.send("POST", path_qs, body, key, headers)

    async def send(
        self,
        method: str,
        path_qs: str,
        body: object,
        key: ApiKey | None,
        headers: dict[str, str],
    ) -> tuple[int, Any]:
        url = self.server.make_url(path_qs)
        data = (
            body if isinstance(body, bytes) else b"" if body is None else msgspec.json.encode(body)
        )
        if key is not None:
            headers = signed(key, method, url.raw_path_qs, data) | headers
        async with self.http.request(method, url, data=data, headers=headers) as response:
            return response.status, msgspec.json.decode(await response.read())


class Staff(msgspec.Struct, frozen=True):
    operator_id: int
    operator: ApiKey
    regulator_id: int
    regulator: ApiKey


async def staff(exchange: Exchange) -> Staff:
    """A new operator and a new regulator, each with an API key."""
    tag = f"staff{next(_tags)}-{time.time_ns()}"
    ledger = exchange.ledger
    operator = await ledger.open_account(f"{tag}o", f"{tag}-operator", [Role.OPERATOR])
    regulator = await ledger.open_account(f"{tag}r", f"{tag}-regulator", [Role.REGULATOR])
    async with exchange.database.pool.acquire() as conn:
        return Staff(
            operator.account_id,
            await keys.create(conn, operator.account_id),
            regulator.account_id,
            await keys.create(conn, regulator.account_id),
        )
