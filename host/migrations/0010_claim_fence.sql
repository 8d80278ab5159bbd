-- Every finish fenced to its claim (issue 15): a claim stamps its task with a fence (unique
-- among the claims of the host's life), and a run's end, release or failed try is written
-- only while the task still runs under the fence of the claim it belongs to (the guard of
-- the one status UPDATE). `stop_requested`: the user asked to stop that claim's run (a
-- DELETE while it runs); it then ends interrupted however it ends. A new claim clears it.
ALTER TABLE tasks ADD COLUMN fence INTEGER;
ALTER TABLE tasks ADD COLUMN stop_requested INTEGER NOT NULL DEFAULT 0;
