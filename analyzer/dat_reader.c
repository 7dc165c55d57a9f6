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
 * helper becomes one error line here. The pipe costs 17 bytes an event on
 * the bundled function_graph recording (dat_wire.h).
 *
 * Past one core. The helper walks a v7 file's pages itself (dat_fly.c) at
 * about the pace this process reconstructs: one helper is all it takes
 * (tests/bench/replay-bench). Other files are walked by libtracecmd at its
 * single-thread speed, and a recording's records are usually all on one or
 * two CPUs (the bundled one: 99.99% on CPU 1), so per-CPU helpers would not
 * help. Instead a large file (PARALLEL_MIN_BYTES, or $PTESCOPE_DAT_JOBS) is
 * cut by time:
 * its records' span in nh * CHUNKS_PER_HELPER equal slices, slice k read by
 * helper k % nh (each opens the file, seeks every CPU to the slice with
 * libtracecmd and merges the CPUs as libtracecmd does). The parent hands the
 * slices on in order, so the events come out exactly as one helper's would;
 * while it consumes one helper's slice it reads the others' pipes ahead,
 * up to WINDOW_BYTES each: memory is bounded by the window, not the file.
 * String ids are per helper; the parent maps them to one table.
 *
 * Time bases: ENTRY/FORK times are the records' timestamps (what `trace-cmd
 * report` prints); EXIT times come from the funcgraph_exit calltime/rettime
 * fields (raw_decode.h pt_raw_to_event). The two bases can differ by a
 * constant (trace.dat time offsets): event.h.
 *
 * The helper is found through $PTESCOPE_DAT_READER, beside the running
 * program, in the build tree, or in the installed libexec path
 * (pt_dat_reader_path()).
 *
 * The same helper reads text traces for the daemon (pt_text_read_helper:
 * the file on its standard input, `ptescope-dat-reader --text`): an upload
 * is anybody's text, and the daemon runs as root.
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
#include "util.h"

#define STALL_SECONDS 120 /* no byte from any helper for this long: give up */
#define MAX_HELPERS 64
/* at most this many unless asked: the daemon's unit caps its memory */
#define DEFAULT_HELPERS 8
#define CHUNKS_PER_HELPER 64		    /* time slices per helper in a parallel read */
#define WINDOW_BYTES ((size_t)8 << 20)	    /* read ahead of the merge, per helper */
#define READ_STEP ((size_t)1 << 18)	    /* bytes per read() of a pipe */
#define PARALLEL_MIN_BYTES ((off_t)4 << 20) /* smaller files: one helper */
#define DAT_ALL UINT32_MAX		    /* read_until: up to the helper's end */

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

static int check_head(int fd, const char *path, char *version, char *err, size_t errlen)
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
	*version = (char)head[10];
	return 0;
}

/* Opens @path and checks it is a trace.dat of a version we read. */
static int open_dat(const char *path, int *fdp, char *version, char *err, size_t errlen)
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
	ret = check_head(fd, path, version, err, errlen);
	if (ret) {
		close(fd);
		return ret;
	}
	*fdp = fd;
	return 0;
}

/* One helper process and what came from it but was not yet handed on. */
struct helper {
	int fd; /* the pipe's read end, -1 when closed */
	pid_t pid;
	char *buf;
	size_t cap, start, end;
	bool eof, got_done;
	uint32_t *sid;	  /* the helper's string ids -> the read's (d->strings) */
	const char **str; /* the helper's string ids -> the strings */
	size_t nr_sid;
	uint64_t progress;	 /* events it has read so far */
	struct dat_wire_ctx ctx; /* the context of its n and r messages (dat_wire.h) */
	/* the event of its short forms (dat_wire_ctx_event()) with ctx's task
	 * name: made again after an N, R or S message (cev_ok false) */
	struct pt_event cev;
	bool cev_ok;
};

/* One read: the helpers, their pipes, what came over them. */
struct dat_read {
	const char *path;
	int text_fd;	  /* a text trace the one helper reads on its stdin; -1: trace.dat */
	const char *what; /* "trace.dat" or "text trace", for messages */
	pt_event_fn fn;
	void *ctx;
	struct pt_input_stats *st;
	const struct pt_read_opts *opts;
	struct pt_intern *strings;
	struct helper *h;
	unsigned nh;
	uint32_t chunks; /* 0: one helper reads the whole file */
	bool got_error, consumer_stopped;
	char *err;
	size_t errlen;
};

/* Room for at least READ_STEP more bytes in @h's buffer, compacting first.
 * Returns 0 or -ENOMEM. */
static int helper_room(struct helper *h)
{
	if (h->start && h->cap - h->end < READ_STEP) {
		memmove(h->buf, h->buf + h->start, h->end - h->start);
		h->end -= h->start;
		h->start = 0;
	}
	return pt_grow_array_from((void **)&h->buf, &h->cap, h->end + READ_STEP, 1, 2 * READ_STEP);
}

/* Reads what @h's pipe holds (at most its free room). 0 or -errno. */
static int helper_read(struct helper *h)
{
	ssize_t got;
	int ret = helper_room(h);

	if (ret)
		return ret;
	do
		got = read(h->fd, h->buf + h->end, h->cap - h->end);
	while (got < 0 && errno == EINTR);
	if (got < 0)
		return -errno;
	if (got == 0)
		h->eof = true;
	h->end += (size_t)got;
	return 0;
}

/*
 * Waits until helper @cur has more bytes or ended, reading meanwhile every
 * other helper whose pipe has data and whose buffer holds less than the
 * window: the helpers work ahead of the merge by at most WINDOW_BYTES each.
 * 0, -ETIMEDOUT (nothing from anyone for STALL_SECONDS), -errno.
 */
static int fill(struct dat_read *d, unsigned cur)
{
	struct pollfd pfd[MAX_HELPERS];
	unsigned who[MAX_HELPERS], n = 0;
	int pr;

	for (unsigned i = 0; i < d->nh; i++) {
		struct helper *h = &d->h[i];

		if (h->eof || (i != cur && h->end - h->start >= WINDOW_BYTES))
			continue;
		pfd[n] = (struct pollfd){.fd = h->fd, .events = POLLIN};
		who[n++] = i;
	}
	do
		pr = poll(pfd, n, STALL_SECONDS * 1000);
	while (pr < 0 && errno == EINTR);
	if (pr < 0)
		return -errno;
	if (pr == 0)
		return -ETIMEDOUT;
	for (unsigned j = 0; j < n; j++) {
		int ret;

		if (!pfd[j].revents)
			continue;
		if ((ret = helper_read(&d->h[who[j]])))
			return ret;
	}
	return 0;
}

/* need()'s slow path: reads until @n bytes of helper @i are there. */
static __attribute__((noinline)) int need_more(struct dat_read *d, unsigned i, size_t n)
{
	struct helper *h = &d->h[i];

	while (h->end - h->start < n) {
		int ret;

		if (h->eof)
			return h->end == h->start ? 0 : -EPROTO;
		if ((ret = fill(d, i)))
			return ret;
	}
	return 1;
}

/* Makes @n bytes of helper @i available at h->buf + h->start. 1 ok, 0 clean
 * EOF, <0 error. */
static inline int need(struct dat_read *d, unsigned i, size_t n)
{
	const struct helper *h = &d->h[i];

	return h->end - h->start >= n ? 1 : need_more(d, i, n);
}

/* Copies the next @n bytes of a message from helper @i to @dst. 0 ok, <0
 * error (a message cut short is -EPROTO). */
static inline int take(struct dat_read *d, unsigned i, void *dst, size_t n)
{
	struct helper *h = &d->h[i];
	int r = need(d, i, n);

	if (r <= 0)
		return r ? r : -EPROTO;
	memcpy(dst, h->buf + h->start, n);
	h->start += n;
	return 0;
}

/* Starts helper @i on d->path writing to @wfd: the whole file, or its part
 * of the chunks. */
static int spawn_helper(struct dat_read *d, unsigned i, int wfd)
{
	posix_spawn_file_actions_t fa;
	char helper_buf[4096], part[16], parts[16], chunks[16];
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
	if (d->text_fd >= 0)
		posix_spawn_file_actions_adddup2(&fa, d->text_fd, STDIN_FILENO);
	snprintf(part, sizeof(part), "%u", i);
	snprintf(parts, sizeof(parts), "%u", d->nh);
	snprintf(chunks, sizeof(chunks), "%u", d->chunks);
	{
		char *argv[] = {(char *)helper, (char *)d->path, part, parts, chunks, NULL};

		if (d->text_fd >= 0) {
			argv[1] = (char *)"--text";
			argv[2] = NULL;
		} else if (!d->chunks) {
			argv[2] = NULL;
		}
		ret = -posix_spawn(&d->h[i].pid, helper, &fa, NULL, argv, environ);
	}
	posix_spawn_file_actions_destroy(&fa);
	if (ret)
		set_err(d->err, d->errlen, "%s: cannot start the reader %s: %s", d->path, helper,
			strerror(-ret));
	return ret;
}

/* A string id of helper @h as the read's id; 0 stays 0. -1: never defined. */
static inline int64_t map_sid(const struct helper *h, uint32_t sid)
{
	if (!sid)
		return 0;
	return sid < h->nr_sid && h->sid[sid] ? (int64_t)h->sid[sid] : -1;
}

/* Hands @ev on to the consumer. */
static inline int hand_on(struct dat_read *d, const struct pt_event *ev)
{
	int ret;

	d->st->events++;
	ret = d->fn(ev, d->ctx);
	if (ret < 0) {
		d->consumer_stopped = true;
		set_err(d->err, d->errlen, "%s: analysis stopped: %s", d->path, strerror(-ret));
	}
	return ret < 0 ? ret : 0;
}

/* @ev's function: helper @h's string @func (0: none). 0, or -EPROTO (an id
 * never defined). */
static inline int name_func(const struct helper *h, struct pt_event *ev, uint32_t func)
{
	int64_t f = map_sid(h, func);

	if (f < 0)
		return -EPROTO;
	ev->func = f ? h->str[func] : NULL;
	ev->func_id = (uint64_t)f;
	return 0;
}

/* Hands @ev on to the consumer, its strings from helper @i's ids @func and
 * @comm (0: none). */
static inline int deliver(struct dat_read *d, unsigned i, struct pt_event *ev, uint32_t func,
			  uint32_t comm)
{
	const struct helper *h = &d->h[i];
	int64_t c = map_sid(h, comm);
	int ret = name_func(h, ev, func);

	if (ret || c < 0)
		return -EPROTO;
	ev->comm = c ? h->str[comm] : NULL;
	ev->comm_id = (uint64_t)c;
	return hand_on(d, ev);
}

/* Helper @i's event of the short forms, made for its context when it is not
 * (h->cev). NULL: no context yet, or its task name's id never defined (a
 * protocol error). */
static inline struct pt_event *ctx_event(struct dat_read *d, unsigned i)
{
	struct helper *h = &d->h[i];
	int64_t c;

	if (h->cev_ok)
		return &h->cev;
	if (!h->ctx.set || (c = map_sid(h, h->ctx.comm_sid)) < 0)
		return NULL;
	dat_wire_ctx_event(&h->ctx, &h->cev);
	h->cev.comm = c ? h->str[h->ctx.comm_sid] : NULL;
	h->cev.comm_id = (uint64_t)c;
	h->cev_ok = true;
	return &h->cev;
}

static int on_event(struct dat_read *d, unsigned i)
{
	struct dat_wire_event w;
	struct pt_event ev;
	uint32_t func, comm;
	int64_t cc;
	int ret = take(d, i, &w, sizeof(w));

	if (ret)
		return ret;
	cc = map_sid(&d->h[i], w.child_comm_sid);
	if (cc < 0)
		return -EPROTO;
	func = w.func_sid;
	comm = w.comm_sid;
	w.func_sid = w.comm_sid = w.child_comm_sid = 0; /* deliver() names them */
	dat_wire_to_event(&w, d->strings, &ev);
	ev.child_comm = pt_intern_str(d->strings, (uint32_t)cc);
	return deliver(d, i, &ev, func, comm);
}

static int on_entry(struct dat_read *d, unsigned i)
{
	struct dat_wire_entry w;
	struct pt_event ev;
	int ret = take(d, i, &w, sizeof(w));

	if (ret)
		return ret;
	dat_wire_set_ctx(&d->h[i].ctx, w.comm_sid, w.pid, w.cpu, w.in_irq);
	d->h[i].cev_ok = false;
	dat_wire_to_entry(&w, &ev);
	return deliver(d, i, &ev, w.func_sid, w.comm_sid);
}

static int on_exit_ev(struct dat_read *d, unsigned i)
{
	struct dat_wire_exit w;
	struct pt_event ev;
	int ret = take(d, i, &w, sizeof(w));

	if (ret)
		return ret;
	dat_wire_set_ctx(&d->h[i].ctx, w.comm_sid, w.pid, w.cpu, w.in_irq);
	d->h[i].cev_ok = false;
	dat_wire_to_exit(&w, &ev);
	return deliver(d, i, &ev, w.func_sid, w.comm_sid);
}

/* The short forms: in the context of helper @i's last N or R message (none
 * yet: a protocol error). */
static int on_entry_ctx(struct dat_read *d, unsigned i)
{
	struct dat_wire_entry_ctx w;
	struct pt_event *ev;
	int ret = take(d, i, &w, sizeof(w));

	if (ret)
		return ret;
	if (!(ev = ctx_event(d, i)))
		return -EPROTO;
	dat_wire_ctx_set_entry(&w, ev);
	if ((ret = name_func(&d->h[i], ev, w.func_sid)))
		return ret;
	return hand_on(d, ev);
}

static int on_exit_ctx(struct dat_read *d, unsigned i)
{
	struct dat_wire_exit_ctx w;
	struct pt_event *ev;
	int ret = take(d, i, &w, sizeof(w));

	if (ret)
		return ret;
	if (!(ev = ctx_event(d, i)))
		return -EPROTO;
	dat_wire_ctx_set_exit(&w, ev);
	if ((ret = name_func(&d->h[i], ev, w.func_sid)))
		return ret;
	return hand_on(d, ev);
}

/* A leaf call: its ENTRY, then its EXIT, in the same context. */
static int on_leaf_ctx(struct dat_read *d, unsigned i)
{
	struct dat_wire_leaf_ctx w;
	struct dat_wire_entry_ctx e;
	struct dat_wire_exit_ctx r;
	struct pt_event *ev;
	int ret = take(d, i, &w, sizeof(w));

	if (ret)
		return ret;
	if (!(ev = ctx_event(d, i)))
		return -EPROTO;
	dat_wire_leaf_split(&w, &e, &r);
	dat_wire_ctx_set_entry(&e, ev);
	if ((ret = name_func(&d->h[i], ev, e.func_sid)) || (ret = hand_on(d, ev)))
		return ret;
	dat_wire_ctx_set_exit(&r, ev); /* the same function: named already */
	return hand_on(d, ev);
}

/* Room in @h's id maps for id @sid. 0 or -ENOMEM. */
static int grow_sids(struct helper *h, uint32_t sid)
{
	size_t n = h->nr_sid ? h->nr_sid : 256;
	uint32_t *v;
	const char **sv;

	while (n <= sid)
		n *= 2;
	v = realloc(h->sid, n * sizeof(*v));
	if (v)
		h->sid = v;
	sv = v ? realloc(h->str, n * sizeof(*sv)) : NULL;
	if (!sv)
		return -ENOMEM;
	h->str = sv;
	memset(v + h->nr_sid, 0, (n - h->nr_sid) * sizeof(*v));
	memset(sv + h->nr_sid, 0, (n - h->nr_sid) * sizeof(*sv));
	h->nr_sid = n;
	return 0;
}

/* A helper's string: interned in the read's table (the same name from two
 * helpers gets one id), its id mapped. */
static int on_string(struct dat_read *d, unsigned i)
{
	struct helper *h = &d->h[i];
	uint32_t hdr[2];
	int64_t id;
	int r = 0, ret = take(d, i, hdr, sizeof(hdr));

	if (ret)
		return ret;
	if (hdr[1] > DAT_WIRE_MAX_STRING || hdr[0] == 0 || hdr[0] > DAT_WIRE_MAX_SID ||
	    (r = need(d, i, hdr[1])) <= 0)
		return r < 0 ? r : -EPROTO;
	id = pt_intern_add(d->strings, h->buf + h->start, hdr[1]);
	h->start += hdr[1];
	if (id < 0)
		return (int)id;
	if (hdr[0] >= h->nr_sid && (ret = grow_sids(h, hdr[0])))
		return ret;
	h->sid[hdr[0]] = (uint32_t)id;
	h->str[hdr[0]] = pt_intern_str(d->strings, (uint32_t)id);
	h->cev_ok = false; /* the context's task name, if it was this id */
	return 0;
}

static int on_progress(struct dat_read *d, unsigned i)
{
	uint64_t pr[2], sum = 0;
	int ret = take(d, i, pr, sizeof(pr));

	if (ret || !d->opts || !d->opts->progress)
		return ret;
	d->h[i].progress = pr[0];
	for (unsigned k = 0; k < d->nh; k++)
		sum += d->h[k].progress;
	d->opts->progress(sum, pr[1], d->opts->progress_ctx);
	return 0;
}

/* A helper's end: its counts added to the read's. */
static int on_done(struct dat_read *d, unsigned i)
{
	struct pt_input_stats *st = d->st;
	struct dat_wire_done w;
	int ret = take(d, i, &w, sizeof(w));

	if (ret)
		return ret;
	st->lost_events += w.lost;
	st->lines += w.lines;
	st->unparsed_lines += w.unparsed_lines;
	st->lost_unknown |= w.lost_unknown != 0;
	if ((int)w.cpus > st->cpus)
		st->cpus = (int)w.cpus;
	if (w.first_ts != PT_NO_TIME &&
	    (st->first_ts_ns == PT_NO_TIME || w.first_ts < st->first_ts_ns))
		st->first_ts_ns = w.first_ts;
	if (w.last_ts != PT_NO_TIME && (st->last_ts_ns == PT_NO_TIME || w.last_ts > st->last_ts_ns))
		st->last_ts_ns = w.last_ts;
	d->h[i].got_done = true;
	return 0;
}

static int on_error(struct dat_read *d, unsigned i)
{
	struct helper *h = &d->h[i];
	uint32_t len;
	int ret = take(d, i, &len, sizeof(len));

	if (ret)
		return ret;
	if (len > DAT_WIRE_MAX_ERROR || need(d, i, len) <= 0)
		return -EPROTO;
	set_err(d->err, d->errlen, "%s: %.*s", d->path, (int)len, h->buf + h->start);
	h->start += len;
	d->got_error = true;
	return -EINVAL;
}

/*
 * Hands on helper @i's messages until the end of chunk @chunk (returns 1),
 * or its end (Z: returns 0; also when @chunk is DAT_ALL). Any other end of
 * the stream is an error.
 */
static int read_until(struct dat_read *d, unsigned i, uint32_t chunk)
{
	for (;;) {
		int ret = need(d, i, 1);
		uint32_t got;
		uint8_t t;

		if (ret <= 0)
			return ret ? ret : -EPROTO;
		t = (uint8_t)d->h[i].buf[d->h[i].start++];
		if (t == DAT_W_LEAF_CTX)
			ret = on_leaf_ctx(d, i);
		else if (t == DAT_W_ENTRY_CTX)
			ret = on_entry_ctx(d, i);
		else if (t == DAT_W_EXIT_CTX)
			ret = on_exit_ctx(d, i);
		else if (t == DAT_W_ENTRY)
			ret = on_entry(d, i);
		else if (t == DAT_W_EXIT)
			ret = on_exit_ev(d, i);
		else if (t == DAT_W_EVENT)
			ret = on_event(d, i);
		else if (t == DAT_W_STRING)
			ret = on_string(d, i);
		else if (t == DAT_W_PROGRESS)
			ret = on_progress(d, i);
		else if (t == DAT_W_ERROR)
			ret = on_error(d, i);
		else if (t == DAT_W_DONE)
			return chunk == DAT_ALL ? on_done(d, i) : -EPROTO;
		else if (t == DAT_W_CHUNK && chunk != DAT_ALL)
			return (ret = take(d, i, &got, 4)) ? ret : got == chunk ? 1 : -EPROTO;
		else
			ret = -EPROTO;
		if (ret)
			return ret;
	}
}

/* The chunks in order, chunk k from helper k % nh, then every helper's end. */
static int read_messages(struct dat_read *d)
{
	int ret = 0;

	for (uint32_t c = 0; c < d->chunks && ret >= 0; c++)
		ret = read_until(d, c % d->nh, c);
	for (unsigned i = 0; i < d->nh && ret >= 0; i++)
		ret = read_until(d, i, DAT_ALL);
	return ret < 0 ? ret : 0;
}

/* Waits for helper @h and turns how it ended into the result. */
static int reap_helper(struct dat_read *d, struct helper *h, int ret)
{
	const char *path = d->path;
	int status;

	if (ret < 0 || !h->got_done)
		kill(h->pid, SIGKILL);
	while (waitpid(h->pid, &status, 0) < 0 && errno == EINTR)
		;
	if (d->got_error || d->consumer_stopped)
		return ret; /* message already set */
	if (ret == -ETIMEDOUT) {
		set_err(d->err, d->errlen, "%s: the %s reader stalled for %d s: corrupt file?",
			path, d->what, STALL_SECONDS);
		return -EINVAL;
	}
	if (!h->got_done && WIFSIGNALED(status) && WTERMSIG(status) == SIGXCPU) {
		set_err(d->err, d->errlen, "%s: reading it took too long: corrupt %s?", path,
			d->what);
		return -EINVAL;
	}
	if (!h->got_done && WIFSIGNALED(status)) {
		set_err(d->err, d->errlen, "%s: corrupt %s: the reader died (%s)", path, d->what,
			strsignal(WTERMSIG(status)));
		return -EINVAL;
	}
	if (!h->got_done || ret == -EPROTO) {
		set_err(d->err, d->errlen, "%s: corrupt %s: the reader stopped early (exit %d)",
			path, d->what, WIFEXITED(status) ? WEXITSTATUS(status) : -1);
		return -EINVAL;
	}
	if (ret < 0)
		set_err(d->err, d->errlen, "%s: reading it failed: %s", path, strerror(-ret));
	return ret;
}

/* Starts helper @i with a pipe of its own. */
static int start_helper(struct dat_read *d, unsigned i)
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
	ret = spawn_helper(d, i, pipefd[1]);
	close(pipefd[1]);
	if (ret) {
		close(pipefd[0]);
		return ret;
	}
	d->h[i].fd = pipefd[0];
	return 0;
}

/* Starts the helpers and reads what they send; the first failure is the result. */
static int run_helpers(struct dat_read *d)
{
	unsigned started = 0;
	int ret = 0, r;

	while (started < d->nh && !(ret = start_helper(d, started)))
		started++;
	if (!ret)
		ret = read_messages(d);
	for (unsigned i = 0; i < started; i++) {
		r = reap_helper(d, &d->h[i], ret);
		if (r < 0 && ret >= 0)
			ret = r;
		else if (r < 0 && ret == -EPROTO)
			ret = r; /* a helper's own story beats "the stream ended" */
	}
	return ret;
}

/* How many helpers: $PTESCOPE_DAT_JOBS (at most MAX_HELPERS), else one for
 * a v7 file (the helper's own page walk keeps pace with the reconstruction
 * here; parallel helpers read with libtracecmd), else for a file of
 * PARALLEL_MIN_BYTES or more one per online CPU but one, which the
 * reconstruction needs (at most DEFAULT_HELPERS), else one. On two CPUs
 * that is one: two helpers and this process on two cores were slower than
 * one helper (tests/bench/replay-bench). */
static unsigned helpers_for(off_t size, char version)
{
	const char *env = getenv("PTESCOPE_DAT_JOBS");
	long n;

	if (env && *env) {
		char *end;

		n = strtol(env, &end, 10);
		if (!*end && n >= 1)
			return n < MAX_HELPERS ? (unsigned)n : MAX_HELPERS;
	}
	if (version == '7' || size < PARALLEL_MIN_BYTES)
		return 1;
	n = sysconf(_SC_NPROCESSORS_ONLN) - 1;
	return n < 1 ? 1 : n < DEFAULT_HELPERS ? (unsigned)n : DEFAULT_HELPERS;
}

/* How many time slices a parallel read cuts: $PTESCOPE_DAT_CHUNKS (tests
 * move the boundaries with it), else CHUNKS_PER_HELPER per helper. */
static uint32_t chunks_for(unsigned nh)
{
	long long n;

	if (!pt_parse_int(getenv("PTESCOPE_DAT_CHUNKS"), 1, 1 << 20, &n))
		return (uint32_t)n;
	return nh * CHUNKS_PER_HELPER;
}

/* Runs d->nh helpers over the input and hands their events on; frees what it took. */
static int read_through_helpers(struct dat_read *d)
{
	int ret;

	d->st->first_ts_ns = d->st->last_ts_ns = PT_NO_TIME;
	d->h = calloc(d->nh, sizeof(*d->h));
	if (!d->h || pt_intern_new(&d->strings)) {
		ret = -ENOMEM;
		set_err(d->err, d->errlen, "%s: cannot start the reader: %s", d->path,
			strerror(-ret));
	} else {
		for (unsigned i = 0; i < d->nh; i++)
			d->h[i].fd = -1;
		ret = run_helpers(d);
	}
	for (unsigned i = 0; d->h && i < d->nh; i++) {
		if (d->h[i].fd >= 0)
			close(d->h[i].fd);
		free(d->h[i].buf);
		free(d->h[i].sid);
		free(d->h[i].str);
	}
	free(d->h);
	pt_intern_free(d->strings);
	return ret;
}

int pt_dat_read(const char *path, pt_event_fn fn, void *ctx, struct pt_input_stats *st,
		const struct pt_read_opts *opts, char *err, size_t errlen)
{
	struct dat_read d = {.path = path,
			     .text_fd = -1,
			     .what = "trace.dat",
			     .fn = fn,
			     .ctx = ctx,
			     .st = st,
			     .opts = opts,
			     .err = err,
			     .errlen = errlen};
	struct stat sb;
	char version = 0;
	int fd = -1, ret = open_dat(path, &fd, &version, err, errlen);

	if (ret)
		return ret;
	d.nh = helpers_for(fstat(fd, &sb) == 0 ? sb.st_size : 0, version);
	d.chunks = d.nh > 1 ? chunks_for(d.nh) : 0;
	ret = read_through_helpers(&d);
	close(fd);
	return ret;
}

int pt_text_read_helper(int fd, const char *name, pt_event_fn fn, void *ctx,
			struct pt_input_stats *st, const struct pt_read_opts *opts, char *err,
			size_t errlen)
{
	struct dat_read d = {.path = name,
			     .text_fd = fd,
			     .what = "text trace",
			     .nh = 1,
			     .fn = fn,
			     .ctx = ctx,
			     .st = st,
			     .opts = opts,
			     .err = err,
			     .errlen = errlen};

	return read_through_helpers(&d);
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
