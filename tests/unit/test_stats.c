/* SPDX-License-Identifier: MIT */
/*
 * Statistics checked against naive references: percentiles against a plain
 * sort and the definition of nearest rank, histogram buckets against their
 * bounds, the summary against sums computed here.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "stats.h"
#include "check.h"

static uint64_t rng = 88172645463325252ull;

static uint64_t next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static int cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* nearest rank by its definition: smallest v with count(<= v) >= q * n */
static uint64_t naive_quantile(const uint64_t *sorted, size_t n, double q)
{
	for (size_t i = 0; i < n; i++)
		if ((double)(i + 1) >= q * (double)n - 1e-9)
			return sorted[i];
	return sorted[n - 1];
}

static void test_percentiles(void)
{
	static const size_t sizes[] = {1, 2, 3, 10, 99, 100, 101, 1000, 12345};

	for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		size_t n = sizes[k];
		uint64_t *v = malloc(n * sizeof(*v)), *ref = malloc(n * sizeof(*ref));
		struct pt_dist d;

		for (size_t i = 0; i < n; i++)
			v[i] = ref[i] = next() % 1000000 + (i % 7 == 0 ? 5000000000ull : 0);
		qsort(ref, n, sizeof(*ref), cmp);
		pt_dist_compute(v, n, &d);
		CHECK_EQ(d.count, n);
		CHECK_EQ(d.min, ref[0]);
		CHECK_EQ(d.max, ref[n - 1]);
		CHECK_EQ(d.p50, naive_quantile(ref, n, 0.50));
		CHECK_EQ(d.p90, naive_quantile(ref, n, 0.90));
		CHECK_EQ(d.p99, naive_quantile(ref, n, 0.99));
		CHECK_EQ(d.p999, naive_quantile(ref, n, 0.999));
		free(v);
		free(ref);
	}
	/* the textbook case: 1..100 */
	uint64_t h[100];
	struct pt_dist d;

	for (int i = 0; i < 100; i++)
		h[99 - i] = (uint64_t)i + 1;
	pt_dist_compute(h, 100, &d);
	CHECK_EQ(d.p50, 50);
	CHECK_EQ(d.p90, 90);
	CHECK_EQ(d.p99, 99);
	CHECK_EQ(d.p999, 100);
	CHECK(fabs(d.mean - 50.5) < 1e-9);
	pt_dist_compute(h, 0, &d);
	CHECK_EQ(d.count, 0);
}

static void test_histogram(void)
{
	struct pt_hist hist;

	/* every value falls in the bucket whose bounds hold it */
	for (int i = 0; i < 200000; i++) {
		uint64_t v = i < 1000 ? (uint64_t)i : next() >> (next() % 64);
		size_t b = pt_hist_index(v);

		CHECK(b < PT_HIST_BUCKETS);
		CHECK(v <= pt_hist_upper(b));
		if (b > 0)
			CHECK(v > pt_hist_upper(b - 1));
	}
	/* upper bounds increase, and within one power of two by at most 25% */
	for (size_t b = 1; b < PT_HIST_BUCKETS - 1; b++) {
		CHECK(pt_hist_upper(b) >= pt_hist_upper(b - 1));
		if (pt_hist_upper(b - 1) >= 16)
			CHECK(pt_hist_upper(b) <= pt_hist_upper(b - 1) * 5 / 4 + 1);
	}
	memset(&hist, 0, sizeof(hist));
	for (uint64_t v = 0; v < 1000; v++)
		pt_hist_add(&hist, v);
	CHECK_EQ(hist.total, 1000);
	uint64_t sum = 0;

	for (size_t b = 0; b < PT_HIST_BUCKETS; b++)
		sum += hist.count[b];
	CHECK_EQ(sum, 1000);
}

static struct pt_fork mk(const char *comm, uint64_t cpr, int64_t ptes, bool complete)
{
	struct pt_fork f;

	memset(&f, 0, sizeof(f));
	snprintf(f.parent_comm, sizeof(f.parent_comm), "%s", comm);
	f.parent_pid = 1;
	f.child_pid = 2;
	f.kernel_clone_ns = f.copy_process_ns = f.dup_mmap_ns = PT_NO_TIME;
	f.copy_page_range_ns = cpr;
	f.ptes = ptes;
	f.kind = PT_KIND_FORK;
	f.vmas = 3;
	f.pte_passes = 2;
	f.lock_breaks = complete ? 1 : 0;
	f.max_lock_hold_ns = 100;
	f.complete = complete;
	if (!complete)
		f.flags = PT_FORK_PARTIAL;
	return f;
}

