-- A correction restates the restriction it lifts, a model suppression's included: the index that
-- keeps the model's statements once per item version leaves corrections out.
DROP INDEX statements_model_once;
CREATE UNIQUE INDEX statements_model_once ON statements (subject, item_version)
    WHERE restriction = 'model_suppression' AND corrects IS NULL;

-- Why a suspension was lifted: it ended, a person restored the channel, an appeal reversed it,
-- the strikes it rested on were withdrawn, or a suspension for good replaced it. Only the ones
-- that ended count as an earlier suspension towards the next.
ALTER TABLE suspensions ADD COLUMN lifted_reason TEXT
    CHECK (lifted_reason IN ('ended', 'restored', 'appeal', 'withdrawn', 'replaced'));
