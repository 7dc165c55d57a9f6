-- 0003: rollups hold the values of complete forks only.
--
-- A fork flagged lost_events, partial or boundary_inferred carries lower
-- bounds, not durations; the analyzer's own statistics leave them out, and so
-- must the rollups behind /api/v1/stats, /histogram and /timeseries. Such a
-- fork still counts (as a null value), its pass hold times do not.
-- Rollup histograms are built in C, so this migration only records the task;
-- the next writer to open the file rebuilds the rollups from the forks in one
-- transaction and clears it (store.c, rollup_rebuild), so a crash in between
-- leaves the task pending rather than the rollups empty.
CREATE TABLE IF NOT EXISTS pending_task (
	name TEXT PRIMARY KEY
) WITHOUT ROWID;
INSERT OR IGNORE INTO pending_task(name) SELECT 'rebuild_rollups'
	WHERE EXISTS (SELECT 1 FROM fork);
