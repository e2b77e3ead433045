"""Versioned schema migrations: ordered SQL files, each applied once, in its own transaction.

`settlement/migrations/NNNN_name.sql` is version NNNN. `schema_version` records what was applied.
A database already at a version newer than any file here belongs to newer code: refuse it rather
than run against a schema this code does not understand.
"""

from __future__ import annotations

import re
from importlib import resources

import msgspec

from settlement.connection import Connection
from settlement.errors import ErrorCode, LedgerError

# Any constant works; it only has to be the same for every process migrating one database.
_MIGRATION_LOCK = 0x43455258


class Migration(msgspec.Struct, frozen=True):
    version: int
    name: str
    sql: str


def migrations() -> list[Migration]:
    """The migrations shipped with this code, in version order."""
    found = []
    for entry in resources.files("settlement.migrations").iterdir():
        match = re.fullmatch(r"(\d{4})_(\w+)\.sql", entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    found.sort(key=lambda migration: migration.version)
    versions = [migration.version for migration in found]
    if versions != list(range(1, len(found) + 1)):
        raise RuntimeError(f"migrations must be numbered 1..n without gaps, found {versions}")
    return found


async def schema_version(conn: Connection) -> int:
    """The highest applied version, 0 for an empty database."""
    exists = await conn.fetchval("SELECT to_regclass('schema_version') IS NOT NULL")
    if not exists:
        return 0
    return int(await conn.fetchval("SELECT coalesce(max(version), 0) FROM schema_version"))


async def migrate(conn: Connection) -> list[int]:
    """Bring the schema up to date; returns the versions applied now."""
    known = migrations()
    await conn.execute("SELECT pg_advisory_lock($1)", _MIGRATION_LOCK)
    try:
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_version ("
            " version int PRIMARY KEY, name text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        current = await schema_version(conn)
        if current > len(known):
            raise LedgerError(
                ErrorCode.SCHEMA_TOO_NEW,
                f"the database is at schema version {current}; this code knows up to "
                f"{len(known)}. Run the newer code, or point CERX_DATABASE_URL elsewhere.",
            )
        applied = []
        for migration in known[current:]:
            async with conn.transaction():
                await conn.execute(migration.sql)
                await conn.execute(
                    "INSERT INTO schema_version (version, name) VALUES ($1, $2)",
                    migration.version,
                    migration.name,
                )
            applied.append(migration.version)
        return applied
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _MIGRATION_LOCK)
