"""Offsets fixtures: the ledger on the module's fresh database, audited after every test, and the
offset registry over it."""

from __future__ import annotations

import pytest

from offsets.registry import OffsetRegistry
from settlement.ledger import Ledger
from tests.settlement.conftest import ledger

__all__ = ["ledger", "registry"]


@pytest.fixture
def registry(ledger: Ledger) -> OffsetRegistry:
    return OffsetRegistry(ledger)
