"""Registration fixtures: the ledger on the module's fresh database, and the registration desk
over it; after every test the registration audit and then the ledger's must pass."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from registration.desk import RegistrationDesk
from settlement.ledger import Ledger
from tests.settlement.conftest import ledger

__all__ = ["desk", "ledger"]


@pytest.fixture
async def desk(ledger: Ledger) -> AsyncIterator[RegistrationDesk]:
    desk = RegistrationDesk(ledger)
    yield desk
    await desk.check()
