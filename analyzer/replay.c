/* SPDX-License-Identifier: MIT */
/*
 * Replaying one trace file into recon and a sink (replay.h): the one path
 * shared by `ptescope replay` and the daemon's replay worker.
 */
#include "replay.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct replay_run {
	const struct pt_replay_opts *o;
	struct pt_replay_result *res;
	bool consumer_failed; /* the sink or on_fork stopped the read */
};

/* recon's callback: the sink keeps the fork, then the caller sees it. */
static int replay_fork(const struct pt_fork *f, void *ctx, char *err, size_t errlen)
{
	struct replay_run *run = ctx;
	const struct pt_replay_sink *sink = run->o->sink;
	int ret = 0;

	if (sink && sink->fork)
		ret = sink->fork(f, sink->ctx, err, errlen);
	if (!ret && run->o->on_fork)
		ret = run->o->on_fork(f, run->o->ctx, err, errlen);
	if (!ret)
		run->res->forks++;
	else
		run->consumer_failed = true;
	return ret;
}

/* Whether a reader's (or recon's) error @ret says the input is not one we read. */
static bool input_refused(int ret)
{
	return ret == -EINVAL || ret == -E2BIG || ret == -EPROTO || ret == -EBADMSG ||
	       ret == -EISDIR;
}

/*
 * Opens @path, a regular file, and detects its format. *fdp: the open file.
 * O_NONBLOCK: a FIFO or a device is refused (not a regular file), never
 * waited on in open(); regular files ignore the flag.
 */
static int open_trace(const char *path, int *fdp, enum pt_format *fmt, char *err, size_t errlen)
{
	unsigned char head[4096];
	struct stat sb;
	ssize_t n;
	int ret = 0, fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);

	if (fd < 0) {
		ret = -errno;
		snprintf(err, errlen, "%s", strerror(-ret));
		return ret;
	}
	if (fstat(fd, &sb)) {
		ret = -errno;
		snprintf(err, errlen, "%s", strerror(-ret));
	} else if (S_ISDIR(sb.st_mode)) {
		ret = -EISDIR;
		snprintf(err, errlen, "is a directory, not a trace file");
	} else if (!S_ISREG(sb.st_mode)) {
		ret = -EINVAL;
		snprintf(err, errlen, "not a regular file");
	} else if ((n = pread(fd, head, sizeof(head), 0)) < 0) {
		ret = -errno;
		snprintf(err, errlen, "cannot read: %s", strerror(-ret));
	} else {
		ret = pt_detect_format(head, (size_t)n, fmt, err, errlen);
	}
	if (ret) {
		close(fd);
		return ret;
	}
	*fdp = fd;
	return 0;
}

/* Reads the whole trace into recon. The message is the one of whoever stopped. */
static int read_trace(const char *path, int fd, const struct pt_replay_opts *o,
		      struct pt_replay_result *res, char *err, size_t errlen)
{
	struct replay_run run = {.o = o, .res = res};
	struct recon_opts ro = {.on_fork_msg = replay_fork, .ctx = &run, .input = o->input};
	struct pt_read_opts rd = {.progress = o->progress, .progress_ctx = o->progress_ctx};
	struct recon *r;
	int ret = recon_new(&ro, &r);

	if (ret) {
		snprintf(err, errlen, "out of memory");
		return ret;
	}
	if (res->format == PT_FMT_DAT)
		ret = pt_dat_read(path, recon_feed, r, &res->stats, &rd, err, errlen);
	else if (o->sandbox_text)
		ret = pt_text_read_helper(fd, path, recon_feed, r, &res->stats, &rd, err, errlen);
	else
		ret = pt_text_read_fd(fd, recon_feed, r, &res->stats, &rd, err, errlen);
	if (!ret)
		ret = recon_finish(r);
	res->bad_input = ret && !run.consumer_failed && input_refused(ret);
	if (ret && recon_errmsg(r)[0])
		snprintf(err, errlen, "%s", recon_errmsg(r));
	else if (ret && !err[0])
		snprintf(err, errlen, "%s", strerror(-ret));
	recon_free(r);
	return ret;
}

/* Strips a leading "PATH: " (the readers add it; the caller names the file). */
static void strip_path(char *err, const char *path)
{
	size_t n = strlen(path);

	if (!strncmp(err, path, n) && !strncmp(err + n, ": ", 2))
		memmove(err, err + n + 2, strlen(err + n + 2) + 1);
}

int pt_replay_file(const char *path, const struct pt_replay_opts *o, struct pt_replay_result *res,
		   char *err, size_t errlen)
{
	const struct pt_replay_sink *sink = o->sink;
	bool begun = false;
	int fd = -1, ret;

	memset(res, 0, sizeof(*res));
	pt_input_stats_init(&res->stats);
	if (errlen)
		err[0] = 0;
	ret = open_trace(path, &fd, &res->format, err, errlen);
	res->bad_input = input_refused(ret);
	if (!ret && sink && sink->begin) {
		ret = sink->begin(sink->ctx, o->name ? o->name : path, fd,
				  pt_format_name(res->format), &res->skipped, err, errlen);
		begun = !ret && !res->skipped;
	}
	if (!ret && !res->skipped)
		ret = read_trace(path, fd, o, res, err, errlen);
	if (!ret && begun && sink->end)
		ret = sink->end(sink->ctx, &res->stats, err, errlen);
	if (ret && begun && sink->abort)
		sink->abort(sink->ctx);
	if (fd >= 0)
		close(fd);
	if (ret)
		strip_path(err, path);
	return ret;
}
