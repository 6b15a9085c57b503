-- The processing engine: a job's lease belongs to one holder (lease_id), a job waiting
-- out a retry backoff is not made due by a cron tick (backoff = 1), retries counts the
-- consecutive transient failures (the attempt cap), and each PIN recipient served is
-- recorded so that a retry sends only to the others.
ALTER TABLE jobs ADD COLUMN lease_id TEXT;
ALTER TABLE jobs ADD COLUMN backoff INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN retries INTEGER NOT NULL DEFAULT 0;
CREATE INDEX jobs_due ON jobs (run_at);
CREATE TABLE pin_deliveries (
    request_id TEXT NOT NULL, recipient TEXT NOT NULL, delivered_at INTEGER NOT NULL,
    PRIMARY KEY (request_id, recipient));
