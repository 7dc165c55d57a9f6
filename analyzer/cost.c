/* SPDX-License-Identifier: MIT */
/*
 * The cost model of one fork (cost.h). The bands and the GB/s measure are
 * Redis's (src/server.c computes stat_fork_rate as used memory over the fork
 * time, src/latency.c rates it); here memory is the parent's RSS.
 */
#include <math.h>

#include "cost.h"

#define GIB 1073741824.0
#define PTE_BYTES 8 /* one x86-64 / arm64 page-table entry */

const char *pt_band_name(enum pt_rate_band b)
{
	static const char *const names[] = {NULL, "terrible", "poor", "good", "excellent"};

	return (unsigned)b < sizeof(names) / sizeof(names[0]) ? names[b] : NULL;
}

enum pt_rate_band pt_rate_band_of(double gb_per_s)
{
	if (isnan(gb_per_s))
		return PT_BAND_UNKNOWN;
	if (gb_per_s < 10)
		return PT_BAND_TERRIBLE;
	if (gb_per_s < 25)
		return PT_BAND_POOR;
	if (gb_per_s < 100)
		return PT_BAND_GOOD;
	return PT_BAND_EXCELLENT;
}

double pt_ms_per_gib_of_ns_per_pte(double ns_per_pte)
{
	return ns_per_pte * (double)((1ull << 30) / 4096) / 1e6;
}

void pt_fork_cost(const struct pt_fork *f, struct pt_fork_cost *c)
{
	uint64_t total = pt_fork_total_ns(f), outer = pt_fork_outer_ns(f);
	int64_t rss = pt_mem_rss_bytes(&f->mem);

	c->ms_per_gib_rss = c->gb_per_s = c->ns_per_pte = c->copy_share = c->offcpu_share = NAN;
	c->pte_bytes = -1;
	if (total != PT_NO_TIME && total > 0 && rss > 0) {
		c->ms_per_gib_rss = (double)total / 1e6 / ((double)rss / GIB);
		c->gb_per_s = ((double)rss / GIB) / ((double)total / 1e9);
	}
	c->band = pt_rate_band_of(c->gb_per_s);
	if (f->ptes != PT_NULL && f->ptes >= 0)
		c->pte_bytes = f->ptes * PTE_BYTES;
	if (f->copy_page_range_ns != PT_NO_TIME && f->ptes != PT_NULL && f->ptes > 0)
		c->ns_per_pte = (double)f->copy_page_range_ns / (double)f->ptes;
	if (outer != PT_NO_TIME && outer > 0 && f->copy_page_range_ns != PT_NO_TIME &&
	    f->copy_page_range_ns <= outer)
		c->copy_share = (double)f->copy_page_range_ns / (double)outer;
	if (total != PT_NO_TIME && total > 0 && f->copy_offcpu_ns != PT_NO_TIME &&
	    f->copy_offcpu_ns <= total)
		c->offcpu_share = (double)f->copy_offcpu_ns / (double)total;
}
