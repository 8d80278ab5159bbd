-- 0001: the queue, its history, results, settings, events, idempotency keys, callback outbox.
-- Append-only: never edit a migration after it has been committed; add 0002_… instead.

CREATE TABLE tasks (
    seq           INTEGER PRIMARY KEY,            -- stable rowid for the FTS index
    id            TEXT    NOT NULL UNIQUE,
    type          TEXT    NOT NULL CHECK (type IN ('txt2img', 'img2img')),
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
    lease_until   INTEGER,
    error         TEXT,
    result        TEXT,                           -- SD.Next `info` (JSON) of the last run
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    started_at    INTEGER,
    finished_at   INTEGER
);
CREATE INDEX tasks_by_status_rank ON tasks (status, rank);
CREATE INDEX tasks_by_status_finished ON tasks (status, finished_at);

CREATE VIRTUAL TABLE tasks_fts USING fts5 (prompt, negative_prompt, name, checkpoint);

CREATE TRIGGER tasks_fts_insert AFTER INSERT ON tasks BEGIN
    INSERT INTO tasks_fts (rowid, prompt, negative_prompt, name, checkpoint)
    VALUES (new.seq, json_extract(new.request, '$.prompt'), json_extract(new.request, '$.negative_prompt'),
            new.name, new.checkpoint);
END;
CREATE TRIGGER tasks_fts_delete AFTER DELETE ON tasks BEGIN
    DELETE FROM tasks_fts WHERE rowid = old.seq;
END;
CREATE TRIGGER tasks_fts_update AFTER UPDATE OF request, name, checkpoint ON tasks BEGIN
    DELETE FROM tasks_fts WHERE rowid = old.seq;
    INSERT INTO tasks_fts (rowid, prompt, negative_prompt, name, checkpoint)
    VALUES (new.seq, json_extract(new.request, '$.prompt'), json_extract(new.request, '$.negative_prompt'),
            new.name, new.checkpoint);
END;

CREATE TABLE result_images (
    task_id   TEXT    NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    idx       INTEGER NOT NULL,
    file_name TEXT    NOT NULL,
    infotext  TEXT    NOT NULL,
    format    TEXT    NOT NULL,
    PRIMARY KEY (task_id, idx)
);

CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL                           -- JSON
);

CREATE TABLE events (
    id         INTEGER PRIMARY KEY AUTOINCREMENT, -- never reused: SSE ids survive restarts
    name       TEXT    NOT NULL,
    data       TEXT    NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE TABLE idempotency_keys (
    key        TEXT PRIMARY KEY,
    response   TEXT    NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE TABLE callback_outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    delivery_id     TEXT    NOT NULL UNIQUE,
    task_id         TEXT    NOT NULL,
    url             TEXT    NOT NULL,
    status          TEXT    NOT NULL,
    files           TEXT    NOT NULL,             -- JSON [[relative path, content type], …]
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    created_at      INTEGER NOT NULL,
    last_error      TEXT
);
CREATE INDEX callback_outbox_due ON callback_outbox (next_attempt_at);
