-- User reports ("report this search result"), one per reporter and item.
CREATE TABLE reports (
    id           BIGSERIAL   PRIMARY KEY,
    item_id      TEXT        NOT NULL,
    item_version BIGINT      NOT NULL,
    reporter     TEXT        NOT NULL,
    reason       TEXT        NOT NULL,
    details      TEXT,
    weight       REAL        NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    outcome      TEXT CHECK (outcome IN ('upheld', 'rejected')),
    UNIQUE (reporter, item_id)
);
CREATE INDEX reports_by_reporter ON reports (reporter, created_at);
CREATE INDEX reports_by_item ON reports (item_id, item_version);

-- How often each reporter's reports were upheld or rejected: their weight.
CREATE TABLE reporters (
    reporter TEXT    PRIMARY KEY,
    upheld   INTEGER NOT NULL DEFAULT 0,
    rejected INTEGER NOT NULL DEFAULT 0
);

ALTER TABLE cases
    ADD COLUMN reporters     INTEGER NOT NULL DEFAULT 0,
    ADD COLUMN report_weight REAL    NOT NULL DEFAULT 0,
    ADD COLUMN held          BOOLEAN NOT NULL DEFAULT false;

-- A hold: enough distinct reporters hide an item until a person decides.
ALTER TABLE decisions DROP CONSTRAINT decisions_action_check;
ALTER TABLE decisions ADD CONSTRAINT decisions_action_check CHECK (action IN ('suppress', 'restore', 'hold'));
