"""`python -m settlement migrate|audit`: exit codes and what it prints."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from settlement.__main__ import main
from settlement.migrate import migrations


def test_audit_of_a_clean_ledger_says_ok(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["migrate", "--database-url", database_url]) == 0
    assert main(["audit", "--database-url", database_url]) == 0
    out = capsys.readouterr().out
    assert "audit      OK" in out and f"schema version {len(migrations())}" in out


def test_audit_of_a_damaged_ledger_fails_and_lists_the_damage(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    damage = (
        "INSERT INTO ledger_txns (kind) VALUES ('forged');"
        " INSERT INTO cash_entries (txn_id, account_id, bucket, amount_fen)"
        " SELECT max(txn_id), 2, 'available', 5 FROM ledger_txns"
    )
    repair = (
        "DELETE FROM cash_entries WHERE amount_fen = 5 AND account_id = 2;"
        " DELETE FROM ledger_txns WHERE kind = 'forged'"
    )
    asyncio.run(_execute(database_url, damage))
    try:
        assert main(["audit", "--database-url", database_url]) == 1
    finally:
        asyncio.run(_execute(database_url, repair))
    out = capsys.readouterr().out
    assert "audit      FAILED" in out and "does not balance: 5 fen" in out
    assert main(["audit", "--database-url", database_url]) == 0


async def _execute(url: str, sql: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()
