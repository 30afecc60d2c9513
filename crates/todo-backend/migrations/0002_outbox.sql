-- The transactional outbox: one row per event, written in the same
-- transaction as the task change it describes, published by the relay in id
-- order, kept after publishing (for replay) until pruned.
CREATE TABLE outbox (
    id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id       UUID        NOT NULL UNIQUE,
    event_type     TEXT        NOT NULL,
    topic          TEXT        NOT NULL,
    key            TEXT        NOT NULL,
    task_id        BIGINT      NOT NULL,
    payload        BYTEA       NOT NULL,
    -- Kafka headers as a JSON array of [name, value] pairs.
    headers        JSONB       NOT NULL,
    correlation_id UUID        NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    published_at   TIMESTAMPTZ,
    attempts       INT         NOT NULL DEFAULT 0
);

-- The relay's queue: small while the relay keeps up.
CREATE INDEX outbox_unpublished_idx ON outbox (id) WHERE published_at IS NULL;
CREATE INDEX outbox_task_idx ON outbox (task_id, id);
CREATE INDEX outbox_created_at_idx ON outbox (created_at);
