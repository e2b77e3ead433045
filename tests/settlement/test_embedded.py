"""The default database: an embedded PostgreSQL in a data directory, started, migrated, used,
stopped, and found again with its data on the next start."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from settlement.database import DATABASE_URL_VARIABLE, Database
from settlement.ledger import Ledger
from settlement.values import ByQuantity, Methodology, Project, Role


async def test_embedded_server_keeps_the_ledger_across_restarts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(DATABASE_URL_VARIABLE, raising=False)
    database = await Database.open(data_dir=tmp_path)
    try:
        assert database.embedded
        assert (tmp_path / "pg" / "PG_VERSION").exists()
        ledger = Ledger(database)
        regulator = await ledger.open_account("r", "regulator", [Role.REGULATOR])
        owner = await ledger.open_account("o", "owner", [Role.PARTICIPANT])
        buyer = await ledger.open_account("b", "buyer", [Role.TRADER])
        await ledger.register_methodology(
            "m", regulator.account_id, Methodology("PV01", "Rooftop PV", "energy")
        )
        await ledger.register_project(
            "p", regulator.account_id, Project("P1", owner.account_id, "PV01", "Futian")
        )
        await ledger.issue(
            "i", regulator.account_id, "P1", 100, dt.date(2025, 1, 1), dt.date(2025, 1, 31)
        )
        await ledger.transfer("t", owner.account_id, buyer.account_id, ByQuantity(40))
        await ledger.check()
    finally:
        await database.close()

    reopened = await Database.open(data_dir=tmp_path)
    try:
        ledger = Ledger(reopened)
        assert sum(h.quantity_t for h in await ledger.holdings(buyer.account_id)) == 40
        report = await ledger.check()
        assert report.issued_t == 100
    finally:
        await reopened.close()
