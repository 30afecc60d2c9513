-- The W3C trace id (32 hex digits) of each audited event: the trace its
-- request started, read from the record's `traceparent` header, so that an
-- event can be found in the trace backend (and the console can show it) even
-- when span export is off. NULL for records without one (older producers).
ALTER TABLE audit_log ADD COLUMN trace_id text;
