-- 0005: a fork's total time, stored once.
--
-- total_ns is the outermost phase the trace carried (kernel_clone, else
-- copy_process, dup_mmap, copy_page_range; NULL if none): the definition of
-- analyzer/fork.h pt_fork_total_ns, which the writer stores with every new
-- fork. Queries (min_us, the "fork" metric) and the dashboard read this column
-- instead of working it out again. Backfilled here for the forks stored
-- before.
ALTER TABLE fork ADD COLUMN total_ns INTEGER;
UPDATE fork SET total_ns = coalesce(kernel_clone_ns, copy_process_ns, dup_mmap_ns,
				    copy_page_range_ns);
