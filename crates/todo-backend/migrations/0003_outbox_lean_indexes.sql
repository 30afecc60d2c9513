-- Every index on the outbox is written twice per event: by the insert and by
-- the relay's update that marks the row published. Two were not worth it:
-- - The unique index on event_id: a random UUID lands on a random page of a
--   large index, whose first change after each checkpoint writes a full page
--   image to the WAL. No query looks an outbox row up by event_id; event ids
--   are random v4 UUIDs generated per event; consumers dedupe by event_id on
--   their own side.
-- - The b-tree on created_at: created_at rises with id, so a BRIN index (a
--   few pages) serves the time-range replay and the prune as well.
ALTER TABLE outbox DROP CONSTRAINT outbox_event_id_key;
DROP INDEX outbox_created_at_idx;
CREATE INDEX outbox_created_at_brin ON outbox USING brin (created_at);
