"""Public market data: per instrument, the L2 book (a snapshot, then deltas), the trades,
1-minute OHLCV bars, and the session's statistics so far (open, high, low, last, volume,
notional), which start again when the book closes its session (end of day).

Every channel numbers its messages 1, 2, 3…; a snapshot carries the number of the last message
before it, so the next delta is one more. Book messages carry a CRC32 of the top `CHECKSUM_LEVELS`
levels of each side after the change, so a client that applied every delta can check it holds the
same book; on a gap or a mismatch it subscribes again for a fresh snapshot.

The checksum is `zlib.crc32` of the ASCII text `b:P:Q,b:P:Q,…|a:P:Q,…`: bids best first, then
asks best first, each level its price in fen and quantity in tonnes.
"""

from __future__ import annotations

import zlib
from collections import defaultdict, deque
from collections.abc import Callable, Sequence

import msgspec

from exchange.instruments import Instrument
from exchange.journal import Entry
from matching import Event, LevelChanged, OrderBook, SessionClosed, Side, Trade

CHECKSUM_LEVELS = 10
Push = Callable[[bytes], None]
Level = tuple[int, int, int]  # price fen, quantity t, orders


class BookSnapshot(msgspec.Struct, frozen=True, tag="book_snapshot"):
    channel: str
    seq: int
    bids: list[Level]
    asks: list[Level]
    checksum: int


class BookDelta(msgspec.Struct, frozen=True, tag="book"):
    channel: str
    seq: int
    changes: list[tuple[Side, int, int, int]]  # side, price, quantity (0: gone), orders
    checksum: int


class TradePrint(msgspec.Struct, frozen=True, tag="trade"):
    channel: str
    seq: int
    trade_id: int
    price: int
    quantity: int
    aggressor: Side | None
    ts_ns: int


class Bar(msgspec.Struct, tag="bar"):
    """A minute of trading: the minute's start, open, high, low, close in fen, volume in
    tonnes, notional in fen. Sent again, updated, after each trade in its minute."""

    channel: str
    seq: int
    start_ns: int
    open: int
    high: int
    low: int
    close: int
    volume: int
    notional: int


BAR_NS = 60 * 1_000_000_000
HISTORY_BARS = 1_440  # a day of minutes: what a chart opens with


class Day(msgspec.Struct):
    """A book's trading since its session started; prices None until the first trade."""

    open_fen: int | None = None
    high_fen: int | None = None
    low_fen: int | None = None
    last_fen: int | None = None
    volume_t: int = 0
    notional_fen: int = 0

    def add(self, price_fen: int, quantity_t: int) -> None:
        if self.high_fen is None or self.low_fen is None:
            self.open_fen = self.high_fen = self.low_fen = price_fen
        else:
            self.high_fen = max(self.high_fen, price_fen)
            self.low_fen = min(self.low_fen, price_fen)
        self.last_fen = price_fen
        self.volume_t += quantity_t
        self.notional_fen += price_fen * quantity_t


def checksum(book: OrderBook) -> int:
    return levels_checksum(
        book.depth(Side.BUY, CHECKSUM_LEVELS), book.depth(Side.SELL, CHECKSUM_LEVELS)
    )


def levels_checksum(bids: Sequence[Level], asks: Sequence[Level]) -> int:
    """The checksum of a book given as levels, best first: the server's for its book, a
    client's for the book it mirrors. Only the first `CHECKSUM_LEVELS` of each side count.

    >>> levels_checksum([(5_000, 10, 1)], []) == zlib.crc32(b"b:5000:10|")
    True
    """
    text = (
        ",".join(f"b:{p}:{q}" for p, q, _ in bids[:CHECKSUM_LEVELS])
        + "|"
        + ",".join(f"a:{p}:{q}" for p, q, _ in asks[:CHECKSUM_LEVELS])
    )
    return zlib.crc32(text.encode())


class MarketState(msgspec.Struct):
    """What market data carries from one entry to the next: channel numbers, the current bars,
    the day's statistics. A snapshot keeps it, so a start from one numbers on as the journal
    would."""

    seqs: dict[str, int]
    bars: dict[str, Bar]
    days: dict[str, Day]
    closed: dict[str, list[Bar]] = {}  # the last HISTORY_BARS closed bars; absent in older ones


