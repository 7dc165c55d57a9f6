/* SPDX-License-Identifier: MIT */
/*
 * The parent's cgroup of a live fork, read from /proc/PID/cgroup (the unified
 * hierarchy's path, analyzer/cgroup.h), so that a fork says which service or
 * container it came from: 30 containers' redis-server are 30 cgroups.
 *
 * Fed each live fork by the live queue's reader thread (livequeue.c) beside
 * the parent's memory, never by the capture thread; fills pt_fork.cgroup,
 * which the store, the API, the dashboard and the metrics' opt-in label read.
 *
 * Sized for a host forking thousands of times a second: one small read
 * (about 10 us) per parent pid, kept for a second (a parent rarely moves
 * between cgroups; one that forks in a loop is read once a second), in a
 * table of 256 pids.
 */
#ifndef PTESCOPED_PROCCG_H
#define PTESCOPED_PROCCG_H

#include <stdint.h>

#include "fork.h"

struct pd_proccg;

/* @proc_root: "/proc" (NULL) or a fake tree in tests. 0 or -ENOMEM. */
int pd_proccg_new(const char *proc_root, struct pd_proccg **out);
void pd_proccg_free(struct pd_proccg *p);

/*
 * Fills @f->cgroup for the parent @f->parent_pid, seen at @now_ns
 * (CLOCK_MONOTONIC): "" when the pid is gone or the file names no cgroup.
 * Not thread-safe: one caller (the reader thread).
 */
void pd_proccg_fill(struct pd_proccg *p, struct pt_fork *f, uint64_t now_ns);

/* Files read so far (not counting readings reused from the table). */
uint64_t pd_proccg_reads(const struct pd_proccg *p);

#endif
