/* SPDX-License-Identifier: MIT */
/*
 * The store's side of the `ptescope` command line (store_cli.h): the replay
 * sink and the `report` subcommand.
 *
 * Fed by the ptescope main (analyzer/cli/ptescope.c): the sink gets one
 * begin/forks/end sequence per trace file; report gets its argv. Feeds the
 * store (store.h) and, for report, the analyzer's report writer, so that a
 * database reports exactly what the replay that filled it printed. Sized for
 * reports of up to a few million forks held in memory at once (the report
 * writer takes an array); the API is the way to page through more.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "report.h"
#include "store.h"
#include "store_cli.h"

#define EXIT_INPUT 1
#define EXIT_USAGE 2

struct store_sink {
	struct store *store;
	struct store_sink_opts opts;
	int64_t source_id;
	bool active;
	char host[256];
	char errmsg[512];
};

static int parse_int(const char *v, long long min, long long max, long long *out)
{
	char *end;
	long long x;

	errno = 0;
	x = strtoll(v, &end, 10);
	if (errno || end == v || *end || x < min || x > max)
		return -EINVAL;
	*out = x;
	return 0;
}

int store_sink_parse_option(struct store_sink_opts *o, const char *name, const char *value,
			    char *err, size_t errlen)
{
	long long x;

	if (!strcmp(name, "retention-days")) {
		if (parse_int(value, 0, 100000, &x)) {
			snprintf(err, errlen, "--retention-days wants days from 0 to 100000, not '%s'",
				 value);
			return -EINVAL;
		}
		o->retention_days = (int)x;
		return 0;
	}
	if (!strcmp(name, "max-db-mb")) {
		if (parse_int(value, 0, 1LL << 30, &x)) {
			snprintf(err, errlen, "--max-db-mb wants MiB from 0 to 2^30, not '%s'", value);
			return -EINVAL;
		}
		o->max_db_bytes = (int64_t)x * 1048576;
		return 0;
	}
	if (!strcmp(name, "db-sync")) {
		if (strcmp(value, "normal") && strcmp(value, "full")) {
			snprintf(err, errlen, "--db-sync wants normal or full, not '%s'", value);
			return -EINVAL;
		}
		o->sync_full = !strcmp(value, "full");
		return 0;
	}
	return -ENOENT;
}

int store_sink_open_opts(const char *db_path, const struct store_sink_opts *opts,
			 struct store_sink **out, char *err, size_t errlen)
{
	struct store_sink *k;
	struct store_opts so = {0};
	int r;

	*out = NULL;
	k = calloc(1, sizeof(*k));
	if (!k) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	if (opts)
		k->opts = *opts;
	so.sync_full = k->opts.sync_full;
	r = store_open(db_path, &so, &k->store, err, errlen);
	if (r) {
		size_t n = strlen(db_path);

		/* the caller names the database; drop the store's "PATH: " */
		if (!strncmp(err, db_path, n) && !strncmp(err + n, ": ", 2))
			memmove(err, err + n + 2, strlen(err + n + 2) + 1);
		free(k);
		return r;
	}
	if (gethostname(k->host, sizeof(k->host) - 1))
		k->host[0] = 0;
	*out = k;
	return 0;
}

int store_sink_open(const char *db_path, struct store_sink **out, char *err, size_t errlen)
{
	return store_sink_open_opts(db_path, NULL, out, err, errlen);
}

int store_sink_source_begin(struct store_sink *k, const char *path, int fd, enum pt_format fmt,
			    bool *already_done, char *err, size_t errlen)
{
	struct store_source_info info = {.kind = STORE_SOURCE_REPLAY,
					 .host = k->host[0] ? k->host : NULL,
					 .path = path,
					 .format = pt_format_name(fmt),
					 .clock_offset_ns = INT64_MIN};
	char hex[65];
	int64_t size;
	int r;

	*already_done = false;
	k->errmsg[0] = 0;
	if (k->active) {
		snprintf(err, errlen, "internal: a source is already open");
		return -EBUSY;
	}
	r = store_hash_fd(fd, hex, &size, err, errlen);
	if (r)
		return r;
	info.content_sha256 = hex;
	info.size_bytes = size;
	r = store_source_begin(k->store, &info, &k->source_id, already_done, err, errlen);
	if (r)
		return r;
	k->active = !*already_done;
	return 0;
}

