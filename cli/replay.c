/* SPDX-License-Identifier: MIT */
/*
 * `ptescope replay TRACE...`: reads trace files (format detected from
 * content), rebuilds every fork and prints a report; with --db it also
 * stores the forks, one content-hashed source per file. Each file goes
 * through the one replay path (analyzer/replay.h), the store as its sink
 * (store/store_sink.h); this file parses the options, shows progress and
 * prints the errors.
 */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "replay.h"
#include "store_sink.h"
#include "util.h"

struct replay_args {
	enum pt_report_format fmt;
	const char *output, *db;
	int retention_days;   /* 0: keep forever */
	int64_t max_db_bytes; /* 0: no size limit */
	bool sync_full;
	bool progress;
	unsigned kinds; /* the summary's; 0: address-space copies */
};

struct progress {
	bool on;
	const char *name;
	struct timespec start, last; /* start: the first call for this file */
	bool started, shown;
};

/* The forks for the report; per-VMA and per-pass detail is not kept. */
struct fork_list {
	struct pt_fork *forks;
	size_t nr, cap;
};

/* ", N s left" at the pace so far, once a second has gone by; "" before. */
static const char *time_left(const struct progress *p, const struct timespec *now, uint64_t done,
			     uint64_t total)
{
	static char buf[48];
	double spent = (double)(now->tv_sec - p->start.tv_sec) +
		       (double)(now->tv_nsec - p->start.tv_nsec) / 1e9;

	if (spent < 1.0 || !done || done > total)
		return "";
	snprintf(buf, sizeof(buf), ", %.0f s left", spent * (double)(total - done) / (double)done);
	return buf;
}

static void progress_cb(uint64_t done, uint64_t total, void *ctx)
{
	struct progress *p = ctx;
	struct timespec now;

	if (!p->on)
		return;
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (!p->started) {
		p->start = now;
		p->started = true;
	}
	if (p->shown &&
	    (now.tv_sec - p->last.tv_sec) * 1000000000L + now.tv_nsec - p->last.tv_nsec <
		250000000L)
		return;
	p->last = now;
	p->shown = true;
	if (total)
		fprintf(stderr, "\r\033[Kreading %s: %3.0f%% (%.0f of %.0f MiB%s)", p->name,
			100.0 * (double)done / (double)total, done / 1048576.0, total / 1048576.0,
			time_left(p, &now, done, total));
	else
		fprintf(stderr, "\r\033[Kreading %s: %.1f M events", p->name, done / 1e6);
}

static void progress_clear(struct progress *p)
{
	if (p->on && p->shown)
		fprintf(stderr, "\r\033[K");
	p->shown = false;
}

static int collect_fork(const struct pt_fork *f, void *ctx, char *err, size_t errlen)
{
	struct fork_list *l = ctx;

	if (pt_grow_array_from((void **)&l->forks, &l->cap, l->nr + 1, sizeof(*l->forks), 256)) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	/* the report needs the fork object only; the store took the detail */
	l->forks[l->nr] = *f;
	l->forks[l->nr].vma = NULL;
	l->forks[l->nr].pass = NULL;
	l->forks[l->nr].nr_vma = l->forks[l->nr].nr_pass = 0;
	l->nr++;
	return 0;
}

/* The --db options. Returns 0 or EXIT_USAGE (printed). */
static int db_option(struct replay_args *a, int opt, const char *v)
{
	long long x;

	if (opt == 'R' && !pt_parse_int(v, 0, STORE_RETENTION_DAYS_MAX, &x)) {
		a->retention_days = (int)x;
		return 0;
	}
	if (opt == 'M' && !pt_parse_int(v, 0, STORE_MAX_DB_MB_MAX, &x)) {
		a->max_db_bytes = (int64_t)x * 1048576;
		return 0;
	}
	if (opt == 'S' && (!strcmp(v, "normal") || !strcmp(v, "full"))) {
		a->sync_full = !strcmp(v, "full");
		return 0;
	}
	if (opt == 'R')
		fprintf(stderr,
			"ptescope replay: --retention-days wants days from 0 to %d, not '%s'\n",
			STORE_RETENTION_DAYS_MAX, v);
	else if (opt == 'M')
		fprintf(stderr, "ptescope replay: --max-db-mb wants MiB from 0 to 2^30, not '%s'\n",
			v);
	else
		fprintf(stderr, "ptescope replay: --db-sync wants normal or full, not '%s'\n", v);
	return EXIT_USAGE;
}

