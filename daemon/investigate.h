/* SPDX-License-Identifier: MIT */
/*
 * Investigations: deeper graph detail (section or pte) for a bounded time,
 * narrowed to some pids or a comm, after which capture goes back to the
 * configured default. This file is the bookkeeping only, kept pure (no
 * tracefs, no threads, no clock reads: every time is passed in) so it is
 * unit-tested without a kernel: who may start one (one at a time, the
 * automatic ones within a budget and after a cool-down), when it is due to
 * end, what it cost, the last few, and the counters /metrics shows. The
 * daemon's main loop (ptescoped_inv.c) owns the state and does the capture
 * restarts; HTTP threads only see JSON copies made under the main loop's lock.
 *
 * Budget: the time spent in deeper detail is summed in 60 one-minute buckets;
 * the share of the last hour is their sum over 3600 s (so the window slides
 * by the minute). An automatic investigation is refused when its duration
 * would take that share over the budget. Investigations asked for over the
 * API are never refused by the budget, but their time counts in it.
 *
 * Sized for one active investigation, PD_INV_HISTORY kept, at most
 * PD_INV_MAX_PIDS pids each.
 */
#ifndef PTESCOPED_INVESTIGATE_H
#define PTESCOPED_INVESTIGATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "config.h"

#define PD_INV_MAX_PIDS 64
#define PD_INV_HISTORY 8
#define PD_INV_COMM_LEN 16 /* TASK_COMM_LEN */

enum pd_inv_reason { PD_INV_API, PD_INV_AUTO, PD_INV_REASON_COUNT };

/* Why a start was refused; the label of ptescope_investigations_refused_total. */
enum pd_inv_refusal {
	PD_INV_REFUSED_ACTIVE,	 /* one is already active */
	PD_INV_REFUSED_BUDGET,	 /* automatic: over the share of the hour */
	PD_INV_REFUSED_COOLDOWN, /* automatic: too soon after the last one */
	PD_INV_REFUSED_CAPTURE,	 /* capture is not in graph mode */
	PD_INV_REFUSED_ERROR,	 /* the deeper capture could not start */
	PD_INV_REFUSED_COUNT
};

enum pd_inv_end {
	PD_INV_END_NONE, /* still active */
	PD_INV_END_TIME, /* its duration was up */
	PD_INV_END_API,	 /* DELETE /api/v1/investigations/current */
	PD_INV_END_STOP, /* the daemon stopped */
	PD_INV_END_RELOAD,
	PD_INV_END_ERROR, /* capture failed while it ran */
};

struct pd_inv {
	uint64_t id;
	enum pd_inv_reason reason;
	enum pd_detail detail;
	char comm[PD_INV_COMM_LEN]; /* "": any; else only forks of this parent comm are kept */
	int pid;		    /* asked for, -1: none */
	int pids[PD_INV_MAX_PIDS];  /* traced pids, nr_pids 0: all */
	size_t nr_pids;
	int64_t start_wall_ns, until_wall_ns, end_wall_ns; /* end 0 while active */
	uint64_t start_mono_ns, until_mono_ns, end_mono_ns;
	enum pd_inv_end end;
	uint64_t forks;	       /* forks recorded (kept) while it ran */
	uint64_t forks_other;  /* forks of other comms, not kept */
	uint64_t events;       /* trace events read while it ran */
	uint64_t cpu_ns;       /* the daemon's CPU time while it ran */
	uint64_t cpu_start_ns; /* process CPU time at the start */
};

struct pd_inv_policy {
	uint64_t max_ns;      /* longest duration */
	uint64_t auto_ns;     /* duration of an automatic one (capped by max_ns) */
	uint64_t cooldown_ns; /* from the end of one to the start of an automatic one */
	double budget;	      /* share of the last hour automatic ones may take it to */
};

