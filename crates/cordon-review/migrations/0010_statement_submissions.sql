-- Statements waiting for the EU Transparency Database: every new statement joins the queue (a
-- trigger, so no way of writing one can forget it); the submitter takes it out with what the
-- database answered.
CREATE TABLE statement_queue (
    statement_id BIGINT PRIMARY KEY REFERENCES statements (id)
);
CREATE FUNCTION cordon_queue_statement() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO statement_queue (statement_id) VALUES (NEW.id);
    RETURN NULL;
END
$$;
CREATE TRIGGER statements_queued AFTER INSERT ON statements
    FOR EACH ROW EXECUTE FUNCTION cordon_queue_statement();

-- What the database answered: `accepted` (with the database's uuid), `known` (its PUID was
-- already there: an earlier submission whose answer was lost), or `rejected` (with the
-- database's reason; a correction is a new statement).
CREATE TABLE statement_submissions (
    statement_id BIGINT      PRIMARY KEY REFERENCES statements (id),
    outcome      TEXT        NOT NULL CHECK (outcome IN ('accepted', 'known', 'rejected')),
    tdb_uuid     TEXT,
    reason       JSONB,
    at           TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX statement_submissions_rejected ON statement_submissions (statement_id)
    WHERE outcome = 'rejected';
