/* SPDX-License-Identifier: MIT */
/*
 * trace.dat reader (reader.h), the parent's side: trace-cmd files, v6 and v7
 * (compressed), every CPU merged by time, turned into pt_events.
 *
 * libtraceevent and libtracecmd have had fuzzer-found infinite loops and
 * out-of-bounds reads on corrupt files, and a replay must never crash or hang
 * on one. So the library runs in another process: the small helper program
 * ptescope-dat-reader (cli/, its body in dat_helper.c), started with
 * posix_spawn (fork and exec: a forked child of a multi-threaded process,
 * such as the daemon or a fuzzer, can deadlock on a lock another thread held
 * at fork time, so nothing but exec runs between the two), under CPU-time
 * and memory limits, with stderr silenced. It streams compact fixed-size
 * event records over a pipe (dat_wire.h), and this process turns them back
 * into pt_events for the consumer. A crash, a limit hit or a stall in the
 * helper becomes one error line here. The pipe costs about 60 bytes per
 * event, far below what the library itself costs per event.
 *
 * Time bases: ENTRY/FORK times are the records' timestamps (what `trace-cmd
 * report` prints); EXIT times come from the funcgraph_exit calltime/rettime
 * fields (raw_decode.h pt_raw_to_event). The two bases can differ by a
 * constant (trace.dat time offsets): event.h.
 *
 * The helper is found through $PTESCOPE_DAT_READER, beside the running
 * program, in the build tree, or in the installed libexec path
 * (pt_dat_reader_path()).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dat_wire.h"
#include "intern.h"
#include "reader.h"

#define STALL_SECONDS 120 /* no byte from the helper for this long: give up */

__attribute__((format(printf, 3, 4))) static void set_err(char *err, size_t errlen, const char *fmt,
							  ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

struct parent {
	int fd;
	char *buf;
	size_t cap, start, end;
	int eof;
};

/* Makes @n bytes available at p->buf + p->start. 1 ok, 0 clean EOF, <0 error. */
static int parent_need(struct parent *p, size_t n)
{
	while (p->end - p->start < n) {
		struct pollfd pfd = {.fd = p->fd, .events = POLLIN};
		ssize_t got;
		int pr;

		if (p->start) {
			memmove(p->buf, p->buf + p->start, p->end - p->start);
			p->end -= p->start;
			p->start = 0;
		}
		if (p->eof)
			return p->end == 0 ? 0 : -EPROTO;
		pr = poll(&pfd, 1, STALL_SECONDS * 1000);
		if (pr < 0 && errno == EINTR)
			continue;
		if (pr == 0)
			return -ETIMEDOUT;
		got = read(p->fd, p->buf + p->end, p->cap - p->end);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			return -errno;
		if (got == 0)
			p->eof = 1;
		p->end += (size_t)got;
	}
	return 1;
}

/* Copies the next @n bytes of a message to @dst. 0 ok, <0 error (a message
 * cut short is -EPROTO). */
static int parent_take(struct parent *p, void *dst, size_t n)
{
	int r = parent_need(p, n);

	if (r <= 0)
		return r ? r : -EPROTO;
	memcpy(dst, p->buf + p->start, n);
	p->start += n;
	return 0;
}

static int check_head(int fd, const char *path, char *err, size_t errlen)
{
	unsigned char head[16];
	ssize_t n = pread(fd, head, sizeof(head), 0);
	enum pt_format fmt;

	if (n < 0) {
		set_err(err, errlen, "%s: cannot read: %s", path, strerror(errno));
		return -errno;
	}
	if (pt_detect_format(head, (size_t)n, &fmt, err, errlen) || fmt != PT_FMT_DAT) {
		set_err(err, errlen, "%s: not a trace.dat file", path);
		return -EINVAL;
	}
	if (n < 13 || (head[10] != '6' && head[10] != '7') || head[11] != '\0') {
		set_err(err, errlen, "%s: trace.dat version %.1s is not supported (6 and 7 are)",
			path, n > 10 ? (const char *)head + 10 : "?");
		return -EINVAL;
	}
	return 0;
}

/* One read: the helper, the pipe, what came over it. */
struct dat_read {
	const char *path;
	pt_event_fn fn;
	void *ctx;
	struct pt_input_stats *st;
	const struct pt_read_opts *opts;
	struct parent p;
	struct pt_intern *strings;
	pid_t pid;
	bool got_done, got_error, consumer_stopped;
	char *err;
	size_t errlen;
};

/* Opens @path and checks it is a trace.dat of a version we read. */
static int open_dat(const char *path, int *fdp, char *err, size_t errlen)
{
	struct stat sb;
	int ret, fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);

	if (fd < 0) {
		ret = -errno;
		set_err(err, errlen, "%s: %s", path, strerror(errno));
		return ret;
	}
	if (fstat(fd, &sb) || !S_ISREG(sb.st_mode)) {
		set_err(err, errlen, "%s: not a regular file", path);
		close(fd);
		return -EINVAL;
	}
	ret = check_head(fd, path, err, errlen);
	if (ret) {
		close(fd);
		return ret;
	}
	*fdp = fd;
	return 0;
}

