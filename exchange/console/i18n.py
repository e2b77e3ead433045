"""The console's two languages, and how amounts and times are shown in them.

Every value stays an integer underneath: fen are shown as yuan with two decimals by integer
division, tonnes as integers, nanosecond and database times in Asia/Shanghai. A person's choice
of language is kept in a cookie; without one, the browser's Accept-Language decides, and
Chinese is the default.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from enum import StrEnum

from aiohttp import web

from exchange.console.catalogue import MESSAGES
from exchange.sessions import TIMEZONE
from settlement.values import SerialRange

LANG_COOKIE = "cerx_lang"


class Lang(StrEnum):
    ZH = "zh"
    EN = "en"


def chosen(request: web.Request) -> Lang:
    cookie = request.cookies.get(LANG_COOKIE)
    if cookie in (Lang.ZH, Lang.EN):
        return Lang(cookie)
    accept = request.headers.get("Accept-Language", "").lower()
    first = accept.split(",")[0].strip()
    return Lang.EN if first.startswith("en") else Lang.ZH


def translate(lang: Lang, key: str) -> str:
    """The message in `lang`; an unknown key is a defect the tests catch, shown as the key."""
    pair = MESSAGES.get(key)
    if pair is None:
        return key
    return pair[0] if lang is Lang.ZH else pair[1]


def yuan(fen: int | None) -> str:
    """4810 -> '48.10', -5 -> '-0.05', with thousands separators: exact, never a float."""
    if fen is None:
        return "—"
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(fen), 100)
    return f"{sign}{whole:,}.{cents:02d}"


def tonnes(quantity_t: int | None) -> str:
    return "—" if quantity_t is None else f"{quantity_t:,}"


def serials(ranges: Iterable[SerialRange]) -> str:
    """Serial ranges as a person reads them: `SZCER-P1-2025-1:1–8, …`."""
    return ", ".join(f"{r.block_id}:{r.first}–{r.last}" for r in ranges)


def shanghai(moment: dt.datetime | int | None) -> str:
    """A time as Asia/Shanghai sees it; an int is nanoseconds since the epoch."""
    if moment is None:
        return "—"
    if isinstance(moment, int):
        seconds, ns = divmod(moment, 1_000_000_000)
        moment = dt.datetime.fromtimestamp(seconds, dt.UTC) + dt.timedelta(microseconds=ns // 1000)
    return moment.astimezone(TIMEZONE).strftime("%Y-%m-%d %H:%M:%S")
