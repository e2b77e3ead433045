"""The audit's part for carbon points: every point accounted for, and every converted tonne.

- per aggregator and rule version: issued (the pool) = the sum of its issuances, and issued =
  undistributed + held by its users + cancelled;
- per user and rule version: the balance (`point_users.balances[version]`) = the sum of its
  entries (distributions less cancellations), and what was cancelled = what the redemptions
  reported;
- per project: the tonnes in the 'converted' state = the tonnes its issuances converted, and
  each issuance's points = its tonnes × its rule's points per tonne.
"""

from __future__ import annotations

from settlement.connection import Connection

_CHECKS = (
    (
        "points pool {0}/v{1}: issued {2}, issuances {3}",
        """SELECT p.aggregator_id, p.rule_version, p.issued, coalesce(i.points, 0)
           FROM point_pools p FULL JOIN (
               SELECT aggregator_id, rule_version, sum(points) AS points
               FROM point_issuances GROUP BY 1, 2) i USING (aggregator_id, rule_version)
           WHERE coalesce(p.issued, -1) <> coalesce(i.points, 0) LIMIT 20""",
    ),
    (
        "points pool {0}/v{1}: issued {2} <> undistributed {3} + held {4} + cancelled {5}",
        """SELECT p.aggregator_id, p.rule_version, p.issued, p.undistributed,
                  coalesce(h.held, 0), p.cancelled
           FROM point_pools p LEFT JOIN (
               SELECT u.aggregator_id, b.rule_version::int, sum(b.balance) AS held
               FROM point_users u,
                    unnest(u.balances) WITH ORDINALITY AS b(balance, rule_version)
               GROUP BY 1, 2) h
             USING (aggregator_id, rule_version)
           WHERE p.issued <> p.undistributed + coalesce(h.held, 0) + p.cancelled LIMIT 20""",
    ),
    (
        "points of user {0}/v{1}: balance {2}, entries {3}",
        """SELECT coalesce(b.user_id, e.user_id), coalesce(b.rule_version, e.rule_version),
                  coalesce(b.balance, 0), coalesce(e.points, 0)
           FROM (SELECT u.user_id, b.rule_version::int, b.balance
                 FROM point_users u,
                      unnest(u.balances) WITH ORDINALITY AS b(balance, rule_version)) b
           FULL JOIN (
               SELECT x.user_id, x.rule_version, sum(x.points) AS points
               FROM point_entries,
                    unnest(user_ids, rule_versions, points) AS x(user_id, rule_version, points)
               GROUP BY 1, 2) e USING (user_id, rule_version)
           WHERE coalesce(b.balance, 0) <> coalesce(e.points, 0) LIMIT 20""",
    ),
    (
        "points cancelled by aggregator {0}: pools {1}, redemptions {2}",
        """SELECT coalesce(p.aggregator_id, r.aggregator_id), coalesce(p.cancelled, 0),
                  coalesce(r.points, 0)
           FROM (SELECT aggregator_id, sum(cancelled) AS cancelled FROM point_pools GROUP BY 1) p
           FULL JOIN (SELECT aggregator_id, sum(points) AS points FROM point_redemptions
                      GROUP BY 1) r USING (aggregator_id)
           WHERE coalesce(p.cancelled, 0) <> coalesce(r.points, 0) LIMIT 20""",
    ),
    (
        "project {0}: {1} t converted, issuances converted {2} t",
        """SELECT coalesce(h.project, i.project), coalesce(h.tonnes, 0), coalesce(i.tonnes, 0)
           FROM (SELECT b.project, sum(h.last_serial - h.first_serial + 1) AS tonnes
                 FROM holdings h JOIN blocks b USING (block_id)
                 WHERE h.state = 'converted' GROUP BY 1) h
           FULL JOIN (SELECT project, sum(quantity_t) AS tonnes FROM point_issuances
                      GROUP BY 1) i USING (project)
           WHERE coalesce(h.tonnes, 0) <> coalesce(i.tonnes, 0) LIMIT 20""",
    ),
    (
        "points issuance {0}: {1} t at {2} points a tonne is not {3} points",
        """SELECT i.issuance_id, i.quantity_t, r.points_per_t, i.points
           FROM point_issuances i JOIN points_rules r ON r.version = i.rule_version
           WHERE i.points <> i.quantity_t * r.points_per_t LIMIT 20""",
    ),
)


async def problems(conn: Connection) -> list[str]:
    found: list[str] = []
    for message, query in _CHECKS:
        found += [message.format(*row) for row in await conn.fetch(query)]
    return found
