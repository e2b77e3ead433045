-- The exchange's durable state beside the ledger: API keys, listed instruments, the input journal
-- and book snapshots.

CREATE TABLE api_keys (
    key_id text PRIMARY KEY,
    account_id bigint NOT NULL REFERENCES accounts,
    secret bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz
);
CREATE INDEX api_keys_by_account ON api_keys (account_id);

-- Every input a book will see, in the order it sees them, written before it is applied.
-- body: the msgpack-encoded exchange.journal.Entry (the matching command and what it reserved).
CREATE TABLE journal (
    seq bigint PRIMARY KEY,
    symbol text NOT NULL,
    body bytea NOT NULL,
    written_at timestamptz NOT NULL DEFAULT now()
);

-- A book as it stood after journal entry `seq`: recovery starts from the newest and replays the
-- journal after it.
CREATE TABLE book_snapshots (
    symbol text NOT NULL,
    seq bigint NOT NULL,
    snapshot bytea NOT NULL,
    taken_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (symbol, seq)
);

-- Instruments as the operator listed them: the spec is the msgpack-encoded
-- exchange.instruments.Instrument (rules, eligibility, fees, reference price).
CREATE TABLE instruments (
    symbol text PRIMARY KEY,
    instrument_id int NOT NULL UNIQUE CHECK (instrument_id > 0),
    spec bytea NOT NULL,
    listed_at timestamptz NOT NULL DEFAULT now()
);
