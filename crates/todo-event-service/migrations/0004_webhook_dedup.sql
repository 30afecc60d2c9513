-- The notifier's deduplication record when WEBHOOK_DEDUP_STORE=postgres (the
-- default is Redis): a claim ('pending') while a notification is in flight, then
-- 'done'; an entry past expires_at counts as absent.
CREATE TABLE webhook_dedup (
    key        text PRIMARY KEY,
    state      text NOT NULL CHECK (state IN ('pending', 'done')),
    expires_at timestamptz NOT NULL
);
CREATE INDEX webhook_dedup_expiry ON webhook_dedup (expires_at);
