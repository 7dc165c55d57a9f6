/* SPDX-License-Identifier: MIT */
/*
 * The reorder window of live capture: one queue of decoded events per CPU
 * (each in time order, as the CPU's ring buffer gives them) and the rule
 * for when an event can be handed on, in time order across CPUs, because no
 * CPU can still deliver an earlier one. Pure: fed by capture_read.c's reading of
 * the per-CPU buffers, feeding its delivery to recon or sysfork; the unit
 * tests check it against a plain sort.
 *
 * The rule (docs/architecture.md, "Live capture"): after a read, events are
 * safe up to the minimum over CPUs of the latest timestamp read from a CPU
 * that still had data, or `now - slack` for a CPU read empty (an event being
 * committed as we read is at most that old); everything at the end.
 *
 * Sized for ~1 GB/s of graph events in pte detail: at most @max events wait
 * per CPU (2^18 in the daemon); a CPU at the bound is read again after older
 * events went out, and its ring buffer absorbs the rest.
 */
#ifndef PTESCOPED_MERGE_H
#define PTESCOPED_MERGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "raw_decode.h"

enum pd_qkind { PD_Q_RAW, PD_Q_SYS_ENTER, PD_Q_SYS_EXIT, PD_Q_LOST };

/* One queued event. */
struct pd_qev {
	uint64_t ts;		 /* record time, trace clock */
	uint8_t kind;		 /* enum pd_qkind */
	int pid;		 /* SYS_ENTER/EXIT */
	int64_t ret;		 /* SYS_EXIT */
	uint64_t lost;		 /* LOST: count, 0 unknown */
	struct pt_raw_event raw; /* RAW */
};

struct pd_merge;

/* @nr queues of at most @max events each. 0 or -ENOMEM; free with pd_merge_free(). */
int pd_merge_new(int nr, size_t max, struct pd_merge **out);
void pd_merge_free(struct pd_merge *m);

/* A new slot at the end of queue @q (its events must come in time order), or
 * NULL when the queue holds @max events or memory ran out. Its time counts
 * toward the queue's latest timestamp. */
struct pd_qev *pd_merge_push(struct pd_merge *m, int q, uint64_t ts);
/* The slot pd_merge_push(@m, @q, ...) would return, not yet in the queue (the
 * caller fills it and pushes it, or leaves it), or NULL as push would. */
struct pd_qev *pd_merge_next(struct pd_merge *m, int q);
size_t pd_merge_len(const struct pd_merge *m, int q);
uint64_t pd_merge_last_ts(const struct pd_merge *m, int q); /* 0 before any */

/*
 * Up to when events are safe to hand on after a read: @drained[q] says
 * whether queue q's CPU was read empty. @final: all of them (the end).
 */
uint64_t pd_merge_safe_upto(const struct pd_merge *m, const bool *drained, uint64_t now_ns,
			    uint64_t slack_ns, bool final);

/* Hands every queued event no later than @upto to @fn in time order (ties:
 * the lower queue first), removing it. Stops at @fn's first nonzero return. */
int pd_merge_out(struct pd_merge *m, uint64_t upto,
		 int (*fn)(const struct pd_qev *e, int q, void *ctx), void *ctx);

#endif
