/* SPDX-License-Identifier: MIT */
/*
 * The parent's memory at fork time, read from /proc: RSS (anon, file,
 * shmem) and VmPTE from /proc/PID/status, the VMA count from the lines of
 * /proc/PID/maps, THP in use (AnonHugePages) from /proc/PID/smaps_rollup, and
 * whether the child has exec'd (its comm differs from the parent's).
 *
 * Fed each live fork by the live queue's reader thread (daemon/livequeue.c)
 * when the fork is seen, a tick (100 ms) or so after it happened, never by
 * the capture thread; fills pt_fork.mem, which the store, the API and the
 * cost model (analyzer/cost.h) read. Replays never come here.
 *
 * Sized for a host forking thousands of times a second next to a process of
 * 100 GB: the reads are bounded. status is cheap (mm counters: 20-30 us);
 * maps takes the mmap lock for reading and costs O(VMAs) (60-270 us for a
 * 14-VMA process); smaps_rollup walks every page table of the process under
 * that lock, O(RSS): measured 80 ms for 1 GiB and 210 ms for 4 GiB on a
 * loaded 2-vCPU guest. So smaps_rollup is read only for an anonymous RSS up
 * to `smaps_max_rss_bytes` (default 2 GiB, so that one walk stalls the daemon's
 * main thread for well under a second; above, THP stays unknown), at most
 * once a minute per pid, and never more often than 1000 times what the last
 * reading took (0.1% of the reader's time per pid). A whole reading
 * is reused for a pid for a second, and at most `max_reads_per_s` (default
 * 50) readings happen per second, taking at most `max_read_ns_per_s`
 * (default 100 ms) of reading a second; the rest of the forks get none
 * (pt_fork.mem.have == 0). A reading has a deadline: maps is given up (no
 * VMA count: a count cut short would be wrong) and smaps_rollup not started
 * once it passes. A pid whose Name: is not the fork's parent comm (it exited
 * and the pid was reused, or it exec'd) gives nothing: the figures would be
 * someone else's.
 */
#ifndef PTESCOPED_PROCMEM_H
#define PTESCOPED_PROCMEM_H

#include <stdbool.h>
#include <stdint.h>

#include "fork.h"

/*
 * One reading of /proc at @proc_root ("/proc", or a fake tree in tests) for
 * @pid whose thread name must be @comm ("" accepts any). Fills @out (fields
 * that could not be read stay unknown); the map count only when asked, and
 * smaps_rollup only when the anonymous RSS is at most @smaps_max_rss_bytes
 * (0: never). @child_pid >= 0: also whether the child has exec'd. Past
 * @deadline_ns (CLOCK_MONOTONIC; 0: none) the map count and smaps_rollup are
 * left unknown. Returns 0, or -ENOENT / -ESRCH (the pid is gone or is
 * another process now), with @out zeroed.
 */
int pd_procmem_read(const char *proc_root, int pid, const char *comm, int child_pid, bool with_maps,
		    int64_t smaps_max_rss_bytes, uint64_t deadline_ns, struct pt_parent_mem *out);

struct pd_procmem;

struct pd_procmem_opts {
	const char *proc_root;	     /* NULL: "/proc" */
	unsigned max_reads_per_s;    /* 0: 50 */
	uint64_t max_read_ns_per_s;  /* time spent reading per second; 0: 100 ms */
	uint64_t reuse_ns;	     /* a pid's reading is reused this long; 0: 1 s */
	uint64_t smaps_every_ns;     /* smaps_rollup per pid at most this often; 0: 60 s */
	int64_t smaps_max_rss_bytes; /* no smaps_rollup above this anonymous RSS; 0: 2 GiB */
};

/* Returns 0 or -ENOMEM. *out freed with pd_procmem_free (accepts NULL). */
int pd_procmem_new(const struct pd_procmem_opts *o, struct pd_procmem **out);
void pd_procmem_free(struct pd_procmem *p);

/*
 * Fills @f->mem for a fork seen at @now_ns (CLOCK_MONOTONIC), within the
 * budgets and before @deadline_ns (0: none); leaves it zeroed when a budget
 * is spent or the parent is gone, partial past the deadline. @probed (NULL:
 * none) is the capture's own reading of the parent as the fork began (the
 * probe at dup_mmap: RSS, page tables, VMAs, recon_site.c): it stands in
 * @f->mem whatever /proc gives, and with it status and maps are not read,
 * only smaps_rollup when due and the child's comm. Not thread-safe: one
 * caller (the live queue's reader thread).
 */
void pd_procmem_fill(struct pd_procmem *p, struct pt_fork *f, const struct pt_parent_mem *probed,
		     uint64_t now_ns, uint64_t deadline_ns);

/* Readings done, and forks left without one for lack of budget, so far. */
void pd_procmem_counts(const struct pd_procmem *p, uint64_t *reads, uint64_t *skipped);

#endif
