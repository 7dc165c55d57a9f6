/* SPDX-License-Identifier: MIT */
/*
 * Store benchmark: inserts N synthetic forks (with VMA and pass detail)
 * spread over a week of wall time through the store's normal write path,
 * then times the queries the API makes against them from a read-only handle.
 * Prints one "name value unit" line per figure for bench.sh.
 *
 *   store_bench DB [FORKS] [MAX_PASSES_PER_FORK]
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "store.h"
#include "synth.h"

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

#define RUNS 200

/* Runs @fn RUNS times, prints p50/p99/max latency in ms. */
static void lat(const char *name, int (*fn)(struct store *, void *), struct store *s, void *ctx)
{
	double t[RUNS];
	int i;

	for (i = 0; i < RUNS; i++) {
		double a = now_s();

		if (fn(s, ctx)) {
			printf("%s FAILED %s\n", name, store_errmsg(s));
			return;
		}
		t[i] = (now_s() - a) * 1e3;
	}
	qsort(t, RUNS, sizeof(t[0]), cmp_double);
	printf("query_%s_ms p50 %.2f p99 %.2f max %.2f\n", name, t[RUNS / 2],
	       t[RUNS * 99 / 100], t[RUNS - 1]);
}

struct qctx {
	int64_t now, t0;
	const char *comm;
	int i;
};

static int q_stats_all(struct store *s, void *c)
{
	struct store_stat st[STORE_M_COUNT];
	struct store_range r = {0};

	return store_stats(s, &r, st, NULL, 0);
}

static int q_stats_day(struct store *s, void *c)
{
	struct qctx *q = c;
	struct store_stat st[STORE_M_COUNT];
	/* a 24 h window somewhere in the week, not minute-aligned */
	struct store_range r = {.since_wall_ns = q->t0 + (int64_t)(q->i++ % 6) * 86400000000000ll +
						 12345678901ll};

	r.until_wall_ns = r.since_wall_ns + 86400000000000ll;
	return store_stats(s, &r, st, NULL, 0);
}

static int q_stats_comm(struct store *s, void *c)
{
	struct store_stat st[STORE_M_COUNT];
	struct store_range r = {.comm = "redis-server"};

	return store_stats(s, &r, st, NULL, 0);
}

static int q_hist_all(struct store *s, void *c)
{
	struct store_histogram h;
	struct store_range r = {0};
	int ret = store_histogram(s, &r, STORE_M_COPY_PAGE_RANGE, &h, NULL, 0);

	store_histogram_free(&h);
	return ret;
}

static int q_hist_day(struct store *s, void *c)
{
	struct qctx *q = c;
	struct store_histogram h;
	struct store_range r = {.since_wall_ns = q->t0 + (int64_t)(q->i++ % 6) * 86400000000000ll +
						 12345678901ll};
	int ret;

	r.until_wall_ns = r.since_wall_ns + 86400000000000ll;
	ret = store_histogram(s, &r, STORE_M_FORK, &h, NULL, 0);
	store_histogram_free(&h);
	return ret;
}

static int q_cost_all(struct store *s, void *c)
{
	struct store_cost cost;
	struct store_range r = {0};

	return store_cost(s, &r, &cost, NULL, 0);
}

static int q_cost_day(struct store *s, void *c)
{
	struct qctx *q = c;
	struct store_cost cost;
	struct store_range r = {.since_wall_ns = q->t0 + (int64_t)(q->i++ % 6) * 86400000000000ll +
						 12345678901ll};

	r.until_wall_ns = r.since_wall_ns + 86400000000000ll;
	return store_cost(s, &r, &cost, NULL, 0);
}

static int q_cost_comm(struct store *s, void *c)
{
	struct store_cost cost;
	struct store_range r = {.comm = "redis-server"};

	return store_cost(s, &r, &cost, NULL, 0);
}

static int q_top(struct store *s, void *c)
{
	struct store_top_comm top[10];
	struct store_range r = {0};
	size_t n;

	return store_top_comms(s, &r, top, 10, &n, NULL, 0);
}

static int q_timeseries(struct store *s, void *c)
{
	static struct store_ts_point pts[200];
	struct store_range r = {0};
	size_t n;

	return store_timeseries(s, &r, STORE_M_FORK, 3600, pts, 200, &n, NULL, 0);
}

static int q_forks_page(struct store *s, void *c)
{
	struct qctx *q = c;
	struct store_fork_filter f = {.comm = "postgres", .pid = -1, .limit = 100};
	struct store_fork_row *rows;
	size_t n;
	int64_t next;
	int r;

	/* second page from a cursor deep in the table */
	f.cursor = 1 + (int64_t)(q->i++ * 7919 % 900000);
	r = store_query_forks(s, &f, &rows, &n, &next, NULL, 0);
	if (!r)
		store_fork_rows_free(rows, n);
	return r;
}

