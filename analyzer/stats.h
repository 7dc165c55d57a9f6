/* SPDX-License-Identifier: MIT */
/*
 * Statistics over fork records: exact percentiles, log-scale histograms,
 * a per-comm breakdown and the cost per PTE and per GiB copied.
 *
 * Fed the forks of a report (all of one replay, or a query of the store);
 * feeds the text/JSON report and the HTTP API. Sized for millions of forks:
 * percentiles sort a copy of the values (8 bytes per fork per phase).
 */
#ifndef PTESCOPE_STATS_H
#define PTESCOPE_STATS_H

#include <stddef.h>
#include <stdint.h>

#include "fork.h"

/* Exact nearest-rank percentiles of a set of values. */
struct pt_dist {
	size_t count;
	uint64_t min, p50, p90, p99, p999, max;
	double mean;
};

/*
 * Sorts @values in place and fills @d. The p-th percentile is the smallest
 * value with at least p% of the values at or below it (nearest rank).
 */
void pt_dist_compute(uint64_t *values, size_t n, struct pt_dist *d);

/* Value at quantile @q (0 < q <= 1) of sorted @values by nearest rank. */
uint64_t pt_quantile_sorted(const uint64_t *values, size_t n, double q);

/* Log-scale histogram: 4 buckets per power of two, from 1 ns to 2^40 ns. */
#define PT_HIST_SUB 4
#define PT_HIST_BUCKETS (1 + 40 * PT_HIST_SUB + 1)
struct pt_hist {
	uint64_t count[PT_HIST_BUCKETS];
	uint64_t total;
};

/* Bucket index of @v; the bucket holds values <= pt_hist_upper(index). */
size_t pt_hist_index(uint64_t v);
uint64_t pt_hist_upper(size_t index);
void pt_hist_add(struct pt_hist *h, uint64_t v);

enum pt_phase {
	PT_PHASE_KERNEL_CLONE,
	PT_PHASE_COPY_PROCESS,
	PT_PHASE_DUP_MMAP,
	PT_PHASE_COPY_PAGE_RANGE,
	PT_PHASE_COUNT
};

/* "kernel_clone", ... (the JSON key without _ns). */
const char *pt_phase_name(enum pt_phase p);
/* The phase's duration in @f, PT_NO_TIME when null. */
uint64_t pt_fork_phase_ns(const struct pt_fork *f, enum pt_phase p);

/* One process name's forks. `complete` counts its complete forks, as
 * pt_summary.complete does (a fork event with no graph, whose phases are all
 * null, is complete and counted); `total` is over those with a total time
 * (pt_fork_total_ns), so total.count <= complete. */
struct pt_comm_stats {
	char comm[32];
	size_t forks, complete;
	struct pt_dist total; /* pt_fork_total_ns of its complete forks that carry one */
};

struct pt_summary {
	unsigned kinds_mask;		 /* the kinds the figures below are over */
	size_t kinds[PT_KIND_COUNT];	 /* every fork given, by kind */
	size_t forks, complete; /* of those kinds; complete: with f->complete, timed or not */
	size_t flagged[PT_FORK_FLAG_COUNT];
	struct pt_dist phase[PT_PHASE_COUNT]; /* complete forks only */
	struct pt_hist hist[PT_PHASE_COUNT];
	struct pt_dist lock_hold;	      /* max_lock_hold_ns of complete forks */
	struct pt_dist total;		      /* pt_fork_total_ns of complete forks */
	uint64_t vmas, passes, lock_breaks, ptes; /* sums over complete forks */
	size_t forks_with_breaks;
	double ns_per_pte;  /* copy_page_range time per PTE copied; 0 if unknown */
	double ms_per_gib;  /* the same per GiB of 4 KiB pages; 0 if unknown */
	struct pt_comm_stats *by_comm; /* most forks first; owned */
	size_t nr_comms;
};

/*
 * Fills @s from the forks of @forks whose kind is in @kinds_mask (the kinds
 * are counted over all of them). Returns 0 or -ENOMEM. Free with
 * pt_summary_release().
 */
int pt_summary_compute_kinds(const struct pt_fork *forks, size_t n, unsigned kinds_mask,
			     struct pt_summary *s);
/* The same over address-space copies only (PT_KINDS_FORK): fork latency. */
int pt_summary_compute(const struct pt_fork *forks, size_t n, struct pt_summary *s);
void pt_summary_release(struct pt_summary *s);

#endif
