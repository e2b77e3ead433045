"""The expert pool (Art. 6) and drawing experts from it.

The regulator adds accounts with the expert role to the pool, each with its organisation and its
fields of expertise, and removes them. Every change is an event numbered by the pool's version,
which the change raises under the pool row's lock; a draw reads the version under a share lock,
so the pool a draw saw is exactly the events up to the version it records, and anyone can
rebuild it (`pool_as_of`) and replay the draw.

A draw takes, from the experts in the pool whose fields include the application's sector, all
but the applicant itself and the experts of the applicant's organisation (compared by
`organisation_key`), in account order — the candidates — and samples the panel from them with
`random.Random(seed)`. The seed is recorded with the candidates and the drawn experts; nothing
else is random. Removal from the pool stops future draws only: an expert already drawn still
gives its opinion.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence

import msgspec

from registration.errors import ErrorCode, RegistrationError
from registration.text import check_text
from registration.values import Expert, PoolEntry
from settlement.accounts import lock_accounts, require_role
from settlement.connection import Connection
from settlement.values import Role

PANEL_SIZE_MAX = 15
FIELDS_MAX = 20
SEED_LIMIT = 2**63
"""Seeds are non-negative 63-bit integers: they fit a bigint column."""


class Member(msgspec.Struct, frozen=True):
    """What a draw looks at in a pool member."""

    account_id: int
    organisation: str
    fields: tuple[str, ...]


def organisation_key(name: str) -> str:
    """How organisations compare: case and spacing aside.

    >>> organisation_key("  Shenzhen  Green\\tAssociation ")
    'shenzhen green association'
    """
    return " ".join(name.split()).casefold()


def candidates(
    members: Iterable[Member], field: str, applicant_id: int, organisation: str
) -> tuple[int, ...]:
    """The members a draw for this field and applicant may pick, in account order.

    >>> pool = [Member(103, "Acme", ("energy",)), Member(101, "Other", ("energy", "water")),
    ...         Member(102, "ACME ", ("energy",)), Member(104, "Other", ("water",))]
    >>> candidates(pool, "energy", 100, "acme")
    (101,)
    """
    own = organisation_key(organisation)
    return tuple(
        sorted(
            m.account_id
            for m in members
            if field in m.fields
            and m.account_id != applicant_id
            and organisation_key(m.organisation) != own
        )
    )


def draw(candidate_ids: Sequence[int], panel_size: int, seed: int) -> tuple[int, ...]:
    """The experts `seed` draws from the candidates, in the order drawn: the same candidates,
    size and seed always draw the same experts.

    >>> draw((101, 102, 103, 104, 105), 3, seed=7)
    (103, 102, 104)
    """
    if not 0 <= seed < SEED_LIMIT:
        raise ValueError(f"a seed is 0..2**63-1, not {seed}")
    return tuple(random.Random(seed).sample(sorted(candidate_ids), panel_size))


def check_fields(fields: Iterable[str]) -> tuple[str, ...]:
    """The fields trimmed, each once, in order; at least one and at most `FIELDS_MAX`."""
    try:
        found = sorted({check_text("field", f, 100) for f in fields})
    except RegistrationError as error:
        raise RegistrationError(ErrorCode.FIELDS_INVALID, error.message) from None
    if not 1 <= len(found) <= FIELDS_MAX:
        raise RegistrationError(ErrorCode.FIELDS_INVALID, f"1-{FIELDS_MAX} fields of expertise")
    return tuple(found)


async def add(
    conn: Connection,
    txn_id: int,
    regulator_id: int,
    account_id: int,
    organisation: str,
    fields: Sequence[str],
) -> Expert:
    roles = await lock_accounts(conn, [regulator_id, account_id])
    require_role(roles, regulator_id, [Role.REGULATOR], "keep the expert pool")
    require_role(roles, account_id, [Role.EXPERT], "join the expert pool")
    organisation = check_text("organisation", organisation)
    checked = check_fields(fields)
    active = await conn.fetchval(
        "SELECT active FROM experts WHERE account_id = $1 FOR UPDATE", account_id
    )
    if active:
        raise RegistrationError(
            ErrorCode.EXPERT_ALREADY_IN_POOL, f"account {account_id} is in the pool"
        )
    await _record(conn, txn_id, account_id, "added", organisation, checked, regulator_id, None)
    await conn.execute(
        "INSERT INTO experts (account_id, organisation, fields, active, since)"
        " VALUES ($1, $2, $3, true, now()) ON CONFLICT (account_id) DO UPDATE"
        " SET organisation = $2, fields = $3, active = true, since = now()",
        account_id,
        organisation,
        list(checked),
    )
    return await expert(conn, account_id)


async def remove(
    conn: Connection, txn_id: int, regulator_id: int, account_id: int, reason: str
) -> Expert:
    roles = await lock_accounts(conn, [regulator_id])
    require_role(roles, regulator_id, [Role.REGULATOR], "keep the expert pool")
    why = check_text("reason", reason)
    row = await conn.fetchrow(
        "SELECT organisation, fields FROM experts WHERE account_id = $1 AND active FOR UPDATE",
        account_id,
    )
    if row is None:
        raise RegistrationError(
            ErrorCode.EXPERT_NOT_IN_POOL, f"account {account_id} is not in the pool"
        )
    await _record(conn, txn_id, account_id, "removed", row[0], tuple(row[1]), regulator_id, why)
    await conn.execute("UPDATE experts SET active = false WHERE account_id = $1", account_id)
    return await expert(conn, account_id)


async def _record(
    conn: Connection,
    txn_id: int,
    account_id: int,
    action: str,
    organisation: str,
    fields: tuple[str, ...],
    actor_id: int,
    reason: str | None,
) -> None:
    # Raising the version takes the pool row's lock until commit: draws wait for the change.
    version = await conn.fetchval("UPDATE expert_pool SET version = version + 1 RETURNING version")
    await conn.execute(
        "INSERT INTO expert_events (pool_version, account_id, action, organisation, fields,"
        " actor_id, reason, txn_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        version,
        account_id,
        action,
        organisation,
        list(fields),
        actor_id,
        reason,
        txn_id,
    )


async def pool_for_draw(conn: Connection) -> tuple[int, list[Member]]:
    """The pool's version and its members, held still until the transaction ends."""
    version = int(await conn.fetchval("SELECT version FROM expert_pool FOR SHARE"))
    rows = await conn.fetch(
        "SELECT account_id, organisation, fields FROM experts WHERE active ORDER BY account_id"
    )
    return version, [Member(r[0], r[1], tuple(r[2])) for r in rows]


