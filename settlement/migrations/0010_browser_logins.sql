-- People sign in to the web console with a login and a password; programs keep API keys.

CREATE TABLE browser_logins (
    login text PRIMARY KEY,  -- as typed, lower-cased
    account_id bigint NOT NULL UNIQUE REFERENCES accounts,
    password_hash text NOT NULL,  -- argon2id, with its parameters and salt
    failed_attempts integer NOT NULL DEFAULT 0 CHECK (failed_attempts >= 0),
    locked_until timestamptz,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- The cookie carries a random token; only its SHA-256 is kept, so that a copy of this table
-- opens no session.
CREATE TABLE browser_sessions (
    token_sha256 bytea PRIMARY KEY,
    account_id bigint NOT NULL REFERENCES accounts,
    csrf_token text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,  -- idle expiry, pushed on as the person works
    ends_by timestamptz NOT NULL,  -- absolute expiry, never pushed
    ended_at timestamptz
);
CREATE INDEX browser_sessions_by_account ON browser_sessions (account_id);