/* Starts the helper on d->path writing to @wfd. */
static int spawn_helper(struct dat_read *d, int wfd)
{
	posix_spawn_file_actions_t fa;
	char helper_buf[4096];
	const char *helper = pt_dat_reader_path(helper_buf, sizeof(helper_buf));
	int ret;

	if (!helper) {
		set_err(d->err, d->errlen,
			"%s: the trace.dat reader helper ptescope-dat-reader is "
			"not installed (or set PTESCOPE_DAT_READER)",
			d->path);
		return -ENOENT;
	}
	if (posix_spawn_file_actions_init(&fa)) {
		set_err(d->err, d->errlen, "%s: cannot start the reader: out of memory", d->path);
		return -ENOMEM;
	}
	posix_spawn_file_actions_adddup2(&fa, wfd, STDOUT_FILENO);
	{
		char *const argv[] = {(char *)helper, (char *)d->path, NULL};

		ret = -posix_spawn(&d->pid, helper, &fa, NULL, argv, environ);
	}
	posix_spawn_file_actions_destroy(&fa);
	if (ret)
		set_err(d->err, d->errlen, "%s: cannot start the reader %s: %s", d->path, helper,
			strerror(-ret));
	return ret;
}

static int on_event(struct dat_read *d)
{
	struct dat_wire_event w;
	struct pt_event ev;
	int ret = parent_take(&d->p, &w, sizeof(w));

	if (ret)
		return ret;
	dat_wire_to_event(&w, d->strings, &ev);
	d->st->events++;
	ret = d->fn(&ev, d->ctx);
	if (ret < 0) {
		d->consumer_stopped = true;
		set_err(d->err, d->errlen, "%s: analysis stopped: %s", d->path, strerror(-ret));
	}
	return ret < 0 ? ret : 0;
}

static int on_string(struct dat_read *d)
{
	uint32_t hdr[2];
	int r = 0, ret = parent_take(&d->p, hdr, sizeof(hdr));

	if (ret)
		return ret;
	if (hdr[1] > DAT_WIRE_MAX_STRING || (r = parent_need(&d->p, hdr[1])) <= 0)
		return r < 0 ? r : -EPROTO;
	ret = pt_intern_put(d->strings, hdr[0], d->p.buf + d->p.start, hdr[1]);
	d->p.start += hdr[1];
	return ret;
}

static int on_progress(struct dat_read *d)
{
	uint64_t pr[2];
	int ret = parent_take(&d->p, pr, sizeof(pr));

	if (!ret && d->opts && d->opts->progress)
		d->opts->progress(pr[0], pr[1], d->opts->progress_ctx);
	return ret;
}

static int on_done(struct dat_read *d)
{
	struct dat_wire_done w;
	int ret = parent_take(&d->p, &w, sizeof(w));

	if (ret)
		return ret;
	d->st->lost_events += w.lost;
	d->st->lost_unknown |= w.lost_unknown != 0;
	d->st->cpus = (int)w.cpus;
	d->st->first_ts_ns = w.first_ts;
	d->st->last_ts_ns = w.last_ts;
	d->got_done = true;
	return 0;
}

static int on_error(struct dat_read *d)
{
	uint32_t len;
	int ret = parent_take(&d->p, &len, sizeof(len));

	if (ret)
		return ret;
	if (len > DAT_WIRE_MAX_ERROR || parent_need(&d->p, len) <= 0)
		return -EPROTO;
	set_err(d->err, d->errlen, "%s: %.*s", d->path, (int)len, d->p.buf + d->p.start);
	d->p.start += len;
	d->got_error = true;
	return -EINVAL;
}

/* Reads messages until the stream ends or one stops it. */
static int read_messages(struct dat_read *d)
{
	for (;;) {
		int ret = parent_need(&d->p, 1);
		uint8_t t;

		if (ret <= 0)
			return ret;
		t = (uint8_t)d->p.buf[d->p.start++];
		if (t == DAT_W_EVENT)
			ret = on_event(d);
		else if (t == DAT_W_STRING)
			ret = on_string(d);
		else if (t == DAT_W_PROGRESS)
			ret = on_progress(d);
		else if (t == DAT_W_DONE)
			ret = on_done(d);
		else if (t == DAT_W_ERROR)
			ret = on_error(d);
		else
			ret = -EPROTO;
		if (ret)
			return ret;
	}
}

