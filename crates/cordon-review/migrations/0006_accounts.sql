-- The people who work the queue. A password is an argon2 PHC string; NULL means the account
-- signs in only through the trusted single-sign-on proxy header.
CREATE TABLE accounts (
    username      TEXT        PRIMARY KEY CHECK (username ~ '^[a-z0-9][a-z0-9._@-]{0,63}$'),
    role          TEXT        NOT NULL CHECK (role IN ('moderator', 'senior', 'admin')),
    password_hash TEXT,
    disabled      BOOLEAN     NOT NULL DEFAULT false,
    failed_logins INTEGER     NOT NULL DEFAULT 0,
    locked_until  TIMESTAMPTZ,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Login sessions. Only a SHA-256 of the cookie's token is stored, so reading this table does not
-- give anyone a live session; the CSRF token is sent back with every state change.
CREATE TABLE sessions (
    token_hash BYTEA       PRIMARY KEY,
    username   TEXT        NOT NULL REFERENCES accounts (username) ON DELETE CASCADE,
    csrf_token TEXT        NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX sessions_by_user ON sessions (username);

-- The item's language, for queue filters.
ALTER TABLE cases ADD COLUMN language TEXT;
CREATE INDEX cases_open_filters ON cases (category, source, language) WHERE state <> 'resolved';

-- A restore may close the item version for good: later reports about it are recorded but do not
-- queue it again.
ALTER TABLE decisions ADD COLUMN no_requeue BOOLEAN NOT NULL DEFAULT false;
