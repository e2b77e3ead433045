"""The set-up of a load run, through the REST API only, as a real operator and regulator would:

1. the operator lists an instrument of the run's own (its CERs: the run's methodology, 2025);
2. the regulator registers the run's methodology;
3. per trader, compliance entity and retiring organisation: the operator opens the account (each
   also a participant, so that it can own a project) and makes its API key; the regulator
   registers a project it owns and issues it 2025 CERs; the operator deposits a trader's cash;
4. the regulator publishes the compliance year's offset rules (the run's CERs, the window open
   today, caps that do not bind) and records each compliance entity's verified emissions.

Transfers are not offered over REST, so tonnes reach an account by issuance to a project it
owns. Every name, code and idempotency key carries the run's tag, so a set-up against a server
that has seen runs before takes nothing of theirs.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from bench.matching import say
from load.cast import (
    OPERATOR_KEY_VARIABLE,
    REGULATOR_KEY_VARIABLE,
    Cast,
    Key,
    base36,
    parse_key,
    save,
)
from load.rest import Rest

REFERENCE_PRICE_FEN = 5_000
BAND_BP = 1_000
FEE_BP = 5
VINTAGE = 2025
YEAR = 2099  # a compliance year no real rules will use
TRADER_TONNES = 50_000
TRADER_CASH_FEN = 500_000_000  # CNY 5 million: about 100,000 t at the reference price
HOLDER_TONNES = 20_000
EMISSIONS_T = 1_000_000
AT_ONCE = 8  # accounts set up concurrently


@dataclass(frozen=True)
class Counts:
    traders: int
    readers: int
    compliance: int
    retirees: int

    @classmethod
    def of(cls, users: int) -> Counts:
        """The mix of `users`: about 60 % traders, 20 % readers, 10 % compliance entities and
        10 % retiring organisations, at least one of each from four users on."""
        if users < 4:
            return cls(max(users, 1), 0, 0, 0)
        readers = max(1, users // 5)
        compliance = retirees = max(1, users // 10)
        return cls(users - readers - compliance - retirees, readers, compliance, retirees)

    @property
    def total(self) -> int:
        return self.traders + self.readers + self.compliance + self.retirees


def run_tag() -> str:
    """New each run (the time in milliseconds), and short enough for a project code."""
    return base36(time.time_ns() // 1_000_000)


async def provision(
    rest: Rest,
    operator: Key,
    regulator: Key,
    counts: Counts,
    seed: int,
    say: Callable[[str], None],
    tag: str | None = None,
) -> Cast:
    tag = tag or run_tag()
    symbol = f"LOAD-{tag}"
    methodology = f"LM{tag}"[:16]
    writes = iter(range(1, 1_000_000))

    async def write(path: str, key: Key, body: object = None) -> Any:
        return await rest.post(path, key, body, f"load-{tag}-{next(writes)}")

    # the number is the top bits of every trade id and never reused; the tag's time makes it new
    instrument_id = 1_000 + int(tag, 36) % (2**23 - 1_000)
    await write(
        "/api/v1/operator/instruments",
        operator,
        {
            "instrument_id": instrument_id,
            "symbol": symbol,
            "reference_price_fen": REFERENCE_PRICE_FEN,
            "eligible": {"methodologies": [methodology]},
            "band_bp": BAND_BP,
            "buyer_fee_bp": FEE_BP,
            "seller_fee_bp": FEE_BP,
        },
    )
    await write(
        "/api/v1/regulator/methodologies",
        regulator,
        {"code": methodology, "name": f"Load run {tag}", "sector": "energy"},
    )
    views = await rest.get("/api/v1/instruments")
    low, high = next(view["band_fen"] for view in views if view["symbol"] == symbol)
    say(f"set-up     instrument {symbol} (band {low}-{high} fen), methodology {methodology}")
    gate = asyncio.Semaphore(AT_ONCE)

    async def member(kind: str, n: int, roles: list[str], tonnes: int, cash_fen: int) -> Key:
        async with gate:
            account = await write(
                "/api/v1/operator/accounts",
                operator,
                {"name": f"load {tag} {kind} {n}", "roles": ["participant", *roles]},
            )
            account_id = int(account["account_id"])
            made = await write(f"/api/v1/operator/accounts/{account_id}/keys", operator)
            project = f"L{tag}{kind[0].upper()}{n}"[:16]
            await write(
                "/api/v1/regulator/projects",
                regulator,
                {
                    "code": project,
                    "owner_id": account_id,
                    "methodology": methodology,
                    "region": "Futian",
                },
            )
            period = {"start": f"{VINTAGE}-01-01", "end": f"{VINTAGE}-06-30"}
            await write(
                "/api/v1/regulator/issuances",
                regulator,
                {"project": project, "quantity_t": tonnes, "period": period},
            )
            if cash_fen:
                await write(
                    "/api/v1/operator/deposits",
                    operator,
                    {"account_id": account_id, "amount_fen": cash_fen},
                )
            return Key(account_id, made["key_id"], made["secret_hex"])

    def many(kind: str, count: int, make: Callable[[int], Awaitable[Key]]) -> Awaitable[list[Key]]:
        return asyncio.gather(*(make(n) for n in range(count)))

    traders, compliance, retirees = await asyncio.gather(
        many(
            "trader",
            counts.traders,
            lambda n: member("trader", n, ["trader"], TRADER_TONNES, TRADER_CASH_FEN),
        ),
        many(
            "compliance",
            counts.compliance,
            lambda n: member("compliance", n, ["compliance_entity"], HOLDER_TONNES, 0),
        ),
        many("retiree", counts.retirees, lambda n: member("retiree", n, [], HOLDER_TONNES, 0)),
    )
    say(
        f"set-up     {len(traders)} traders with {TRADER_TONNES:,} t and"
        f" {TRADER_CASH_FEN // 100:,} CNY each; {len(compliance)} compliance entities and"
        f" {len(retirees)} organisations with {HOLDER_TONNES:,} t each"
    )
    today = dt.date.today()
    await write(
        "/api/v1/regulator/offset-rules",
        regulator,
        {
            "year": YEAR,
            # a day either side: the server counts days in Asia/Shanghai
            "effective_from": str(today - dt.timedelta(days=1)),
            "window_opens": str(today - dt.timedelta(days=1)),
            "window_closes": str(today + dt.timedelta(days=1)),
            "total_cap_t": 10**12,
            "entity_cap_bp": 10_000,
            "vintages": [VINTAGE],
            "methodologies": [methodology],
        },
    )
    for key in compliance:
        await write(
            "/api/v1/regulator/verified-emissions",
            regulator,
            {"year": YEAR, "account_id": key.account_id, "emissions_t": EMISSIONS_T},
        )
    say(f"set-up     offset rules for {YEAR}, verified emissions of {len(compliance)} entities")
    return Cast(
        rest.base.human_repr().rstrip("/"),
        symbol,
        REFERENCE_PRICE_FEN,
        (low, high),
        YEAR,
        traders,
        compliance,
        retirees,
        counts.readers,
        seed,
    )


async def _main(args: argparse.Namespace) -> None:
    async with aiohttp.ClientSession() as http:
        cast = await provision(
            Rest(http, args.url.rstrip("/")),
            parse_key(args.operator_key or os.environ.get(OPERATOR_KEY_VARIABLE), "operator"),
            parse_key(args.regulator_key or os.environ.get(REGULATOR_KEY_VARIABLE), "regulator"),
            Counts.of(args.users),
            args.seed,
            say,
        )
    save(cast, args.out)
    say(f"cast       {args.out}: CERX_LOAD_CAST={args.out} locust -f load/locustfile.py")


def main(argv: Sequence[str] | None = None) -> int:
    """Set a market up on the server at `--url` and write its cast, for locust's own runner."""
    parser = argparse.ArgumentParser(prog="python -m load.provision", description=main.__doc__)
    parser.add_argument("--url", required=True, help="the server, such as http://127.0.0.1:8080")
    parser.add_argument("--operator-key", help="the operator's KEY_ID:SECRET_HEX")
    parser.add_argument("--regulator-key", help="the regulator's KEY_ID:SECRET_HEX")
    parser.add_argument("--users", type=int, default=20, help="users to set up for (20)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("cast.json"), help="(cast.json)")
    asyncio.run(_main(parser.parse_args(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
