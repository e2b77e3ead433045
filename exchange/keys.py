"""API keys: an id the client sends in the clear and a secret it signs with, per account."""

from __future__ import annotations

import secrets

import msgspec

from exchange.auth import new_secret
from settlement.connection import Connection


class ApiKey(msgspec.Struct, frozen=True):
    key_id: str
    account_id: int
    secret: bytes


async def create(conn: Connection, account_id: int) -> ApiKey:
    key = ApiKey("k-" + secrets.token_hex(12), account_id, new_secret())
    await conn.execute(
        "INSERT INTO api_keys (key_id, account_id, secret) VALUES ($1, $2, $3)",
        key.key_id,
        key.account_id,
        key.secret,
    )
    return key


async def find(conn: Connection, key_id: str) -> ApiKey | None:
    row = await conn.fetchrow(
        "SELECT key_id, account_id, secret FROM api_keys WHERE key_id = $1 AND revoked_at IS NULL",
        key_id,
    )
    return None if row is None else ApiKey(row[0], row[1], bytes(row[2]))
