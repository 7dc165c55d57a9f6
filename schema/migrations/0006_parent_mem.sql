-- 0006: the parent's memory when its fork was seen (live capture reads it
-- from /proc/PID of the parent, best effort: daemon/procmem.h), one column
-- per field of analyzer/fork.h pt_parent_mem, named "mem_" + pt_mem_names:
-- RSS anon/file/shmem and page tables (VmPTE) in bytes, the VMA count
-- (lines of /proc/PID/maps), THP in use (AnonHugePages, bytes), and whether
-- the child had exec'd when the fork was seen (0/1).
-- NULL where nothing was read: replays, forks stored before this migration,
-- a parent gone (or its pid reused) when the fork was seen, a fork past the
-- daemon's budget of readings per second.
ALTER TABLE fork ADD COLUMN mem_rss_anon_bytes INTEGER;
ALTER TABLE fork ADD COLUMN mem_rss_file_bytes INTEGER;
ALTER TABLE fork ADD COLUMN mem_rss_shmem_bytes INTEGER;
ALTER TABLE fork ADD COLUMN mem_pte_bytes INTEGER;
ALTER TABLE fork ADD COLUMN mem_map_count INTEGER;
ALTER TABLE fork ADD COLUMN mem_anon_huge_bytes INTEGER;
ALTER TABLE fork ADD COLUMN mem_child_exec INTEGER;