int store_sink_fork(struct store_sink *k, const struct pt_fork *f)
{
	if (!k->active)
		return 0;
	return store_insert_fork(k->store, k->source_id, f, NULL, k->errmsg, sizeof(k->errmsg));
}

const char *store_sink_errmsg(const struct store_sink *k)
{
	return k ? k->errmsg : "";
}

int store_sink_source_end(struct store_sink *k, const struct pt_input_stats *st, char *err,
			  size_t errlen)
{
	int r;

	if (!k->active)
		return 0;
	r = store_source_end(k->store, k->source_id, st, err, errlen);
	if (!r)
		k->active = false;
	return r;
}

int store_sink_close(struct store_sink *k, char *err, size_t errlen)
{
	int r = 0, r2;

	if (!k)
		return 0;
	if (k->active) /* its input failed half-way: do not keep half a file */
		r = store_source_abort(k->store, k->source_id, err, errlen);
	if (!r && (k->opts.retention_days || k->opts.max_db_bytes))
		r = store_enforce_retention(k->store, k->opts.retention_days, k->opts.max_db_bytes,
					    NULL, err, errlen);
	r2 = store_close(k->store);
	if (!r && r2) {
		snprintf(err, errlen, "closing the database failed: %s", strerror(-r2));
		r = r2;
	}
	free(k);
	return r;
}

/* ---- ptescope report ---- */

static const char report_usage[] =
	"Usage: ptescope report --db FILE [--format text|json] [--comm NAME] [--since T]\n"
	"                       [--until T] [--output FILE]\n"
	"Report on the forks stored in FILE, as `ptescope replay` printed them.\n"
	"\n"
	"  --db FILE             the database (required; opened read-only)\n"
	"  -f, --format FMT      text (default) or json\n"
	"  --comm NAME           only forks whose parent is named NAME\n"
	"  --since T, --until T  only forks from T (inclusive) until T (exclusive):\n"
	"                        digits are trace-clock nanoseconds as the report prints\n"
	"                        them (ts_ns); -90s, -15m, -1h, -7d (before now) and\n"
	"                        RFC 3339 (2024-05-01T12:00:00Z) are wall-clock times\n"
	"  -o, --output FILE     write the report to FILE\n";

static enum pt_format format_of(const char *name)
{
	int f;

	for (f = PT_FMT_UNKNOWN; f <= PT_FMT_REPORT_TEXT; f++)
		if (name && !strcmp(name, pt_format_name((enum pt_format)f)))
			return (enum pt_format)f;
	return PT_FMT_UNKNOWN;
}

static int time_option(const char *opt, const char *v, uint64_t *ts, int64_t *wall)
{
	int64_t ns;
	bool is_wall;

	if (store_parse_time(v, store_now_ns(), &ns, &is_wall)) {
		fprintf(stderr,
			"ptescope report: %s: '%s' is not a time (nanoseconds, -1h, -30m, -7d or "
			"RFC 3339)\n",
			opt, v);
		return -EINVAL;
	}
	if (is_wall)
		*wall = ns ? ns : 1;
	else
		*ts = ns ? (uint64_t)ns : 1;
	return 0;
}