/* Parses argv into @a. Returns -1 to go on, else the exit status. */
static int parse_args(int argc, char **argv, struct replay_args *a)
{
	static const struct option longopts[] = {{"format", required_argument, NULL, 'f'},
						 {"output", required_argument, NULL, 'o'},
						 {"db", required_argument, NULL, 'D'},
						 {"quiet", no_argument, NULL, 'q'},
						 {"help", no_argument, NULL, 'h'},
						 {"retention-days", required_argument, NULL, 'R'},
						 {"max-db-mb", required_argument, NULL, 'M'},
						 {"db-sync", required_argument, NULL, 'S'},
						 {"kind", required_argument, NULL, 'K'},
						 {NULL, 0, NULL, 0}};
	int opt;

	while ((opt = getopt_long(argc, argv, "f:o:qh", longopts, NULL)) != -1) {
		if (opt == 'R' || opt == 'M' || opt == 'S') {
			if (db_option(a, opt, optarg))
				return EXIT_USAGE;
		} else if (opt == 'f') {
			if (cli_parse_format(optarg, &a->fmt)) {
				fprintf(
				    stderr,
				    "ptescope replay: --format must be text or json, not '%s'\n",
				    optarg);
				return EXIT_USAGE;
			}
		} else if (opt == 'o' || opt == 'D') {
			*(opt == 'o' ? &a->output : &a->db) = optarg;
		} else if (opt == 'K') {
			if (cli_parse_kinds("replay", optarg, &a->kinds))
				return EXIT_USAGE;
		} else if (opt == 'q') {
			a->progress = false;
		} else if (opt == 'h') {
			fputs(cli_usage, stdout);
			return 0;
		} else {
			fprintf(stderr, "ptescope replay: see 'ptescope --help'\n");
			return EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		fprintf(stderr,
			"ptescope replay: no trace file given (usage: ptescope replay [--db "
			"FILE] [--format text|json] TRACE...)\n");
		return EXIT_USAGE;
	}
	return -1;
}

/* Opens the database and its sink. Returns 0 or EXIT_INPUT (printed). */
static int db_open(const struct replay_args *a, struct store **s, struct store_sink **k)
{
	struct store_opts so = {.sync_full = a->sync_full};
	size_t n = strlen(a->db);
	char err[512] = "";
	int r = store_open(a->db, &so, s, err, sizeof(err));

	if (!r && store_sink_new(*s, NULL, k)) {
		r = -ENOMEM;
		snprintf(err, sizeof(err), "out of memory");
	}
	if (!r)
		return 0;
	/* the message names the database once: drop the store's "PATH: " */
	if (!strncmp(err, a->db, n) && !strncmp(err + n, ": ", 2))
		memmove(err, err + n + 2, strlen(err + n + 2) + 1);
	fprintf(stderr, "ptescope replay: %s: %s\n", a->db, err);
	store_close(*s);
	*s = NULL;
	return EXIT_INPUT;
}

/* Retention, then close. Returns 0 or EXIT_INPUT (printed). */
static int db_close(const struct replay_args *a, struct store *s, struct store_sink *k)
{
	char err[512] = "";
	int r = 0, r2;

	if (!s)
		return 0;
	store_sink_free(k);
	if (a->retention_days || a->max_db_bytes)
		r = store_enforce_retention(s, a->retention_days, a->max_db_bytes, NULL, err,
					    sizeof(err));
	r2 = store_close(s);
	if (!r && r2) {
		snprintf(err, sizeof(err), "closing the database failed: %s", strerror(-r2));
		r = r2;
	}
	if (!r)
		return 0;
	fprintf(stderr, "ptescope replay: %s: %s\n", a->db, err);
	return EXIT_INPUT;
}

/* Replays every file into @l (and the sink). Returns the number that failed. */
static int replay_all(char **paths, int nr, struct store_sink *k, struct progress *prog,
		      struct fork_list *l, struct pt_report_input *inputs)
{
	struct pt_replay_opts o = {.sink = k ? store_sink_replay(k) : NULL,
				   .on_fork = collect_fork,
				   .ctx = l,
				   .progress = progress_cb,
				   .progress_ctx = prog};
	int failed = 0;

	for (int i = 0; i < nr; i++) {
		struct pt_replay_result res;
		char err[512] = "";
		int ret;

		o.input = i;
		prog->name = paths[i];
		prog->started = false;
		ret = pt_replay_file(paths[i], &o, &res, err, sizeof(err));
		progress_clear(prog);
		inputs[i] = (struct pt_report_input){.path = paths[i],
						     .format = res.format,
						     .stats = res.stats,
						     .forks = res.forks,
						     .skipped = res.skipped};
		if (ret) {
			fprintf(stderr, "ptescope replay: %s: %s\n", paths[i], err);
			inputs[i].error = strdup(err);
			failed++;
			if (ret == -ENOMEM)
				return nr;
		}
	}
	return failed;
}

int cli_replay(int argc, char **argv)
{
	struct replay_args a = {.fmt = PT_REPORT_TEXT, .progress = isatty(STDERR_FILENO)};
	struct store *s = NULL;
	struct store_sink *k = NULL;
	struct fork_list l = {0};
	struct pt_report_input *inputs;
	struct progress prog;
	int nr, failed, status = parse_args(argc, argv, &a);

	if (status >= 0)
		return status;
	nr = argc - optind;
	prog = (struct progress){.on = a.progress};
	if (a.db && (status = db_open(&a, &s, &k)))
		return status;
	inputs = calloc((size_t)nr, sizeof(*inputs));
	if (!inputs) {
		fprintf(stderr, "ptescope replay: out of memory\n");
		db_close(&a, s, k);
		return EXIT_INPUT;
	}
	failed = replay_all(argv + optind, nr, k, &prog, &l, inputs);
	status = db_close(&a, s, k);
	if (failed < nr &&
	    cli_write_report("replay", a.output, a.fmt, a.kinds, inputs, (size_t)nr, l.forks, l.nr))
		status = EXIT_INPUT;
	if (failed)
		status = EXIT_INPUT;
	for (size_t i = 0; i < l.nr; i++)
		pt_fork_release(&l.forks[i]);
	free(l.forks);
	for (int i = 0; i < nr; i++)
		free((char *)inputs[i].error);
	free(inputs);
	return status;
}
