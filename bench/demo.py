"""A short matching demo: an opening call auction, then continuous trading, then the close.

Run as `python -m bench.demo` (what `make run` runs). It builds a small seeded stream with the
workload builder (`bench.workload.StreamBuilder`) plus a few hand-written commands that the book
must refuse, replays it into a fresh book and prints the tape: the auction's uncross, every trade,
every refusal, the end of day; then the refusals by code and the final book's top five levels.
The output is the same on every run. Prices print in yuan, converted from fen by integer
division: no float touches a price.
"""

from __future__ import annotations

import sys
from collections import Counter

from msgspec.structs import replace

from bench.workload import StreamBuilder
from matching import (
    Cancel,
    Cancelled,
    Command,
    EndOfDay,
    Event,
    InstrumentRules,
    NewOrder,
    OrderBook,
    OrderType,
    Rejected,
    SessionClosed,
    Side,
    StartAuction,
    StatusChanged,
    TimeInForce,
    Trade,
    Uncross,
    Uncrossed,
)

DEMO_SEED = 2026
RULES = InstrumentRules(symbol="SZCER-2025")
REFERENCE_PRICE_FEN = 5_000
BEIJING_OFFSET_S = 8 * 3600
SECOND_NS = 1_000_000_000
DAY_NS = 1_767_571_200 * 1_000_000_000  # 2026-01-05T00:00:00Z, 08:00 in Shenzhen


def at(hour: int, minute: int) -> int:
    """The ts_ns of a Shenzhen (UTC+8) wall-clock time on the demo's trading day."""
    return DAY_NS + ((hour * 60 + minute) * 60 - BEIJING_OFFSET_S) * 1_000_000_000


def yuan(fen: int) -> str:
    """Format fen as yuan with two decimals, by integer division.

    >>> yuan(5_012), yuan(7), yuan(123_456_789)
    ('50.12', '0.07', '1,234,567.89')
    """
    whole, cents = divmod(fen, 100)
    return f"{whole:,}.{cents:02d}"


def clock(ts_ns: int) -> str:
    """Shenzhen wall-clock time of a timestamp, to the microsecond.

    >>> clock(at(9, 30) + 1_234_567)
    '09:30:00.001234'
    """
    seconds, ns = divmod(ts_ns, 1_000_000_000)
    seconds = (seconds + BEIJING_OFFSET_S) % 86_400
    minutes, second = divmod(seconds, 60)
    hour, minute = divmod(minutes, 60)
    return f"{hour:02d}:{minute:02d}:{second:02d}.{ns // 1_000:06d}"