static int source_index(const struct store_source *src, size_t nr, int64_t id)
{
	size_t lo = 0, hi = nr;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (src[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < nr && src[lo].id == id ? (int)lo : -1;
}

int store_cli_report(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"db", required_argument, NULL, 'D'},	 {"format", required_argument, NULL, 'f'},
		{"comm", required_argument, NULL, 'c'},	 {"since", required_argument, NULL, 's'},
		{"until", required_argument, NULL, 'u'}, {"output", required_argument, NULL, 'o'},
		{"help", no_argument, NULL, 'h'},	 {NULL, 0, NULL, 0}};
	struct store_fork_filter flt = {.pid = -1, .complete_sources = true, .oldest_first = true};
	enum pt_report_format fmt = PT_REPORT_TEXT;
	const char *db = NULL, *output = NULL;
	struct store_opts so = {.read_only = true};
	struct store *s = NULL;
	struct store_source *src = NULL;
	struct store_fork_row *rows = NULL;
	struct pt_report_input *inputs = NULL;
	struct pt_fork *forks = NULL;
	size_t nr_src = 0, nr_rows = 0, i;
	char err[512] = "";
	FILE *out = stdout;
	int opt, r, status = 0;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "f:o:h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'D':
			db = optarg;
			break;
		case 'f':
			if (!strcmp(optarg, "text")) {
				fmt = PT_REPORT_TEXT;
			} else if (!strcmp(optarg, "json")) {
				fmt = PT_REPORT_JSON;
			} else {
				fprintf(stderr,
					"ptescope report: --format must be text or json, not '%s'\n",
					optarg);
				return EXIT_USAGE;
			}
			break;
		case 'c':
			flt.comm = optarg;
			break;
		case 's':
			if (time_option("--since", optarg, &flt.since_ts_ns, &flt.since_wall_ns))
				return EXIT_USAGE;
			break;
		case 'u':
			if (time_option("--until", optarg, &flt.until_ts_ns, &flt.until_wall_ns))
				return EXIT_USAGE;
			break;
		case 'o':
			output = optarg;
			break;
		case 'h':
			fputs(report_usage, stdout);
			return 0;
		default:
			fprintf(stderr, "ptescope report: see 'ptescope report --help'\n");
			return EXIT_USAGE;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "ptescope report: unexpected argument '%s' (traces go to replay)\n",
			argv[optind]);
		return EXIT_USAGE;
	}
	if (!db) {
		fprintf(stderr, "ptescope report: --db FILE is required\n");
		return EXIT_USAGE;
	}

	r = store_open(db, &so, &s, err, sizeof(err));
	if (!r)
		r = store_list_sources(s, true, &src, &nr_src, err, sizeof(err));
	if (!r)
		r = store_query_forks(s, &flt, &rows, &nr_rows, NULL, err, sizeof(err));
	if (r) {
		fprintf(stderr, "ptescope report: %s\n", err);
		status = EXIT_INPUT;
		goto out;
	}
	inputs = calloc(nr_src ? nr_src : 1, sizeof(*inputs));
	forks = calloc(nr_rows ? nr_rows : 1, sizeof(*forks));
	if (!inputs || !forks) {
		fprintf(stderr, "ptescope report: out of memory\n");
		status = EXIT_INPUT;
		goto out;
	}
	for (i = 0; i < nr_src; i++) {
		inputs[i].path = src[i].path ? src[i].path : "(live)";
		inputs[i].format = format_of(src[i].format);
		inputs[i].stats = src[i].stats;
	}
	for (i = 0; i < nr_rows; i++) {
		int in = source_index(src, nr_src, rows[i].source_id);

		forks[i] = rows[i].fork;
		forks[i].input = in < 0 ? 0 : in;
		if (in >= 0)
			inputs[in].forks++;
	}
	if (output && !(out = fopen(output, "we"))) {
		fprintf(stderr, "ptescope report: %s: %s\n", output, strerror(errno));
		status = EXIT_INPUT;
		goto out;
	}
	r = pt_report_write(out, fmt, inputs, nr_src, forks, nr_rows);
	if (out != stdout && fclose(out) && !r)
		r = -EIO;
	if (r) {
		fprintf(stderr, "ptescope report: writing the report failed: %s\n", strerror(-r));
		status = EXIT_INPUT;
	}
out:
	free(forks); /* the detail pointers belong to rows */
	free(inputs);
	store_fork_rows_free(rows, nr_rows);
	store_sources_free(src, nr_src);
	store_close(s);
	return status;
}
