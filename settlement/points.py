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

A user's points live in its own `point_users` row: `balances[v]` holds rule version v (the array
starts at 1, zeros between). So a distribution costs, per user, one probe of the (aggregator,
user_ref) index, which finds the user, its authorisation and its points at once, and one update
that stays in the row's page (the table leaves room, so no index changes). A batch travels as
array literals (`settlement.arrays`), sorted by user_ref: the probes walk the index forwards,
and concurrent batches lock their users' rows in the same order. docs/points.md has the figures.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence

import msgspec

from settlement.accounts import lock_accounts, require_role
from settlement.arrays import bigint_array, text_array
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
    them. Only authorised users of this aggregator; the pool must hold the batch's total.

    O(batch × log users): one probe of the (aggregator, user_ref) index and one in-page update
    per user, whatever the aggregator's size."""
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
    # in index order, so that the probes walk the index forwards and concurrent batches lock
    # their users' rows in one order
    refs = sorted(per_ref)
    await _probe_each(conn)
    # one statement: the users found (authorised ones of this aggregator) get their points and
    # the batch's history; a batch naming anyone else is then refused whole, and the
    # transaction undone
    given = await conn.fetchval(
        "WITH given AS (UPDATE point_users u SET balances = points_added(u.balances, $5, v.points)"
        "  FROM unnest($1::text::text[], $2::text::bigint[]) AS v(user_ref, points)"
        "  WHERE u.aggregator_id = $3 AND u.user_ref = v.user_ref AND u.authorised"
        "  RETURNING u.user_id, v.points),"
        " e AS (INSERT INTO point_entries (txn_id, user_ids, rule_versions, points)"
        "  SELECT $4, array_agg(user_id), array_agg($5::int), array_agg(points) FROM given"
        "  HAVING count(*) > 0)"
        " SELECT count(*) FROM given",
        text_array(refs),
        bigint_array([per_ref[ref] for ref in refs]),
        aggregator_id,
        txn_id,
        rule_version,
    )
    if given != len(refs):
        await _users(conn, aggregator_id, refs, authorised=True)  # says who, and raises
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
    refs = sorted(per_ref)
    # the users' rows locked first, in the order distributions lock them, so that the next
    # statement computes from balances no other batch is changing; each redemption recorded,
    # once by its reference
    counts = await conn.fetchrow(
        "WITH locked AS (SELECT user_id, user_ref FROM point_users"
        "  WHERE aggregator_id = $1 AND user_ref = ANY($2::text::text[])"
        "  ORDER BY user_ref FOR NO KEY UPDATE),"
        " recorded AS (INSERT INTO point_redemptions"
        "  (aggregator_id, reference, user_id, points, txn_id)"
        "  SELECT $1, r.reference, locked.user_id, r.points, $6"
        "  FROM unnest($3::text::text[], $4::text::text[], $5::text::bigint[])"
        "   AS r(user_ref, reference, points) JOIN locked USING (user_ref)"
        "  ON CONFLICT DO NOTHING RETURNING 1)"
        " SELECT (SELECT count(*) FROM locked), (SELECT count(*) FROM recorded)",
        aggregator_id,
        text_array(refs),
        text_array([item.user_ref for item in items]),
        text_array(references),
        bigint_array([item.points for item in items]),
        txn_id,
    )
    assert counts is not None  # an aggregate without GROUP BY returns one row
    found, recorded = counts
    if found != len(refs):
        await _users(conn, aggregator_id, refs, authorised=False)  # says who, and raises
        raise AssertionError("a user neither found nor refused")
    if recorded != len(items):
        reused = await conn.fetch(
            "SELECT reference FROM point_redemptions WHERE aggregator_id = $1"
            " AND reference = ANY($2::text::text[]) AND txn_id <> $3 ORDER BY 1 LIMIT 5",
            aggregator_id,
            text_array(references),
            txn_id,
        )
        raise LedgerError(
            ErrorCode.REDEMPTION_REFERENCE_REUSED,
            f"references used before: {[row[0] for row in reused]}",
        )
    # each user's redemption taken from its balances, oldest rule version first (a user with
    # none keeps one row, taking nothing); the balances written back, the history and the
    # pools' cancelled points in the same statement; the users left short named
    await _probe_each(conn)
    short = await conn.fetchval(
        "WITH wanted AS (SELECT * FROM unnest($1::text::text[], $2::text::bigint[])"
        "  AS w(user_ref, points)),"
        " held AS (SELECT u.user_id, w.user_ref, w.points, v AS rule_version,"
        "  u.balances[v] AS balance,"
        "  sum(u.balances[v]) OVER (PARTITION BY u.user_id ORDER BY v) AS upto"
        "  FROM wanted w JOIN point_users u ON u.aggregator_id = $3 AND u.user_ref = w.user_ref"
        "  LEFT JOIN LATERAL generate_subscripts(u.balances, 1) AS v ON true),"
        " cut AS (SELECT user_id, user_ref, points, rule_version, balance,"
        "  coalesce(least(balance, greatest(points - (upto - balance), 0)), 0)::bigint AS taken"
        "  FROM held),"
        " kept AS (SELECT user_id, array_agg(balance - taken ORDER BY rule_version) AS balances"
        "  FROM cut GROUP BY user_id HAVING sum(taken) > 0),"
        " b AS (UPDATE point_users u SET balances = kept.balances FROM kept"
        "  WHERE u.user_id = kept.user_id),"
        " e AS (INSERT INTO point_entries (txn_id, user_ids, rule_versions, points)"
        "  SELECT $4, array_agg(user_id ORDER BY user_id, rule_version),"
        "  array_agg(rule_version ORDER BY user_id, rule_version),"
        "  array_agg(-taken ORDER BY user_id, rule_version) FROM cut WHERE taken > 0"
        "  HAVING count(*) > 0),"
        " p AS (UPDATE point_pools p SET cancelled = p.cancelled + c.taken"
        "  FROM (SELECT rule_version, sum(taken) AS taken FROM cut GROUP BY 1) c"
        "  WHERE p.aggregator_id = $3 AND p.rule_version = c.rule_version AND c.taken > 0)"
        " SELECT array_agg(user_ref ORDER BY user_ref) FROM (SELECT user_ref,"
        "  min(points) AS points, sum(taken) AS taken FROM cut GROUP BY 1) t"
        " WHERE taken <> points",
        text_array(refs),
        bigint_array([per_ref[ref] for ref in refs]),
        aggregator_id,
        txn_id,
    )
    if short is not None:
        raise LedgerError(
            ErrorCode.REDEMPTION_EXCEEDS_BALANCE,
            f"users {short[:5]} redeem more points than they hold",
        )
    return BatchDone(len(items), sum(per_ref.values()))


