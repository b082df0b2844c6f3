-- The newest version the worker has seen of each item: a late older version gets no verdict, so
-- the compacted verdicts topic never ends on a verdict about a replaced version.
CREATE TABLE item_versions (
    item_id TEXT   PRIMARY KEY,
    version BIGINT NOT NULL
);
