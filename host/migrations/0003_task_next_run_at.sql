-- 0003: a task whose generation request failed while its backend was up waits out a backoff
-- before its next try; the claim skips it until `next_run_at` (ms since the epoch).
ALTER TABLE tasks ADD COLUMN next_run_at INTEGER;
