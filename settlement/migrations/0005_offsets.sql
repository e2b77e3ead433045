-- Offsets (Art. 25), voluntary retirement and neutrality certificates (Art. 26). Rules, verified
-- emissions and surrenders are written once; a correction is a new version, the history stays.

-- A compliance year's rules, one row per published version; the newest version in effect on a
-- date applies. rules: msgpack-encoded offsets.rules.OffsetRules.
CREATE TABLE offset_rules (
    year int NOT NULL,
    version int NOT NULL CHECK (version > 0),
    effective_from date NOT NULL,
    rules bytea NOT NULL,
    txn_id bigint NOT NULL REFERENCES ledger_txns,
    published_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (year, version)
);

-- One row per year with rules: what has been surrendered against it. Surrenders lock this row,
-- so the year's and each entity's caps are checked and used in one serial order.
CREATE TABLE offset_years (
    year int PRIMARY KEY,
    surrendered_t bigint NOT NULL DEFAULT 0 CHECK (surrendered_t >= 0)
);

CREATE TABLE verified_emissions (
    year int NOT NULL,
    account_id bigint NOT NULL REFERENCES accounts,
    version int NOT NULL CHECK (version > 0),
    emissions_t bigint NOT NULL CHECK (emissions_t >= 0),
    allocation_t bigint CHECK (allocation_t >= 0),
    txn_id bigint NOT NULL REFERENCES ledger_txns,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (year, account_id, version)
);

-- Each surrender; its serial ranges are the ledger's serial_entries of txn_id.
CREATE TABLE surrenders (
    surrender_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    txn_id bigint NOT NULL UNIQUE REFERENCES ledger_txns,
    year int NOT NULL,
    account_id bigint NOT NULL REFERENCES accounts,
    quantity_t bigint NOT NULL CHECK (quantity_t > 0),
    rules_version int NOT NULL,
    surrendered_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX surrenders_by_entity ON surrenders (year, account_id);

-- Each voluntary retirement; its serial ranges are the ledger's serial_entries of txn_id.
-- claimed_by: the certificate application covering it (at most one live application).
CREATE TABLE retirements (
    retirement_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    txn_id bigint NOT NULL UNIQUE REFERENCES ledger_txns,
    account_id bigint NOT NULL REFERENCES accounts,
    quantity_t bigint NOT NULL CHECK (quantity_t > 0),
    beneficiary text NOT NULL,
    purpose text NOT NULL,
    retired_at timestamptz NOT NULL DEFAULT now(),
    claimed_by bigint
);
CREATE INDEX retirements_by_account ON retirements (account_id);
