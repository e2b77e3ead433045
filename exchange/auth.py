"""Signed requests by API key: an HMAC-SHA256 signature over a timestamp, a nonce and the key id.

A WebSocket login signs `f"{timestamp_ms}{nonce}{key_id}"` with the key's secret and sends all
four. A REST request signs the same followed by what it asks for, so that a signature cannot be
moved to another request or another body:

    f"{timestamp_ms}{nonce}{key_id}\n{METHOD}\n{path_qs}\n{sha256hex(body)}"

where `path_qs` is the request target exactly as sent (path, then `?` and the query if any) and
the body hash is of the bytes sent (of `b""` when there are none). The server refuses a timestamp
more than `WINDOW_MS` from its clock, a nonce the key has used within the window, and a signature
that does not match. Nonces need remembering only as long as their timestamp could pass, so the
memory of them is bounded by the request rate times twice the window.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections import deque
from typing import NamedTuple

from exchange.errors import ErrorCode, ExchangeError

WINDOW_MS = 5_000
NONCE = re.compile(r"[A-Za-z0-9_-]{8,64}")
KEY_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
SIGNATURE = re.compile(r"[0-9a-fA-F]{64}")


class HttpRequest(NamedTuple):
    """What a REST signature covers beyond the login's values."""

    method: str
    path_qs: str
    body: bytes


def message(
    timestamp_ms: int, nonce: str, key_id: str, request: HttpRequest | None = None
) -> bytes:
    """The signed text: a login's, or a REST request's when `request` is given.

    >>> request = HttpRequest("POST", "/api/v1/x?a=1", b"{}")
    >>> message(1700000000000, "nonce-01", "k-1", request).decode().splitlines()[:3]
    ['1700000000000nonce-01k-1', 'POST', '/api/v1/x?a=1']
    """
    text = f"{timestamp_ms}{nonce}{key_id}"
    if request is not None:
        digest = hashlib.sha256(request.body).hexdigest()
        text += f"\n{request.method}\n{request.path_qs}\n{digest}"
    return text.encode()


def sign(secret: bytes, timestamp_ms: int, nonce: str, key_id: str) -> str:
    """A login's signature: lower-case hex HMAC-SHA256."""
    return _mac(secret, message(timestamp_ms, nonce, key_id))


def sign_request(
    secret: bytes, timestamp_ms: int, nonce: str, key_id: str, request: HttpRequest
) -> str:
    """A REST request's signature: lower-case hex HMAC-SHA256."""
    return _mac(secret, message(timestamp_ms, nonce, key_id, request))


def _mac(secret: bytes, signed: bytes) -> str:
    return hmac.new(secret, signed, hashlib.sha256).hexdigest()


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


def verify(secret: bytes, signed: bytes, signature: str) -> None:
    """Refuse unless `signature` is the HMAC of `signed` (see `message`) under `secret`."""
    # compare_digest refuses str with non-ASCII characters (a header may carry any byte)
    if not SIGNATURE.fullmatch(signature) or not hmac.compare_digest(
        _mac(secret, signed), signature.lower()
    ):
        raise ExchangeError(ErrorCode.AUTH_BAD_SIGNATURE, "the signature does not match")
