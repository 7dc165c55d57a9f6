/* SPDX-License-Identifier: MIT */
/*
 * The cost model of one fork: what it cost per GiB of the parent's memory,
 * Redis's fork rate (GB/s) with its bands, the page-table bytes copied, the
 * cost per PTE, and how the fork's time splits (copying page tables,
 * scheduled out). The one home of these definitions: the JSON fork object
 * (report.c), the doctor (doctor.c) and the daemon's metrics call it.
 *
 * Fed a fork record (fork.h); the figures that need the parent's memory
 * (pt_fork.mem) exist for live forks only, the rest wherever the trace
 * carried the phases. Unknown figures are NAN (null in JSON).
 */
#ifndef PTESCOPE_COST_H
#define PTESCOPE_COST_H

#include <stdint.h>

#include "fork.h"

/*
 * Redis's rating of its fork rate (latency.c, LATENCY DOCTOR): under 10 GB/s
 * terrible, under 25 poor, under 100 good, else excellent.
 */
enum pt_rate_band {
	PT_BAND_UNKNOWN,
	PT_BAND_TERRIBLE,
	PT_BAND_POOR,
	PT_BAND_GOOD,
	PT_BAND_EXCELLENT,
};

/* "terrible", ...; NULL for PT_BAND_UNKNOWN. */
const char *pt_band_name(enum pt_rate_band b);
/* The band of @gb_per_s (NAN: unknown). */
enum pt_rate_band pt_rate_band_of(double gb_per_s);

struct pt_fork_cost {
	double ms_per_gib_rss; /* the fork's total time per GiB of the parent's RSS */
	double gb_per_s;       /* GiB of RSS per second of fork: Redis's stat_fork_rate */
	enum pt_rate_band band;
	int64_t pte_bytes;   /* bytes of PTEs copied, 8 per present PTE (trace); -1 unknown */
	double ns_per_pte;   /* copy_page_range time per PTE copied (as stats.h) */
	double copy_share;   /* copy_page_range / the phase above it that encloses it
			      * (kernel_clone, else copy_process, else dup_mmap) */
	double offcpu_share; /* copy_offcpu_ns / the fork's total time */
};

/*
 * The cost per GiB of memory mapped with 4 KiB pages, in ms, of a cost per
 * PTE in ns: a GiB is 262144 PTEs. The statistics' ms_per_gib, the API's
 * cost figures and the doctor's per-PTE baseline use it.
 */
double pt_ms_per_gib_of_ns_per_pte(double ns_per_pte);

/* Fills @c from @f (NAN / -1 / PT_BAND_UNKNOWN where @f does not carry the inputs). */
void pt_fork_cost(const struct pt_fork *f, struct pt_fork_cost *c);

#endif
