-- 0007: a fork's copy_pte_range passes in one packed row (store/store_passes.c
-- has the format) instead of a pte_pass row each: the default capture gives
-- every live fork its passes (43 for a 64 MiB fork, thousands for a large
-- one), and a row per pass was most of the daemon's work per fork. Forks
-- stored before keep their pte_pass rows; the store reads both.
CREATE TABLE fork_pass (
	fork_id INTEGER PRIMARY KEY REFERENCES fork(id),
	data BLOB NOT NULL
);
