"""`python -m settlement`: migrate the ledger's database or audit it, from the command line.

    python -m settlement migrate [--data-dir DIR | --database-url URL]
    python -m settlement audit   [--data-dir DIR | --database-url URL]

Without `--database-url` (or `$CERX_DATABASE_URL`) the embedded server in DIR/pg is used, started
if needed. `audit` exits 1 and lists the problems when an invariant does not hold.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from settlement.database import DATABASE_URL_VARIABLE, DEFAULT_DATA_DIR, Database
from settlement.ledger import Ledger
from settlement.migrate import migrations


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m settlement", description=__doc__.split("\n")[0]
    )
    parser.add_argument("command", choices=["migrate", "audit"])
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=DEFAULT_DATA_DIR,
        help=f"where the embedded PostgreSQL keeps its data (default: {DEFAULT_DATA_DIR}/pg)",
    )
    parser.add_argument(
        "--database-url", help=f"an external PostgreSQL instead (default: ${DATABASE_URL_VARIABLE})"
    )
    return parser.parse_args(argv)


async def run(args: argparse.Namespace) -> int:
    database = await Database.open(args.database_url, data_dir=args.data_dir)
    try:
        where = "embedded server in " + str(args.data_dir / "pg") if database.embedded else "server"
        print(f"database   {where}, schema version {len(migrations())}")
        if args.command == "migrate":
            return 0
        report = await Ledger(database).audit()
        print(f"blocks     {report.blocks:,}, issued {report.issued_t:,} t")
        for state, tonnes in sorted(report.tonnes_by_state.items()):
            print(f"  {state:<12}{tonnes:>14,} t")
        print(f"cash       {report.cash_inside_fen:,} fen inside the ledger")
        print(
            f"entries    {report.serial_entries:,} serial, {report.cash_entries:,} cash;"
            f" {report.settled_trades:,} trades settled"
        )
        if report.ok:
            print("audit      OK")
            return 0
        print(f"audit      FAILED, {len(report.problems)} problems:")
        for problem in report.problems:
            print(f"  {problem}")
        return 1
    finally:
        await database.close()


def main(argv: list[str] | None = None) -> int:
    return asyncio.run(run(parse(sys.argv[1:] if argv is None else argv)))


if __name__ == "__main__":
    sys.exit(main())
