-- 0003 (PostgreSQL): each backend's figures as the host that drives it last wrote them (its
-- state, loaded checkpoint, last error, counters: JSON the host reads back), so that every
-- host's `GET /backends` shows them. Written every lease round and after each run by the
-- driving host only; `figures_at` in database time.
-- Append-only: never edit a migration after it has been committed; add 0004_… instead.
ALTER TABLE backends
    ADD COLUMN figures    jsonb,
    ADD COLUMN figures_at timestamptz;