struct pd_inv_state {
	struct pd_inv_policy pol;
	bool active;
	struct pd_inv cur;
	struct pd_inv hist[PD_INV_HISTORY]; /* ring, hist[(hist_next - 1) % N] newest */
	size_t hist_next, nr_hist;
	uint64_t next_id;
	bool ended_once;
	uint64_t last_end_mono_ns;
	uint64_t bucket_minute[60], bucket_ns[60];
	uint64_t accounted_mono_ns; /* active time counted in the buckets up to here */
	uint64_t started[PD_INV_REASON_COUNT];
	uint64_t refused[PD_INV_REFUSED_COUNT];
	uint64_t deeper_ns_total; /* all time spent deeper, ended and active so far */
};

/* Counters for /metrics, a copy taken under the daemon's lock. */
struct pd_inv_counters {
	bool active;
	uint64_t started[PD_INV_REASON_COUNT];
	uint64_t refused[PD_INV_REFUSED_COUNT];
	double seconds_total;
};

const char *pd_inv_reason_name(enum pd_inv_reason r);
const char *pd_inv_refusal_name(enum pd_inv_refusal r);
const char *pd_inv_end_name(enum pd_inv_end e);

/* Policy from the configuration (investigation-max-s and friends). */
void pd_inv_policy_from_config(const struct pd_config *c, struct pd_inv_policy *p);
void pd_inv_init(struct pd_inv_state *s, const struct pd_inv_policy *p);

/*
 * Whether an investigation of @reason lasting @dur_ns may start at @now: true,
 * or false with *why set and the refusal counted.
 */
bool pd_inv_admit(struct pd_inv_state *s, enum pd_inv_reason reason, uint64_t dur_ns,
		  uint64_t now_mono_ns, enum pd_inv_refusal *why);
/* Counts a refusal decided outside (capture, error). */
void pd_inv_refuse(struct pd_inv_state *s, enum pd_inv_refusal why);

/*
 * Makes @req (reason, detail, comm, pid, pids) the active one, from @now for
 * @dur_ns (capped at the policy's max). Returns its id.
 */
uint64_t pd_inv_begin(struct pd_inv_state *s, const struct pd_inv *req, uint64_t dur_ns,
		      uint64_t now_mono_ns, int64_t now_wall_ns, uint64_t cpu_ns);
/* Whether the active one is due to end at @now. */
bool pd_inv_due(const struct pd_inv_state *s, uint64_t now_mono_ns);
/* Updates the active one's cost (events of its capture so far, process CPU time). */
void pd_inv_progress(struct pd_inv_state *s, uint64_t events, uint64_t cpu_ns,
		     uint64_t now_mono_ns);
/* Ends the active one (no-op when none) and keeps it in the history. */
void pd_inv_finish(struct pd_inv_state *s, enum pd_inv_end why, uint64_t now_mono_ns,
		   int64_t now_wall_ns, uint64_t cpu_ns);

/* Deeper-detail time in the last hour (minute buckets) and its share. */
uint64_t pd_inv_used_ns(struct pd_inv_state *s, uint64_t now_mono_ns);
double pd_inv_budget_used(struct pd_inv_state *s, uint64_t now_mono_ns);

void pd_inv_counters(struct pd_inv_state *s, uint64_t now_mono_ns, struct pd_inv_counters *out);

/* One investigation as JSON (new reference, NULL on ENOMEM). */
json_t *pd_inv_json(const struct pd_inv *v, bool active);
/* {"active": obj|null, "recent": [newest first], "budget": {...}}: new reference. */
json_t *pd_inv_list_json(struct pd_inv_state *s, uint64_t now_mono_ns);
/* The /api/v1/status "investigation" object: new reference. */
json_t *pd_inv_status_json(struct pd_inv_state *s, uint64_t now_mono_ns);

/*
 * The pids whose comm (@proc/PID/comm) is @comm, scanning at most 1<<17
 * entries of @proc ("/proc"). At most @max go to @pids; *more is set when
 * more matched. 0 or -errno (@proc unreadable).
 */
int pd_inv_pids_of_comm(const char *proc, const char *comm, int *pids, size_t max, size_t *nr,
			bool *more);

#endif