static void test_summary(void)
{
	struct pt_fork f[5] = {mk("redis", 1000, 10, true), mk("redis", 3000, 30, true),
			       mk("bash", 500, 5, true), mk("bash", 9999999, 1, false),
			       mk("bash", 200, PT_NULL, true)};
	struct pt_summary s;

	CHECK_EQ(pt_summary_compute(f, 5, &s), 0);
	CHECK_EQ(s.forks, 5);
	CHECK_EQ(s.complete, 4);
	CHECK_EQ(s.flagged[1], 1);
	/* the partial fork is left out of the statistics */
	CHECK_EQ(s.phase[PT_PHASE_COPY_PAGE_RANGE].count, 4);
	CHECK_EQ(s.phase[PT_PHASE_COPY_PAGE_RANGE].max, 3000);
	CHECK_EQ(s.phase[PT_PHASE_KERNEL_CLONE].count, 0);
	CHECK_EQ(s.ptes, 45);
	CHECK_EQ(s.lock_breaks, 4);
	CHECK_EQ(s.forks_with_breaks, 4);
	/* cost per PTE over forks that have both: (1000 + 3000 + 500) / 45 */
	CHECK(fabs(s.ns_per_pte - 4500.0 / 45) < 1e-9);
	CHECK(fabs(s.ms_per_gib - 100.0 * 262144 / 1e6) < 1e-9);
	CHECK_EQ(s.nr_comms, 2);
	CHECK(!strcmp(s.by_comm[0].comm, "bash"));
	CHECK_EQ(s.by_comm[0].forks, 3);
	CHECK_EQ(s.by_comm[0].total.count, 2);
	CHECK_EQ(s.by_comm[0].complete, 2);
	pt_summary_release(&s);
}

/* A bare sched_process_fork (no graph: every phase null) is complete: the
 * summary and its process count it alike, and it has no time to rank. */
static void test_complete_untimed(void)
{
	struct pt_fork f[3] = {mk("sh", 1000, 10, true), mk("sh", PT_NO_TIME, PT_NULL, true),
			       mk("sh", 500, 5, false)};
	struct pt_summary s;
	size_t sum = 0;

	f[1].vmas = f[1].pte_passes = f[1].lock_breaks = PT_NULL;
	f[1].max_lock_hold_ns = PT_NO_TIME;
	CHECK_EQ(pt_summary_compute(f, 3, &s), 0);
	CHECK_EQ(s.complete, 2);
	CHECK_EQ(s.total.count, 1);
	CHECK_EQ(s.nr_comms, 1);
	CHECK_EQ(s.by_comm[0].forks, 3);
	CHECK_EQ(s.by_comm[0].complete, 2);
	CHECK_EQ(s.by_comm[0].total.count, 1);
	for (size_t i = 0; i < s.nr_comms; i++)
		sum += s.by_comm[i].complete;
	CHECK_EQ(sum, s.complete);
	pt_summary_release(&s);
}

/* Threads, spawns and clones of unknown kind are counted by kind and never
 * mixed into fork latency, unless asked for. */
static void test_kinds(void)
{
	struct pt_fork f[5] = {mk("java", 1000, 10, true), mk("java", 50, PT_NULL, true),
			       mk("java", 70, PT_NULL, true), mk("sh", 9000000, PT_NULL, true),
			       mk("sh", 300, PT_NULL, true)};
	struct pt_summary s;

	f[1].kind = f[2].kind = PT_KIND_THREAD;
	f[3].kind = PT_KIND_SPAWN; /* kernel_clone waited for the child's exec */
	f[4].kind = PT_KIND_UNKNOWN;
	CHECK_EQ(pt_summary_compute(f, 5, &s), 0);
	CHECK_EQ(s.kinds[PT_KIND_FORK], 1);
	CHECK_EQ(s.kinds[PT_KIND_THREAD], 2);
	CHECK_EQ(s.kinds[PT_KIND_SPAWN], 1);
	CHECK_EQ(s.kinds[PT_KIND_UNKNOWN], 1);
	CHECK_EQ(s.forks, 1);
	CHECK_EQ(s.total.count, 1);
	CHECK_EQ(s.total.max, 1000);
	CHECK_EQ(s.nr_comms, 1);
	pt_summary_release(&s);
	CHECK_EQ(pt_summary_compute_kinds(f, 5, PT_KINDS_ALL, &s), 0);
	CHECK_EQ(s.forks, 5);
	CHECK_EQ(s.total.max, 9000000);
	CHECK_EQ(s.nr_comms, 2);
	pt_summary_release(&s);
	CHECK_EQ(pt_kind_of_flags(0x11), PT_KIND_FORK);			 /* fork(): SIGCHLD */
	CHECK_EQ(pt_kind_of_flags(0x3d0f00), PT_KIND_THREAD);		 /* pthread_create */
	CHECK_EQ(pt_kind_of_flags(0x4111), PT_KIND_SPAWN);		 /* vfork, posix_spawn */
	CHECK_EQ(pt_kind_of_flags(PT_CLONE_VM | 0x11), PT_KIND_SPAWN); /* CLONE_VM alone */
	CHECK_EQ(pt_kind_parse("thread"), PT_KIND_THREAD);
	CHECK_EQ(pt_kind_parse("nope"), -1);
}

int main(void)
{
	test_percentiles();
	test_histogram();
	test_summary();
	test_complete_untimed();
	test_kinds();
	TEST_DONE();
}
