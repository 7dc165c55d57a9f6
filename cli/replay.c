/* SPDX-License-Identifier: MIT */
/*
 * `ptescope replay TRACE...`: reads trace files (format detected from
 * content), rebuilds every fork and prints a report; with --db it also
 * stores the forks (store/store_sink.h), one content-hashed source per file.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "recon.h"
#include "reader.h"
#include "cli.h"
#include "report.h"
#include "store_sink.h"

struct progress {
	bool on;
	const char *name;
	struct timespec last;
	bool shown;
};

static void progress_cb(uint64_t done, uint64_t total, void *ctx)
{
	struct progress *p = ctx;
	struct timespec now;

	if (!p->on)
		return;
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (p->shown && (now.tv_sec - p->last.tv_sec) * 1000000000L + now.tv_nsec - p->last.tv_nsec <
				250000000L)
		return;
	p->last = now;
	p->shown = true;
	if (total)
		fprintf(stderr, "\r\033[Kreading %s: %3.0f%% (%.0f of %.0f MiB)", p->name,
			100.0 * (double)done / (double)total, done / 1048576.0, total / 1048576.0);
	else
		fprintf(stderr, "\r\033[Kreading %s: %.1f M events", p->name, done / 1e6);
}

static void progress_clear(struct progress *p)
{
	if (p->on && p->shown)
		fprintf(stderr, "\r\033[K");
	p->shown = false;
}

struct fork_list {
	struct pt_fork *forks;
	size_t nr, cap;
	size_t input_forks;
	struct store_sink *sink;
};

static int collect_fork(const struct pt_fork *f, void *ctx)
{
	struct fork_list *l = ctx;

	if (l->nr == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 256;
		struct pt_fork *p = realloc(l->forks, cap * sizeof(*p));

		if (!p)
			return -ENOMEM;
		l->forks = p;
		l->cap = cap;
	}
	/* the report needs the fork object only; per-VMA and per-pass detail
	 * goes to the store (below) and is not kept for the whole replay */
	l->forks[l->nr] = *f;
	l->forks[l->nr].vma = NULL;
	l->forks[l->nr].pass = NULL;
	l->forks[l->nr].nr_vma = l->forks[l->nr].nr_pass = 0;
	l->nr++;
	l->input_forks++;
	if (l->sink) {
		int ret = store_sink_fork(l->sink, f);

		if (ret)
			return ret;
	}
	return 0;
}

/* Reads one input into @l. Returns 0 or a negative errno with @err set. */
static int replay_one(const char *path, int index, struct fork_list *l, struct pt_report_input *in,
		      struct progress *prog, char *err, size_t errlen)
{
	struct recon_opts ro = {.on_fork = collect_fork, .ctx = l, .input = index};
	struct pt_read_opts opts = {.progress = progress_cb, .progress_ctx = prog};
	struct recon *r = NULL;
	unsigned char head[4096];
	struct stat sb;
	ssize_t n;
	int fd, ret;

	in->path = path;
	pt_input_stats_init(&in->stats);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "%s", strerror(errno));
		return -errno;
	}
	if (fstat(fd, &sb)) {
		ret = -errno;
		snprintf(err, errlen, "%s", strerror(errno));
		goto out;
	}
	if (S_ISDIR(sb.st_mode)) {
		ret = -EISDIR;
		snprintf(err, errlen, "is a directory, not a trace file");
		goto out;
	}
	n = S_ISREG(sb.st_mode) ? pread(fd, head, sizeof(head), 0) : -1;
	if (!S_ISREG(sb.st_mode)) {
		ret = -EINVAL;
		snprintf(err, errlen, "not a regular file");
		goto out;
	}
	if (n < 0) {
		ret = -errno;
		snprintf(err, errlen, "cannot read: %s", strerror(errno));
		goto out;
	}
	ret = pt_detect_format(head, (size_t)n, &in->format, err, errlen);
	if (ret)
		goto out;
	ret = recon_new(&ro, &r);
	if (ret) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	if (l->sink) {
		bool done = false;

		ret = store_sink_source_begin(l->sink, path, fd, in->format, &done, err, errlen);
		if (ret)
			goto out;
		if (done) {
			in->skipped = true;
			goto out;
		}
	}
	prog->name = path;
	l->input_forks = 0;
	if (in->format == PT_FMT_DAT)
		ret = pt_dat_read(path, recon_feed, r, &in->stats, &opts, err, errlen);
	else
		ret = pt_text_read_fd(fd, recon_feed, r, &in->stats, &opts, err, errlen);
	if (!ret)
		ret = recon_finish(r);
	progress_clear(prog);
	in->forks = l->input_forks;
	/* the store stopped the read: its message says why */
	if (ret && l->sink && store_sink_errmsg(l->sink)[0])
		snprintf(err, errlen, "%s", store_sink_errmsg(l->sink));
	if (ret && !err[0])
		snprintf(err, errlen, "%s", strerror(-ret));
	if (l->sink && !ret)
		ret = store_sink_source_end(l->sink, &in->stats, err, errlen);
