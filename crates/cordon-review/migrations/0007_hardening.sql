-- Outbox rows that can never be published (too large or invalid for the broker) are set aside
-- with the reason instead of blocking every later decision.
ALTER TABLE outbox
    ADD COLUMN refused_at TIMESTAMPTZ,
    ADD COLUMN error      TEXT;
DROP INDEX outbox_unpublished;
CREATE INDEX outbox_unpublished ON outbox (id) WHERE published_at IS NULL AND refused_at IS NULL;

-- Sign-in attempts per user name and client address (known and unknown names alike): every
-- attempt is counted before its password is checked, so concurrent guesses cannot slip past the
-- limit, and one client's guesses lock only that client out.
CREATE TABLE login_attempts (
    username     TEXT        NOT NULL,
    client       TEXT        NOT NULL,
    attempts     INTEGER     NOT NULL,
    locked_until TIMESTAMPTZ,
    updated_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (username, client)
);
CREATE INDEX login_attempts_by_age ON login_attempts (updated_at);

-- Reports carry the lane their reporter came by: `unverified` (a string nobody vouches for),
-- `platform` (signed by the platform's backend) or `trusted_flagger` (signed with a trusted
-- flagger's key). Only vouched weight holds an item or raises its priority.
ALTER TABLE reports ADD COLUMN lane TEXT NOT NULL DEFAULT 'unverified'
    CHECK (lane IN ('unverified', 'platform', 'trusted_flagger'));
ALTER TABLE cases ADD COLUMN vouched_weight REAL NOT NULL DEFAULT 0;
CREATE INDEX reports_by_item_time ON reports (item_id, created_at);
