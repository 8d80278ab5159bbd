-- 0007: the panel as a workbench.
-- The tasks of one "Queue with all checkpoints" (or <folder>/*) enqueue share a group id (the
-- comparison sheet lists them); the history sorted by checkpoint has its index; each
-- backend's measured speed, which the queue's ETA is computed from, survives restarts.
ALTER TABLE tasks ADD COLUMN group_id TEXT;
CREATE INDEX tasks_by_group ON tasks (group_id, seq) WHERE group_id IS NOT NULL;
CREATE INDEX tasks_history_by_checkpoint ON tasks (checkpoint, finished_at DESC)
    WHERE status IN ('done', 'failed', 'interrupted');

CREATE TABLE backend_speed (
    backend         TEXT    PRIMARY KEY,      -- credential-free URL
    ms_per_mpx_step REAL,                     -- generation time per megapixel-step (moving average)
    samples         INTEGER NOT NULL DEFAULT 0,
    load_ms         REAL,                     -- checkpoint load time (moving average)
    loads           INTEGER NOT NULL DEFAULT 0,
    updated_at      INTEGER NOT NULL
);
