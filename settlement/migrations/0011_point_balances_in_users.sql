-- A user's points move into the user's own row. Distribution is the points ledger's hot path,
-- ten thousand users a batch: with the balances in a table of their own, each item cost two
-- index probes (the user by its pseudonymous id, then its balance) and, for a user's first
-- points of a rule version, an insert with an index entry. In the user's row, one probe finds
-- the user, its authorisation and its points, and the update stays in the row's page (HOT)
-- without touching an index. Measured at batch 10,000 and 100,000 users: the best batch ~62 ms,
-- against ~82 ms for the best form with the separate table.

-- Pseudonymous ids and redemption references are opaque: compared byte by byte ("C") rather
-- than by a locale's rules, each comparison in their unique indexes is cheaper. Equality is
-- unchanged, and the order is Python's order of the same strings.
ALTER TABLE point_users ALTER COLUMN user_ref TYPE text COLLATE "C";
ALTER TABLE point_redemptions ALTER COLUMN reference TYPE text COLLATE "C";

-- balances[v] is the user's points of rule version v. The array starts at 1 and has no gaps or
-- nulls (a version the user never held is 0), so a subscript is always a version.
ALTER TABLE point_users
    ADD COLUMN balances bigint[] NOT NULL DEFAULT '{}',
    -- a null element makes the comparison null, so IS TRUE refuses nulls as well as negatives
    ADD CONSTRAINT point_users_balances_check CHECK (
        (0 <= ALL (balances)) IS TRUE
        AND coalesce(array_ndims(balances), 1) = 1 AND coalesce(array_lower(balances, 1), 1) = 1
    );

-- Room in each page for a row's next version: an update that finds it stays in the page (HOT)
-- and adds no index entry; one that does not writes the row elsewhere and indexes it again.
ALTER TABLE point_users SET (fillfactor = 70);

-- The balances with `points` more of rule version `version`, zeros filling any versions between.
-- A single expression, IMMUTABLE: the planner inlines it into the statement that calls it.
CREATE FUNCTION points_added(balances bigint[], version int, points bigint) RETURNS bigint[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE cardinality(balances) - version
        WHEN 0 THEN balances[:version - 1] || (balances[version] + points)
        WHEN -1 THEN balances || points
        ELSE CASE WHEN version < cardinality(balances)
            THEN balances[:version - 1] || (balances[version] + points) || balances[version + 1:]
            ELSE balances || array_fill(0::bigint, ARRAY[version - 1 - cardinality(balances)])
                || points
        END
    END
$$;

UPDATE point_users u SET balances = held.balances
FROM (
    SELECT last.user_id, array_agg(coalesce(b.balance, 0) ORDER BY v.version) AS balances
    FROM (SELECT user_id, max(rule_version) AS version FROM point_balances GROUP BY 1) last
    CROSS JOIN LATERAL generate_series(1, last.version) AS v(version)
    LEFT JOIN point_balances b ON b.user_id = last.user_id AND b.rule_version = v.version
    GROUP BY last.user_id
) held
WHERE u.user_id = held.user_id;

DROP TABLE point_balances;
