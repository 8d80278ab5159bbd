-- 0006: the scheduling policy's order columns, and the backends added at run time.

-- Goes before the policy's choices: moved to the top, or back at the head after a run that
-- did not end (outage, restart, retry).
ALTER TABLE tasks ADD COLUMN pinned INTEGER NOT NULL DEFAULT 0;
-- How many later tasks ran before it, and when that first happened (ms): the starvation
-- bound (settings max_overtakes, max_overtaken_minutes).
ALTER TABLE tasks ADD COLUMN overtakes INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tasks ADD COLUMN overtaken_at INTEGER;
-- The earliest retry (the workers wake for it): an index seek, not a scan of the queue.
CREATE INDEX tasks_retry ON tasks (next_run_at) WHERE status = 'pending' AND next_run_at IS NOT NULL;

-- Backends added through the API (the `--backend` ones come from the command line at each
-- start). The URL keeps its credentials: it is never answered, only its credential-free form.
CREATE TABLE backends (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    url        TEXT    NOT NULL UNIQUE,
    enabled    INTEGER NOT NULL DEFAULT 1,
    draining   INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL
);
