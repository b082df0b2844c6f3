-- What a statement of reasons states about an item besides the decision: the newest version's
-- channel, kind, publication date, media and language, recorded by the worker as it sees them.
ALTER TABLE item_versions
    ADD COLUMN channel_id   TEXT,
    ADD COLUMN kind         TEXT CHECK (kind IN ('channel_post', 'listing', 'channel_profile')),
    ADD COLUMN published_at TIMESTAMPTZ,
    ADD COLUMN has_images   BOOLEAN,
    ADD COLUMN language     TEXT;

-- Statements of reasons (DSA Art. 17): one per restriction, drafted when it is applied and never
-- edited afterwards (a correction is a new statement): updates, deletes and truncation are
-- refused by trigger. `tdb` is the statement in the EU Transparency Database's schema, `text`
-- what the channel is told.
CREATE TABLE statements (
    id            BIGSERIAL   PRIMARY KEY,
    puid          TEXT        NOT NULL UNIQUE,
    restriction   TEXT        NOT NULL CHECK (restriction IN
                      ('model_suppression', 'moderator_suppression', 'report_hold', 'channel_suppression')),
    subject       TEXT        NOT NULL,
    item_version  BIGINT,
    channel_id    TEXT,
    decision_id   BIGINT REFERENCES decisions (id),
    category      TEXT        NOT NULL,
    applied_at    TIMESTAMPTZ NOT NULL,
    tdb           JSONB       NOT NULL,
    text          TEXT        NOT NULL,
    text_language TEXT        NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);
-- The model restricts an item version once, however often the worker re-processes it.
CREATE UNIQUE INDEX statements_model_once ON statements (subject, item_version)
    WHERE restriction = 'model_suppression';
CREATE INDEX statements_by_subject ON statements (subject, id);
CREATE INDEX statements_by_time ON statements (applied_at);
CREATE TRIGGER statements_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON statements
    FOR EACH STATEMENT EXECUTE FUNCTION cordon_append_only();
