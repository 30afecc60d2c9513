-- Hourly counts per (hour, event type) were one hot row that every partition
-- of a topic updated, so their transactions queued behind each other's commit.
-- A shard per Kafka partition keeps each row to one writer; readers sum the shards.
ALTER TABLE event_counts_hourly ADD COLUMN shard integer NOT NULL DEFAULT 0;
ALTER TABLE event_counts_hourly DROP CONSTRAINT event_counts_hourly_pkey;
ALTER TABLE event_counts_hourly ADD PRIMARY KEY (hour, event_type, shard);
