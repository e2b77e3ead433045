"""`cerx set-password` as an operator runs it: a real process, the password on standard input;
the login then signs in; bad input exits 2 with the reason and stores nothing."""

from __future__ import annotations

import asyncio
import datetime as dt
import sys

from exchange import logins
from settlement.database import Database
from settlement.ledger import Ledger
from settlement.values import Role


async def cerx(database_url: str, *args: str, password: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "exchange", "set-password", *args, "--database-url", database_url,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await process.communicate(f"{password}\n".encode())
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_set_password_gives_a_login_that_signs_in(
    database: Database, database_url: str
) -> None:
    account = await Ledger(database).open_account("cli/ops", "Ops Desk", [Role.OPERATOR])
    code, out, err = await cerx(
        database_url, str(account.account_id), "Ops.Desk", password="a long password"
    )
    assert (code, err) == (0, "")
    assert out.strip() == f"login      ops.desk signs in to account {account.account_id} (Ops Desk)"
    async with database.pool.acquire() as conn:
        opened = await logins.sign_in(conn, "ops.desk", "a long password", dt.datetime.now(dt.UTC))
    assert opened.session.account_id == account.account_id


async def test_set_password_refuses_a_weak_password_and_an_unknown_account(
    database: Database, database_url: str
) -> None:
    account = await Ledger(database).open_account("cli/weak", "Weak", [Role.TRADER])
    code, _, err = await cerx(database_url, str(account.account_id), "weak", password="short")
    assert code == 2 and "PASSWORD_TOO_WEAK" in err
    code, _, err = await cerx(database_url, "987654", "nobody", password="a long password")
    assert code == 2 and "ACCOUNT_NOT_FOUND" in err
    async with database.pool.acquire() as conn:
        taken = "SELECT count(*) FROM browser_logins WHERE login IN ('weak', 'nobody')"
        assert await conn.fetchval(taken) == 0
