"""Asserting a refusal: the stable code, and (by the caller's later reads) nothing written."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

import pytest

from settlement.errors import ErrorCode, LedgerError


async def refused(code: ErrorCode, awaitable: Awaitable[Any]) -> LedgerError:
    with pytest.raises(LedgerError) as caught:
        await awaitable
    assert caught.value.code is code, caught.value
    return caught.value
