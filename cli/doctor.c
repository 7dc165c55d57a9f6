/* SPDX-License-Identifier: MIT */
/*
 * `ptescope doctor`: why a process's forks are slow and what to do, from a
 * database (`--db FILE`, read-only, with the report's filters) or from trace
 * files (replayed in memory, not stored). The examination and its output are
 * the analyzer's (analyzer/doctor.h); this file gathers the forks and prints.
 *
 * Sized like `ptescope report`: the forks are held in memory at once.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "doctor.h"
#include "replay.h"
#include "store.h"
#include "util.h"

static const char doctor_usage[] =
    "Usage: ptescope doctor --db FILE [--comm NAME] [--since T] [--until T] [OPTION]...\n"
    "       ptescope doctor [OPTION]... TRACE...\n"
    "For each process whose forks are slow: where the fork time went, the figures and\n"
    "the forks they come from, and advice where the evidence supports it.\n"
    "\n"
    "  --db FILE             examine the forks stored in FILE (opened read-only)\n"
    "  --comm NAME           with --db: only forks whose parent is named NAME\n"
    "  --since T, --until T  with --db: only forks in this range (as `ptescope report`)\n"
    "  --slow-us N           examine processes with a complete fork of at least N us\n"
    "                        (default 1000)\n"
    "  --max-procs N         at most N processes, slowest first (default 20)\n"
    "  --kind LIST           the kinds of clone examined: fork (default: a copy of the\n"
    "                        address space), thread, spawn, unknown, all\n"
    "  -f, --format FMT      text (default) or json\n"
    "  -o, --output FILE     write to FILE\n"
    "\n"
    "Trace files are replayed in memory (nothing is stored). Rules and their sources:\n"
    "docs/doctor.md. Exit status: 0 success, 1 an input could not be read, 2 usage.\n";

struct doctor_args {
	const char *db, *output;
	enum pt_report_format fmt;
	struct store_fork_filter flt;
	struct pt_doctor_opts opts;
	char **traces;
	int nr_traces;
};

struct forks {
	struct pt_fork *v;
	int64_t *ids; /* store ids, NULL for traces */
	size_t nr, cap;
	struct store_fork_row *rows; /* --db: owns the forks' memory */
};

static int num_option(const char *opt, const char *v, long long min, long long max, long long *out)
{
	if (pt_parse_int(v, min, max, out)) {
		fprintf(stderr, "ptescope doctor: %s must be %lld..%lld, not '%s'\n", opt, min, max,
			v);
		return -EINVAL;
	}
	return 0;
}

static int time_option(const char *opt, const char *v, uint64_t *ts, int64_t *wall)
{
	int64_t ns;
	bool is_wall;

	if (store_parse_time(v, store_now_ns(), &ns, &is_wall)) {
		fprintf(stderr, "ptescope doctor: %s: '%s' is not a time\n", opt, v);
		return -EINVAL;
	}
	if (is_wall)
		*wall = ns ? ns : 1;
	else
		*ts = ns ? (uint64_t)ns : 1;
	return 0;
}

/* One option of getopt's @opt. 0 to go on, else the exit status (-1: --help printed). */
static int one_option(int opt, struct doctor_args *a)
{
	long long v;

	switch (opt) {
	case 'D':
		a->db = optarg;
		return 0;
	case 'f':
		if (!cli_parse_format(optarg, &a->fmt))
			return 0;
		fprintf(stderr, "ptescope doctor: --format must be text or json\n");
		return EXIT_USAGE;
	case 'c':
		a->flt.comm = optarg;
		return 0;
	case 's':
		return time_option("--since", optarg, &a->flt.since_ts_ns, &a->flt.since_wall_ns)
			   ? EXIT_USAGE
			   : 0;
	case 'u':
		return time_option("--until", optarg, &a->flt.until_ts_ns, &a->flt.until_wall_ns)
			   ? EXIT_USAGE
			   : 0;
	case 'S':
		if (num_option("--slow-us", optarg, 1, 3600000000LL, &v))
			return EXIT_USAGE;
		a->opts.slow_ns = (uint64_t)v * 1000;
		return 0;
	case 'M':
		if (num_option("--max-procs", optarg, 1, 100000, &v))
			return EXIT_USAGE;
		a->opts.max_procs = (size_t)v;
		return 0;
	case 'o':
		a->output = optarg;
		return 0;
	case 'K':
		return cli_parse_kinds("doctor", optarg, &a->opts.kinds) ? EXIT_USAGE : 0;
	case 'h':
		fputs(doctor_usage, stdout);
		return -1;
	default:
		fprintf(stderr, "ptescope doctor: see 'ptescope doctor --help'\n");
		return EXIT_USAGE;
	}
}

