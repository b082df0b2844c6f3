-- Review cases: one per (item, version) the model or a report sent to people.
CREATE TABLE cases (
    id           BIGSERIAL PRIMARY KEY,
    item_id      TEXT        NOT NULL,
    item_version BIGINT      NOT NULL,
    source       TEXT        NOT NULL CHECK (source IN ('model', 'report')),
    category     TEXT        NOT NULL,
    score        REAL        NOT NULL,
    scores       JSONB       NOT NULL,
    reason       TEXT        NOT NULL,
    model_version TEXT,
    state        TEXT        NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'claimed', 'escalated', 'resolved')),
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    resolved_at  TIMESTAMPTZ,
    UNIQUE (item_id, item_version)
);
CREATE INDEX cases_open_by_age ON cases (created_at) WHERE state <> 'resolved';

-- Moderator decisions: append-only.
CREATE TABLE decisions (
    id           BIGSERIAL PRIMARY KEY,
    case_id      BIGINT REFERENCES cases (id),
    item_id      TEXT        NOT NULL,
    item_version BIGINT      NOT NULL,
    action       TEXT        NOT NULL CHECK (action IN ('suppress', 'restore')),
    moderator    TEXT        NOT NULL,
    reason       TEXT        NOT NULL,
    note         TEXT,
    decided_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX decisions_by_item ON decisions (item_id, item_version);

-- Transactional outbox: verdicts written with their decision, published to Kafka by the relay.
CREATE TABLE outbox (
    id           BIGSERIAL PRIMARY KEY,
    key          TEXT        NOT NULL,
    payload      JSONB       NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    published_at TIMESTAMPTZ
);
CREATE INDEX outbox_unpublished ON outbox (id) WHERE published_at IS NULL;
