-- 0002: the task lease is gone. One host owns a data directory (host.lock), so every task
-- found `running` at start was left by a stopped host and is recovered by policy; a lease
-- was written and renewed but never read.
ALTER TABLE tasks DROP COLUMN lease_until;
