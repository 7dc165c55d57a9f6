/* SPDX-License-Identifier: MIT */
/*
 * The floors replay-bench prints next to trace-cmd report and ptescope
 * replay. `floor TRACE.dat`: libtracecmd's, open a trace.dat and iterate
 * every record doing nothing with it, what no reader built on libtracecmd's
 * walk can beat. `floor --fly TRACE.dat`: the helper's own walk's
 * (analyzer/dat_fly.c), libtracecmd opened on the file's metadata as the
 * helper opens it, then every record of the fast walk, no decoding, no names.
 * Prints the record count.
 *
 * The stages of a replay, each one more than the last, for replay-bench's
 * breakdown: `floor --read TRACE`: pt_dat_read() with a consumer that does
 * nothing (the helper's walk, decoding and names, the pipe, the parent's
 * reading of it); `floor --recon TRACE`: pt_replay_file() with no sink and
 * no caller (that and the reconstruction, forks dropped). Print the event
 * count, and the fork count after it.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <trace-cmd/trace-cmd.h>

#include "dat_fly.h"
#include "reader.h"
#include "replay.h"

static long records;

static int count(struct tracecmd_input *h, struct tep_record *r, int cpu, void *d)
{
	(void)h, (void)r, (void)cpu, (void)d;
	records++;
	return 0;
}

/* The fast walk over @path: 0, or 1 when it does not take the file whole. */
static int fly_floor(const char *path)
{
	struct tracecmd_input *h = NULL;
	struct pt_fly *f;
	struct pt_fly_rec r;
	char why[128], meta[64], *kallsyms;
	int fd, ret;

	if (pt_fly_open(path, &f, why, sizeof(why)) ||
	    pt_fly_meta(f, &fd, &kallsyms, why, sizeof(why))) {
		fprintf(stderr, "floor: the fast walk does not take %s: %s\n", path, why);
		pt_fly_free(f);
		return 1;
	}
	snprintf(meta, sizeof(meta), "/proc/self/fd/%d", fd);
	h = tracecmd_open(meta, TRACECMD_FL_LOAD_NO_PLUGINS | TRACECMD_FL_LOAD_NO_SYSTEM_PLUGINS);
	close(fd);
	while ((ret = pt_fly_next(f, &r)) == PT_FLY_REC)
		records++;
	if (h)
		tracecmd_close(h);
	pt_fly_free(f);
	if (ret != PT_FLY_END || !h) {
		fprintf(stderr, "floor: the fast walk stopped on %s\n", path);
		return 1;
	}
	return 0;
}

static int ignore(const struct pt_event *ev, void *ctx)
{
	(void)ev, (void)ctx;
	return 0;
}

/* --read and --recon: 0, 1 on failure (said on stderr). */
static int stage(const char *mode, const char *path)
{
	struct pt_input_stats st = {0};
	struct pt_replay_result res;
	struct pt_replay_opts o = {0};
	char err[512] = "";
	int ret;

	if (!strcmp(mode, "--read")) {
		ret = pt_dat_read(path, ignore, NULL, &st, NULL, err, sizeof(err));
		if (!ret)
			printf("%llu\n", (unsigned long long)st.events);
	} else {
		ret = pt_replay_file(path, &o, &res, err, sizeof(err));
		if (!ret)
			printf("%llu %llu\n", (unsigned long long)res.stats.events,
			       (unsigned long long)res.forks);
	}
	if (ret)
		fprintf(stderr, "floor: %s: %s\n", path, err);
	return ret ? 1 : 0;
}

int main(int argc, char **argv)
{
	struct tracecmd_input *h;

	if (argc == 3 && (!strcmp(argv[1], "--read") || !strcmp(argv[1], "--recon")))
		return stage(argv[1], argv[2]);

	if (argc == 3 && !strcmp(argv[1], "--fly")) {
		if (fly_floor(argv[2]))
			return 1;
		printf("%ld\n", records);
		return 0;
	}
	if (argc != 2) {
		fprintf(stderr, "usage: floor [--fly | --read | --recon] TRACE.dat\n");
		return 2;
	}
	h = tracecmd_open(argv[1],
			  TRACECMD_FL_LOAD_NO_PLUGINS | TRACECMD_FL_LOAD_NO_SYSTEM_PLUGINS);
	if (!h) {
		fprintf(stderr, "floor: cannot open %s\n", argv[1]);
		return 1;
	}
	tracecmd_iterate_events(h, NULL, 0, count, NULL);
	tracecmd_close(h);
	printf("%ld\n", records);
	return 0;
}
