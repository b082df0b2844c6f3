-- The work queue: priority, claims with leases, escalation, optimistic versions.
ALTER TABLE cases
    ADD COLUMN version     INTEGER     NOT NULL DEFAULT 0,
    ADD COLUMN priority    REAL        NOT NULL DEFAULT 0,
    ADD COLUMN reach       BIGINT,
    ADD COLUMN escalated   BOOLEAN     NOT NULL DEFAULT false,
    ADD COLUMN claimed_by  TEXT,
    ADD COLUMN lease_until TIMESTAMPTZ;
UPDATE cases SET priority = score;
CREATE INDEX cases_queue ON cases (escalated, priority DESC, created_at) WHERE state <> 'resolved';

-- Every action on the queue: who, when, what, the case before and after. Append-only for every
-- role: updates, deletes and truncation are refused by trigger.
CREATE TABLE audit_log (
    id       BIGSERIAL   PRIMARY KEY,
    at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    actor    TEXT        NOT NULL,
    action   TEXT        NOT NULL,
    case_id  BIGINT,
    item_id  TEXT,
    before   JSONB,
    after    JSONB,
    note     TEXT
);
CREATE INDEX audit_log_by_case ON audit_log (case_id, id);

CREATE FUNCTION cordon_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME;
END
$$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION cordon_append_only();
CREATE TRIGGER decisions_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON decisions
    FOR EACH STATEMENT EXECUTE FUNCTION cordon_append_only();
