-- 0004 (PostgreSQL): the writes made several times per task in one statement each (one round
-- trip instead of one per row and step): appending events (after every change, by every
-- host) and settling a task's result rows and files (every run's end).
-- Append-only: never edit a migration after it has been committed; add 0005_… instead.

-- Appends the events (names[i], datas[i]) in order, at `at` (ms), and returns their ids in
-- that order. One appender at a time (the transaction-scoped advisory lock `lock`): ids
-- become visible in the order they were handed out, which is what a host following the log
-- by id relies on. Tells every host the newest id (`channel`), keeps the newest `keep`
-- events, and commits lightly (as SQLite's event log: the change the events describe is
-- already durable; an event lost to a power cut of the database is a missed notification,
-- and a client that missed one reloads).
CREATE FUNCTION append_events(lock bigint, keep bigint, channel text, names text[],
                              datas text[], at bigint) RETURNS bigint[]
LANGUAGE plpgsql AS $$
DECLARE
    ids bigint[];
    newest bigint;
BEGIN
    PERFORM set_config('synchronous_commit', 'off', true);
    PERFORM pg_advisory_xact_lock(lock);
    WITH ins AS (
        INSERT INTO events (name, data, created_at)
        SELECT e.n, e.d, at FROM unnest(names, datas) WITH ORDINALITY AS e(n, d, o)
        ORDER BY e.o
        RETURNING id
    )
    SELECT array_agg(id ORDER BY id) INTO ids FROM ins;
    newest := ids[array_upper(ids, 1)];
    IF newest IS NOT NULL THEN
        IF (ids[1] - 1) / 100 <> newest / 100 THEN
            DELETE FROM events WHERE id <= newest - keep;
        END IF;
        PERFORM pg_notify(channel, newest::text);
    END IF;
    RETURN coalesce(ids, '{}');
END
$$;

-- Makes task `task`'s result rows the images given (idx[i], file_names[i], infotexts[i],
-- formats[i]; none: no rows) and its stored files match them. With `promote` (a staged
-- prefix, `run<fence>/`: a finish that records images under that claim) the task's files
-- become the ones that claim staged; every other file no row points at goes (an earlier
-- attempt's images and thumbnails, other claims' staged files), except the files staged
-- under `keep` (the prefix of the claim the task runs under after this change). A final
-- name never contains '/'; a staged one always does.
CREATE FUNCTION settle_results(task text, idx integer[], file_names text[], infotexts text[],
                               formats text[], promote text, keep text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM result_images WHERE task_id = task;
    INSERT INTO result_images (task_id, idx, file_name, infotext, format)
    SELECT task, u.i, u.f, u.t, u.m FROM unnest(idx, file_names, infotexts, formats) AS u(i, f, t, m);
    IF promote IS NOT NULL THEN
        DELETE FROM result_blobs WHERE task_id = task AND strpos(name, '/') = 0;
        UPDATE result_blobs SET name = substr(name, length(promote) + 1)
            WHERE task_id = task AND starts_with(name, promote);
    END IF;
    DELETE FROM result_blobs b WHERE b.task_id = task AND CASE
        WHEN strpos(b.name, '/') > 0 THEN keep IS NULL OR NOT starts_with(b.name, keep)
        ELSE NOT EXISTS (SELECT 1 FROM result_images i WHERE i.task_id = b.task_id
            AND (i.file_name = b.name OR split_part(i.file_name, '.', 1) || '.thumb.jpg' = b.name))
        END;
END
$$;
