-- Appeals (DSA Art. 20): a restricted channel, through the platform's backend, asks a person to
-- review a restriction. One appeal per statement of reasons; decided once, by a person other
-- than the one who took the original decision. Reversing lifts the restriction with a restore
-- decision and a correcting statement, written in the same transaction.
CREATE TABLE appeals (
    id              BIGSERIAL   PRIMARY KEY,
    statement_id    BIGINT      NOT NULL UNIQUE REFERENCES statements (id),
    -- The statement's subject (an item id, or `channel:<id>`) and the channel that appeals.
    subject         TEXT        NOT NULL,
    channel_id      TEXT        NOT NULL,
    -- The platform's id of the person appealing for the channel, and the key that vouched.
    appellant       TEXT        NOT NULL,
    key_id          TEXT        NOT NULL,
    -- The appellant's words.
    grounds         TEXT        NOT NULL,
    state           TEXT        NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'upheld', 'reversed')),
    decided_by      TEXT,
    decision_reason TEXT,
    decision_note   TEXT,
    -- The restore decision and the correcting statement of a reversal.
    decision_id     BIGINT      REFERENCES decisions (id),
    correction_id   BIGINT      REFERENCES statements (id),
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    decided_at      TIMESTAMPTZ,
    CHECK ((state = 'open') = (decided_at IS NULL)),
    CHECK ((state = 'reversed') = (correction_id IS NOT NULL))
);
CREATE INDEX appeals_open ON appeals (id) WHERE state = 'open';
CREATE INDEX appeals_by_time ON appeals (created_at);

-- A correcting statement names the statement it corrects; each is corrected at most once.
ALTER TABLE statements ADD COLUMN corrects BIGINT REFERENCES statements (id);
CREATE UNIQUE INDEX statements_corrected_once ON statements (corrects) WHERE corrects IS NOT NULL;
