"""Trading sessions: a call auction at the open, continuous trading, the close, closed overnight.

An instrument listed with `TradingHours` follows its exchange-local day (Asia/Shanghai):

    closed (halted) ─ auction_start ─▶ call auction ─ open ─▶ continuous ─ close ─▶ closed
                      Resume, StartAuction          Uncross                 EndOfDay, Halt

The close takes the session's close price as the next reference price (the book's `EndOfDay`),
so each day's band is centred on the previous close. Outside trading days and hours the book is
halted: cancels are accepted, new orders are not.

The schedule is a set of commands like an operator's, journaled the same way, so a replay rebuilds
what happened. What `Sessions` has done is read back from the journal too (the last time each
command applied to each book), so after a restart it catches up from where the book stands: a
close missed while down is taken once (an auction left open is matched first), and a book found
in the wrong phase is moved to the right one; past the open, a missed auction is held late and
matched at once. A book an operator halts during the day stays halted until the next day's
auction; an auction an operator starts during the day is the operator's to uncross.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from zoneinfo import ZoneInfo

import msgspec

from exchange.journal import Entry
from matching import (
    Command,
    EndOfDay,
    Event,
    Halt,
    Rejected,
    Resume,
    StartAuction,
    TradingStatus,
    Uncross,
)

log = logging.getLogger(__name__)

TIMEZONE = ZoneInfo("Asia/Shanghai")
_SCHEDULED = (EndOfDay, StartAuction, Uncross, Resume, Halt)  # a tuple: a union is built per use
_MAX_STEPS = 8  # more than a catch-up needs: Uncross, EndOfDay, Resume, StartAuction, …


class TradingHours(msgspec.Struct, frozen=True):
    """Local times of a trading day; trading days are Monday to Friday except `holidays`."""

    auction_start: dt.time = dt.time(9, 15)
    open: dt.time = dt.time(9, 25)
    close: dt.time = dt.time(15, 0)
    holidays: tuple[dt.date, ...] = ()

    def trading_day(self, day: dt.date) -> bool:
        return day.weekday() < 5 and day not in self.holidays

    def at(self, day: dt.date, moment: dt.time) -> int:
        """The instant (ns since the epoch) of `moment` on `day`, local time."""
        return int(dt.datetime.combine(day, moment, TIMEZONE).timestamp()) * 1_000_000_000

    def last_close(self, now_ns: int) -> int | None:
        """The latest close at or before `now_ns` (within the last three weeks)."""
        today = _local_day(now_ns)
        for back in range(21):
            day = today - dt.timedelta(days=back)
            if self.trading_day(day) and self.at(day, self.close) <= now_ns:
                return self.at(day, self.close)
        return None


def _local_day(ts_ns: int) -> dt.date:
    return dt.datetime.fromtimestamp(ts_ns // 1_000_000_000, TIMEZONE).date()


class Sessions:
    """Moves each scheduled book to the phase its hours say, now and every `tick_s`."""

    def __init__(
        self,
        hours: dict[str, TradingHours],
        status: Callable[[str], TradingStatus],
        operate: Callable[[str, Command], Awaitable[list[Event]]],
        clock: Callable[[], int] = time.time_ns,
        tick_s: float = 1.0,
    ) -> None:
        self.hours = hours
        self._status = status
        self._operate = operate
        self._clock = clock
        self._tick_s = tick_s
        # symbol -> command kind -> ts of the last one the book applied, from the journal
        self._done: defaultdict[str, dict[type, int]] = defaultdict(dict)
        self._task: asyncio.Task[None] | None = None

    def observe(self, entry: Entry, events: list[Event]) -> None:
        """An engine listener: remember when each session command last applied to each book."""
        command = entry.command
        if isinstance(command, _SCHEDULED) and not any(
            isinstance(event, Rejected) for event in events
        ):
            self._done[entry.symbol][type(command)] = command.ts_ns

    def state(self) -> dict[str, dict[str, int]]:
        return {
            symbol: {kind.__name__: ts for kind, ts in done.items()}
            for symbol, done in self._done.items()
        }

    def restore(self, state: dict[str, dict[str, int]]) -> None:
        kinds = {kind.__name__: kind for kind in (EndOfDay, StartAuction, Uncross, Resume, Halt)}
        for symbol, done in state.items():
            self._done[symbol] = {kinds[name]: ts for name, ts in done.items()}

    def next_step(self, symbol: str, now_ns: int) -> tuple[Command, ...]:
        """The next commands that bring `symbol`'s book towards its phase at `now_ns`."""
        hours, done, status = self.hours[symbol], self._done[symbol], self._status(symbol)
        last_close = hours.last_close(now_ns)
        if last_close is not None and done.get(EndOfDay, 0) < last_close:
            # a day not yet closed; an auction it left open (the exchange was down through the
            # open) is matched first
            return (Uncross(now_ns),) if status is TradingStatus.AUCTION else (EndOfDay(now_ns),)
        today = _local_day(now_ns)
        auction_start, opening = hours.at(today, hours.auction_start), hours.at(today, hours.open)
        if not hours.trading_day(today) or not auction_start <= now_ns < hours.at(
            today, hours.close
        ):
            return (Halt(now_ns),) if status is not TradingStatus.HALTED else ()
        began = done.get(StartAuction, 0)
        if began < auction_start:
            # the day's auction has not begun: begin it, whoever halted the book overnight
            if status is TradingStatus.HALTED:
                return (Resume(now_ns),)
            if status is TradingStatus.OPEN:
                # past the open (the exchange was down through the auction) it is held late and
                # matched at once, as one step
                late = now_ns >= opening
                return (StartAuction(now_ns), Uncross(now_ns)) if late else (StartAuction(now_ns),)
        if status is TradingStatus.AUCTION and now_ns >= opening and began < opening:
            # the opening auction; one an operator starts during the day is the operator's
            return (Uncross(now_ns),)
        return ()

    async def tick(self) -> None:
        for symbol in self.hours:
            # one command at a time, each decided on the state the previous one left; a refused
            # command stops this book's steps until the next tick
            for _ in range(_MAX_STEPS):
                if not await self._step(symbol, self.next_step(symbol, self._clock())):
                    break

    async def _step(self, symbol: str, commands: tuple[Command, ...]) -> bool:
        """Apply the step's commands; whether all were applied (none refused)."""
        for command in commands:
            events = await self._operate(symbol, command)
            if any(isinstance(event, Rejected) for event in events):
                log.warning("%s: the book refused the scheduled %r", symbol, command)
                return False
        return bool(commands)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="sessions")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            try:
                await self.tick()
            except Exception:
                # a journal outage or a refusal: the next tick tries again from the book's state
                log.exception("trading-session step failed; retrying")
            await asyncio.sleep(self._tick_s)
