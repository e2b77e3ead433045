"""What the users of one locust process share: the cast, the next account of each kind, what
they heard from the server, and a gate that pauses them all.

The crash campaign pauses the crowd so that it can compare the server with its journal while
nothing trades: `pause` closes the gate and returns once no user is inside an action; users
wait at the gate before their next one.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

import gevent
import gevent.event

from load.cast import Cast, base36
from load.cast import load as load_cast
from load.verify import Heard


class Crowd:
    def __init__(self, cast: Cast) -> None:
        self.cast = cast
        self.heard = Heard()
        # client order ids and idempotency keys are unique for ever: the process's start time
        # keeps them apart from another process's on the same accounts
        self.prefix = base36(time.time_ns() // 1_000_000)
        self._taken: Counter[str] = Counter()
        self._open = gevent.event.Event()
        self._open.set()
        self._busy = 0
        self._idle = gevent.event.Event()
        self._idle.set()

    def take(self, kind: str) -> int:
        """The number of the next user of `kind`, from 0."""
        number = self._taken[kind]
        self._taken[kind] += 1
        return number

    @contextmanager
    def action(self) -> Iterator[None]:
        """Wait at the gate, then hold the crowd busy while the action runs."""
        self._open.wait()
        self._busy += 1
        self._idle.clear()
        try:
            yield
        finally:
            self._busy -= 1
            if not self._busy:
                self._idle.set()

    def pause(self, timeout_s: float) -> bool:
        """Close the gate; whether every user left its action within `timeout_s`."""
        self._open.clear()
        return bool(self._idle.wait(timeout_s))

    def resume(self) -> None:
        self._open.set()

    def saw(self, table: dict[tuple[str, int], int], channel: str, seq: int, value: int) -> None:
        """Note a numbered market-data message; two different ones under one number is wrong."""
        if table.setdefault((channel, seq), value) != value:
            self.heard.problems.append(f"{channel} #{seq} was sent as two different messages")


_crowd: Crowd | None = None


def crowd() -> Crowd:
    """This process's crowd, on the cast `$CERX_LOAD_CAST` names."""
    global _crowd
    if _crowd is None:
        _crowd = Crowd(load_cast())
    return _crowd