# -- reads -------------------------------------------------------------------------------------


async def pools(conn: Connection, aggregator_id: int | None = None) -> list[Pool]:
    rows = await conn.fetch(
        "SELECT p.aggregator_id, p.rule_version, p.issued, p.undistributed,"
        " coalesce((SELECT sum(u.balances[p.rule_version]) FROM point_users u"
        "  WHERE u.aggregator_id = p.aggregator_id), 0)::bigint, p.cancelled FROM point_pools p"
        " WHERE $1::bigint IS NULL OR p.aggregator_id = $1 ORDER BY 1, 2",
        aggregator_id,
    )
    return [Pool(*row) for row in rows]


async def balance(conn: Connection, aggregator_id: int, user_ref: str) -> int:
    """A user's points (all rule versions); a user the aggregator does not have is refused."""
    users = await _users(conn, aggregator_id, [user_ref], authorised=False)
    return int(
        await conn.fetchval(
            "SELECT coalesce(sum(b), 0) FROM point_users, unnest(balances) AS b WHERE user_id = $1",
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


async def _probe_each(conn: Connection) -> None:
    """Plan the rest of this transaction's joins of a batch to its users as one index probe per
    item, and without JIT compilation.

    A batch touches a few of the aggregator's users. The planner, pricing each probe as a read
    from disk, would rather hash all of them, which grows with the aggregator while probes grow
    with the batch (measured, server time a batch of 10,000: about the same at 100,000 users,
    where the hash spilled to disk once rows held balances; 215 ms against 148 ms at 1,000,000),
    and which the next statistics may change. JIT, which starts above a plan cost a
    50,000-item batch of a large aggregator can reach, compiles for tens of milliseconds what a
    probe per item does not need."""
    await conn.execute(
        "SET LOCAL enable_hashjoin = off; SET LOCAL enable_mergejoin = off; SET LOCAL jit = off"
    )


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