/* Waits for the helper and turns how it ended into the result. */
static int reap_helper(struct dat_read *d, int ret)
{
	const char *path = d->path;
	int status;

	if (ret < 0 || !d->got_done)
		kill(d->pid, SIGKILL);
	while (waitpid(d->pid, &status, 0) < 0 && errno == EINTR)
		;
	if (d->got_error || d->consumer_stopped)
		return ret; /* message already set */
	if (ret == -ETIMEDOUT) {
		set_err(d->err, d->errlen,
			"%s: the trace.dat reader stalled for %d s: corrupt file?", path,
			STALL_SECONDS);
		return -EINVAL;
	}
	if (!d->got_done && WIFSIGNALED(status) && WTERMSIG(status) == SIGXCPU) {
		set_err(d->err, d->errlen, "%s: reading it took too long: corrupt trace.dat?",
			path);
		return -EINVAL;
	}
	if (!d->got_done && WIFSIGNALED(status)) {
		set_err(d->err, d->errlen, "%s: corrupt trace.dat: the reader died (%s)", path,
			strsignal(WTERMSIG(status)));
		return -EINVAL;
	}
	if (!d->got_done || ret == -EPROTO) {
		set_err(d->err, d->errlen,
			"%s: corrupt trace.dat: the reader stopped early (exit %d)", path,
			WIFEXITED(status) ? WEXITSTATUS(status) : -1);
		return -EINVAL;
	}
	if (ret < 0)
		set_err(d->err, d->errlen, "%s: reading it failed: %s", path, strerror(-ret));
	return ret;
}

/* Starts the helper and reads what it sends. */
static int run_helper(struct dat_read *d)
{
	int pipefd[2], ret;

	if (pipe2(pipefd, O_CLOEXEC)) {
		ret = -errno;
		set_err(d->err, d->errlen, "%s: cannot start the reader: %s", d->path,
			strerror(-ret));
		return ret;
	}
	/* fewer wake-ups between the two processes; failure only costs speed */
	fcntl(pipefd[1], F_SETPIPE_SZ, 1 << 20);
	ret = spawn_helper(d, pipefd[1]);
	close(pipefd[1]);
	if (ret) {
		close(pipefd[0]);
		return ret;
	}
	d->p.fd = pipefd[0];
	d->p.cap = 1 << 18;
	d->p.buf = malloc(d->p.cap);
	if (d->p.buf) {
		ret = read_messages(d);
	} else {
		ret = -ENOMEM;
		set_err(d->err, d->errlen, "%s: out of memory", d->path);
	}
	ret = reap_helper(d, ret);
	free(d->p.buf);
	close(pipefd[0]);
	return ret;
}

int pt_dat_read(const char *path, pt_event_fn fn, void *ctx, struct pt_input_stats *st,
		const struct pt_read_opts *opts, char *err, size_t errlen)
{
	struct dat_read d = {.path = path,
			     .fn = fn,
			     .ctx = ctx,
			     .st = st,
			     .opts = opts,
			     .p = {.fd = -1},
			     .err = err,
			     .errlen = errlen};
	int fd, ret = open_dat(path, &fd, err, errlen);

	if (ret)
		return ret;
	if (pt_intern_new(&d.strings)) {
		ret = -ENOMEM;
		set_err(err, errlen, "%s: cannot start the reader: %s", path, strerror(-ret));
	} else {
		ret = run_helper(&d);
	}
	pt_intern_free(d.strings);
	close(fd);
	return ret;
}

const char *pt_dat_reader_path(char *buf, size_t len)
{
	const char *env = getenv("PTESCOPE_DAT_READER");
	ssize_t n;

	if (env && *env)
		return access(env, X_OK) == 0 ? env : NULL;
	/* beside the running program: relocated trees (a VM guest, a tarball) */
	n = readlink("/proc/self/exe", buf, len);
	if (n > 0 && (size_t)n < len) {
		char *slash;

		buf[n] = '\0';
		slash = strrchr(buf, '/');
		if (slash && (size_t)(slash - buf) + sizeof("/ptescope-dat-reader") <= len) {
			strcpy(slash, "/ptescope-dat-reader");
			if (access(buf, X_OK) == 0)
				return buf;
		}
	}
#ifdef PTESCOPE_DAT_READER_BUILD
	if (access(PTESCOPE_DAT_READER_BUILD, X_OK) == 0)
		return PTESCOPE_DAT_READER_BUILD;
#endif
#ifdef PTESCOPE_DAT_READER_INSTALLED
	if (access(PTESCOPE_DAT_READER_INSTALLED, X_OK) == 0)
		return PTESCOPE_DAT_READER_INSTALLED;
#endif
	return NULL;
}
