-- The event service's own store: which events were processed (the idempotency
-- record), the audit log, the task projection and the analytics aggregates.
-- Every handler writes in the same transaction as the processed_events row.

CREATE TABLE processed_events (
    event_id     uuid PRIMARY KEY,
    processed_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE audit_log (
    id              bigserial PRIMARY KEY,
    event_id        uuid NOT NULL UNIQUE REFERENCES processed_events (event_id),
    event_type      text NOT NULL,
    event_version   text NOT NULL,
    task_id         bigint NOT NULL,
    task_version    bigint,
    topic           text NOT NULL,
    kafka_partition integer NOT NULL,
    kafka_offset    bigint NOT NULL,
    correlation_id  uuid NOT NULL,
    event_timestamp timestamptz NOT NULL,
    occurred_at     timestamptz NOT NULL,
    processed_at    timestamptz NOT NULL DEFAULT now(),
    event           jsonb NOT NULL
);
CREATE INDEX audit_log_by_task ON audit_log (task_id, occurred_at, id);

-- Is a change stamped (new_v, new_at) newer than the stored (old_v, old_at)?
-- By task_version when both have one, else by time (v1 events have no version);
-- a stamp with no time is no change at all. Mirrored by `Stamp::newer_than`.
CREATE FUNCTION stamp_newer(new_v bigint, new_at timestamptz, old_v bigint, old_at timestamptz)
RETURNS boolean LANGUAGE sql IMMUTABLE AS $$
    SELECT new_at IS NOT NULL AND (
        old_at IS NULL OR
        CASE WHEN new_v IS NOT NULL AND old_v IS NOT NULL THEN new_v > old_v ELSE new_at >= old_at END)
$$;

-- Current state per task. Two groups of fields are last-writer-wins on their own
-- stamp: content (title, description) and status (status, completed_at), so an
-- older event never overwrites what a newer one wrote, whatever order they
-- arrive in. A delete leaves a tombstone that nothing clears.
CREATE TABLE task_projection (
    task_id            bigint PRIMARY KEY,
    title              text,
    description        text,
    content_version    bigint,
    content_at         timestamptz,
    status             text,
    completed_at       timestamptz,
    status_version     bigint,
    status_at          timestamptz,
    first_completed_at timestamptz,
    created_at         timestamptz,
    user_id            text,
    deleted            boolean NOT NULL DEFAULT false,
    deleted_at         timestamptz,
    task_version       bigint,
    last_event_at      timestamptz NOT NULL,
    updated_at         timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE event_counts_hourly (
    hour       timestamptz NOT NULL,
    event_type text NOT NULL,
    count      bigint NOT NULL,
    PRIMARY KEY (hour, event_type)
);

-- Created-to-(first-)completed durations.
CREATE TABLE task_completions (
    task_id          bigint PRIMARY KEY,
    created_at       timestamptz NOT NULL,
    completed_at     timestamptz NOT NULL,
    duration_seconds double precision NOT NULL
);
