-- What became of each report, for the reporter (DSA Art. 16(5)): upheld, rejected, or no action
-- (the reported version was replaced before anyone decided it), when, and the decision's reason.
ALTER TABLE reports DROP CONSTRAINT reports_outcome_check;
ALTER TABLE reports ADD CONSTRAINT reports_outcome_check
    CHECK (outcome IN ('upheld', 'rejected', 'no_action'));
ALTER TABLE reports
    ADD COLUMN decided_at      TIMESTAMPTZ,
    ADD COLUMN decision_reason TEXT;

-- The outbox carries verdicts (to the verdicts topic) and the reporters' notices (to the
-- outcomes topic), each written in the transaction of what it announces.
ALTER TABLE outbox ADD COLUMN topic TEXT NOT NULL DEFAULT 'verdicts'
    CHECK (topic IN ('verdicts', 'outcomes'));

-- The trusted flagger's configured name, as the statements of what its reports caused name it.
ALTER TABLE reports ADD COLUMN flagger_name TEXT;

-- The case a statement's decision was made on (whether it was escalated decides who sees it).
ALTER TABLE statements ADD COLUMN case_id BIGINT REFERENCES cases (id);

-- Statements written before the queue existed wait for the submitter too.
INSERT INTO statement_queue (statement_id)
SELECT s.id FROM statements s
WHERE NOT EXISTS (SELECT 1 FROM statement_submissions x WHERE x.statement_id = s.id)
ON CONFLICT DO NOTHING;
