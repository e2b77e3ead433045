-- Carbon points (Arts. 16-20): a second ledger beside tonnes and cash. Points are issued to a
-- data-aggregation platform against CER tonnes it converts (their holdings end 'converted'),
-- distributed by it to its users' point accounts, and cancelled when a user redeems them. Points
-- never move between users and have no price anywhere. Histories are append-only; pools and
-- balances are their projection, which the audit rebuilds.

-- An aggregator: an account with the aggregator role, registered with the declaration it signed.
CREATE TABLE aggregators (
    account_id bigint PRIMARY KEY REFERENCES accounts,
    declaration text NOT NULL,
    declared_at timestamptz NOT NULL DEFAULT now(),
    txn_id bigint NOT NULL REFERENCES ledger_txns
);

-- The platform knows a household or an individual only as an aggregator's pseudonymous id.
CREATE TABLE point_users (
    user_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    aggregator_id bigint NOT NULL REFERENCES aggregators,
    user_ref text NOT NULL,
    authorised boolean NOT NULL,
    UNIQUE (aggregator_id, user_ref)
);

CREATE TABLE user_authorisations (
    user_id bigint NOT NULL,
    granted boolean NOT NULL,
    txn_id bigint NOT NULL REFERENCES ledger_txns,
    at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX user_authorisations_by_user ON user_authorisations (user_id);

CREATE TABLE points_rules (
    version int PRIMARY KEY CHECK (version > 0),
    points_per_t bigint NOT NULL CHECK (points_per_t > 0),
    effective_from date NOT NULL,
    txn_id bigint NOT NULL REFERENCES ledger_txns,
    published_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE point_issuances (
    issuance_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    txn_id bigint NOT NULL UNIQUE REFERENCES ledger_txns,
    aggregator_id bigint NOT NULL REFERENCES aggregators,
    project text NOT NULL,
    quantity_t bigint NOT NULL CHECK (quantity_t > 0),
    rule_version int NOT NULL REFERENCES points_rules,
    points bigint NOT NULL CHECK (points > 0)
);

-- Per aggregator and rule version: issued = undistributed + held by users + cancelled.
CREATE TABLE point_pools (
    aggregator_id bigint NOT NULL,
    rule_version int NOT NULL,
    issued bigint NOT NULL CHECK (issued >= 0),
    undistributed bigint NOT NULL CHECK (undistributed >= 0),
    cancelled bigint NOT NULL CHECK (cancelled >= 0),
    PRIMARY KEY (aggregator_id, rule_version)
);

CREATE TABLE point_balances (
    user_id bigint NOT NULL,
    rule_version int NOT NULL,
    balance bigint NOT NULL CHECK (balance >= 0),
    PRIMARY KEY (user_id, rule_version)
);

-- Every distribution (positive) and cancellation by redemption (negative) of users' points, one
-- row per batch with its items side by side: a batch of ten thousand is one row to write.
CREATE TABLE point_entries (
    txn_id bigint PRIMARY KEY,
    user_ids bigint[] NOT NULL,
    rule_versions int[] NOT NULL,
    points bigint[] NOT NULL,
    CHECK (cardinality(user_ids) = cardinality(points)
           AND cardinality(rule_versions) = cardinality(points))
);
-- written once and read whole by the audit: compressing them costs more than it saves
ALTER TABLE point_entries ALTER COLUMN user_ids SET STORAGE EXTERNAL,
    ALTER COLUMN rule_versions SET STORAGE EXTERNAL, ALTER COLUMN points SET STORAGE EXTERNAL;

CREATE TABLE point_redemptions (
    aggregator_id bigint NOT NULL,
    reference text NOT NULL,
    user_id bigint NOT NULL,
    points bigint NOT NULL CHECK (points > 0),
    txn_id bigint NOT NULL,
    PRIMARY KEY (aggregator_id, reference)
);
