/* SPDX-License-Identifier: MIT */
/*
 * Fills a database with N synthetic forks (tests/store/synth.h) spread over
 * the last week of wall time, as one live source, through the store's normal
 * write path: volume for the HTTP tests' paging and the benchmark's 1M-fork
 * stats. Real forks come from `ptescope replay --db` on the fixtures.
 *
 *   http_synth DB FORKS [MAX_PASSES_PER_FORK] [SEED] [COMM]
 *
 * With COMM (any bytes: names that are not UTF-8), every 10th fork has it as
 * its parent's and child's comm.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "store.h"
#include "synth.h"

static unsigned long arg(const char *s, const char *what)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end) {
		fprintf(stderr, "http_synth: %s: not a number: %s\n", what, s);
		exit(2);
	}
	return v;
}

int main(int argc, char **argv)
{
	int64_t week_ns = 7 * 86400000000000ll, now = store_now_ns();
	struct store_source_info info = {.kind = STORE_SOURCE_LIVE,
					 .format = "live",
					 .host = "synth",
					 .size_bytes = -1,
					 .clock_offset_ns = now - week_ns};
	unsigned long n, max_pass, seed, i;
	struct store *s;
	char err[512];
	int64_t src;
	bool done;

	if (argc < 3) {
		fprintf(stderr, "usage: http_synth DB FORKS [MAX_PASSES] [SEED] [COMM]\n");
		return 2;
	}
	n = arg(argv[2], "FORKS");
	max_pass = argc > 3 ? arg(argv[3], "MAX_PASSES") : 8;
	seed = argc > 4 ? arg(argv[4], "SEED") : 42;
	if (store_open(argv[1], NULL, &s, err, sizeof(err)) ||
	    store_source_begin(s, &info, &src, &done, err, sizeof(err))) {
		fprintf(stderr, "http_synth: %s\n", err);
		return 1;
	}
	for (i = 0; i < n; i++) {
		struct pt_fork f;

		synth_fork(&f, seed, i, (unsigned)max_pass);
		if (argc > 5 && i % 10 == 0) {
			snprintf(f.parent_comm, sizeof(f.parent_comm), "%s", argv[5]);
			snprintf(f.child_comm, sizeof(f.child_comm), "%s", argv[5]);
		}
		/* ts spans the week before now; wall = ts + offset */
		f.ts_ns = (uint64_t)((double)i * (double)week_ns / (double)n);
		if (store_insert_fork(s, src, &f, NULL, err, sizeof(err))) {
			fprintf(stderr, "http_synth: %s\n", err);
			return 1;
		}
		synth_release(&f);
	}
	if (store_source_end(s, src, NULL, err, sizeof(err)) || store_close(s)) {
		fprintf(stderr, "http_synth: %s\n", err);
		return 1;
	}
	return 0;
}
