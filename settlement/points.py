"""Carbon points (Arts. 16-20): issued to a data-aggregation platform against CER tonnes it
converts, distributed to its users, cancelled when they redeem.

Points are not money. They move only pool → user (distribution) and user → cancelled
(redemption); nothing moves points between users, back from a user to an aggregator, or prices
them. Users are the aggregator's pseudonymous ids, never personal data (Arts. 28-29).

An aggregator's day can be millions of small distributions, so distribution and redemption take
batches of thousands, applied set-based — a fixed number of statements per batch, whatever its
size — in one transaction; the caller keys each batch (`Ledger.keyed`), so a batch applies once.
A batch is all or nothing: one unknown user, one overdrawn balance, one reused reference, and
nothing in it moves.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence

import msgspec

from settlement.accounts import lock_accounts, require_role
from settlement.connection import Connection
from settlement.errors import ErrorCode, LedgerError
from settlement.holdings import apply, free_runs, select
from settlement.serials import Place, plan
from settlement.serials import take as take_first
from settlement.values import ByBlocks, CerFilter, Role, TonneState

DECLARATION = (
    "本平台承诺不将公共数据用于商业牟利。"
    " The platform undertakes not to use public data for commercial gain."
)
MAX_BATCH = 50_000


class PointsRule(msgspec.Struct, frozen=True):
    version: int
    points_per_t: int
    effective_from: dt.date


class PointIssuance(msgspec.Struct, frozen=True):
    issuance_id: int
    aggregator_id: int
    project: str
    quantity_t: int
    rule_version: int
    points: int


class Distribution(msgspec.Struct, frozen=True, array_like=True):
    user_ref: str
    points: int


class Redemption(msgspec.Struct, frozen=True, array_like=True):
    user_ref: str
    points: int
    reference: str  # the aggregator's own reference for the redemption, used once


class BatchDone(msgspec.Struct, frozen=True):
    items: int
    points: int


class Pool(msgspec.Struct, frozen=True):
    aggregator_id: int
    rule_version: int
    issued: int
    undistributed: int
    held_by_users: int
    cancelled: int


# -- aggregators and their users ----------------------------------------------------------------


async def register_aggregator(
    conn: Connection, txn_id: int, regulator_id: int, account_id: int, declaration: str
) -> None:
    """Register an aggregator that has signed the platform's declaration (Art. 20)."""
    roles = await lock_accounts(conn, [regulator_id, account_id])
    require_role(roles, regulator_id, [Role.REGULATOR], "register aggregators")
    require_role(roles, account_id, [Role.AGGREGATOR], "be registered as an aggregator")
    if declaration != DECLARATION:
        raise LedgerError(
            ErrorCode.DECLARATION_REQUIRED, "the aggregator must sign the platform's declaration"
        )
    added = await conn.fetchval(
        "INSERT INTO aggregators (account_id, declaration, txn_id) VALUES ($1, $2, $3)"
        " ON CONFLICT DO NOTHING RETURNING account_id",
        account_id,
        declaration,
        txn_id,
    )
    if added is None:
        raise LedgerError(ErrorCode.AGGREGATOR_EXISTS, f"account {account_id} is registered")


async def authorise(
    conn: Connection, txn_id: int, aggregator_id: int, user_refs: Sequence[str], granted: bool
) -> int:
    """Record users' authorisation of the aggregator (granted or revoked); how many changed."""
    await _registered(conn, aggregator_id)
    refs = sorted(set(user_refs))
    if not refs or any(not 0 < len(ref) <= 64 for ref in refs):
        raise LedgerError(ErrorCode.POINTS_BATCH_INVALID, "user ids are 1..64 characters")
    changed = await conn.fetch(
        "INSERT INTO point_users (aggregator_id, user_ref, authorised)"
        " SELECT $1, ref, $3 FROM unnest($2::text[]) AS ref"
        " ON CONFLICT (aggregator_id, user_ref) DO UPDATE SET authorised = excluded.authorised"
        " WHERE point_users.authorised <> excluded.authorised RETURNING user_id",
        aggregator_id,
        refs,
        granted,
    )
    await conn.execute(
        "INSERT INTO user_authorisations (user_id, granted, txn_id)"
        " SELECT id, $2, $3 FROM unnest($1::bigint[]) AS id",
        [row[0] for row in changed],
        granted,
        txn_id,
    )
    return len(changed)


# -- rules and issuance ------------------------------------------------------------------------


