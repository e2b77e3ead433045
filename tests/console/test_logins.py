"""Logins and browser sessions on the real PostgreSQL: passwords, lock-out, expiry, sign-out."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import itertools

import pytest

from exchange import logins
from exchange.errors import ErrorCode, ExchangeError
from settlement.database import Database
from settlement.ledger import Ledger
from settlement.values import Role

NOW = dt.datetime(2026, 3, 2, 9, 30, tzinfo=dt.UTC)
PASSWORD = "correct horse battery"
_names = itertools.count(1)


async def person(database: Database) -> tuple[int, str]:
    n = next(_names)
    account = await Ledger(database).open_account(f"login/{n}", f"person-{n}", [Role.TRADER])
    async with database.pool.acquire() as conn:
        login = await logins.set_password(conn, account.account_id, f"Person.{n}", PASSWORD)
    return account.account_id, login


async def refused(code: ErrorCode, database: Database, login: str, password: str,
                  now: dt.datetime = NOW) -> ExchangeError:  # fmt: skip
    async with database.pool.acquire() as conn:
        with pytest.raises(ExchangeError) as caught:
            await logins.sign_in(conn, login, password, now)
    assert caught.value.code == code, caught.value
    return caught.value


async def test_the_right_password_opens_a_session_and_only_its_digest_is_kept(
    database: Database,
) -> None:
    account_id, login = await person(database)
    assert login.startswith("person.")  # lower-cased, as typed later in any case
    async with database.pool.acquire() as conn:
        opened = await logins.sign_in(conn, login.upper(), PASSWORD, NOW)
        assert opened.session.account_id == account_id
        stored = await conn.fetchrow(
            "SELECT token_sha256, csrf_token FROM browser_sessions WHERE account_id = $1",
            account_id,
        )
        hashed = await conn.fetchval(
            "SELECT password_hash FROM browser_logins WHERE account_id = $1", account_id
        )
        found = await logins.session(conn, opened.token, NOW + dt.timedelta(minutes=1))
    assert bytes(stored["token_sha256"]) == hashlib.sha256(opened.token.encode()).digest()
    assert opened.token.encode() not in bytes(stored["token_sha256"])
    assert hashed.startswith("$argon2id$") and PASSWORD not in hashed
    assert found.account_id == account_id and found.csrf_token == stored["csrf_token"]


async def test_a_wrong_password_and_an_unknown_login_are_refused_alike(database: Database) -> None:
    _, login = await person(database)
    wrong = await refused(ErrorCode.AUTH_LOGIN_FAILED, database, login, "not the password")
    unknown = await refused(ErrorCode.AUTH_LOGIN_FAILED, database, "nobody-here", PASSWORD)
    odd = await refused(ErrorCode.AUTH_LOGIN_FAILED, database, "x\x00y", PASSWORD)
    assert wrong.message == unknown.message == odd.message


async def test_repeated_failures_lock_the_login_until_the_lock_passes(database: Database) -> None:
    account_id, login = await person(database)
    for _ in range(logins.MAX_FAILURES):
        await refused(ErrorCode.AUTH_LOGIN_FAILED, database, login, "guess again!")
    # locked: even the right password is refused, and the refusal says how long to wait
    locked = await refused(ErrorCode.AUTH_LOCKED_OUT, database, login, PASSWORD)
    assert locked.retry_after_ms == logins.LOCK_S * 1000 + 1
    later = NOW + dt.timedelta(seconds=logins.LOCK_S + 1)
    async with database.pool.acquire() as conn:
        opened = await logins.sign_in(conn, login, PASSWORD, later)
        failures = await conn.fetchval(
            "SELECT failed_attempts FROM browser_logins WHERE login = $1", login
        )
    assert opened.session.account_id == account_id and failures == 0


async def test_a_success_resets_the_count_of_failures(database: Database) -> None:
    _, login = await person(database)
    for _ in range(logins.MAX_FAILURES - 1):
        await refused(ErrorCode.AUTH_LOGIN_FAILED, database, login, "guess again!")
    async with database.pool.acquire() as conn:
        await logins.sign_in(conn, login, PASSWORD, NOW)
    for _ in range(logins.MAX_FAILURES - 1):
        await refused(ErrorCode.AUTH_LOGIN_FAILED, database, login, "guess again!")
    async with database.pool.acquire() as conn:
        await logins.sign_in(conn, login, PASSWORD, NOW)  # still not locked


async def test_a_session_ends_when_idle_at_its_lifetime_and_on_sign_out(database: Database) -> None:
    _, login = await person(database)
    idle = dt.timedelta(seconds=logins.IDLE_S)
    async with database.pool.acquire() as conn:
        first = await logins.sign_in(conn, login, PASSWORD, NOW)
        with pytest.raises(ExchangeError, match=ErrorCode.AUTH_SESSION_EXPIRED):
            await logins.session(conn, first.token, NOW + idle + dt.timedelta(seconds=1))

        # each request pushes the idle expiry on, but never past the lifetime
        second = await logins.sign_in(conn, login, PASSWORD, NOW)
        moment = NOW
        while moment + idle / 2 < NOW + dt.timedelta(seconds=logins.LIFETIME_S):
            moment += idle / 2
            await logins.session(conn, second.token, moment)
        with pytest.raises(ExchangeError, match=ErrorCode.AUTH_SESSION_EXPIRED):
            await logins.session(conn, second.token, NOW + dt.timedelta(seconds=logins.LIFETIME_S))

        third = await logins.sign_in(conn, login, PASSWORD, NOW)
        await logins.sign_out(conn, third.token, NOW)
        with pytest.raises(ExchangeError, match=ErrorCode.AUTH_SESSION_EXPIRED):
            await logins.session(conn, third.token, NOW)
        with pytest.raises(ExchangeError, match=ErrorCode.AUTH_SESSION_EXPIRED):
            await logins.session(conn, "not a token", NOW)


@pytest.mark.parametrize(
    ("login", "password", "code"),
    [
        ("ok-login", "short", ErrorCode.PASSWORD_TOO_WEAK),
        ("ok-login-2", "ok-login-2", ErrorCode.PASSWORD_TOO_WEAK),
        ("ok-login-3", "x" * (logins.MAX_PASSWORD + 1), ErrorCode.PASSWORD_TOO_WEAK),
        ("no", PASSWORD, ErrorCode.INVALID_ARGS),
        ("spaces in it", PASSWORD, ErrorCode.INVALID_ARGS),
        ("-dash-first", PASSWORD, ErrorCode.INVALID_ARGS),
    ],
)
async def test_weak_passwords_and_bad_logins_are_refused_and_nothing_is_stored(
    database: Database, login: str, password: str, code: ErrorCode
) -> None:
    account = await Ledger(database).open_account(f"weak/{login}", f"weak-{login}", [Role.TRADER])
    async with database.pool.acquire() as conn:
        with pytest.raises(ExchangeError) as caught:
            await logins.set_password(conn, account.account_id, login, password)
        count = await conn.fetchval(
            "SELECT count(*) FROM browser_logins WHERE account_id = $1", account.account_id
        )
    assert caught.value.code == code and count == 0


async def test_an_account_keeps_its_one_login_and_a_login_names_one_account(
    database: Database,
) -> None:
    account_id, login = await person(database)
    other, other_login = await person(database)
    async with database.pool.acquire() as conn:
        assert await logins.set_password(conn, account_id, login, "a new password!") == login
        with pytest.raises(ExchangeError, match=ErrorCode.LOGIN_TAKEN):
            await logins.set_password(conn, account_id, "another-name", PASSWORD)
        with pytest.raises(ExchangeError, match=ErrorCode.LOGIN_TAKEN):
            await logins.set_password(conn, other, login, PASSWORD)
        fresh = await Ledger(database).open_account("login/fresh", "fresh", [Role.TRADER])
        with pytest.raises(ExchangeError, match=ErrorCode.LOGIN_TAKEN):
            await logins.set_password(conn, fresh.account_id, login, PASSWORD)
    await refused(ErrorCode.AUTH_LOGIN_FAILED, database, login, PASSWORD)  # changed
    async with database.pool.acquire() as conn:
        await logins.sign_in(conn, login, "a new password!", NOW)
        await logins.sign_in(conn, other_login, PASSWORD, NOW)


async def test_guesses_sent_at_once_are_counted_before_any_is_checked(database: Database) -> None:
    _, login = await person(database)

    async def guess(n: int) -> str:
        async with database.pool.acquire() as conn:
            try:
                await logins.sign_in(conn, login, f"guess number {n}", NOW)
            except ExchangeError as error:
                return error.code
        return "signed in"

    codes = await asyncio.gather(*(guess(n) for n in range(12)))
    # five were checked (and failed); the others found the login locked, unchecked
    assert sorted(codes) == sorted(
        [ErrorCode.AUTH_LOGIN_FAILED] * logins.MAX_FAILURES
        + [ErrorCode.AUTH_LOCKED_OUT] * (12 - logins.MAX_FAILURES)
    )
    await refused(ErrorCode.AUTH_LOCKED_OUT, database, login, PASSWORD)


async def test_a_new_password_ends_the_sessions_the_old_one_opened(database: Database) -> None:
    account_id, login = await person(database)
    async with database.pool.acquire() as conn:
        before = await logins.sign_in(conn, login, PASSWORD, NOW)
        await logins.set_password(conn, account_id, login, "the next password")
        with pytest.raises(ExchangeError, match=ErrorCode.AUTH_SESSION_EXPIRED):
            await logins.session(conn, before.token, NOW)
        after = await logins.sign_in(conn, login, "the next password", NOW)
        assert (await logins.session(conn, after.token, NOW)).account_id == account_id
