-- Audited dead-letter actions (`todoctl dlq replay` and `dlq discard`): who did
-- what to which dead letters, why, and how it ended. dlq_actions keeps every
-- action; dlq_dispositions holds, per dead letter, the latest action taken on
-- it, which is how `dlq replay` knows what is still pending (it replaced a
-- consumer group whose committed offsets also skipped the records a filtered
-- replay had left out). Written only by store::dlq_actions.
CREATE TABLE dlq_actions (
    id           bigserial PRIMARY KEY,
    action       text NOT NULL CHECK (action IN ('replay', 'discard')),
    actor        text NOT NULL CHECK (actor ~ '\S'),
    reason       text NOT NULL CHECK (reason ~ '\S'),
    -- The selection as the operator gave it: error class, topic, dead letters,
    -- max, all.
    selection    jsonb NOT NULL,
    -- How many dead letters it touched.
    dead_letters integer NOT NULL CHECK (dead_letters >= 0),
    outcome      text NOT NULL CHECK (outcome = 'done' OR outcome LIKE 'failed: %'),
    at           timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE dlq_dispositions (
    dlq_topic     text NOT NULL,
    dlq_partition integer NOT NULL,
    dlq_offset    bigint NOT NULL,
    action_id     bigint NOT NULL REFERENCES dlq_actions (id),
    disposition   text NOT NULL CHECK (disposition IN ('replayed', 'discarded')),
    -- The record's event id header, when it has a valid one.
    event_id      uuid,
    at            timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (dlq_topic, dlq_partition, dlq_offset)
);
CREATE INDEX dlq_dispositions_action_id ON dlq_dispositions (action_id);
