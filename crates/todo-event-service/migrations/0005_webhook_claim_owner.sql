-- Who holds a pending claim: a sender whose claim was written but whose answer
-- was lost (the store went down mid-request) recognises its own claim when it
-- retries, instead of waiting for the claim to expire.
ALTER TABLE webhook_dedup ADD COLUMN owner text;
