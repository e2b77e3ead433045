"""People in a browser: a login and a password per account, and the sessions they open.

Passwords are stored as argon2id hashes (argon2-cffi's defaults, rehashed when those change).
A wrong password and an unknown login are refused alike, after the same work, so neither the
reply nor its time tells which logins exist. `MAX_FAILURES` failures in a row lock the login
for `LOCK_S` (the refusal then says so, and when to try again: a person locked out must be told,
which tells whoever locked them out that the login exists); a success resets the count. Each
address may try `SIGN_INS_PER_MINUTE` times a minute (`exchange.console.signin`), so locking a
login out, or guessing across many, takes many addresses.

A session is a random token in an HttpOnly, SameSite=Strict cookie; the database keeps only its
SHA-256. It ends on logout, after `IDLE_S` without a request, or `LIFETIME_S` after it opened,
whichever comes first. Each session has its own CSRF token, which every write from the browser
must carry (`exchange.endpoint`): a page of another site can make the browser send the cookie,
but cannot read the token.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import re
import secrets
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import asyncpg
import msgspec
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from exchange.errors import ErrorCode, ExchangeError
from settlement.connection import Connection

MAX_FAILURES = 5
LOCK_S = 15 * 60
IDLE_S = 30 * 60
LIFETIME_S = 12 * 3600
MIN_PASSWORD = 10
MAX_PASSWORD = 256  # argon2 takes any length; a bound keeps a request's work bounded
LOGIN = re.compile(r"[a-z0-9][a-z0-9_.-]{2,63}")
TOKEN = re.compile(r"[A-Za-z0-9_-]{43}")  # token_urlsafe(32)

_hasher = PasswordHasher()
_HASHING = ThreadPoolExecutor(max_workers=2, thread_name_prefix="argon2")
T = TypeVar("T")
# verified against when the login is unknown, so that it costs what a wrong password costs
_DECOY = _hasher.hash(secrets.token_urlsafe(16))


class Session(msgspec.Struct, frozen=True):
    account_id: int
    csrf_token: str
    expires_at: dt.datetime


class Opened(msgspec.Struct, frozen=True):
    token: str  # for the cookie; never stored
    session: Session


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def check_login(login: str) -> str:
    login = login.strip().lower()
    if not LOGIN.fullmatch(login):
        raise ExchangeError(
            ErrorCode.INVALID_ARGS,
            "a login is 3-64 of a-z 0-9 _ . - and starts with a letter or digit",
        )
    return login


def _check_password(password: str, login: str) -> None:
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD or password.lower() == login:
        raise ExchangeError(
            ErrorCode.PASSWORD_TOO_WEAK,
            f"a password is {MIN_PASSWORD}-{MAX_PASSWORD} characters and not the login",
        )


async def set_password(conn: Connection, account_id: int, login: str, password: str) -> str:
    """Give the account a login with this password, or change its password; the login. A new
    password ends every session the account had open: whoever knew the old one is out."""
    login = check_login(login)
    _check_password(password, login)
    hashed = await _hashing(_hasher.hash, password)
    try:
        row = await conn.fetchrow(
            """
            INSERT INTO browser_logins (login, account_id, password_hash) VALUES ($1, $2, $3)
            ON CONFLICT (account_id) DO UPDATE
                SET password_hash = EXCLUDED.password_hash, failed_attempts = 0,
                    locked_until = NULL
                WHERE browser_logins.login = EXCLUDED.login
            RETURNING login
            """,
            login,
            account_id,
            hashed,
        )
    except asyncpg.UniqueViolationError:
        raise ExchangeError(ErrorCode.LOGIN_TAKEN, "another account has this login") from None
    if row is None:
        raise ExchangeError(ErrorCode.LOGIN_TAKEN, "the account already has another login")
    await conn.execute(
        "UPDATE browser_sessions SET ended_at = now() WHERE account_id = $1 AND ended_at IS NULL",
        account_id,
    )
    return login


async def sign_in(conn: Connection, login: str, password: str, now: dt.datetime) -> Opened:
    """A new session for the login's account, or a refusal that does not say which part was
    wrong.

    The attempt is counted before the password is checked, in the statement that checks the
    lock: guesses sent at once cannot all pass the check before one of them is counted."""
    login = login.strip().lower()
    if not LOGIN.fullmatch(login) or len(password) > MAX_PASSWORD:
        await _hashing(_matches, _DECOY, password[:MAX_PASSWORD])
        raise ExchangeError(ErrorCode.AUTH_LOGIN_FAILED, "wrong login or password")
    row = await conn.fetchrow(
        """
        UPDATE browser_logins SET
            failed_attempts = CASE WHEN failed_attempts + 1 >= $2 THEN 0
                                   ELSE failed_attempts + 1 END,
            locked_until = CASE WHEN failed_attempts + 1 >= $2 THEN $3::timestamptz END
        WHERE login = $1 AND (locked_until IS NULL OR locked_until <= $4)
        RETURNING account_id, password_hash
        """,
        login,
        MAX_FAILURES,
        now + dt.timedelta(seconds=LOCK_S),
        now,
    )
    if row is None:
        locked_until = await conn.fetchval(
            "SELECT locked_until FROM browser_logins WHERE login = $1", login
        )
        await _hashing(_matches, _DECOY, password)  # the same work as a wrong password
        if locked_until is not None:
            wait_ms = int((locked_until - now).total_seconds() * 1000) + 1
            raise ExchangeError(ErrorCode.AUTH_LOCKED_OUT, "too many failed sign-ins", wait_ms)
        raise ExchangeError(ErrorCode.AUTH_LOGIN_FAILED, "wrong login or password")
    stored: str = row["password_hash"]
    if not await _hashing(_matches, stored, password):
        raise ExchangeError(ErrorCode.AUTH_LOGIN_FAILED, "wrong login or password")
    async with conn.transaction():
        await conn.execute(
            "UPDATE browser_logins SET failed_attempts = 0, locked_until = NULL WHERE login = $1",
            login,
        )
        if _hasher.check_needs_rehash(stored):
            await conn.execute(
                "UPDATE browser_logins SET password_hash = $2 WHERE login = $1",
                login,
                await _hashing(_hasher.hash, password),
            )
        # what has ended is of no more use: an account's table of sessions stays short
        await conn.execute(
            "DELETE FROM browser_sessions WHERE account_id = $1"
            " AND (ended_at IS NOT NULL OR expires_at <= $2 OR ends_by <= $2)",
            row["account_id"],
            now,
        )
        return await _open(conn, row["account_id"], now)


def _matches(stored: str, password: str) -> bool:
    try:
        return _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


async def _hashing(work: Callable[..., T], *args: str) -> T:
    """Run argon2 on the hashing threads: each hash takes 64 MiB and tens of milliseconds, so a
    flood of sign-ins waits its turn instead of taking the memory and the shared threads."""
    return await asyncio.get_running_loop().run_in_executor(_HASHING, work, *args)


async def _open(conn: Connection, account_id: int, now: dt.datetime) -> Opened:
    token = secrets.token_urlsafe(32)
    session = Session(account_id, secrets.token_urlsafe(32), now + dt.timedelta(seconds=IDLE_S))
    await conn.execute(
        "INSERT INTO browser_sessions"
        " (token_sha256, account_id, csrf_token, created_at, expires_at, ends_by)"
        " VALUES ($1, $2, $3, $4, $5, $6)",
        _digest(token),
        account_id,
        session.csrf_token,
        now,
        session.expires_at,
        now + dt.timedelta(seconds=LIFETIME_S),
    )
    return Opened(token, session)


async def session(conn: Connection, token: str, now: dt.datetime) -> Session:
    """The live session the cookie's token opened, its idle expiry pushed on; or a refusal."""
    if not TOKEN.fullmatch(token):
        raise ExchangeError(ErrorCode.AUTH_SESSION_EXPIRED, "sign in again")
    row = await conn.fetchrow(
        """
        UPDATE browser_sessions SET expires_at = least($2::timestamptz + $3 * interval '1 second',
                                                       ends_by)
        WHERE token_sha256 = $1 AND ended_at IS NULL AND expires_at > $2 AND ends_by > $2
        RETURNING account_id, csrf_token, expires_at
        """,
        _digest(token),
        now,
        IDLE_S,
    )
    if row is None:
        raise ExchangeError(ErrorCode.AUTH_SESSION_EXPIRED, "sign in again")
    return Session(row["account_id"], row["csrf_token"], row["expires_at"])


def check_csrf(session: Session, presented: str | None) -> None:
    if presented is None or not hmac.compare_digest(
        session.csrf_token.encode(), presented.encode("utf-8", "replace")
    ):
        raise ExchangeError(
            ErrorCode.AUTH_CSRF_TOKEN_INVALID, "the page's CSRF token is missing or wrong"
        )


async def sign_out(conn: Connection, token: str, now: dt.datetime) -> None:
    await conn.execute(
        "UPDATE browser_sessions SET ended_at = $2 WHERE token_sha256 = $1 AND ended_at IS NULL",
        _digest(token),
        now,
    )
