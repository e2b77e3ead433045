"""Schema migrations: applied once each, in order, recorded; a newer schema is refused."""

from __future__ import annotations

import asyncpg

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
