"""A small demo market, created once and found again on later starts: a regulator, an
operator, two participants with issued CERs, three traders with cash (two of them holding CERs to
sell), two instruments, and an API key each for the traders, the operator and the regulator,
who can also sign in to the web console as their name with `DEMO_PASSWORD`.

Every write is keyed `demo/...`, so seeding an already seeded database changes nothing.
"""

from __future__ import annotations

import datetime as dt

import msgspec

from exchange import keys, logins
from exchange.instruments import Instrument, list_instrument
from matching import InstrumentRules
from settlement.database import Database
from settlement.ledger import Ledger
from settlement.values import ByQuantity, CerFilter, Methodology, Project, Role

INSTRUMENTS = (
    Instrument(
        1,
        "SZCER-2025",
        InstrumentRules(symbol="SZCER-2025"),
        5_000,
        CerFilter(vintages=(2025,)),
        buyer_fee_bp=5,
        seller_fee_bp=5,
    ),
    Instrument(
        2,
        "SZCER-P0001",
        InstrumentRules(symbol="SZCER-P0001"),
        4_800,
        CerFilter(projects=("P0001",)),
        buyer_fee_bp=5,
        seller_fee_bp=5,
    ),
)
TRADERS = ("alice", "bob", "carol")
DEMO_PASSWORD = "cerx-demo-password"  # a demo on loopback: printed at start, never for real use


class DemoKey(msgspec.Struct, frozen=True):
    name: str  # a trader's, or "operator" or "regulator"
    account_id: int
    key_id: str
    secret_hex: str


async def seed(database: Database) -> list[DemoKey]:
    """Create the demo market if it is not there; the API keys of the traders, then of the
    operator and the regulator."""
    ledger = Ledger(database)
    reg = await ledger.open_account("demo/regulator", "demo-regulator", [Role.REGULATOR])
    r = reg.account_id
    operator = await ledger.open_account("demo/operator", "demo-operator", [Role.OPERATOR])
    solar = await ledger.open_account("demo/solar", "Futian Solar", [Role.PARTICIPANT])
    cycling = await ledger.open_account("demo/cycling", "Nanshan Cycling", [Role.PARTICIPANT])
    await ledger.register_methodology("demo/m/PV01", r, Methodology("PV01", "Rooftop PV", "energy"))
    await ledger.register_methodology(
        "demo/m/BIKE01", r, Methodology("BIKE01", "Shared bicycles", "transport")
    )
    await ledger.register_project(
        "demo/p/P0001", r, Project("P0001", solar.account_id, "PV01", "Futian")
    )
    await ledger.register_project(
        "demo/p/P0002", r, Project("P0002", cycling.account_id, "BIKE01", "Nanshan")
    )
    for issue_key, project, tonnes, year in (
        ("demo/i/P0001/2024", "P0001", 5_000, 2024),
        ("demo/i/P0001/2025", "P0001", 5_000, 2025),
        ("demo/i/P0002/2025", "P0002", 3_000, 2025),
    ):
        await ledger.issue(issue_key, r, project, tonnes, dt.date(year, 1, 1), dt.date(year, 6, 30))
    traders: dict[str, int] = {}
    for name in TRADERS:
        trader = await ledger.open_account(f"demo/{name}", name, [Role.TRADER])
        await ledger.deposit(f"demo/cash/{name}", trader.account_id, 10_000_000)
        traders[name] = trader.account_id
    await ledger.transfer(
        "demo/t/alice", solar.account_id, traders["alice"], ByQuantity(2_000)
    )  # oldest first: the 2024 tonnes, for SZCER-P0001
    await ledger.transfer(
        "demo/t/bob", cycling.account_id, traders["bob"], ByQuantity(1_000)
    )  # 2025 tonnes, for SZCER-2025
    out: list[DemoKey] = []
    async with database.pool.acquire() as conn:
        for instrument in INSTRUMENTS:
            await list_instrument(conn, instrument)
        with_keys = traders | {"operator": operator.account_id, "regulator": r}
        for name, account_id in with_keys.items():
            row = await conn.fetchrow(
                "SELECT key_id, secret FROM api_keys WHERE account_id = $1 AND revoked_at IS NULL"
                " ORDER BY created_at LIMIT 1",
                account_id,
            )
            key = (
                keys.ApiKey(row[0], account_id, bytes(row[1]))
                if row is not None
                else await keys.create(conn, account_id)
            )
            out.append(DemoKey(name, account_id, key.key_id, key.secret.hex()))
            await logins.set_password(conn, account_id, name, DEMO_PASSWORD)
    return out
