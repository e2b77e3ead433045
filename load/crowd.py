"""What the users of one locust process share: the cast, the next account of each kind, what
they heard from the server, a copy of each book, and a gate that pauses them all.

Every trader's session hears the same book messages; each session checks its own stream's
numbers (a gap: it subscribes again), and one copy of each book per process is brought on by
whichever session delivers the next number first, and checked against its checksum once. Keeping
a copy per session as well would only spend the load generator's processor on the same sums.

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

from exchange.book_mirror import MirroredBook
from exchange.market_data import BookDelta, BookSnapshot
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
        self.books: dict[str, MirroredBook] = {}

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

    def mirror(self, message: BookSnapshot | BookDelta) -> MirroredBook:
        """The process's copy of the message's book, brought up to date by it if it is the
        next; its checksum checked against the message's once per message number."""
        book = self.books.get(message.channel)
        if book is None:
            book = self.books[message.channel] = MirroredBook(message.channel)
        if isinstance(message, BookSnapshot):
            if book.synced and message.seq <= book.seq:
                return book  # older than what the copy has: another session brought it on
            book.reset(message)
        elif book.synced and message.seq == book.seq + 1:
            book.update(message)
        else:
            return book  # already applied, or ahead: the session that has the next brings it on
        if book.checksum() != message.checksum:
            self.heard.problems.append(f"{message.channel} #{message.seq}: a wrong checksum")
            book.synced = False
        return book

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
