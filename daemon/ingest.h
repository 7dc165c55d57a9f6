/* SPDX-License-Identifier: MIT */
/*
 * Ingest: the one writer of the store. Takes the live capture's forks (from
 * the main thread) and replays (from a worker thread: --replay files and
 * uploads handed over by the HTTP layer through pd_core.submit_replay), puts
 * them into the store -- live forks under one STORE_SOURCE_LIVE source per
 * capture session, each replayed file as its own content-hashed source --
 * and feeds every stored fork to the metrics.
 *
 * The capture thread only hands a live fork over (livequeue.h: copied into a
 * bounded queue); a live writer thread stores it once the parent's memory is
 * read from /proc by the queue's reader thread, or its wait is over. So the
 * capture thread never waits on /proc nor on the store.
 *
 * Replays go through the same readers and reconstruction as `ptescope
 * replay`. One mutex serialises the store writer between the live writer and
 * the replay worker; each takes it per fork. Each source's forks are its own
 * in the store's transactions (store.h): an aborted replay never takes live
 * forks with it, nor a failed live insert a replay's.
 *
 * Write health: the first failed write (disk full, a read-only remount)
 * turns ingest unhealthy (pd_ingest_healthy, logged once, counted in the
 * metrics); the once-a-second flush then tries a small write until one
 * succeeds, which makes it healthy again.
 *
 * Slow-fork detail (--slow-fork-us): live forks faster than the threshold
 * are stored without their VMA and pass detail (the fork row keeps every
 * summary field), which bounds the detail a busy host keeps. Replays keep
 * all detail: they were recorded on purpose.
 *
 * Bounded: at most 64 replay jobs queued; more are refused (-EAGAIN).
 */
#ifndef PTESCOPED_INGEST_H
#define PTESCOPED_INGEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "api.h"
#include "fork.h"
#include "reader.h"
#include "spool.h"

struct pd_ingest;

struct pd_ingest_opts {
	const char *db_path;
	bool sync_full;
	int retention_days;
	int64_t max_db_bytes;
	uint64_t slow_fork_ns; /* 0: keep all detail */
	bool no_parent_mem;    /* do not read live parents' memory from /proc (procmem.h) */
	bool no_fork_cgroup;   /* do not read live parents' cgroup from /proc (proccg.h) */
	struct pd_metrics *metrics; /* may be NULL */
	const char *proc_root;	    /* NULL: /proc (tests: a fake tree) */
	struct pd_spool *spool;	    /* where uploads wait (spool.h); NULL: none */
};

struct pd_ingest_counts {
	uint64_t live_forks, live_detail_dropped;
	bool parent_mem;			       /* the parent's memory is read (procmem.h) */
	uint64_t parent_mem_reads, parent_mem_skipped; /* readings, forks over the budgets */
	uint64_t parent_mem_late;	/* forks stored before their reading came */
	uint64_t live_store_failed;	/* live forks lost: their insert failed */
	size_t live_queued;		/* live forks waiting to be stored */
	bool store_healthy;		/* the last write went through */
	uint64_t store_write_failures;	/* writes that failed so far */
	/* live forks whose copy loop the rules did not recognise (PT_FORK_UNKNOWN_LOOP):
	 * this kernel cannot be read at this detail level; logged at the first */
	uint64_t live_unknown_loop;
	uint64_t replay_forks;
	uint64_t replays_done, replays_failed, replays_skipped;
	size_t replays_queued; /* waiting or running */
	int64_t live_source_id; /* 0: none */
};

/* Opens the store (creating/migrating it). *out freed by pd_ingest_close. */
int pd_ingest_open(const struct pd_ingest_opts *o, struct pd_ingest **out, char *err,
		   size_t errlen);
/* Stops the worker (a replay in progress is abandoned and removed again, so a
 * later run redoes it), ends the live source, commits, closes. Accepts NULL. */
int pd_ingest_close(struct pd_ingest *in, char *err, size_t errlen);

/* Starts the live source. @kernel: uname -r; @clock_offset_ns: wall - trace clock. */
int pd_ingest_live_begin(struct pd_ingest *in, const char *kernel, int64_t clock_offset_ns,
			 char *err, size_t errlen);
/* pt_fork_fn for the live capture (ctx = the ingest): copies the fork into
 * the live queue and returns; it is stored by the live writer thread. */
int pd_ingest_live_fork(const struct pt_fork *f, void *ctx);
/* Ends the live source with its statistics once its queued forks are stored
 * (marks it complete, commits). */
int pd_ingest_live_end(struct pd_ingest *in, const struct pt_input_stats *st, char *err,
		       size_t errlen);

/*
 * Queues @path for replay. @display_name names it in the store (NULL: the
 * path); @delete_after: @path is a spooled upload (spool.h), removed once its
 * replay ends -- but kept when the daemon stops first (not replayed yet, or
 * interrupted), for the next start. Returns 0 and
 * a job id, -EAGAIN when the queue is full, -ESHUTDOWN when closing.
 */
int pd_ingest_submit_replay(struct pd_ingest *in, const char *path, const char *display_name,
			    bool delete_after, int64_t *job_id, char *err, size_t errlen);

/* Commits what is pending (a timer calls it once a second); while writes
 * are failing, with nothing pending, tries a small write (store_probe_write). */
int pd_ingest_flush(struct pd_ingest *in, char *err, size_t errlen);
/* False from the first failed write until one succeeds again. */
bool pd_ingest_healthy(struct pd_ingest *in);
/* Applies --retention-days / --max-db-mb now. */
int pd_ingest_retention(struct pd_ingest *in, char *err, size_t errlen);
/* Changes the slow-fork threshold (SIGHUP) and retention limits. */
void pd_ingest_set_policy(struct pd_ingest *in, uint64_t slow_fork_ns, int retention_days,
			  int64_t max_db_bytes);
void pd_ingest_get_counts(struct pd_ingest *in, struct pd_ingest_counts *out);

#endif
