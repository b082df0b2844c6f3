-- Strikes: every restriction of an item a person decided adds its category's weight to the
-- item's channel, for a window; once per statement. Restoring the item version (on appeal or
-- not) removes it, kept for the history.
CREATE TABLE strikes (
    id           BIGSERIAL   PRIMARY KEY,
    channel_id   TEXT        NOT NULL,
    statement_id BIGINT      NOT NULL UNIQUE REFERENCES statements (id),
    subject      TEXT        NOT NULL,
    category     TEXT        NOT NULL,
    weight       REAL        NOT NULL CHECK (weight >= 0),
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at   TIMESTAMPTZ NOT NULL,
    -- A person's restore of the item version removes it: when, who, and on which appeal.
    removed_at   TIMESTAMPTZ,
    removed_by   TEXT,
    appeal_id    BIGINT      REFERENCES appeals (id)
);
CREATE INDEX strikes_by_channel ON strikes (channel_id, expires_at);

-- The channel suppressions strikes caused: for a time (`until`) or for good (NULL), lifted at
-- their end or on appeal.
CREATE TABLE suspensions (
    id          BIGSERIAL   PRIMARY KEY,
    channel_id  TEXT        NOT NULL,
    decision_id BIGINT      NOT NULL UNIQUE REFERENCES decisions (id),
    until       TIMESTAMPTZ,
    strikes     REAL        NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    lifted_at   TIMESTAMPTZ,
    lifted_by   TEXT
);
CREATE INDEX suspensions_by_channel ON suspensions (channel_id, id);
CREATE INDEX suspensions_due ON suspensions (until) WHERE lifted_at IS NULL AND until IS NOT NULL;

-- A strike suspension is a restriction with its own statement of reasons.
ALTER TABLE statements DROP CONSTRAINT statements_restriction_check;
ALTER TABLE statements ADD CONSTRAINT statements_restriction_check CHECK (restriction IN
    ('model_suppression', 'moderator_suppression', 'report_hold', 'channel_suppression',
     'strike_suppression'));
