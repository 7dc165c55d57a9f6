/* SPDX-License-Identifier: MIT */
/*
 * Call reconstruction and fork derivation: consumes the pt_events of one
 * input (from any reader, or live capture), rebuilds each task's call stack,
 * and turns every fork it sees into a pt_fork record (fork.h).
 *
 * How a trace maps to forks, passes and lock breaks, and the kernel facts
 * it rests on, are written down in docs/architecture.md ("From calls to
 * forks") and docs/kernels.md.
 */
#ifndef PTESCOPE_RECON_H
#define PTESCOPE_RECON_H

#include <stdbool.h>
#include <stddef.h>

#include "event.h"
#include "fork.h"
#include "roles.h"

/* Which roles the trace could show: bit (1 << role). */
typedef unsigned pt_caps;
#define PT_CAP(role) (1u << (role))
/* Extra capability bits beyond the roles. */
#define PT_CAP_PASS_SITES (1u << 26) /* passes come from probes on call sites inside
				      * copy_page_range (PT_EV_PASS_*, live) */
#define PT_CAP_TASK_CTR (1u << 27) /* the forking task's scheduler counters are read at
				    * dup_mmap (where it is inlined uprobe_dup_mmap, or the
				    * first copy_page_range) and at wake_up_new_task (live) */
#define PT_CAP_SWITCH_WINDOW (1u << 28) /* ... only from a copy_page_range entry to the next
					 * wake_up_new_task entry of any task (live, fork detail) */
#define PT_CAP_SWITCH (1u << 29)   /* sched_switch with its preemption state is recorded */
#define PT_CAP_TIMES (1u << 30)	   /* events carry timestamps */
#define PT_CAP_FORK_EVENT (1u << 31) /* sched_process_fork is recorded */

/* Receives each finished fork. @f is valid during the call only (copy it to keep). */
typedef int (*pt_fork_fn)(const struct pt_fork *f, void *ctx);
/* The same, able to say why it stopped: a one-line message in @err, which
 * recon_errmsg() returns afterwards (so that it is reported once, in the
 * words of whoever failed: the store, for example). */
typedef int (*pt_fork_msg_fn)(const struct pt_fork *f, void *ctx, char *err, size_t errlen);

struct recon_opts {
	pt_fork_fn on_fork;	   /* one of these two, or neither */
	pt_fork_msg_fn on_fork_msg;
	void *ctx;
	int input; /* stored in each fork's `input` */
	/*
	 * When the caller knows what the trace was set up to record (live capture
	 * knows its filter), set caps_known and caps: forks are then handed over
	 * as soon as they end. Otherwise (replay) they are held until
	 * recon_finish(), when the capabilities seen in the whole input decide
	 * which fields are null.
	 */
	bool caps_known;
	pt_caps caps;
	/* Without fork events or an enclosing fork-path call, two copy_page_range
	 * runs of one task further apart than this are two forks. 0 = 1 ms. */
	uint64_t split_gap_ns;
	/* With PT_CAP_PASS_SITES and the child's counters read at wake_up_new_task
	 * (pt_site.child_rss): how far they may be off the passes' counts, per
	 * counter (0: exact, as atomic counters are; per-CPU counters lag by up
	 * to their batch per CPU); negative: not compared. */
	int64_t child_rss_slack;
};

struct recon;

/* Returns 0 or -ENOMEM. Free with recon_free(). */
int recon_new(const struct recon_opts *opts, struct recon **out);
void recon_free(struct recon *r);

/* pt_event_fn: feeds one event (ctx is the struct recon). 0 or negative errno. */
int recon_feed(const struct pt_event *ev, void *ctx);

/* End of input: forks still open are handed over as partial, held forks
 * are finalised and handed over. Returns 0 or the callback's negative errno. */
int recon_finish(struct recon *r);

/* Why the last on_fork_msg call failed; "" if none did. Owned by @r. */
const char *recon_errmsg(const struct recon *r);

/* Why the last fork flagged pass_mismatch was (a static string), NULL before any. */
const char *recon_pass_mismatch(const struct recon *r);

/* The capabilities seen so far (replay) or given (live). */
pt_caps recon_caps(const struct recon *r);

#endif
