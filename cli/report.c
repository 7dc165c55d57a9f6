/* SPDX-License-Identifier: MIT */
/*
 * `ptescope report --db FILE`: prints the forks stored in a database through
 * the same report writer as replay (analyzer/report.h), so that a database
 * reports exactly what the replay that filled it printed.
 *
 * Reads the store (store/store.h) through a read-only handle. Sized for
 * reports of up to a few million forks held in memory at once (the report
 * writer takes an array); the HTTP API is the way to page through more.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "escape.h"
#include "store.h"

static const char report_usage[] =
    "Usage: ptescope report --db FILE [--format text|json] [--comm NAME] [--since T]\n"
    "                       [--until T] [--kind LIST] [--output FILE]\n"
    "Report on the forks stored in FILE, as `ptescope replay` printed them.\n"
    "\n"
    "  --db FILE             the database (required; opened read-only)\n"
    "  -f, --format FMT      text (default) or json\n"
    "  --comm NAME           only forks whose parent is named NAME (bytes that are not\n"
    "                        UTF-8 as \\xHH, a backslash as \\\\, as reports show them)\n"
    "  --since T, --until T  only forks from T (inclusive) until T (exclusive):\n"
    "                        digits are trace-clock nanoseconds as the report prints\n"
    "                        them (ts_ns); -90s, -15m, -1h, -7d (before now) and\n"
    "                        RFC 3339 (2024-05-01T12:00:00Z) are wall-clock times\n"
    "  --kind LIST           the summary over these kinds of clone (fork, the default: a\n"
    "                        copy of the address space; thread, spawn, unknown, all)\n"
    "  -o, --output FILE     write the report to FILE\n";

struct report_args {
	const char *db, *output;
	enum pt_report_format fmt;
	struct store_fork_filter flt;
	char comm[32];
	unsigned kinds; /* the summary's; 0: address-space copies */
};

/* What was read from the database, and the report's view of it. */
struct report_data {
	struct store_source *src;
	size_t nr_src;
	struct store_fork_row *rows;
	size_t nr_rows;
	struct pt_report_input *inputs;
	struct pt_fork *forks;
};

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

	int r = store_parse_time(v, store_now_ns(), &ns, &is_wall);

	if (r == -ERANGE) {
		fprintf(stderr,
			"ptescope report: %s: '%s' is out of range (RFC 3339 times "
			"from " STORE_TIME_RANGE ")\n",
			opt, v);
		return -EINVAL;
	}
	if (r) {
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

/* Parses argv into @a. Returns -1 to go on, else the exit status. */
static int parse_args(int argc, char **argv, struct report_args *a)
{
	static const struct option longopts[] = {
	    {"db", required_argument, NULL, 'D'},    {"format", required_argument, NULL, 'f'},
	    {"comm", required_argument, NULL, 'c'},  {"since", required_argument, NULL, 's'},
	    {"until", required_argument, NULL, 'u'}, {"output", required_argument, NULL, 'o'},
	    {"kind", required_argument, NULL, 'K'},  {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0}};
	struct store_fork_filter *flt = &a->flt;
	int opt;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "f:o:h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'D':
			a->db = optarg;
			break;
		case 'f':
			if (!cli_parse_format(optarg, &a->fmt))
				break;
			fprintf(stderr,
				"ptescope report: --format must be text or json, not '%s'\n",
				optarg);
			return EXIT_USAGE;
		case 'c':
			if (pt_unescape(optarg, a->comm, sizeof(a->comm)) || !a->comm[0]) {
				fprintf(stderr,
					"ptescope report: --comm: 1 to 31 bytes, a backslash "
					"starting \\\\ or \\xHH\n");
				return EXIT_USAGE;
			}
			flt->comm = a->comm;
			break;
		case 's':
			if (time_option("--since", optarg, &flt->since_ts_ns, &flt->since_wall_ns))
				return EXIT_USAGE;
			break;
		case 'u':
			if (time_option("--until", optarg, &flt->until_ts_ns, &flt->until_wall_ns))
				return EXIT_USAGE;
			break;
		case 'o':
			a->output = optarg;
			break;
		case 'K':
			if (cli_parse_kinds("report", optarg, &a->kinds))
				return EXIT_USAGE;
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
	if (!a->db) {
		fprintf(stderr, "ptescope report: --db FILE is required\n");
		return EXIT_USAGE;
	}
	return -1;
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

/* The report writer's inputs and forks over the rows read. 0 or -ENOMEM. */
static int to_report(struct report_data *d)
{
	size_t i;

	d->inputs = calloc(d->nr_src ? d->nr_src : 1, sizeof(*d->inputs));
	d->forks = calloc(d->nr_rows ? d->nr_rows : 1, sizeof(*d->forks));
	if (!d->inputs || !d->forks)
		return -ENOMEM;
	for (i = 0; i < d->nr_src; i++) {
		d->inputs[i].path = d->src[i].path ? d->src[i].path : "(live)";
		d->inputs[i].format = format_of(d->src[i].format);
		d->inputs[i].stats = d->src[i].stats;
	}
	for (i = 0; i < d->nr_rows; i++) {
		int in = source_index(d->src, d->nr_src, d->rows[i].source_id);

		d->forks[i] = d->rows[i].fork;
		d->forks[i].input = in < 0 ? 0 : in;
		if (in >= 0)
			d->inputs[in].forks++;
	}
	return 0;
}

static void report_data_free(struct report_data *d)
{
	free(d->forks); /* the detail pointers belong to rows */
	free(d->inputs);
	store_fork_rows_free(d->rows, d->nr_rows);
	store_sources_free(d->src, d->nr_src);
}

int cli_report(int argc, char **argv)
{
	struct report_args a = {.fmt = PT_REPORT_TEXT,
				.flt = {.pid = -1, .complete_sources = true, .oldest_first = true}};
	struct store_opts so = {.read_only = true};
	struct report_data d = {0};
	struct store *s = NULL;
	char err[512] = "";
	int r, status = parse_args(argc, argv, &a);

	if (status >= 0)
		return status;
	status = 0;
	r = store_open(a.db, &so, &s, err, sizeof(err));
	if (!r)
		r = store_list_sources(s, true, &d.src, &d.nr_src, err, sizeof(err));
	if (!r)
		r = store_query_forks(s, &a.flt, &d.rows, &d.nr_rows, NULL, err, sizeof(err));
	if (r) {
		fprintf(stderr, "ptescope report: %s\n", err);
		status = EXIT_INPUT;
	} else if (to_report(&d)) {
		fprintf(stderr, "ptescope report: out of memory\n");
		status = EXIT_INPUT;
	} else {
		status = cli_write_report("report", a.output, a.fmt, a.kinds, d.inputs, d.nr_src, d.forks,
					  d.nr_rows);
	}
	report_data_free(&d);
	store_close(s);
	return status;
}
