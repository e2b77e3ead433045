"""Asserting a refusal of the registration package or of the ledger under it: the stable code."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

import pytest

from registration.errors import ErrorCode, RegistrationError
from settlement.errors import ErrorCode as LedgerCode
from settlement.errors import LedgerError


async def refused(code: ErrorCode | LedgerCode, awaitable: Awaitable[Any]) -> str:
    """Await `awaitable`, which must be refused with `code`; the refusal's message."""
    with pytest.raises((RegistrationError, LedgerError)) as caught:
        await awaitable
    error = caught.value
    assert isinstance(error, RegistrationError | LedgerError)
    assert error.code is code, error
    return error.message
