"""Schema migrations: applied once each, in order, recorded; a newer schema is refused."""

from __future__ import annotations

import asyncpg
import pytest

from settlement.errors import ErrorCode
from settlement.migrate import migrate, migrations, schema_version
from tests.settlement.refusals import refused


def test_shipped_migrations_are_numbered_from_one_without_gaps() -> None:
    found = migrations()
    assert [m.version for m in found] == list(range(1, len(found) + 1))
    assert found[0].name == "ledger" and "CREATE TABLE holdings" in found[0].sql


async def test_migrating_again_applies_nothing(database_url: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        assert await schema_version(conn) == len(migrations())
        assert await migrate(conn) == []
        recorded = await conn.fetch("SELECT version, name FROM schema_version ORDER BY version")
        assert [(r["version"], r["name"]) for r in recorded] == [
            (m.version, m.name) for m in migrations()
        ]
    finally:
        await conn.close()


async def test_a_database_from_newer_code_is_refused(database_url: str) -> None:
    conn = await asyncpg.connect(database_url)
    newer = len(migrations()) + 1
    undo = conn.transaction()  # rolled back: the module's database stays as it was
    await undo.start()
    try:
        await conn.execute(
            "INSERT INTO schema_version (version, name) VALUES ($1, 'from_the_future')", newer
        )
        error = await refused(ErrorCode.SCHEMA_TOO_NEW, migrate(conn))
        assert f"schema version {newer}" in error.message
    finally:
        await undo.rollback()
        await conn.close()


async def test_points_balances_move_into_their_users_rows_intact(database_url: str) -> None:
    """0011 moves each user's balances into its row, one element per rule version from 1 with
    zeros between, and drops the old table; replayed in a schema of its own, then undone."""
    conn = await asyncpg.connect(database_url)
    undo = conn.transaction()
    await undo.start()
    try:
        await conn.execute("CREATE SCHEMA before_0011; SET LOCAL search_path = before_0011")
        for migration in migrations()[:10]:
            await conn.execute(migration.sql)
        txn = await conn.fetchval("INSERT INTO ledger_txns (kind) VALUES ('t') RETURNING txn_id")
        aggregator = await conn.fetchval(
            "INSERT INTO accounts (name, roles) VALUES ('a', '{aggregator}') RETURNING account_id"
        )
        await conn.execute(
            "INSERT INTO aggregators (account_id, declaration, txn_id) VALUES ($1, 'd', $2)",
            aggregator,
            txn,
        )
        users = await conn.fetch(
            "INSERT INTO point_users (aggregator_id, user_ref, authorised)"
            " SELECT $1, ref, true FROM unnest(ARRAY['held-1-and-3', 'held-2', 'none']) AS ref"
            " RETURNING user_ref, user_id",
            aggregator,
        )
        ids = {row["user_ref"]: row["user_id"] for row in users}
        await conn.execute(
            "INSERT INTO point_balances (user_id, rule_version, balance) VALUES"
            " ($1, 1, 10), ($1, 3, 30), ($2, 2, 0)",
            ids["held-1-and-3"],
            ids["held-2"],
        )
        await conn.execute(migrations()[10].sql)
        rows = await conn.fetch("SELECT user_ref, balances FROM point_users ORDER BY user_ref")
        assert [(row["user_ref"], row["balances"]) for row in rows] == [
            ("held-1-and-3", [10, 0, 30]),
            ("held-2", [0, 0]),
            ("none", []),
        ]
        assert await conn.fetchval("SELECT to_regclass('point_balances')") is None
        for wrong in ("{-1}", "{1,NULL}", "[2:2]={5}", "{{1},{2}}"):
            with pytest.raises(asyncpg.CheckViolationError):
                async with conn.transaction():
                    await conn.execute(
                        "UPDATE point_users SET balances = $1::text::bigint[]", wrong
                    )
    finally:
        await undo.rollback()
        await conn.close()