def build_demo_stream() -> list[Command]:
    """The demo's commands: auction at 09:15, uncross 09:25, continuous 09:30, close 15:00."""
    builder = StreamBuilder(
        DEMO_SEED,
        rules=RULES,
        reference_price_fen=REFERENCE_PRICE_FEN,
        accounts=6,
        target_live_orders=40,
        crossing_base_t=120,
        first_ts_ns=at(9, 15),
        ts_step_max_ns=10 * SECOND_NS,  # orders a few seconds apart in the auction
    )
    rng = builder.rng
    builder.submit(StartAuction(ts_ns=builder.next_ts_ns()))
    for _ in range(40):  # overlapping bids and asks, so the uncross has something to execute
        builder.submit(
            NewOrder(
                ts_ns=builder.next_ts_ns(),
                order_id=builder.next_order_id(),
                account_id=builder.account(),
                side=Side.BUY if rng.randrange(2) else Side.SELL,
                quantity_t=rng.randint(1, 40),
                price_fen=REFERENCE_PRICE_FEN + rng.randint(-12, 12),
                tif=TimeInForce.DAY if rng.randrange(4) == 0 else TimeInForce.GTC,
            )
        )
        if len(builder.commands) == 12:
            builder.submit(_market_buy(builder, 10))  # refused: orders must rest in auction
        if len(builder.commands) == 30:
            builder.submit(_limit(builder, Side.BUY, 10, 5_600))  # refused: above the band
    builder.advance_clock(at(9, 25))
    builder.submit(Uncross(ts_ns=builder.next_ts_ns()))
    builder.advance_clock(at(9, 30))
    builder.ts_step_max_ns = 100 * SECOND_NS  # a quiet market: a command a minute or so
    for step in range(1, 251):
        builder.step()
        if step % 40 == 0:
            builder.submit(_bad_command(builder, step // 40))
    builder.advance_clock(at(15, 0))
    builder.submit(EndOfDay(ts_ns=builder.next_ts_ns()))
    return builder.commands


def _limit(builder: StreamBuilder, side: Side, quantity_t: int, price_fen: int) -> NewOrder:
    return NewOrder(
        ts_ns=builder.next_ts_ns(),
        order_id=builder.next_order_id(),
        account_id=builder.account(),
        side=side,
        quantity_t=quantity_t,
        price_fen=price_fen,
    )


def _market_buy(builder: StreamBuilder, quantity_t: int) -> NewOrder:
    return NewOrder(
        ts_ns=builder.next_ts_ns(),
        order_id=builder.next_order_id(),
        account_id=builder.account(),
        side=Side.BUY,
        quantity_t=quantity_t,
        order_type=OrderType.MARKET,
        tif=TimeInForce.IOC,
    )


def _bad_command(builder: StreamBuilder, which: int) -> Command:
    """One of six commands that the open book refuses."""
    book = builder.book
    if which == 1:
        return _limit(builder, Side.SELL, 0, 5_000)  # QUANTITY_MUST_BE_POSITIVE
    if which == 2:  # ORDER_MUST_EXIST
        return Cancel(ts_ns=builder.next_ts_ns(), order_id=999_999, account_id=builder.account())
    if which == 3:  # POST_ONLY_MUST_NOT_CROSS: a post-only buy at the best ask
        order = _limit(builder, Side.BUY, 5, book.best_ask() or REFERENCE_PRICE_FEN)
        return replace(order, post_only=True)
    if which == 4:  # FOK_MUST_FILL_COMPLETELY: more than the whole book offers
        order = _market_buy(builder, 100_000)
        return replace(order, tif=TimeInForce.FOK)
    if which == 5:
        return _limit(builder, Side.SELL, 10, 4_000)  # PRICE_MUST_BE_WITHIN_BAND
    chosen = builder.live_order()  # ORDER_MUST_BELONG_TO_ACCOUNT: someone else's order
    order_id, owner = chosen if chosen is not None else (999_999, 1)
    return Cancel(ts_ns=builder.next_ts_ns(), order_id=order_id, account_id=owner % 6 + 1)


# -- printing ------------------------------------------------------------------------------------


def describe(event: Event, sides: dict[int, Side]) -> str | None:
    """One tape line for the events worth reading; None for the rest (acks, level updates)."""
    match event:
        case Trade():
            buy_is_maker = sides[event.maker_order_id] is Side.BUY
            buyer, seller = (
                (event.maker_account_id, event.taker_account_id)
                if buy_is_maker
                else (event.taker_account_id, event.maker_account_id)
            )
            how = "auction" if event.aggressor is None else f"{event.aggressor.value} aggressor"
            return (
                f"trade #{event.trade_id:<4} {yuan(event.price_fen):>6} × {event.quantity_t:>3} t"
                f"   buyer {buyer}, seller {seller}   ({how})"
            )
        case Rejected():
            order = "" if event.order_id is None else f"order {event.order_id} "
            return f"refused     {order}(account {event.account_id}): {event.code.value}"
        case StatusChanged():
            return f"status      {event.status.value}"
        case Uncrossed():
            if event.price_fen is None:
                return "uncrossed   nothing executable"
            return f"uncrossed   {yuan(event.price_fen)} × {event.quantity_t} t"
        case SessionClosed():
            close = "none" if event.close_price_fen is None else yuan(event.close_price_fen)
            return (
                f"closed      close {close}, volume {event.volume_t:,} t, notional "
                f"{yuan(event.notional_fen)} yuan; next reference "
                f"{yuan(event.reference_price_fen)}"
            )
    return None


def depth_table(book: OrderBook, levels: int = 5) -> list[str]:
    bids = book.depth(Side.BUY, levels)
    asks = book.depth(Side.SELL, levels)
    lines = [
        "          bids                |          asks",
        "  orders   qty t    price     |    price    qty t  orders",
    ]
    for row in range(max(len(bids), len(asks))):
        left = right = ""
        if row < len(bids):
            price, quantity, count = bids[row]
            left = f"{count:>8} {quantity:>7} {yuan(price):>8}"
        if row < len(asks):
            price, quantity, count = asks[row]
            right = f"{yuan(price):>9} {quantity:>8} {count:>7}"
        lines.append(f"{left:<30}|{right}")
    return lines


def main() -> int:
    commands = build_demo_stream()
    book = OrderBook(RULES, REFERENCE_PRICE_FEN)
    low, high = book.band
    print(
        f"CERX matching demo: {RULES.symbol}, reference {yuan(REFERENCE_PRICE_FEN)} yuan/t, "
        f"band {yuan(low)}-{yuan(high)}, tick {yuan(RULES.tick_fen)}, lot {RULES.lot_t} t"
    )
    print(f"{len(commands)} commands from seed {DEMO_SEED}: auction, continuous trading, close")
    print()
    sides = {cmd.order_id: cmd.side for cmd in commands if isinstance(cmd, NewOrder)}
    rejects: Counter[str] = Counter()
    cancels: Counter[str] = Counter()
    trades = volume = events_seen = 0
    for command in commands:
        for event in book.submit(command):
            events_seen += 1
            if isinstance(event, Rejected):
                rejects[event.code.value] += 1
            elif isinstance(event, Cancelled):
                cancels[event.reason.value] += 1
            elif isinstance(event, Trade):
                trades += 1
                volume += event.quantity_t
            line = describe(event, sides)
            if line is not None:
                print(f"{clock(event.ts_ns)}  {line}")
    book.check_invariants()
    print()
    print(f"{events_seen:,} events, {trades} trades, {volume:,} t traded")
    print("Cancelled, by reason: " + ", ".join(f"{k} {v}" for k, v in sorted(cancels.items())))
    print("Refused, by code:")
    for code, count in sorted(rejects.items()):
        print(f"  {code:<36}{count:>3}")
    print(f"Final book, top 5 levels ({len(book.resting_orders())} resting orders):")
    for line in depth_table(book):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
