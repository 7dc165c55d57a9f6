-- 0008: what each clone made, and where it came from.
--
-- kind: 'fork' (a new process with a copy of the address space), 'thread'
-- (CLONE_THREAD), 'spawn' (CLONE_VM or CLONE_VFORK: vfork, posix_spawn;
-- kernel_clone waits for the child's exec), NULL when the trace did not say
-- (analyzer/fork.h, enum pt_fork_kind). clone_flags: the clone's flags where
-- the trace carried them (task:task_newtask), else NULL. cgroup: the
-- parent's cgroup path when the live daemon read it, else NULL.
--
-- Rollups (and so /api/v1/stats, /histogram, /top, /timeseries by default)
-- hold address-space copies only: a thread's or a spawn's time is not a
-- fork's. Forks stored before this migration are 'fork' where they carry the
-- evidence of a copy (a dup_mmap or copy_page_range time, VMAs copied), NULL
-- otherwise (syscall-mode forks, bare fork events: threads and spawns may be
-- among them); the rollups are rebuilt from the forks by the next writer.
ALTER TABLE fork ADD COLUMN kind TEXT CHECK (kind IN ('fork', 'thread', 'spawn'));
ALTER TABLE fork ADD COLUMN clone_flags INTEGER;
ALTER TABLE fork ADD COLUMN cgroup TEXT;
UPDATE fork SET kind = 'fork'
	WHERE dup_mmap_ns IS NOT NULL OR copy_page_range_ns IS NOT NULL OR vmas > 0;
INSERT OR IGNORE INTO pending_task(name) SELECT 'rebuild_rollups'
	WHERE EXISTS (SELECT 1 FROM fork);
