"""Login by API key: an HMAC-SHA256 signature over a timestamp, a nonce and the key id.

The client signs `f"{timestamp_ms}{nonce}{key_id}"` with its secret and sends all four. The
server refuses a timestamp more than `WINDOW_MS` from its clock, a nonce the key has used within
the window, and a signature that does not match. Nonces need remembering only as long as their
timestamp could pass, so the memory of them is bounded by the login rate times twice the window.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections import deque

from exchange.errors import ErrorCode, ExchangeError

WINDOW_MS = 5_000
NONCE = re.compile(r"[A-Za-z0-9_-]{8,64}")


def sign(secret: bytes, timestamp_ms: int, nonce: str, key_id: str) -> str:
    """The signature a client sends: lower-case hex HMAC-SHA256."""
    message = f"{timestamp_ms}{nonce}{key_id}".encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def new_secret() -> bytes:
    return secrets.token_bytes(32)


class NonceGuard:
    """Refuses stale timestamps and nonces seen within the window, per key."""

    def __init__(self, window_ms: int = WINDOW_MS) -> None:
        self._window_ms = window_ms
        self._seen: set[tuple[str, str]] = set()
        self._expiry: deque[tuple[int, str, str]] = deque()  # (forget after, key, nonce)

    def admit(self, key_id: str, timestamp_ms: int, nonce: str, now_ms: int) -> None:
        if abs(now_ms - timestamp_ms) > self._window_ms:
            raise ExchangeError(
                ErrorCode.AUTH_STALE_TIMESTAMP,
                f"timestamp {timestamp_ms} is more than {self._window_ms} ms from the server's"
                f" clock ({now_ms})",
            )
        if not NONCE.fullmatch(nonce):
            raise ExchangeError(
                ErrorCode.AUTH_BAD_SIGNATURE, "a nonce is 8-64 characters of A-Z a-z 0-9 _ -"
            )
        while self._expiry and self._expiry[0][0] < now_ms:
            _, old_key, old_nonce = self._expiry.popleft()
            self._seen.discard((old_key, old_nonce))
        if (key_id, nonce) in self._seen:
            raise ExchangeError(ErrorCode.AUTH_NONCE_REUSED, "this nonce was used already")
        self._seen.add((key_id, nonce))
        # a timestamp can pass until WINDOW after itself; keep the nonce at least that long
        self._expiry.append((max(now_ms, timestamp_ms) + 2 * self._window_ms, key_id, nonce))


def verify(secret: bytes, timestamp_ms: int, nonce: str, key_id: str, signature: str) -> None:
    expected = sign(secret, timestamp_ms, nonce, key_id)
    if not hmac.compare_digest(expected, signature.lower()):
        raise ExchangeError(ErrorCode.AUTH_BAD_SIGNATURE, "the signature does not match")
