"""Ledger fixtures: the ledger on the module's fresh database (`tests.postgres`), audited
after every test."""

from __future__ import annotations

import itertools
import os
from collections.abc import AsyncIterator

import pytest

from settlement.database import Database
from settlement.ledger import Ledger


@pytest.fixture
async def ledger(database_url: str) -> AsyncIterator[Ledger]:
    """The ledger on this module's database; the audit must pass after the test."""
    database = await Database.open(database_url, min_size=1, max_size=12)
    ledger = Ledger(database)
    try:
        yield ledger
        await ledger.check()
    finally:
        await database.close()


_names = itertools.count(1)


def unique(prefix: str) -> str:
    """A name no other test in the module uses (tests share their module's database)."""
    return f"{prefix}-{os.getpid()}-{next(_names)}"
