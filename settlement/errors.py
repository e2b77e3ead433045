"""Every refusal the ledger gives, as a stable code and a message for people.

Codes are part of the wire protocol: the exchange sends them to clients unchanged, the docs list
them, and tests assert on them. Add codes; never rename one.
"""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    # input shape
    QUANTITY_MUST_BE_POSITIVE = "QUANTITY_MUST_BE_POSITIVE"
    AMOUNT_MUST_BE_POSITIVE = "AMOUNT_MUST_BE_POSITIVE"
    PRICE_MUST_BE_POSITIVE = "PRICE_MUST_BE_POSITIVE"
    FEE_RATE_OUT_OF_RANGE = "FEE_RATE_OUT_OF_RANGE"
    MALFORMED_ID = "MALFORMED_ID"
    MALFORMED_RANGE = "MALFORMED_RANGE"
    MALFORMED_PERIOD = "MALFORMED_PERIOD"
    VINTAGE_OUT_OF_RANGE = "VINTAGE_OUT_OF_RANGE"
    SELECTION_MUST_BE_QUANTITY_OR_RANGES = "SELECTION_MUST_BE_QUANTITY_OR_RANGES"
    # accounts and roles
    ACCOUNT_NOT_FOUND = "ACCOUNT_NOT_FOUND"
    ACCOUNT_NAME_TAKEN = "ACCOUNT_NAME_TAKEN"
    ROLE_NOT_ALLOWED = "ROLE_NOT_ALLOWED"
    SAME_ACCOUNT = "SAME_ACCOUNT"
    # registry and issuance
    METHODOLOGY_EXISTS = "METHODOLOGY_EXISTS"
    METHODOLOGY_NOT_REGISTERED = "METHODOLOGY_NOT_REGISTERED"
    PROJECT_EXISTS = "PROJECT_EXISTS"
    PROJECT_NOT_FOUND = "PROJECT_NOT_FOUND"
    PROJECT_REGISTERED_UNDER_OTHER_SCHEME = "PROJECT_REGISTERED_UNDER_OTHER_SCHEME"
    ISSUANCE_PERIOD_OVERLAPS = "ISSUANCE_PERIOD_OVERLAPS"
    # holdings, cash and locks
    INSUFFICIENT_HOLDINGS = "INSUFFICIENT_HOLDINGS"
    RANGE_NOT_HELD = "RANGE_NOT_HELD"
    INSUFFICIENT_CASH = "INSUFFICIENT_CASH"
    LOCK_EXISTS = "LOCK_EXISTS"
    LOCK_INSUFFICIENT = "LOCK_INSUFFICIENT"
    # settlement
    TRADE_CONFLICT = "TRADE_CONFLICT"
    # idempotency and schema
    IDEMPOTENCY_KEY_REUSED = "IDEMPOTENCY_KEY_REUSED"
    SCHEMA_TOO_NEW = "SCHEMA_TOO_NEW"


class LedgerError(Exception):
    """A refused ledger operation: nothing it would have written was written."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
