/* SPDX-License-Identifier: MIT */
/*
 * The cost model of one fork (analyzer/cost.c) on literal forks: Redis's
 * bands at their edges, GB/s and ms per GiB from the parent's RSS, ns per
 * PTE, the shares, and NAN (null) wherever an input is missing.
 */
#include <math.h>
#include <string.h>

#include "cost.h"
#include "check.h"

static struct pt_fork plain(void)
{
	struct pt_fork f;

	memset(&f, 0, sizeof(f));
	f.parent_pid = f.child_pid = -1;
	f.ts_ns = f.kernel_clone_ns = f.copy_process_ns = f.dup_mmap_ns = PT_NO_TIME;
	f.copy_page_range_ns = f.max_lock_hold_ns = f.copy_offcpu_ns = PT_NO_TIME;
	f.vmas = f.pte_passes = f.lock_breaks = f.ptes = f.copy_resched = PT_NULL;
	return f;
}

#define NEAR(a, b) CHECK(fabs((a) - (double)(b)) < 1e-9 * (fabs((double)(b)) + 1))

int main(void)
{
	struct pt_fork f = plain();
	struct pt_fork_cost c;

	/* Redis latency.c: < 10 terrible, < 25 poor, < 100 good, else excellent */
	CHECK_EQ(pt_rate_band_of(9.99), PT_BAND_TERRIBLE);
	CHECK_EQ(pt_rate_band_of(10), PT_BAND_POOR);
	CHECK_EQ(pt_rate_band_of(24.9), PT_BAND_POOR);
	CHECK_EQ(pt_rate_band_of(25), PT_BAND_GOOD);
	CHECK_EQ(pt_rate_band_of(99.9), PT_BAND_GOOD);
	CHECK_EQ(pt_rate_band_of(100), PT_BAND_EXCELLENT);
	CHECK_EQ(pt_rate_band_of(NAN), PT_BAND_UNKNOWN);
	CHECK(!strcmp(pt_band_name(PT_BAND_POOR), "poor") && !pt_band_name(PT_BAND_UNKNOWN));

	/* nothing carried: everything unknown */
	pt_fork_cost(&f, &c);
	CHECK(isnan(c.ms_per_gib_rss) && isnan(c.gb_per_s) && isnan(c.ns_per_pte) &&
	      isnan(c.copy_share) && isnan(c.offcpu_share) && c.pte_bytes == -1 &&
	      c.band == PT_BAND_UNKNOWN);

	/* 4 GiB of RSS forked in 100 ms: 25 ms per GiB, 40 GB/s (good) */
	f.kernel_clone_ns = 100000000;
	f.copy_process_ns = 90000000;
	f.dup_mmap_ns = 85000000;
	f.copy_page_range_ns = 80000000;
	f.copy_offcpu_ns = 30000000;
	f.ptes = 1000000;
	f.mem.have = 1u << PT_MEM_RSS_ANON | 1u << PT_MEM_RSS_FILE | 1u << PT_MEM_RSS_SHMEM;
	f.mem.v[PT_MEM_RSS_ANON] = 3LL << 30;
	f.mem.v[PT_MEM_RSS_FILE] = 1LL << 29;
	f.mem.v[PT_MEM_RSS_SHMEM] = 1LL << 29;
	pt_fork_cost(&f, &c);
	NEAR(c.ms_per_gib_rss, 25);
	NEAR(c.gb_per_s, 40);
	CHECK_EQ(c.band, PT_BAND_GOOD);
	NEAR(c.ns_per_pte, 80);
	CHECK_EQ(c.pte_bytes, 8000000);
	NEAR(c.copy_share, 0.8);
	NEAR(c.offcpu_share, 0.3);

	/* one RSS field missing: no per-GiB figures */
	f.mem.have &= ~(1u << PT_MEM_RSS_SHMEM);
	pt_fork_cost(&f, &c);
	CHECK(isnan(c.ms_per_gib_rss) && isnan(c.gb_per_s) && c.band == PT_BAND_UNKNOWN);

	/* only copy_page_range traced: its share of itself is not a figure */
	f = plain();
	f.copy_page_range_ns = 5000;
	f.ptes = 0;
	pt_fork_cost(&f, &c);
	CHECK(isnan(c.copy_share) && isnan(c.ns_per_pte) && c.pte_bytes == 0);
	/* dup_mmap encloses it */
	f.dup_mmap_ns = 20000;
	pt_fork_cost(&f, &c);
	NEAR(c.copy_share, 0.25);
	TEST_DONE();
}
