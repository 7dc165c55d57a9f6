/* SPDX-License-Identifier: MIT */
/*
 * Fork records from tracepoints only (capture mode "syscall"), for kernels
 * where function tracing is missing or locked: per task, the clone, clone3,
 * fork or vfork syscall entry, the sched_process_fork it causes, and the
 * syscall exit in the parent make one pt_fork whose kernel_clone_ns is the
 * syscall's entry-to-exit time (for vfork that includes waiting for the
 * child, as kernel_clone itself does). Every other phase and count is null.
 * task_newtask, which fires inside the same syscall before the fork event,
 * gives the clone's flags and so the fork's kind (clone3's flags are in user
 * memory, out of a tracepoint's reach: this event is how they are known);
 * without it the kind is unknown.
 *
 * The fork event belongs to the syscall of the same task that is open when
 * it fires: one task is in one syscall at a time. The exit's return value is
 * only checked for success (it is the child's pid in the caller's pid
 * namespace, which differs from the tracepoint's global pid in containers).
 * A fork event outside any syscall is a kernel-internal fork (kernel
 * threads, user-mode helpers): it gets a null kernel_clone_ns and is
 * complete, unless the capture may have begun inside its syscall (within
 * the first @start_grace_ns of capture): then it is flagged partial.
 *
 * Fed events in time order by the live capture (capture_read.c); feeds finished
 * forks to a pt_fork_fn. Sized for up to 65536 tasks inside a clone syscall
 * at once (a fixed open-addressing table; beyond it, entries are not
 * tracked and their forks lose kernel_clone_ns).
 */
#ifndef PTESCOPED_SYSFORK_H
#define PTESCOPED_SYSFORK_H

#include <stdint.h>

#include "recon.h"

struct pd_sysfork;

/* @start_ts_ns: trace-clock time the capture began. Returns 0 or -ENOMEM. */
int pd_sysfork_new(pt_fork_fn fn, void *ctx, uint64_t start_ts_ns, uint64_t start_grace_ns,
		   struct pd_sysfork **out);
void pd_sysfork_free(struct pd_sysfork *s);

/* A clone-family syscall was entered by task @pid. */
int pd_sysfork_enter(struct pd_sysfork *s, int pid, uint64_t ts_ns);
/* sched_process_fork: parent @pid (the calling task), child @child_pid. */
int pd_sysfork_fork(struct pd_sysfork *s, int pid, const char *comm, int child_pid,
		    const char *child_comm, uint64_t ts_ns);
/* task_newtask in task @pid: its child @child_pid was made with @clone_flags
 * (the fork's kind: fork.h). Comes before that child's sched_process_fork. */
int pd_sysfork_newtask(struct pd_sysfork *s, int pid, int child_pid, uint64_t clone_flags);
/* A clone-family syscall returned @ret in task @pid. */
int pd_sysfork_exit(struct pd_sysfork *s, int pid, int64_t ret, uint64_t ts_ns);
/* Events were lost: forks in flight are flagged lost_events. */
void pd_sysfork_lost(struct pd_sysfork *s);
/* End of capture: forks still waiting for their exit are handed over, partial. */
int pd_sysfork_finish(struct pd_sysfork *s);

/* Tasks currently tracked inside a syscall (tests). */
unsigned pd_sysfork_inflight(const struct pd_sysfork *s);

#endif