out:
	recon_free(r);
	close(fd);
	/* strip a leading "PATH: " the readers add, the caller names the path */
	if (ret && !strncmp(err, path, strlen(path)) && !strncmp(err + strlen(path), ": ", 2))
		memmove(err, err + strlen(path) + 2, strlen(err + strlen(path) + 2) + 1);
	return ret;
}

int cli_replay(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"format", required_argument, NULL, 'f'}, {"output", required_argument, NULL, 'o'},
		{"db", required_argument, NULL, 'D'},	  {"quiet", no_argument, NULL, 'q'},
		{"help", no_argument, NULL, 'h'},
		{"retention-days", required_argument, NULL, 'R'},
		{"max-db-mb", required_argument, NULL, 'M'},
		{"db-sync", required_argument, NULL, 'S'},   {NULL, 0, NULL, 0}};
	enum pt_report_format fmt = PT_REPORT_TEXT;
	const char *output = NULL, *db = NULL;
	int longidx = 0;
	struct store_sink_opts sopts = {0};
	struct progress prog = {.on = isatty(STDERR_FILENO)};
	struct fork_list l = {0};
	struct pt_report_input *inputs;
	int opt, nr, failed = 0, ret, status = 0;

	while ((opt = getopt_long(argc, argv, "f:o:qh", longopts, &longidx)) != -1) {
		switch (opt) {
		case 'R':
		case 'M':
		case 'S': {
			char err[256] = "";

			if (store_sink_parse_option(&sopts, longopts[longidx].name, optarg, err,
						    sizeof(err))) {
				fprintf(stderr, "ptescope replay: %s\n", err);
				return EXIT_USAGE;
			}
			break;
		}
		case 'f':
			if (cli_parse_format(optarg, &fmt)) {
				fprintf(stderr, "ptescope replay: --format must be text or json, not '%s'\n",
					optarg);
				return EXIT_USAGE;
			}
			break;
		case 'o':
			output = optarg;
			break;
		case 'D':
			db = optarg;
			break;
		case 'q':
			prog.on = false;
			break;
		case 'h':
			fputs(cli_usage, stdout);
			return 0;
		default:
			fprintf(stderr, "ptescope replay: see 'ptescope --help'\n");
			return EXIT_USAGE;
		}
	}
	nr = argc - optind;
	if (nr <= 0) {
		fprintf(stderr, "ptescope replay: no trace file given (usage: ptescope replay [--db "
				"FILE] [--format text|json] TRACE...)\n");
		return EXIT_USAGE;
	}
	if (db) {
		char err[512] = "";

		if (store_sink_open_opts(db, &sopts, &l.sink, err, sizeof(err))) {
			fprintf(stderr, "ptescope replay: %s: %s\n", db, err);
			return EXIT_INPUT;
		}
	}
	inputs = calloc((size_t)nr, sizeof(*inputs));
	if (!inputs) {
		fprintf(stderr, "ptescope replay: out of memory\n");
		return EXIT_INPUT;
	}
	for (int i = 0; i < nr; i++) {
		const char *path = argv[optind + i];
		char err[512] = "";

		ret = replay_one(path, i, &l, &inputs[i], &prog, err, sizeof(err));
		if (ret) {
			fprintf(stderr, "ptescope replay: %s: %s\n", path, err);
			inputs[i].error = strdup(err);
			failed++;
			if (ret == -ENOMEM)
				break;
		}
	}
	if (l.sink) {
		char err[512] = "";

		if (store_sink_close(l.sink, err, sizeof(err))) {
			fprintf(stderr, "ptescope replay: %s: %s\n", db, err);
			status = EXIT_INPUT;
		}
	}
	if (failed == nr) {
		status = EXIT_INPUT;
		goto done;
	}
	if (cli_write_report("replay", output, fmt, inputs, (size_t)nr, l.forks, l.nr))
		status = EXIT_INPUT;
	if (failed)
		status = EXIT_INPUT;
done:
	for (size_t i = 0; i < l.nr; i++)
		pt_fork_release(&l.forks[i]);
	free(l.forks);
	for (int i = 0; i < nr; i++)
		free((char *)inputs[i].error);
	free(inputs);
	return status;
}
