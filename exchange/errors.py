"""The exchange's own refusal codes. Replies carry these, the ledger's (`settlement.errors`) and
the book's (`matching.RejectCode`) unchanged: one flat namespace of stable UPPER_SNAKE strings."""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    # authentication
    AUTH_REQUIRED = "AUTH_REQUIRED"
    AUTH_UNKNOWN_KEY = "AUTH_UNKNOWN_KEY"
    AUTH_BAD_SIGNATURE = "AUTH_BAD_SIGNATURE"
    AUTH_STALE_TIMESTAMP = "AUTH_STALE_TIMESTAMP"
    AUTH_NONCE_REUSED = "AUTH_NONCE_REUSED"


class ExchangeError(Exception):
    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
