-- 0005: a task's type may be `control` (SD.Next's /sdapi/v1/control, the Control tab).
-- SQLite cannot change a CHECK constraint in place: the table is rebuilt the documented way
-- (new table, copy, drop, rename; foreign keys are off while migrations run), keeping `seq`
-- (the full-text index's rowid), then every index and trigger on `tasks` is made again as
-- 0001-0004 left them (store::tests checks they come back word for word).

CREATE TABLE tasks_0005 (
    seq           INTEGER PRIMARY KEY,            -- stable rowid for the FTS index
    id            TEXT    NOT NULL UNIQUE,
    type          TEXT    NOT NULL CHECK (type IN ('txt2img', 'img2img', 'control')),
    status        TEXT    NOT NULL CHECK (status IN ('pending', 'running', 'done', 'failed', 'interrupted')),
    name          TEXT,
    request       TEXT    NOT NULL,               -- the full SD.Next request (JSON object)
    page_snapshot TEXT,                           -- raw page values keyed by element id (JSON)
    checkpoint    TEXT,
    vae           TEXT,
    callback_url  TEXT,
    rank          INTEGER NOT NULL,               -- order key among pending tasks (gap integers)
    run_next      INTEGER,                        -- set while the task sits in the run-next group
    force_run     INTEGER NOT NULL DEFAULT 0,     -- "run now" while paused: runs despite the pause
    bookmarked    INTEGER NOT NULL DEFAULT 0,
    attempts      INTEGER NOT NULL DEFAULT 0,
    backend       TEXT,
    error         TEXT,
    result        TEXT,                           -- SD.Next `info` (JSON) of the last run
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    started_at    INTEGER,
    finished_at   INTEGER,
    next_run_at   INTEGER                         -- 0003: no claim before this (retry backoff)
);

INSERT INTO tasks_0005 (seq, id, type, status, name, request, page_snapshot, checkpoint, vae,
                        callback_url, rank, run_next, force_run, bookmarked, attempts, backend,
                        error, result, created_at, updated_at, started_at, finished_at,
                        next_run_at)
SELECT seq, id, type, status, name, request, page_snapshot, checkpoint, vae,
       callback_url, rank, run_next, force_run, bookmarked, attempts, backend,
       error, result, created_at, updated_at, started_at, finished_at, next_run_at
FROM tasks;

DROP TABLE tasks;
ALTER TABLE tasks_0005 RENAME TO tasks;

CREATE INDEX tasks_by_status_finished ON tasks (status, finished_at);
CREATE INDEX tasks_by_status_rank ON tasks (status, rank);
CREATE INDEX tasks_forced ON tasks (rank) WHERE status = 'pending' AND force_run = 1;
CREATE INDEX tasks_history ON tasks (finished_at)
    WHERE status IN ('done', 'failed', 'interrupted');
CREATE INDEX tasks_history_bookmarked ON tasks (finished_at)
    WHERE bookmarked = 1 AND status IN ('done', 'failed', 'interrupted');

CREATE TRIGGER task_counts_delete AFTER DELETE ON tasks BEGIN
    UPDATE task_counts SET n = n - 1 WHERE status = old.status AND bookmarked = old.bookmarked;
END;
CREATE TRIGGER task_counts_insert AFTER INSERT ON tasks BEGIN
    UPDATE task_counts SET n = n + 1 WHERE status = new.status AND bookmarked = new.bookmarked;
END;
CREATE TRIGGER task_counts_update AFTER UPDATE OF status, bookmarked ON tasks
WHEN old.status IS NOT new.status OR old.bookmarked IS NOT new.bookmarked BEGIN
    UPDATE task_counts SET n = n - 1 WHERE status = old.status AND bookmarked = old.bookmarked;
    UPDATE task_counts SET n = n + 1 WHERE status = new.status AND bookmarked = new.bookmarked;
END;
CREATE TRIGGER tasks_fts_delete AFTER DELETE ON tasks BEGIN
    DELETE FROM tasks_fts WHERE rowid = old.seq;
END;
CREATE TRIGGER tasks_fts_insert AFTER INSERT ON tasks BEGIN
    INSERT INTO tasks_fts (rowid, prompt, negative_prompt, name, checkpoint, tags)
    VALUES (new.seq, json_extract(new.request, '$.prompt'), json_extract(new.request, '$.negative_prompt'),
            new.name, new.checkpoint,
            CASE WHEN new.status IN ('pending', 'running') THEN 'queue'
                 ELSE 'history ' || new.status || CASE WHEN new.bookmarked THEN ' bookmarked' ELSE '' END END);
END;
CREATE TRIGGER tasks_fts_update AFTER UPDATE OF request, name, checkpoint, status, bookmarked ON tasks
WHEN old.request IS NOT new.request OR old.name IS NOT new.name OR old.checkpoint IS NOT new.checkpoint
  OR (CASE WHEN old.status IN ('pending', 'running') THEN 'queue'
           ELSE 'history ' || old.status || CASE WHEN old.bookmarked THEN ' bookmarked' ELSE '' END END)
     IS NOT
     (CASE WHEN new.status IN ('pending', 'running') THEN 'queue'
           ELSE 'history ' || new.status || CASE WHEN new.bookmarked THEN ' bookmarked' ELSE '' END END)
BEGIN
    DELETE FROM tasks_fts WHERE rowid = old.seq;
    INSERT INTO tasks_fts (rowid, prompt, negative_prompt, name, checkpoint, tags)
    VALUES (new.seq, json_extract(new.request, '$.prompt'), json_extract(new.request, '$.negative_prompt'),
            new.name, new.checkpoint,
            CASE WHEN new.status IN ('pending', 'running') THEN 'queue'
                 ELSE 'history ' || new.status || CASE WHEN new.bookmarked THEN ' bookmarked' ELSE '' END END);
END;
