-- Registration workflows (Arts. 6, 10-15, 21): the expert pool, applications with their expert
-- review, and low-carbon scenario labels. Every change is an event in an append-only table
-- (expert_events, registration_events, label_events); experts, registration_applications and
-- scenario_labels are their projections, kept in the same transaction.

-- One row: the pool's version. A pool change raises it under the row's lock and a draw reads it
-- under a share lock, so a draw sees exactly the pool of the version it records.
CREATE TABLE expert_pool (
    version bigint NOT NULL CHECK (version >= 0)
);
INSERT INTO expert_pool (version) VALUES (0);

CREATE TABLE expert_events (
    pool_version bigint PRIMARY KEY,
    account_id bigint NOT NULL REFERENCES accounts,
    action text NOT NULL CHECK (action IN ('added', 'removed')),
    organisation text NOT NULL,
    fields text[] NOT NULL,
    actor_id bigint NOT NULL REFERENCES accounts,
    reason text,
    txn_id bigint NOT NULL REFERENCES ledger_txns,
    at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE experts (
    account_id bigint PRIMARY KEY REFERENCES accounts,
    organisation text NOT NULL,
    fields text[] NOT NULL,
    active boolean NOT NULL,
    since timestamptz NOT NULL
);

-- One row per version of an application; a resubmission after a rejection is the next version.
-- content: JSON of registration.values.Content. decider_id: the sector authority deciding a
-- scenario (NULL: the regulator decides).
CREATE TABLE registration_applications (
    application_id bigint NOT NULL,
    version int NOT NULL CHECK (version > 0),
    kind text NOT NULL
        CHECK (kind IN ('methodology', 'project', 'scenario', 'scenario_specification')),
    applicant_id bigint NOT NULL REFERENCES accounts,
    organisation text NOT NULL,
    sector text NOT NULL,
    content bytea NOT NULL,
    aggregator boolean NOT NULL,
    decider_id bigint REFERENCES accounts,
    specification_id bigint,
    state text NOT NULL
        CHECK (state IN ('submitted', 'under_review', 'approved', 'rejected', 'registered')),
    verifier text,
    reason text,
    registered_as text,
    PRIMARY KEY (application_id, version)
);
CREATE INDEX registration_applications_by_applicant ON registration_applications (applicant_id);
CREATE INDEX registration_applications_by_state ON registration_applications (state, kind);
CREATE SEQUENCE registration_application_ids;

CREATE TABLE registration_events (
    application_id bigint NOT NULL,
    version int NOT NULL,
    seq int NOT NULL CHECK (seq > 0),
    action text NOT NULL,
    state text NOT NULL,
    actor_id bigint NOT NULL REFERENCES accounts,
    detail text,
    txn_id bigint NOT NULL REFERENCES ledger_txns,
    at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (application_id, version, seq)
);

-- The experts drawn for a version's review: the seed, and what the draw was made from, so it
-- replays exactly (registration.experts.draw).
CREATE TABLE expert_draws (
    application_id bigint NOT NULL,
    version int NOT NULL,
    seed bigint NOT NULL CHECK (seed >= 0),
    field text NOT NULL,
    panel_size int NOT NULL CHECK (panel_size > 0),
    pool_version bigint NOT NULL,
    candidates bigint[] NOT NULL,
    drawn bigint[] NOT NULL,
    txn_id bigint NOT NULL REFERENCES ledger_txns,
    PRIMARY KEY (application_id, version)
);

CREATE TABLE expert_opinions (
    application_id bigint NOT NULL,
    version int NOT NULL,
    expert_id bigint NOT NULL REFERENCES accounts,
    approve boolean NOT NULL,
    text text NOT NULL,
    txn_id bigint NOT NULL REFERENCES ledger_txns,
    at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (application_id, version, expert_id)
);

-- Third-party validation and verification reports of a project (Art. 21), as attached.
CREATE TABLE project_reports (
    application_id bigint NOT NULL,
    version int NOT NULL,
    kind text NOT NULL CHECK (kind IN ('validation', 'verification')),
    issuer text NOT NULL,
    reference text NOT NULL,
    sha256_hex text NOT NULL,
    txn_id bigint NOT NULL REFERENCES ledger_txns,
    at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (application_id, version, kind, txn_id)
);

-- The sector authority of each scenario sector, and its evaluation specification in force
-- (Art. 13): the newest registered one.
CREATE TABLE scenario_sectors (
    sector text PRIMARY KEY,
    authority_id bigint NOT NULL REFERENCES accounts,
    specification_id bigint NOT NULL,
    txn_id bigint NOT NULL REFERENCES ledger_txns
);

-- Low-carbon scenario labels (Art. 14), and their suspensions and withdrawals (Art. 15).
CREATE TABLE scenario_labels (
    label_id text PRIMARY KEY,
    application_id bigint NOT NULL,
    version int NOT NULL,
    operator_id bigint NOT NULL REFERENCES accounts,
    authority_id bigint NOT NULL REFERENCES accounts,
    name text NOT NULL,
    sector text NOT NULL,
    place text NOT NULL,
    valid_from date NOT NULL,
    valid_until date NOT NULL,
    status text NOT NULL CHECK (status IN ('active', 'suspended', 'withdrawn')),
    txn_id bigint NOT NULL REFERENCES ledger_txns,
    UNIQUE (application_id, version),
    CHECK (valid_from <= valid_until)
);
CREATE SEQUENCE scenario_label_numbers;

CREATE TABLE label_events (
    label_id text NOT NULL REFERENCES scenario_labels,
    seq int NOT NULL CHECK (seq > 0),
    status text NOT NULL,
    actor_id bigint NOT NULL REFERENCES accounts,
    reason text,
    txn_id bigint NOT NULL REFERENCES ledger_txns,
    at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (label_id, seq)
);