async def publish_rule(
    conn: Connection, txn_id: int, regulator_id: int, points_per_t: int, effective_from: dt.date
) -> PointsRule:
    """Publish the next version of the CER-to-points rule; versions never change."""
    roles = await lock_accounts(conn, [regulator_id])
    require_role(roles, regulator_id, [Role.REGULATOR], "publish points rules")
    if not 0 < points_per_t <= 10**9:
        raise LedgerError(ErrorCode.POINTS_RULE_INVALID, f"{points_per_t} points a tonne")
    await conn.execute("LOCK TABLE points_rules IN EXCLUSIVE MODE")
    last = await conn.fetchrow(
        "SELECT version, effective_from FROM points_rules ORDER BY version DESC LIMIT 1"
    )
    if last is not None and effective_from < last["effective_from"]:
        raise LedgerError(
            ErrorCode.POINTS_RULE_INVALID,
            f"a new version cannot take effect before version {last['version']} did",
        )
    version = 1 if last is None else last["version"] + 1
    await conn.execute(
        "INSERT INTO points_rules (version, points_per_t, effective_from, txn_id)"
        " VALUES ($1, $2, $3, $4)",
        version,
        points_per_t,
        effective_from,
        txn_id,
    )
    return PointsRule(version, points_per_t, effective_from)


async def rule_in_effect(conn: Connection, on: dt.date) -> PointsRule:
    row = await conn.fetchrow(
        "SELECT version, points_per_t, effective_from FROM points_rules"
        " WHERE effective_from <= $1 ORDER BY version DESC LIMIT 1",
        on,
    )
    if row is None:
        raise LedgerError(ErrorCode.NO_POINTS_RULE, f"no points rule in effect on {on}")
    return PointsRule(row[0], row[1], row[2])


async def issue(
    conn: Connection,
    txn_id: int,
    operator_id: int,
    aggregator_id: int,
    project: str,
    quantity_t: int,
    on: dt.date,
    take: ByBlocks | None = None,
) -> PointIssuance:
    """Convert `quantity_t` of the aggregator's free tonnes of its `project` into points at the
    rule in effect: the tonnes end 'converted' (never traded again), the points join the
    aggregator's pool of that rule version. `take` names the tonnes block by block (a service
    that set them aside says which); else the oldest vintage goes first."""
    if quantity_t <= 0:
        raise LedgerError(ErrorCode.QUANTITY_MUST_BE_POSITIVE, f"{quantity_t} t")
    roles = await lock_accounts(conn, [operator_id, aggregator_id])
    require_role(roles, operator_id, [Role.OPERATOR], "issue points")
    await _registered(conn, aggregator_id)
    owner = await conn.fetchval("SELECT owner_id FROM projects WHERE code = $1", project)
    if owner is None:
        raise LedgerError(ErrorCode.PROJECT_NOT_FOUND, f"no project {project}")
    if owner != aggregator_id:
        raise LedgerError(
            ErrorCode.PROJECT_NOT_AGGREGATORS, f"project {project} is not aggregator's"
        )
    rule = await rule_in_effect(conn, on)
    if take is not None:
        if sum(t for _, t in take.quantities) != quantity_t:
            raise LedgerError(ErrorCode.QUANTITY_MUST_BE_POSITIVE, "the blocks named add up wrong")
        projects = await conn.fetch(
            "SELECT DISTINCT project FROM blocks WHERE block_id = ANY($1::text[])",
            [block for block, _ in take.quantities],
        )
        if [row[0] for row in projects] != [project]:
            raise LedgerError(
                ErrorCode.PROJECT_NOT_AGGREGATORS, f"the blocks named are not all of {project}"
            )
        chosen = await select(conn, aggregator_id, take)
    else:
        found = take_first(
            await free_runs(conn, aggregator_id, CerFilter(projects=(project,))), quantity_t
        )
        if found is None:
            raise LedgerError(
                ErrorCode.INSUFFICIENT_HOLDINGS,
                f"aggregator {aggregator_id} holds fewer than {quantity_t} free t of {project}",
            )
        chosen = found
    target = Place(aggregator_id, TonneState.CONVERTED.value, None)
    await apply(
        conn, txn_id, plan({run: [(r, target) for r in ranges] for run, ranges in chosen.items()})
    )
    points = quantity_t * rule.points_per_t
    issuance_id = await conn.fetchval(
        "INSERT INTO point_issuances (txn_id, aggregator_id, project, quantity_t, rule_version,"
        " points) VALUES ($1, $2, $3, $4, $5, $6) RETURNING issuance_id",
        txn_id,
        aggregator_id,
        project,
        quantity_t,
        rule.version,
        points,
    )
    await conn.execute(
        "INSERT INTO point_pools (aggregator_id, rule_version, issued, undistributed, cancelled)"
        " VALUES ($1, $2, $3, $3, 0) ON CONFLICT (aggregator_id, rule_version) DO UPDATE SET"
        " issued = point_pools.issued + $3, undistributed = point_pools.undistributed + $3",
        aggregator_id,
        rule.version,
        points,
    )
    return PointIssuance(issuance_id, aggregator_id, project, quantity_t, rule.version, points)


