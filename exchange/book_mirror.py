"""A client's copy of public L2 books, kept from a snapshot and the numbered deltas after it.

Every book message is checked: a delta must carry the next number (seq = previous + 1) and the
checksum of the mirrored book once it is applied, computed by the server's own function
(`exchange.market_data.levels_checksum`). On a gap or a mismatch the mirror stops applying that
channel and subscribes again; the fresh snapshot replaces the book, and deltas still on the wire
from before it are skipped.

The server numbers a channel's messages, not a session's, and a restarted server numbers them
as before (its journal replay publishes every change again), so after a reconnect `follow` the
new client: each followed channel's snapshot carries on from the number last seen.

    mirror = BookMirror()
    await mirror.follow(client, "SZCER-2025")
    async for message in client.messages():
        await mirror.apply(message)
"""

from __future__ import annotations

import heapq

from exchange.client import Client, Push
from exchange.market_data import CHECKSUM_LEVELS, BookDelta, BookSnapshot, Level, levels_checksum
from matching import Side


class BookMirrorError(Exception):
    """The server's snapshot does not check out against itself: resubscribing cannot help."""


class MirroredBook:
    """One channel's book: price → (quantity in tonnes, orders) per side."""

    def __init__(self, channel: str) -> None:
        self.channel = channel
        self.seq = 0  # the number of the last message applied
        self.synced = False  # until a snapshot arrives, deltas cannot be applied
        self._sides: dict[Side, dict[int, tuple[int, int]]] = {Side.BUY: {}, Side.SELL: {}}

    def depth(self, side: Side, levels: int | None = None) -> list[Level]:
        """Up to `levels` (all if None) rows of (price, quantity, orders), best first.
        O(n log levels)."""
        rows = ((price, q, n) for price, (q, n) in self._sides[side].items())
        size = len(self._sides[side]) if levels is None else levels
        best = heapq.nlargest if side is Side.BUY else heapq.nsmallest
        return best(size, rows)

    def checksum(self) -> int:
        return levels_checksum(
            self.depth(Side.BUY, CHECKSUM_LEVELS), self.depth(Side.SELL, CHECKSUM_LEVELS)
        )

    def reset(self, snapshot: BookSnapshot) -> None:
        self._sides[Side.BUY] = {price: (q, n) for price, q, n in snapshot.bids}
        self._sides[Side.SELL] = {price: (q, n) for price, q, n in snapshot.asks}
        self.seq = snapshot.seq
        self.synced = True

    def update(self, delta: BookDelta) -> None:
        for side, price, quantity, orders in delta.changes:
            if quantity:
                self._sides[side][price] = (quantity, orders)
            else:
                self._sides[side].pop(price, None)
        self.seq = delta.seq


class BookMirror:
    """The books of the channels followed, checked message by message."""

    def __init__(self) -> None:
        self.books: dict[str, MirroredBook] = {}
        self.resyncs = 0  # fresh snapshots asked for after a gap or a checksum mismatch
        self._client: Client | None = None

    async def follow(self, client: Client, *symbols: str) -> None:
        """Mirror the books of `symbols`, and of those followed before, through `client`
        (after a reconnect: the new one); their snapshots arrive as messages."""
        self._client = client
        for symbol in symbols:
            self.books.setdefault(f"book:{symbol}", MirroredBook(f"book:{symbol}"))
        for book in self.books.values():
            book.synced = False
        await client.subscribe(*self.books)

    async def apply(self, message: Push) -> bool:
        """Apply a message if it is for a followed book; whether it was."""
        if not isinstance(message, BookSnapshot | BookDelta):
            return False
        book = self.books.get(message.channel)
        if book is None:
            return False
        if isinstance(message, BookSnapshot):
            book.reset(message)
            if book.checksum() != message.checksum:
                raise BookMirrorError(
                    f"{message.channel}: snapshot {message.seq} has checksum {message.checksum},"
                    f" its levels give {book.checksum()}"
                )
        elif book.synced:
            if message.seq != book.seq + 1:
                await self._resync(book)
            else:
                book.update(message)
                if book.checksum() != message.checksum:
                    await self._resync(book)
        return True

    async def _resync(self, book: MirroredBook) -> None:
        assert self._client is not None  # set by `follow`, which every mirrored book came from
        book.synced = False
        self.resyncs += 1
        await self._client.subscribe(book.channel)
