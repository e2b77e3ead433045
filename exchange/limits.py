"""Limits: how many requests a session and an account may make (token buckets, in whole tokens
and nanoseconds), and how many WebSocket sessions may be open (`exchange.admission`).

A bucket holds up to `burst` tokens and gains `per_second` of them each second; a request takes
one. A refusal says how long until the next token (`retry_after_ms`), so a client can back off
exactly rather than guess.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import msgspec

NS_PER_S = 1_000_000_000


class Limits(msgspec.Struct, frozen=True):
    session_per_second: int = 500
    session_burst: int = 1_000
    account_per_second: int = 2_000
    account_burst: int = 4_000
    sessions_per_address: int = 256  # WebSocket sessions open from one remote address
    sessions_total: int = 4_096  # WebSocket sessions open in all


DEFAULT_LIMITS = Limits()


class TokenBucket:
    """
    >>> now = [0]
    >>> bucket = TokenBucket(per_second=2, burst=2, clock=lambda: now[0])
    >>> [bucket.take() for _ in range(3)]
    [0, 0, 500]
    >>> now[0] = 500_000_000
    >>> bucket.take()
    0
    """

    def __init__(self, per_second: int, burst: int, clock: Callable[[], int] = time.monotonic_ns):
        self._ns_per_token = NS_PER_S // per_second
        self._capacity_ns = burst * self._ns_per_token
        self._clock = clock
        # the bucket as the time at which it was empty: full means `capacity` ago or earlier
        self._empty_at = clock() - self._capacity_ns

    def take(self) -> int:
        """Take a token: 0 if there was one, else the milliseconds until there will be."""
        now = self._clock()
        empty_at = max(self._empty_at, now - self._capacity_ns)
        if now - empty_at < self._ns_per_token:
            return -(-(empty_at + self._ns_per_token - now) // 1_000_000)
        self._empty_at = empty_at + self._ns_per_token
        return 0