static int q_forks_slow(struct store *s, void *c)
{
	struct store_fork_filter f = {.comm = "redis-server", .pid = -1, .min_us = 900, .limit = 100};
	struct store_fork_row *rows;
	size_t n;
	int r = store_query_forks(s, &f, &rows, &n, NULL, NULL, 0);

	if (!r)
		store_fork_rows_free(rows, n);
	return r;
}

static int q_fork_detail(struct store *s, void *c)
{
	struct qctx *q = c;
	struct store_fork_row row;
	int r = store_get_fork(s, 1 + (q->i++ * 104729) % 1000000, &row, NULL, 0);

	if (!r) {
		free(row.fork.vma);
		free(row.fork.pass);
	}
	return r == -ENOENT ? 0 : r;
}

int main(int argc, char **argv)
{
	const char *path = argc > 1 ? argv[1] : "/tmp/store-bench.db";
	unsigned long n = argc > 2 ? strtoul(argv[2], NULL, 10) : 1000000;
	unsigned max_pass = argc > 3 ? (unsigned)strtoul(argv[3], NULL, 10) : 16;
	int64_t week_ns = 7 * 86400000000000ll, now = store_now_ns();
	struct store_source_info info = {.kind = STORE_SOURCE_LIVE,
					 .format = "live",
					 .host = "bench",
					 .clock_offset_ns = now - week_ns};
	struct store *s;
	struct store_opts o = {0};
	struct qctx q = {.now = now, .t0 = now - week_ns};
	uint64_t passes = 0;
	char err[512], side[600];
	struct stat sb;
	int64_t src;
	unsigned long i;
	double a, secs;
	bool done;

	unlink(path);
	snprintf(side, sizeof(side), "%s-wal", path);
	unlink(side);
	if (store_open(path, &o, &s, err, sizeof(err)) ||
	    store_source_begin(s, &info, &src, &done, err, sizeof(err))) {
		fprintf(stderr, "store_bench: %s\n", err);
		return 1;
	}
	a = now_s();
	for (i = 0; i < n; i++) {
		struct pt_fork f;

		synth_fork(&f, 42, i, max_pass);
		f.ts_ns = (uint64_t)((double)i * (double)week_ns / (double)n);
		passes += f.nr_pass;
		if (store_insert_fork(s, src, &f, NULL, err, sizeof(err))) {
			fprintf(stderr, "store_bench: %s\n", err);
			return 1;
		}
		synth_release(&f);
	}
	if (store_source_end(s, src, NULL, err, sizeof(err))) {
		fprintf(stderr, "store_bench: %s\n", err);
		return 1;
	}
	secs = now_s() - a;
	store_close(s);
	stat(path, &sb);
	printf("forks_stored %lu\n", n);
	printf("passes_stored %llu\n", (unsigned long long)passes);
	printf("insert_seconds %.2f\n", secs);
	printf("forks_per_s %.0f\n", (double)n / secs);
	printf("passes_per_s %.0f\n", (double)passes / secs);
	printf("rows_per_s %.0f\n", (double)(n * 6 + passes) / secs); /* fork + ~5 VMAs + passes */
	printf("db_bytes %lld\n", (long long)sb.st_size);
	printf("bytes_per_fork %.0f (including its VMAs and passes, indexes, rollups)\n",
	       (double)sb.st_size / (double)n);

	o.read_only = true;
	if (store_open(path, &o, &s, err, sizeof(err))) {
		fprintf(stderr, "store_bench: %s\n", err);
		return 1;
	}
	lat("stats_all_week", q_stats_all, s, &q);
	lat("stats_24h", q_stats_day, s, &q);
	lat("stats_comm", q_stats_comm, s, &q);
	lat("histogram_all_week", q_hist_all, s, &q);
	lat("histogram_24h", q_hist_day, s, &q);
	lat("cost_all_week", q_cost_all, s, &q);
	lat("cost_24h", q_cost_day, s, &q);
	lat("cost_comm", q_cost_comm, s, &q);
	lat("top_comms", q_top, s, &q);
	lat("timeseries_hourly", q_timeseries, s, &q);
	lat("forks_page_comm_cursor", q_forks_page, s, &q);
	lat("forks_comm_min_us", q_forks_slow, s, &q);
	lat("fork_detail", q_fork_detail, s, &q);
	store_close(s);
	return 0;
}
