-- Carbon-neutrality certification (Art. 26): applications resting on retirements, the
-- regulator's decisions, and the signed certificates. An application's transitions are kept in
-- application_events (append-only); the applications row is their projection.
CREATE TABLE certificate_applications (
    application_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id bigint NOT NULL REFERENCES accounts,
    beneficiary text NOT NULL,
    subject_kind text NOT NULL,
    subject text NOT NULL,
    emissions_t bigint NOT NULL CHECK (emissions_t > 0),
    purpose text NOT NULL,
    retirement_ids bigint[] NOT NULL,
    applied_on date NOT NULL,
    state text NOT NULL CHECK (state IN ('submitted', 'approved', 'rejected')),
    reason text,
    certificate_id text UNIQUE
);
CREATE INDEX certificate_applications_by_state ON certificate_applications (state);

CREATE TABLE application_events (
    application_id bigint NOT NULL,
    seq int NOT NULL,
    state text NOT NULL,
    actor_id bigint NOT NULL,
    reason text,
    txn_id bigint NOT NULL REFERENCES ledger_txns,
    at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (application_id, seq)
);

-- body: the certificate file (JSON of offsets.certificate.SignedCertificate), as issued.
CREATE TABLE certificates (
    certificate_id text PRIMARY KEY,
    application_id bigint NOT NULL UNIQUE,
    account_id bigint NOT NULL REFERENCES accounts,
    body bytea NOT NULL,
    issued_at timestamptz NOT NULL,
    txn_id bigint NOT NULL REFERENCES ledger_txns
);

CREATE SEQUENCE certificate_numbers;