# -- distribution and redemption ----------------------------------------------------------------


async def distribute(
    conn: Connection,
    txn_id: int,
    aggregator_id: int,
    rule_version: int,
    items: Sequence[Distribution],
) -> BatchDone:
    """Give users points from the aggregator's pool of `rule_version`, as their reductions earned
    them. Only authorised users of this aggregator; the pool must hold the batch's total."""
    await _registered(conn, aggregator_id)
    per_ref = _totals(items)
    total = sum(per_ref.values())
    taken = await conn.fetchval(
        "UPDATE point_pools SET undistributed = undistributed - $3"
        " WHERE aggregator_id = $1 AND rule_version = $2 AND undistributed >= $3"
        " RETURNING undistributed",
        aggregator_id,
        rule_version,
        total,
    )
    if taken is None:
        raise LedgerError(
            ErrorCode.INSUFFICIENT_POINTS,
            f"the batch gives {total} points; the pool of rule version {rule_version} has fewer",
        )
    # one statement: the users found (authorised ones of this aggregator), their entries, their
    # balances; a batch naming anyone else is then refused whole, and the transaction undone
    given = await conn.fetchval(
        "WITH v AS (SELECT u.user_id, v.points FROM unnest($1::text[], $2::bigint[])"
        "  AS v(user_ref, points) JOIN point_users u"
        "  ON u.aggregator_id = $3 AND u.user_ref = v.user_ref AND u.authorised),"
        " e AS (INSERT INTO point_entries (txn_id, user_ids, rule_versions, points)"
        "  SELECT $4, array_agg(user_id), array_agg($5::int), array_agg(points) FROM v),"
        " b AS (INSERT INTO point_balances (user_id, rule_version, balance)"
        "  SELECT user_id, $5, points FROM v ON CONFLICT (user_id, rule_version)"
        "  DO UPDATE SET balance = point_balances.balance + excluded.balance)"
        " SELECT count(*) FROM v",
        list(per_ref),
        list(per_ref.values()),
        aggregator_id,
        txn_id,
        rule_version,
    )
    if given != len(per_ref):
        await _users(conn, aggregator_id, list(per_ref), authorised=True)  # says who, and raises
        raise AssertionError("a user neither found nor refused")
    return BatchDone(len(items), total)


async def redeem(
    conn: Connection, txn_id: int, aggregator_id: int, items: Sequence[Redemption]
) -> BatchDone:
    """Cancel the points users redeemed in the aggregator's mall: each redemption by its own
    reference, once; never more than a user holds (oldest rule version first)."""
    await _registered(conn, aggregator_id)
    references = [item.reference for item in items]
    if len(set(references)) != len(references) or any(not 0 < len(ref) <= 64 for ref in references):
        raise LedgerError(
            ErrorCode.POINTS_BATCH_INVALID, "each redemption has its own reference (1..64)"
        )
    per_ref = _totals(items)
    users = await _users(conn, aggregator_id, list(per_ref), authorised=False)
    recorded = await conn.fetch(
        "INSERT INTO point_redemptions (aggregator_id, reference, user_id, points, txn_id)"
        " SELECT $1, r, u, p, $5 FROM unnest($2::text[], $3::bigint[], $4::bigint[]) AS v(r, u, p)"
        " ON CONFLICT DO NOTHING RETURNING reference",
        aggregator_id,
        references,
        [users[item.user_ref] for item in items],
        [item.points for item in items],
        txn_id,
    )
    if len(recorded) != len(items):
        reused = sorted(set(references) - {row[0] for row in recorded})
        raise LedgerError(
            ErrorCode.REDEMPTION_REFERENCE_REUSED, f"references used before: {reused[:5]}"
        )
    ids = [users[ref] for ref in per_ref]
    # locked first, so the next statement computes from balances no other batch is changing
    await conn.execute(
        "SELECT 1 FROM point_balances WHERE user_id = ANY($1::bigint[])"
        " ORDER BY user_id, rule_version FOR UPDATE",
        ids,
    )
    # each user's redemption taken from its balances, oldest rule version first
    rows = await conn.fetch(
        "WITH wanted AS (SELECT * FROM unnest($1::bigint[], $2::bigint[]) AS w(user_id, points)),"
        " held AS (SELECT b.user_id, b.rule_version, b.balance, w.points,"
        "  sum(b.balance) OVER (PARTITION BY b.user_id ORDER BY b.rule_version) AS upto"
        "  FROM point_balances b JOIN wanted w USING (user_id)),"
        " cut AS (SELECT user_id, rule_version,"
        "  least(balance, greatest(points - (upto - balance), 0)) AS taken FROM held)"
        " UPDATE point_balances b SET balance = b.balance - cut.taken FROM cut"
        " WHERE b.user_id = cut.user_id AND b.rule_version = cut.rule_version AND cut.taken > 0"
        " RETURNING b.user_id, b.rule_version, cut.taken",
        ids,
        list(per_ref.values()),
    )
    taken: defaultdict[int, int] = defaultdict(int)
    for user_id, _, points in rows:
        taken[user_id] += points
    short = [
        ref for ref, user_id in zip(per_ref, ids, strict=True) if taken[user_id] != per_ref[ref]
    ]
    if short:
        raise LedgerError(
            ErrorCode.REDEMPTION_EXCEEDS_BALANCE,
            f"users {short[:5]} redeem more points than they hold",
        )
    await conn.execute(
        "INSERT INTO point_entries (txn_id, user_ids, rule_versions, points)"
        " VALUES ($1, $2, $3, $4)",
        txn_id,
        [row[0] for row in rows],
        [row[1] for row in rows],
        [-row[2] for row in rows],
    )
    by_version: defaultdict[int, int] = defaultdict(int)
    for _, version, points in rows:
        by_version[version] += points
    await conn.execute(
        "UPDATE point_pools p SET cancelled = p.cancelled + v.points"
        " FROM unnest($2::int[], $3::bigint[]) AS v(rule_version, points)"
        " WHERE p.aggregator_id = $1 AND p.rule_version = v.rule_version",
        aggregator_id,
        list(by_version),
        list(by_version.values()),
    )
    return BatchDone(len(items), sum(per_ref.values()))