async def pool_as_of(conn: Connection, version: int) -> list[Member]:
    """The pool as the events up to `version` left it."""
    rows = await conn.fetch(
        "SELECT account_id, action, organisation, fields FROM expert_events"
        " WHERE pool_version <= $1 ORDER BY pool_version",
        version,
    )
    members: dict[int, Member] = {}
    for account_id, action, organisation, fields in rows:
        if action == "added":
            members[account_id] = Member(account_id, organisation, tuple(fields))
        else:
            members.pop(account_id, None)
    return sorted(members.values(), key=lambda m: m.account_id)


async def expert(conn: Connection, account_id: int) -> Expert:
    found = await experts(conn, account_id=account_id)
    if not found:
        raise RegistrationError(
            ErrorCode.EXPERT_NOT_IN_POOL, f"account {account_id} was never in the pool"
        )
    return found[0]


async def experts(
    conn: Connection, *, account_id: int | None = None, active_only: bool = False
) -> list[Expert]:
    rows = await conn.fetch(
        "SELECT e.account_id, a.name, e.organisation, e.fields, e.active, e.since"
        " FROM experts e JOIN accounts a USING (account_id)"
        " WHERE ($1::bigint IS NULL OR e.account_id = $1) AND (e.active OR NOT $2)"
        " ORDER BY e.account_id",
        account_id,
        active_only,
    )
    return [Expert(r[0], r[1], r[2], tuple(r[3]), r[4], r[5]) for r in rows]


async def published(conn: Connection) -> list[PoolEntry]:
    """The published list of the pool (Art. 27): who is in it now, by name."""
    return [
        PoolEntry(e.name, e.organisation, e.fields, e.since)
        for e in sorted(await experts(conn, active_only=True), key=lambda e: e.name)
    ]
