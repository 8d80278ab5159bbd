-- 0005 (PostgreSQL): the full-text search vector moves out of `tasks` into `task_search`,
-- written only when a task's text changes (inserted, edited, renamed). As a stored generated
-- column of `tasks` it was computed again (a regular expression and a tokenizer over the
-- whole prompt) and inserted again into its GIN index (an entry per word) at every status
-- change — twice per run, for a text that never changes then.
-- Append-only: never edit a migration after it has been committed; add 0006_… instead.

-- The words of a task's text as SQLite's unicode61 tokenizer splits them (letters and
-- digits; everything else separates), case-folded: the prompt, the negative prompt, the name
-- and the checkpoint (the expression of 0001's `search` column).
CREATE FUNCTION task_words(request jsonb, name text, checkpoint text) RETURNS tsvector
LANGUAGE sql IMMUTABLE AS $$
    SELECT to_tsvector('simple', regexp_replace(lower(
        coalesce(request ->> 'prompt', '') || ' ' || coalesce(request ->> 'negative_prompt', '') || ' ' ||
        coalesce(name, '') || ' ' || coalesce(checkpoint, '')), '[^[:alnum:]]+', ' ', 'g'))
$$;

CREATE TABLE task_search (
    task_id text     COLLATE "C" PRIMARY KEY REFERENCES tasks (id) ON DELETE CASCADE,
    search  tsvector NOT NULL
);
INSERT INTO task_search (task_id, search) SELECT id, search FROM tasks;
CREATE INDEX task_search_words ON task_search USING gin (search);

CREATE FUNCTION tasks_search() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO task_search (task_id, search)
    VALUES (NEW.id, task_words(NEW.request, NEW.name, NEW.checkpoint))
    ON CONFLICT (task_id) DO UPDATE SET search = excluded.search;
    RETURN NULL;
END
$$;
CREATE TRIGGER tasks_search_insert AFTER INSERT ON tasks
    FOR EACH ROW EXECUTE FUNCTION tasks_search();
CREATE TRIGGER tasks_search_update AFTER UPDATE OF request, name, checkpoint ON tasks
    FOR EACH ROW WHEN (NEW.request IS DISTINCT FROM OLD.request OR NEW.name IS DISTINCT FROM OLD.name
        OR NEW.checkpoint IS DISTINCT FROM OLD.checkpoint)
    EXECUTE FUNCTION tasks_search();

DROP INDEX tasks_search;
ALTER TABLE tasks DROP COLUMN search;