# -- reads -------------------------------------------------------------------------------------


async def pools(conn: Connection, aggregator_id: int | None = None) -> list[Pool]:
    rows = await conn.fetch(
        "SELECT p.aggregator_id, p.rule_version, p.issued, p.undistributed,"
        " coalesce((SELECT sum(b.balance) FROM point_balances b JOIN point_users u USING (user_id)"
        "  WHERE u.aggregator_id = p.aggregator_id AND b.rule_version = p.rule_version), 0)"
        "::bigint, p.cancelled FROM point_pools p"
        " WHERE $1::bigint IS NULL OR p.aggregator_id = $1 ORDER BY 1, 2",
        aggregator_id,
    )
    return [Pool(*row) for row in rows]


async def balance(conn: Connection, aggregator_id: int, user_ref: str) -> int:
    """A user's points (all rule versions); a user the aggregator does not have is refused."""
    users = await _users(conn, aggregator_id, [user_ref], authorised=False)
    return int(
        await conn.fetchval(
            "SELECT coalesce(sum(balance), 0) FROM point_balances WHERE user_id = $1",
            users[user_ref],
        )
    )


# -- helpers -----------------------------------------------------------------------------------


async def _registered(conn: Connection, aggregator_id: int) -> None:
    found = await conn.fetchval(
        "SELECT 1 FROM aggregators WHERE account_id = $1 FOR SHARE", aggregator_id
    )
    if found is None:
        raise LedgerError(
            ErrorCode.AGGREGATOR_NOT_REGISTERED, f"account {aggregator_id} is no aggregator"
        )


def _totals(items: Sequence[Distribution] | Sequence[Redemption]) -> dict[str, int]:
    if not 0 < len(items) <= MAX_BATCH:
        raise LedgerError(ErrorCode.POINTS_BATCH_INVALID, f"a batch holds 1..{MAX_BATCH} items")
    totals: defaultdict[str, int] = defaultdict(int)
    for item in items:
        if not 0 < item.points <= 10**12:
            raise LedgerError(
                ErrorCode.POINTS_BATCH_INVALID, f"{item.points} points for {item.user_ref}"
            )
        totals[item.user_ref] += item.points
    return dict(totals)


async def _users(
    conn: Connection, aggregator_id: int, refs: list[str], *, authorised: bool
) -> dict[str, int]:
    """The user ids of this aggregator's `refs`; refused if one is not its user (or, when
    `authorised`, has not authorised it)."""
    rows = await conn.fetch(
        "SELECT user_ref, user_id, authorised FROM point_users"
        " WHERE aggregator_id = $1 AND user_ref = ANY($2::text[])",
        aggregator_id,
        refs,
    )
    if len(rows) != len(refs):
        missing = sorted(set(refs) - {row[0] for row in rows})
        raise LedgerError(
            ErrorCode.POINT_USER_NOT_FOUND,
            f"not users of aggregator {aggregator_id}: {missing[:5]}",
        )
    if authorised and (refused := sorted(row[0] for row in rows if not row[2])):
        raise LedgerError(
            ErrorCode.POINT_USER_NOT_AUTHORISED,
            f"users who have not authorised aggregator {aggregator_id}: {refused[:5]}",
        )
    return {row[0]: row[1] for row in rows}
