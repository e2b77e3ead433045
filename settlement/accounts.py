"""Accounts and their roles; taking an account's write lock.

Every write that changes what an account holds first locks the accounts it touches, in id order,
so concurrent writers queue instead of racing and never deadlock each other. Reads after the lock
see everything committed before it (READ COMMITTED takes a fresh snapshot per statement).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

import asyncpg

from settlement.connection import Connection
from settlement.errors import ErrorCode, LedgerError
from settlement.values import Account, Role

MAX_NAME_LENGTH = 100


async def open_account(conn: Connection, name: str, roles: Collection[Role]) -> Account:
    if not name.strip() or len(name) > MAX_NAME_LENGTH:
        raise LedgerError(
            ErrorCode.MALFORMED_ID, f"an account name is 1..{MAX_NAME_LENGTH} characters"
        )
    if not roles or Role.FEES in roles or Role.EXTERNAL in roles:
        raise LedgerError(
            ErrorCode.ROLE_NOT_ALLOWED, "an account needs at least one role, and no system role"
        )
    ordered = sorted(set(roles))
    try:
        account_id = await conn.fetchval(
            "INSERT INTO accounts (name, roles) VALUES ($1, $2) RETURNING account_id",
            name,
            [str(role) for role in ordered],
        )
    except asyncpg.UniqueViolationError:
        raise LedgerError(
            ErrorCode.ACCOUNT_NAME_TAKEN, f"an account named {name!r} exists"
        ) from None
    await conn.execute(
        "INSERT INTO cash_balances (account_id, bucket, balance_fen)"
        " VALUES ($1, 'available', 0), ($1, 'locked', 0)",
        account_id,
    )
    return Account(account_id, name, tuple(ordered))


async def get_account(conn: Connection, account_id: int) -> Account:
    row = await conn.fetchrow(
        "SELECT account_id, name, roles FROM accounts WHERE account_id = $1", account_id
    )
    if row is None:
        raise LedgerError(ErrorCode.ACCOUNT_NOT_FOUND, f"no account {account_id}")
    return Account(row["account_id"], row["name"], tuple(Role(r) for r in row["roles"]))


async def lock_accounts(conn: Connection, ids: Iterable[int]) -> dict[int, frozenset[Role]]:
    """Take the write lock of every account in `ids`; their roles. Unknown ids are refused."""
    wanted = sorted(set(ids))
    rows = await conn.fetch(
        "SELECT account_id, roles FROM accounts WHERE account_id = ANY($1::bigint[])"
        " ORDER BY account_id FOR NO KEY UPDATE",
        wanted,
    )
    found = {row["account_id"]: frozenset(Role(r) for r in row["roles"]) for row in rows}
    missing = [account_id for account_id in wanted if account_id not in found]
    if missing:
        raise LedgerError(ErrorCode.ACCOUNT_NOT_FOUND, f"no account {missing[0]}")
    return found


def require_role(
    roles: dict[int, frozenset[Role]], account_id: int, allowed: Collection[Role], doing: str
) -> None:
    if not roles[account_id] & set(allowed):
        names = " or ".join(sorted(allowed))
        raise LedgerError(
            ErrorCode.ROLE_NOT_ALLOWED, f"account {account_id} must be a {names} to {doing}"
        )
