-- Per-key parking: an event whose effect failed for a reason that is not an
-- outage, and the later events of the same key on the same partition, wait
-- here while the partition moves on. A row is written before the partition's
-- offset is stored past it (in the transaction of the batch that parks it), so
-- a crash or a rebalance loses nothing; the primary key makes a redelivered
-- record park once. A key's rows are retried and released in offset order.
CREATE TABLE parked_events (
    topic            text        NOT NULL,
    kafka_partition  int         NOT NULL,
    kafka_offset     bigint      NOT NULL,
    record_key       bytea       NOT NULL,
    event_id         uuid        NOT NULL,
    record_value     bytea,
    header_names     text[]      NOT NULL,
    header_values    bytea[]     NOT NULL,
    record_timestamp_ms bigint,
    -- Attempts made so far; 0 for an event parked behind an earlier one.
    attempts         int         NOT NULL DEFAULT 0,
    error_class      text,
    error_message    text,
    first_failed_at  timestamptz,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    parked_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (topic, kafka_partition, kafka_offset)
);
CREATE INDEX parked_events_by_key ON parked_events (topic, kafka_partition, record_key, kafka_offset);
