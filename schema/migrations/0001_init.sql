-- 0001: sources, forks, per-fork detail, comm groups and histogram rollups.
--
-- Times are INTEGER nanoseconds. NULL means "the trace did not carry it"
-- (PT_NULL / PT_NO_TIME / pid -1 / comm "" in struct pt_fork).
-- Every index below serves a query in store_query.c or store.c; see
-- docs/store.md for the query each one is for.

-- One live session or one replayed file.
CREATE TABLE source (
	id INTEGER PRIMARY KEY,
	kind TEXT NOT NULL CHECK (kind IN ('replay', 'live')),
	host TEXT,
	path TEXT,
	format TEXT,
	kernel TEXT,
	content_sha256 TEXT,	-- hex; replays only. Same file again = same source.
	size_bytes INTEGER,
	clock_offset_ns INTEGER, -- wall = ts + offset, when the source knew it
	events INTEGER,
	lines INTEGER,
	unparsed_lines INTEGER,
	lost_events INTEGER,
	lost_unknown INTEGER,
	first_ts_ns INTEGER,
	last_ts_ns INTEGER,
	cpus INTEGER,
	forks INTEGER,		-- set when complete
	started_wall_ns INTEGER NOT NULL,
	completed_wall_ns INTEGER -- NULL until the last fork is committed
);
-- "Was this file stored already?" (store_source_begin).
CREATE UNIQUE INDEX source_by_hash ON source(content_sha256)
	WHERE content_sha256 IS NOT NULL;

-- The fork object of product.md.
CREATE TABLE fork (
	id INTEGER PRIMARY KEY,	-- increasing in insertion order: the paging cursor
	source_id INTEGER NOT NULL REFERENCES source(id),
	wall_ns INTEGER NOT NULL, -- wall clock: ts + clock offset, else ingest time
	ts_ns INTEGER,		-- trace clock, as the report prints it
	parent_pid INTEGER,
	parent_comm TEXT,
	child_pid INTEGER,
	child_comm TEXT,
	kernel_clone_ns INTEGER,
	copy_process_ns INTEGER,
	dup_mmap_ns INTEGER,
	copy_page_range_ns INTEGER,
	vmas INTEGER,
	pte_passes INTEGER,
	lock_breaks INTEGER,
	ptes INTEGER,
	max_lock_hold_ns INTEGER,
	complete INTEGER NOT NULL,
	flags INTEGER NOT NULL
);
-- /forks?comm=X (newest first, id cursor); report --comm.
CREATE INDEX fork_by_comm ON fork(parent_comm, id);
-- /forks?pid=N (newest first, id cursor).
CREATE INDEX fork_by_pid ON fork(parent_pid, id);
-- since/until on wall time; retention by age.
CREATE INDEX fork_by_wall ON fork(wall_ns);
-- purge of an interrupted replay; report per source.
CREATE INDEX fork_by_source ON fork(source_id, id);

-- One copy_page_range call (one VMA dup_mmap copied), in call order.
CREATE TABLE vma_copy (
	fork_id INTEGER NOT NULL REFERENCES fork(id),
	idx INTEGER NOT NULL,
	start_ns INTEGER,
	dur_ns INTEGER,
	passes INTEGER,
	ptes INTEGER,
	huge INTEGER NOT NULL,
	PRIMARY KEY (fork_id, idx)
) WITHOUT ROWID;

-- One copy_pte_range pass (locks taken .. dropped), in order.
CREATE TABLE pte_pass (
	fork_id INTEGER NOT NULL REFERENCES fork(id),
	idx INTEGER NOT NULL,
	vma INTEGER NOT NULL,
	ptes INTEGER,
	start_ns INTEGER,
	hold_ns INTEGER,
	new_pmd INTEGER NOT NULL,
	resumed INTEGER NOT NULL,
	PRIMARY KEY (fork_id, idx)
) WITHOUT ROWID;

-- Comm groups of the rollups: one per parent comm, up to a cap; past the cap
-- forks roll up into group 0 ("other"), which has no row here.
CREATE TABLE comm_group (
	id INTEGER PRIMARY KEY,
	name TEXT NOT NULL UNIQUE
);

-- Log-linear histograms (store_hist.c: 64 bins per power of two, <1% error)
-- per metric, per minute (res 0), hour (res 1) and day (res 2) of wall time,
-- per comm group, one row each: `h` packs the non-empty bins as varint pairs
-- (bin delta, count), bins ascending, the first delta being bin + 1 (bin -1
-- counts nulls); `n` is the total. Kept exactly in step with the fork table:
-- inserts add, purges and retention subtract. Statistics over months read
-- these (days in the middle of a range, hours and minutes at its edges),
-- never the forks.
CREATE TABLE rollup (
	metric INTEGER NOT NULL,
	res INTEGER NOT NULL,
	t INTEGER NOT NULL,	-- wall_ns / 60e9, / 3600e9 or / 86400e9
	grp INTEGER NOT NULL,
	n INTEGER NOT NULL,
	h BLOB NOT NULL,
	PRIMARY KEY (metric, res, t, grp)
) WITHOUT ROWID;
