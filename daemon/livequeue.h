/* SPDX-License-Identifier: MIT */
/*
 * The live forks' way from the capture thread to the store writer: a bounded
 * queue, and a reader thread that reads each fork's parent memory from /proc
 * (procmem.h) while the fork waits in it.
 *
 * Fed by ingest's pd_ingest_live_fork on the capture (main) thread, which
 * only copies the fork in; drained by ingest's live writer thread, which
 * takes the oldest fork once its reading is done or its wait (mem_wait_ns
 * after it was queued) is over, and stores it. The capture thread never
 * reads /proc and never waits on the store: reading /proc/PID/maps of a
 * parent with 65k VMAs that forks in a loop took 0.9 s, each read() waiting
 * for a dup_mmap. A reading that misses the fork's wait is not used for it
 * (the fork is stored without it, counted late) and only fills the reader's
 * per-pid cache; a reading past its deadline leaves the slow parts unknown
 * (procmem.h), so a stored parent_mem is partial or absent, never wrong.
 *
 * Bounded: at most max_forks forks or max_bytes of their VMA/pass detail
 * wait; past either the capture thread waits for room (the store is then the
 * bottleneck, as it was before the queue). The reader thread may be stuck in
 * a read of /proc that never returns (a parent blocked in D state with its
 * mmap lock held): freeing the queue then leaves the thread behind, detached,
 * with the queue's memory, rather than hanging the daemon's stop.
 */
#ifndef PTESCOPED_LIVEQUEUE_H
#define PTESCOPED_LIVEQUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fork.h"
#include "procmem.h"

struct pd_liveq;

struct pd_liveq_opts {
	bool parent_mem;		/* read the parents' memory */
	bool cgroup;			/* read the parents' cgroup (neither: no reader thread) */
	struct pd_procmem_opts procmem; /* its budgets and /proc root */
	uint64_t mem_wait_ns;		/* how long a fork waits for its reading; 0: 250 ms */
	size_t max_forks;		/* 0: 4096 */
	size_t max_bytes;		/* of VMA/pass detail; 0: 64 MiB */
};

/* A fork taken out of the queue: the caller owns f's detail (pt_fork_release). */
struct pd_live_item {
	struct pt_fork f;
	int64_t source_id;
	bool mem_late; /* the reading did not come in time: f.mem is empty */
};

struct pd_liveq_counts {
	uint64_t reads, skipped; /* /proc readings done, and left out by the budgets */
	uint64_t late;		 /* forks stored without their reading: it came too late */
	size_t queued;		 /* waiting now */
};

/* Starts the queue (and its reader thread). 0 or -errno. Free with pd_liveq_free. */
int pd_liveq_new(const struct pd_liveq_opts *o, struct pd_liveq **out);

/*
 * Copies @f (detail included) in, for @source_id, seen at @now_ns
 * (CLOCK_MONOTONIC). Waits only when the queue is full. 0, -ENOMEM, or
 * -ESHUTDOWN once the queue is closed.
 */
int pd_liveq_push(struct pd_liveq *q, const struct pt_fork *f, int64_t source_id, uint64_t now_ns);

/*
 * The oldest fork once it is ready (read, or its wait over), into @out.
 * Blocks. 1: a fork (call pd_liveq_done once it is stored); 0: the queue
 * is closed and empty.
 */
int pd_liveq_pop(struct pd_liveq *q, struct pd_live_item *out);
/* The fork popped last is stored (or given up): for pd_liveq_drain. */
void pd_liveq_done(struct pd_liveq *q);

/* Waits until every fork pushed so far is popped and done. */
void pd_liveq_drain(struct pd_liveq *q);

/* No more pushes; pop returns 0 once the queue is empty. */
void pd_liveq_close(struct pd_liveq *q);

void pd_liveq_counts(struct pd_liveq *q, struct pd_liveq_counts *out);

/* Frees the queue (forks still in it are dropped). Accepts NULL. */
void pd_liveq_free(struct pd_liveq *q);

#endif