/* Returns -2 to go on, else the exit status. */
static int parse_args(int argc, char **argv, struct doctor_args *a)
{
	static const struct option longopts[] = {
	    {"db", required_argument, NULL, 'D'},      {"format", required_argument, NULL, 'f'},
	    {"comm", required_argument, NULL, 'c'},    {"since", required_argument, NULL, 's'},
	    {"until", required_argument, NULL, 'u'},   {"output", required_argument, NULL, 'o'},
	    {"slow-us", required_argument, NULL, 'S'}, {"max-procs", required_argument, NULL, 'M'},
	    {"kind", required_argument, NULL, 'K'},   {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0}};
	int opt, r;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "f:o:h", longopts, NULL)) != -1)
		if ((r = one_option(opt, a)))
			return r < 0 ? 0 : r;
	a->traces = argv + optind;
	a->nr_traces = argc - optind;
	if (!a->db == !a->nr_traces) {
		fprintf(stderr, "ptescope doctor: give either --db FILE or trace files\n");
		return EXIT_USAGE;
	}
	if (!a->db && (a->flt.comm || a->flt.since_ts_ns || a->flt.since_wall_ns ||
		       a->flt.until_ts_ns || a->flt.until_wall_ns)) {
		fprintf(stderr, "ptescope doctor: --comm, --since and --until go with --db\n");
		return EXIT_USAGE;
	}
	return -2;
}

/* Keeps a replayed fork with its VMA copies (huge PMDs count), not its passes. */
static int keep_fork(const struct pt_fork *f, void *ctx, char *err, size_t errlen)
{
	struct forks *l = ctx;
	struct pt_fork lean = *f;

	if (pt_grow_array_from((void **)&l->v, &l->cap, l->nr + 1, sizeof(*l->v), 256))
		goto oom;
	lean.pass = NULL;
	lean.nr_pass = 0;
	if (pt_fork_copy(&l->v[l->nr], &lean))
		goto oom;
	l->nr++;
	return 0;
oom:
	snprintf(err, errlen, "out of memory");
	return -ENOMEM;
}

static int read_traces(const struct doctor_args *a, struct forks *l)
{
	for (int i = 0; i < a->nr_traces; i++) {
		struct pt_replay_opts o = {.input = i, .on_fork = keep_fork, .ctx = l};
		struct pt_replay_result res;
		char err[512] = "";

		if (pt_replay_file(a->traces[i], &o, &res, err, sizeof(err))) {
			fprintf(stderr, "ptescope doctor: %s: %s\n", a->traces[i], err);
			return EXIT_INPUT;
		}
	}
	return 0;
}

static int read_db(struct doctor_args *a, struct forks *l)
{
	struct store_opts so = {.read_only = true};
	struct store *s = NULL;
	char err[512] = "";
	int r = store_open(a->db, &so, &s, err, sizeof(err));

	if (!r)
		r = store_query_forks(s, &a->flt, &l->rows, &l->nr, NULL, err, sizeof(err));
	store_close(s);
	if (r) {
		fprintf(stderr, "ptescope doctor: %s\n", err);
		return EXIT_INPUT;
	}
	l->v = calloc(l->nr ? l->nr : 1, sizeof(*l->v));
	l->ids = calloc(l->nr ? l->nr : 1, sizeof(*l->ids));
	if (!l->v || !l->ids) {
		fprintf(stderr, "ptescope doctor: out of memory\n");
		return EXIT_INPUT;
	}
	for (size_t i = 0; i < l->nr; i++) {
		l->v[i] = l->rows[i].fork;
		l->ids[i] = l->rows[i].id;
	}
	return 0;
}

static int write_out(const struct doctor_args *a, const struct pt_doctor_report *rep)
{
	FILE *out = stdout;
	json_t *j = NULL;
	int r = 0;

	if (a->output && !(out = fopen(a->output, "we"))) {
		fprintf(stderr, "ptescope doctor: %s: %s\n", a->output, strerror(errno));
		return EXIT_INPUT;
	}
	if (a->fmt == PT_REPORT_JSON) {
		j = pt_doctor_json(rep);
		if (!j || json_dumpf(j, out, JSON_INDENT(1) | JSON_PRESERVE_ORDER) ||
		    fputc('\n', out) == EOF)
			r = -EIO;
		json_decref(j);
	} else {
		r = pt_doctor_write_text(out, rep);
	}
	if (fflush(out) && !r)
		r = -EIO;
	if (out != stdout && fclose(out) && !r)
		r = -EIO;
	if (r) {
		fprintf(stderr, "ptescope doctor: writing failed: %s\n", strerror(-r));
		return EXIT_INPUT;
	}
	return 0;
}

static void forks_free(struct forks *l)
{
	if (l->rows) {
		store_fork_rows_free(l->rows, l->nr); /* owns the forks' memory */
	} else {
		for (size_t i = 0; i < l->nr; i++)
			pt_fork_release(&l->v[i]);
	}
	free(l->v);
	free(l->ids);
}

int cli_doctor(int argc, char **argv)
{
	struct doctor_args a = {.fmt = PT_REPORT_TEXT,
				.flt = {.pid = -1, .complete_sources = true, .oldest_first = true}};
	struct pt_doctor_report rep;
	struct forks l = {0};
	int status = parse_args(argc, argv, &a);

	if (status != -2)
		return status;
	status = a.db ? read_db(&a, &l) : read_traces(&a, &l);
	if (!status) {
		if (pt_doctor_run(l.v, l.ids, l.nr, &a.opts, &rep)) {
			fprintf(stderr, "ptescope doctor: out of memory\n");
			status = EXIT_INPUT;
		} else {
			status = write_out(&a, &rep);
			pt_doctor_release(&rep);
		}
	}
	forks_free(&l);
	return status;
}