class MarketData:
    def __init__(self, books: dict[str, OrderBook], instruments: dict[str, Instrument]) -> None:
        self._books = books
        self._instruments = instruments
        self._seq: defaultdict[str, int] = defaultdict(int)
        self._subscribers: defaultdict[str, dict[int, Push]] = defaultdict(dict)
        self._encode = msgspec.json.Encoder().encode
        self._bars: dict[str, Bar] = {}  # the current bar per symbol
        self._closed: defaultdict[str, deque[Bar]] = defaultdict(lambda: deque(maxlen=HISTORY_BARS))
        self._days: dict[str, Day] = {}

    def state(self) -> MarketState:
        copy = msgspec.structs.replace
        return MarketState(
            dict(self._seq),
            {symbol: copy(bar) for symbol, bar in self._bars.items()},
            {symbol: copy(day) for symbol, day in self._days.items()},
            {symbol: list(bars) for symbol, bars in self._closed.items()},
        )

    def restore(self, state: MarketState) -> None:
        self._seq.update(state.seqs)
        self._bars.update(state.bars)
        self._days.update(state.days)
        for symbol, bars in state.closed.items():
            self._closed[symbol].extend(bars)

    def day(self, symbol: str) -> Day:
        """A copy of the symbol's statistics since its session started."""
        return msgspec.structs.replace(self._days.get(symbol) or Day())

    def bars(self, symbol: str) -> list[Bar]:
        """The symbol's recent minutes, oldest first, the current one last (copies)."""
        current = self._bars.get(symbol)
        bars = [*self._closed.get(symbol, ()), *([current] if current is not None else [])]
        return [msgspec.structs.replace(bar) for bar in bars]

    def channel_of(self, name: str) -> str | None:
        """`name` if it is a channel: `book:SYMBOL`, `trades:SYMBOL` or `bars:SYMBOL`."""
        kind, _, symbol = name.partition(":")
        return name if kind in ("book", "trades", "bars") and symbol in self._books else None

    def subscribe(self, channel: str, session: int, push: Push) -> None:
        """Add a subscriber; a book subscriber gets its snapshot first."""
        self._subscribers[channel][session] = push
        kind, _, symbol = channel.partition(":")
        if kind == "bars" and symbol in self._bars:
            push(self._encode(self._bars[symbol]))
        if kind == "book":
            book = self._books[symbol]
            snapshot = BookSnapshot(
                channel,
                self._seq[channel],
                book.depth(Side.BUY, 1_000_000),
                book.depth(Side.SELL, 1_000_000),
                checksum(book),
            )
            push(self._encode(snapshot))

    def unsubscribe(self, channel: str, session: int) -> bool:
        return self._subscribers[channel].pop(session, None) is not None

    def drop(self, session: int) -> None:
        for subscribers in self._subscribers.values():
            subscribers.pop(session, None)

    def publish(self, entry: Entry, events: list[Event]) -> None:
        symbol = entry.symbol
        changes: list[tuple[Side, int, int, int]] = []
        trades: list[Trade] = []
        for event in events:  # one pass: every input's events come through here
            if isinstance(event, LevelChanged):
                changes.append((event.side, event.price_fen, event.quantity_t, event.order_count))
            elif isinstance(event, Trade):
                self._bar(symbol, event)
                self._days.setdefault(symbol, Day()).add(event.price_fen, event.quantity_t)
                trades.append(event)
            elif isinstance(event, SessionClosed):
                self._days.pop(symbol, None)
        if changes:
            book_channel = f"book:{symbol}"
            seq = self._seq[book_channel] = self._seq[book_channel] + 1
            listeners = self._subscribers.get(book_channel)
            if listeners:
                data = self._encode(
                    BookDelta(book_channel, seq, changes, checksum(self._books[symbol]))
                )
                for push in list(listeners.values()):
                    push(data)
        if not trades:
            return
        trades_channel = f"trades:{symbol}"
        for trade in trades:
            seq = self._seq[trades_channel] = self._seq[trades_channel] + 1
            listeners = self._subscribers.get(trades_channel)
            if listeners:
                data = self._encode(
                    TradePrint(
                        trades_channel,
                        seq,
                        self._instruments[symbol].trade_id(trade.trade_id),
                        trade.price_fen,
                        trade.quantity_t,
                        trade.aggressor,
                        trade.ts_ns,
                    )
                )
                for push in list(listeners.values()):
                    push(data)

    def _bar(self, symbol: str, trade: Trade) -> None:
        channel = f"bars:{symbol}"
        seq = self._seq[channel] = self._seq[channel] + 1
        start = trade.ts_ns - trade.ts_ns % BAR_NS
        price, quantity = trade.price_fen, trade.quantity_t
        bar = self._bars.get(symbol)
        if bar is None or bar.start_ns != start:
            if bar is not None:
                self._closed[symbol].append(bar)  # a closed bar never changes again
            bar = self._bars[symbol] = Bar(channel, seq, start, price, price, price, price, 0, 0)
        bar.seq = seq
        bar.high, bar.low, bar.close = max(bar.high, price), min(bar.low, price), price
        bar.volume += quantity
        bar.notional += price * quantity
        listeners = self._subscribers.get(channel)
        if listeners:
            data = self._encode(bar)
            for push in list(listeners.values()):
                push(data)
