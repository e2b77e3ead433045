"""The load and crash campaigns of `load/`, in their short bounded forms, so neither goes stale:
a 10-second load run of 5 users with every check at its end, and a crash campaign of two kill
rounds and the PostgreSQL restart round. Their full forms are `make load` and `make crash`."""

from __future__ import annotations

from load.crash import campaign, print_table
from load.run import parse, run
from tests.postgres import SERVER_URL


async def test_a_short_load_run_keeps_every_acknowledgement() -> None:
    args = parse(["--users", "5", "--duration", "10s", "--database-url", SERVER_URL])
    assert await run(args) == 0


async def test_kills_and_a_postgres_restart_under_load_lose_nothing() -> None:
    outcomes = await campaign(rounds=2, seed=3, users=5, restart_postgres=True)
    print_table(outcomes)
    assert [o.kind for o in outcomes if o.kind == "postgres"] == ["postgres"]
    assert all(o.ok for o in outcomes), [o.problems for o in outcomes if not o.ok]
