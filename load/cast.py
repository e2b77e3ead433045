"""Who takes part in a load run, and on what market: made by the set-up (`load.provision`) on
the server under test, written to a file, read by the locust users (`$CERX_LOAD_CAST`).

Every user of a kind takes the next account of that kind, so no two users share an account's
orders or rate-limit bucket; REST readers read the traders' accounts, as a trading desk's
back office would, so what they read changes under them.
"""

from __future__ import annotations

import os
from pathlib import Path

import msgspec

CAST_VARIABLE = "CERX_LOAD_CAST"
OPERATOR_KEY_VARIABLE = "CERX_LOAD_OPERATOR_KEY"
REGULATOR_KEY_VARIABLE = "CERX_LOAD_REGULATOR_KEY"


class Key(msgspec.Struct, frozen=True):
    """An account and one of its API keys."""

    account_id: int
    key_id: str
    secret_hex: str

    @property
    def secret(self) -> bytes:
        return bytes.fromhex(self.secret_hex)


def parse_key(text: str | None, what: str) -> Key:
    """`KEY_ID:SECRET_HEX` as `cerx serve --demo` prints them."""
    key_id, _, secret_hex = (text or "").partition(":")
    if not key_id or not secret_hex:
        raise SystemExit(f"give the {what}'s API key as KEY_ID:SECRET_HEX")
    return Key(0, key_id, secret_hex)


class Cast(msgspec.Struct, frozen=True):
    url: str  # the server's HTTP base, such as http://127.0.0.1:8080
    symbol: str  # the instrument the traders trade
    reference_price_fen: int
    band_fen: tuple[int, int]  # the lowest and highest price the book takes
    year: int  # the compliance year surrenders count against
    traders: list[Key]
    compliance: list[Key]  # compliance entities holding tonnes the year's rules admit
    retirees: list[Key]  # organisations holding tonnes to retire
    readers: int  # REST readers, each reading a trader's account
    seed: int

    @property
    def ws_url(self) -> str:
        return self.url.replace("http", "ws", 1) + "/ws"


def base36(n: int) -> str:
    """`n` >= 1 in upper-case base 36: short, and fit for a project code or a client id."""
    digits = ""
    while n:
        n, d = divmod(n, 36)
        digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"[d] + digits
    return digits


def save(cast: Cast, path: Path) -> None:
    path.write_bytes(msgspec.json.encode(cast))


def load(path: Path | None = None) -> Cast:
    """The cast at `path`, else at `$CERX_LOAD_CAST`."""
    if path is None:
        named = os.environ.get(CAST_VARIABLE)
        if not named:
            raise RuntimeError(f"no cast: set ${CAST_VARIABLE} (python -m load.run writes one)")
        path = Path(named)
    return msgspec.json.decode(path.read_bytes(), type=Cast)
