"""Signatures: a good one passes once; stale, replayed or forged ones are refused; a REST
signature covers the method, the target and the body."""

from __future__ import annotations

import pytest

from exchange.auth import WINDOW_MS, HttpRequest, NonceGuard, message, sign, sign_request, verify
from exchange.errors import ErrorCode, ExchangeError

SECRET = b"s" * 32
NOW = 1_700_000_000_000


def refused(code: ErrorCode) -> pytest.RaisesExc[ExchangeError]:
    return pytest.raises(ExchangeError, check=lambda error: error.code is code)


def test_a_signature_verifies_with_its_secret_only() -> None:
    signature = sign(SECRET, NOW, "nonce-0001", "key-1")
    verify(SECRET, message(NOW, "nonce-0001", "key-1"), signature)
    verify(SECRET, message(NOW, "nonce-0001", "key-1"), signature.upper())
    for secret, ts, nonce, key in [
        (b"t" * 32, NOW, "nonce-0001", "key-1"),
        (SECRET, NOW + 1, "nonce-0001", "key-1"),
        (SECRET, NOW, "nonce-0002", "key-1"),
        (SECRET, NOW, "nonce-0001", "key-2"),
    ]:
        with refused(ErrorCode.AUTH_BAD_SIGNATURE):
            verify(secret, message(ts, nonce, key), signature)


def test_a_request_signature_covers_method_target_and_body() -> None:
    request = HttpRequest("POST", "/api/v1/operator/deposits", b'{"account_id":7}')
    signature = sign_request(SECRET, NOW, "nonce-0001", "key-1", request)
    verify(SECRET, message(NOW, "nonce-0001", "key-1", request), signature)
    assert signature != sign(SECRET, NOW, "nonce-0001", "key-1")
    for other in [
        request._replace(method="PUT"),
        request._replace(path_qs="/api/v1/operator/withdrawals"),
        request._replace(body=b'{"account_id":8}'),
        request._replace(body=b""),
    ]:
        with refused(ErrorCode.AUTH_BAD_SIGNATURE):
            verify(SECRET, message(NOW, "nonce-0001", "key-1", other), signature)


def test_timestamps_outside_the_window_are_stale() -> None:
    guard = NonceGuard()
    guard.admit("k", NOW - WINDOW_MS, "nonce-early", NOW)
    guard.admit("k", NOW + WINDOW_MS, "nonce-later", NOW)
    for ts in (NOW - WINDOW_MS - 1, NOW + WINDOW_MS + 1):
        with refused(ErrorCode.AUTH_STALE_TIMESTAMP):
            guard.admit("k", ts, "nonce-other", NOW)


def test_a_nonce_is_refused_the_second_time_for_the_same_key() -> None:
    guard = NonceGuard()
    guard.admit("k", NOW, "nonce-0001", NOW)
    with refused(ErrorCode.AUTH_NONCE_REUSED):
        guard.admit("k", NOW + 10, "nonce-0001", NOW + 10)
    guard.admit("other-key", NOW, "nonce-0001", NOW)


def test_a_nonce_is_forgotten_only_once_its_timestamp_could_no_longer_pass() -> None:
    guard = NonceGuard()
    guard.admit("k", NOW + WINDOW_MS, "nonce-0001", NOW)
    later = NOW + 2 * WINDOW_MS  # the timestamp still passes: the nonce must still be known
    with refused(ErrorCode.AUTH_NONCE_REUSED):
        guard.admit("k", NOW + WINDOW_MS, "nonce-0001", later)
    much_later = NOW + 4 * WINDOW_MS
    with refused(ErrorCode.AUTH_STALE_TIMESTAMP):
        guard.admit("k", NOW + WINDOW_MS, "nonce-0001", much_later)


@pytest.mark.parametrize("nonce", ["short", "x" * 65, "has space!", "ünïcode-nonce"])
def test_malformed_nonces_are_refused(nonce: str) -> None:
    with refused(ErrorCode.AUTH_BAD_SIGNATURE):
        NonceGuard().admit("k", NOW, nonce, NOW)
