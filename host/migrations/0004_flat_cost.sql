-- 0004: flat cost at 100k tasks. Counts kept by triggers, an index for every listing order,
-- and a full-text index that knows which listing a task belongs to (so a search is limited
-- inside the index before it joins the tasks table).

-- Counts per (status, bookmarked), kept by triggers: a count never scans the table.
CREATE TABLE task_counts (
    status     TEXT    NOT NULL,
    bookmarked INTEGER NOT NULL,
    n          INTEGER NOT NULL,
    PRIMARY KEY (status, bookmarked)
) WITHOUT ROWID;

INSERT INTO task_counts (status, bookmarked, n)
SELECT s.status, b.bookmarked,
       (SELECT COUNT(*) FROM tasks t WHERE t.status = s.status AND t.bookmarked = b.bookmarked)
FROM (SELECT 'pending' AS status UNION ALL SELECT 'running' UNION ALL SELECT 'done'
      UNION ALL SELECT 'failed' UNION ALL SELECT 'interrupted') AS s,
     (SELECT 0 AS bookmarked UNION ALL SELECT 1) AS b;

CREATE TRIGGER task_counts_insert AFTER INSERT ON tasks BEGIN
    UPDATE task_counts SET n = n + 1 WHERE status = new.status AND bookmarked = new.bookmarked;
END;
CREATE TRIGGER task_counts_delete AFTER DELETE ON tasks BEGIN
    UPDATE task_counts SET n = n - 1 WHERE status = old.status AND bookmarked = old.bookmarked;
END;
CREATE TRIGGER task_counts_update AFTER UPDATE OF status, bookmarked ON tasks
WHEN old.status IS NOT new.status OR old.bookmarked IS NOT new.bookmarked BEGIN
    UPDATE task_counts SET n = n - 1 WHERE status = old.status AND bookmarked = old.bookmarked;
    UPDATE task_counts SET n = n + 1 WHERE status = new.status AND bookmarked = new.bookmarked;
END;

-- The history in (finished_at, seq) order: all finished tasks, and bookmarked ones. Queries
-- repeat these WHERE terms word for word (store::status::FINISHED) so SQLite uses them.
CREATE INDEX tasks_history ON tasks (finished_at)
    WHERE status IN ('done', 'failed', 'interrupted');
CREATE INDEX tasks_history_bookmarked ON tasks (finished_at)
    WHERE bookmarked = 1 AND status IN ('done', 'failed', 'interrupted');
-- "Run now" while paused: the only tasks a paused queue may start.
CREATE INDEX tasks_forced ON tasks (rank) WHERE status = 'pending' AND force_run = 1;

-- The full-text index, rebuilt with a `tags` column: `queue` for pending and running tasks,
-- `history <status> [bookmarked]` for finished ones. User words only match the text columns.
DROP TRIGGER tasks_fts_insert;
DROP TRIGGER tasks_fts_delete;
DROP TRIGGER tasks_fts_update;
DROP TABLE tasks_fts;

CREATE VIRTUAL TABLE tasks_fts USING fts5 (prompt, negative_prompt, name, checkpoint, tags);

INSERT INTO tasks_fts (rowid, prompt, negative_prompt, name, checkpoint, tags)
SELECT seq, json_extract(request, '$.prompt'), json_extract(request, '$.negative_prompt'), name, checkpoint,
       CASE WHEN status IN ('pending', 'running') THEN 'queue'
            ELSE 'history ' || status || CASE WHEN bookmarked THEN ' bookmarked' ELSE '' END END
FROM tasks;

CREATE TRIGGER tasks_fts_insert AFTER INSERT ON tasks BEGIN
    INSERT INTO tasks_fts (rowid, prompt, negative_prompt, name, checkpoint, tags)
    VALUES (new.seq, json_extract(new.request, '$.prompt'), json_extract(new.request, '$.negative_prompt'),
            new.name, new.checkpoint,
            CASE WHEN new.status IN ('pending', 'running') THEN 'queue'
                 ELSE 'history ' || new.status || CASE WHEN new.bookmarked THEN ' bookmarked' ELSE '' END END);
END;
CREATE TRIGGER tasks_fts_delete AFTER DELETE ON tasks BEGIN
    DELETE FROM tasks_fts WHERE rowid = old.seq;
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
