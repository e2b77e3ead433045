"""A small market for exchange tests: one instrument, sellers holding CERs, buyers with cash."""

from __future__ import annotations

import datetime as dt

from exchange.engine import OrderRequest
from exchange.instruments import Instrument
from matching import InstrumentRules, Side
from settlement.ledger import Ledger
from settlement.values import ByQuantity, CerFilter, Methodology, Project, Role

SYMBOL = "SZCER-2025"
INSTRUMENT = Instrument(
    1, SYMBOL, InstrumentRules(symbol=SYMBOL), 5_000, CerFilter(vintages=(2025,)), 5, 5
)


async def accounts(ledger: Ledger, tag: str) -> tuple[list[int], list[int]]:
    """Two sellers with 2025 and 2024 CERs; two buyers with cash."""
    reg = (await ledger.open_account(f"{tag}r", f"{tag}-r", [Role.REGULATOR])).account_id
    code = f"M{tag}".upper()
    await ledger.register_methodology(f"{tag}m", reg, Methodology(code, "PV", "energy"))
    owner = (await ledger.open_account(f"{tag}o", f"{tag}-o", [Role.PARTICIPANT])).account_id
    await ledger.register_project(f"{tag}p", reg, Project(f"P{code}", owner, code, "Futian"))
    for vintage in (2024, 2025):
        await ledger.issue(
            f"{tag}i{vintage}",
            reg,
            f"P{code}",
            1_000,
            dt.date(vintage, 1, 1),
            dt.date(vintage, 1, 31),
        )
    trader = (await ledger.open_account(f"{tag}s", f"{tag}-s", [Role.TRADER])).account_id
    await ledger.transfer(f"{tag}t", owner, trader, ByQuantity(1_000))  # 2024 first, all of it
    await ledger.transfer(f"{tag}t2", owner, trader, ByQuantity(300))  # then 300 of 2025
    buyers = []
    for b in range(2):
        buyer = (await ledger.open_account(f"{tag}b{b}", f"{tag}-b{b}", [Role.TRADER])).account_id
        await ledger.deposit(f"{tag}d{b}", buyer, 5_000_000)
        buyers.append(buyer)
    return [owner, trader], buyers


def order(
    cl: str, side: Side, quantity: int, price: int | None, symbol: str = SYMBOL, **more: object
) -> OrderRequest:
    return OrderRequest(symbol, cl, side, quantity, price, **more)  # type: ignore[arg-type]
