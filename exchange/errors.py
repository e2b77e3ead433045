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
    AUTH_FORBIDDEN = "AUTH_FORBIDDEN"  # signed, but the account lacks the role
    # people in a browser (`exchange.logins`)
    AUTH_LOGIN_FAILED = "AUTH_LOGIN_FAILED"  # unknown login or wrong password: never which
    AUTH_LOCKED_OUT = "AUTH_LOCKED_OUT"  # too many failures: retry_after_ms says when
    AUTH_SESSION_EXPIRED = "AUTH_SESSION_EXPIRED"
    AUTH_CSRF_TOKEN_INVALID = "AUTH_CSRF_TOKEN_INVALID"  # a browser write without its token
    PASSWORD_TOO_WEAK = "PASSWORD_TOO_WEAK"
    LOGIN_TAKEN = "LOGIN_TAKEN"
    # frames
    MALFORMED_JSON = "MALFORMED_JSON"
    MALFORMED_REQUEST = "MALFORMED_REQUEST"
    UNKNOWN_OP = "UNKNOWN_OP"
    INVALID_ARGS = "INVALID_ARGS"
    UNKNOWN_CHANNEL = "UNKNOWN_CHANNEL"
    RATE_LIMITED = "RATE_LIMITED"
    IDEMPOTENCY_KEY_REQUIRED = "IDEMPOTENCY_KEY_REQUIRED"  # a REST write without a valid key
    BODY_TOO_LARGE = "BODY_TOO_LARGE"  # a REST body past the server's limit
    NO_SUCH_ROUTE = "NO_SUCH_ROUTE"  # a REST path, or a method on it, that no route has
    TOO_MANY_SESSIONS = "TOO_MANY_SESSIONS"  # a WebSocket upgrade past a cap on open sessions
    # orders
    UNKNOWN_INSTRUMENT = "UNKNOWN_INSTRUMENT"
    DUPLICATE_CL_ORD_ID = "DUPLICATE_CL_ORD_ID"
    # listings
    INSTRUMENT_EXISTS = "INSTRUMENT_EXISTS"
    # the exchange's own state
    EXCHANGE_NOT_READY = "EXCHANGE_NOT_READY"
    EXCHANGE_HALTED = "EXCHANGE_HALTED"
    JOURNAL_UNAVAILABLE = "JOURNAL_UNAVAILABLE"
    DATABASE_UNAVAILABLE = "DATABASE_UNAVAILABLE"  # unreachable for now: try again
    SETTLEMENT_BEHIND = "SETTLEMENT_BEHIND"
    INTERNAL_ERROR = "INTERNAL_ERROR"


class ExchangeError(Exception):
    """A refused request. `code` is one of ours, or a ledger or book code passed through."""

    def __init__(self, code: str, message: str, retry_after_ms: int | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.retry_after_ms = retry_after_ms
