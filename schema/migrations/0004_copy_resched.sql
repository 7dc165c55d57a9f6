-- 0004: how often, and how long, the forking task was preempted while it
-- copied page tables (from sched_switch, filtered in the kernel to
-- preemptions; the default capture records it at almost no cost).
-- NULL where the capture or the recording did not carry sched_switch: forks
-- stored before this migration, syscall-mode forks, text replays.
ALTER TABLE fork ADD COLUMN copy_resched INTEGER;
ALTER TABLE fork ADD COLUMN copy_offcpu_ns INTEGER;
