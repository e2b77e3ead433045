"""The console's tests run on the exchange's fixtures: a real server on loopback, its database,
and a market made before it opened."""

from __future__ import annotations

from tests.exchange.conftest import (
    database,
    exchange,
    market,
    platform_key,
    rest,
    server,
    team,
)

__all__ = ["database", "exchange", "market", "platform_key", "rest", "server", "team"]
