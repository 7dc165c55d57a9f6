-- 0009: a fork's VMA copies in one packed row (store/store_packed.c has the
-- format) instead of a vma_copy row each, as 0007 did for the passes: a
-- process with hundreds of mappings (Python, Java, a browser) gives every
-- fork hundreds of VMAs, and a row each cost the daemon's store writer about
-- 8,000 instructions a VMA, more than the fork's own copy of a small one.
-- Forks stored before keep their vma_copy rows; the store reads both.
CREATE TABLE fork_vma (
	fork_id INTEGER PRIMARY KEY REFERENCES fork(id),
	data BLOB NOT NULL
);
