/* SPDX-License-Identifier: MIT */
/*
 * trace.dat reader (reader.h): trace-cmd files, v6 and v7 (compressed), read
 * through libtracecmd, every CPU merged by time, turned into pt_events.
 *
 * libtraceevent and libtracecmd have had fuzzer-found infinite loops and
 * out-of-bounds reads on corrupt files, and a replay must never crash or hang
 * on one. So the library runs in another process: the small helper program
 * ptescope-dat-reader (cli/), started with posix_spawn (fork and exec:
 * a forked child of a multi-threaded process, such as the daemon or a fuzzer,
 * can deadlock on a lock another thread held at fork time, so nothing but
 * exec runs between the two), under CPU-time and memory limits, with stderr
 * silenced. It streams compact fixed-size event records over a pipe, and this
 * process turns them back into pt_events for the consumer. A crash, a limit
 * hit or a stall in the helper becomes one error line here. The pipe costs
 * about 60 bytes per event, far below what the library itself costs per event.
 *
 * Records are decoded by raw_decode.c (fields by name once per file, read by
 * offset per record, bounded by the record's size).
 *
 * Time bases: ENTRY/FORK times are the records' timestamps (what `trace-cmd
 * report` prints); EXIT times come from the funcgraph_exit calltime/rettime
 * fields, which the kernel takes with the trace clock at call and return and
 * which are exact even where nested records share one ring-buffer timestamp.
 * The two bases can differ by a constant (trace.dat time offsets): event.h.
 *
 * The helper is found through $PTESCOPE_DAT_READER, beside the running
 * program, in the build tree, or in the installed libexec path
 * (pt_dat_reader_path()).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <trace-cmd/trace-cmd.h>

#include "intern.h"
#include "raw_decode.h"
#include "reader.h"

#if defined(__SANITIZE_ADDRESS__)
#define PT_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define PT_ASAN 1
#endif
#endif

#define DAT_MAGIC "\027\010\104tracing"
#define DAT_MAGIC_LEN 10
#define STALL_SECONDS 120 /* no byte from the child for this long: give up */
#define EXIT_BAD_FILE 3

enum wire_type {
	W_STRING = 'S',
	W_EVENT = 'E',
	W_PROGRESS = 'P',
	W_DONE = 'Z',
	W_ERROR = 'X',
};

struct wire_event {
	uint8_t type;
	uint8_t in_irq;
	uint8_t pad[2];
	int32_t cpu, pid, depth, child_pid;
	uint32_t func_sid, comm_sid, child_comm_sid;
	uint64_t ts, dur, call, lost;
};

struct wire_done {
	uint64_t events, lost;
	uint32_t lost_unknown, cpus;
	uint64_t first_ts, last_ts;
};

__attribute__((format(printf, 3, 4))) static void set_err(char *err, size_t errlen,
							  const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* ------------------------------------------------------------------ child */

struct child {
	int fd;
	char buf[1 << 18];
	size_t used;
	int failed;

	struct tep_handle *tep;
	struct pt_raw_decoder *dec;
	struct pt_intern *strings;
	struct pt_u64map *func_sid; /* function address -> string id */
	struct pt_u64map *comm_sid; /* pid -> string id */
	/* one-entry caches in front of the maps: runs of one function and one
	 * task are the common case (vm_normal_page after vm_normal_page) */
	uint64_t last_func;
	uint32_t last_func_sid;
	int last_pid;
	uint32_t last_comm_sid;
	struct wire_done done;
};

static void child_flush(struct child *c)
{
	size_t off = 0;

	while (!c->failed && off < c->used) {
		ssize_t n = write(c->fd, c->buf + off, c->used - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			c->failed = 1;
		else
			off += (size_t)n;
	}
	c->used = 0;
}

static void child_write(struct child *c, const void *p, size_t len)
{
	if (c->used + len > sizeof(c->buf))
		child_flush(c);
	if (c->failed || len > sizeof(c->buf))
		return;
	memcpy(c->buf + c->used, p, len);
	c->used += len;
}

static void child_error(struct child *c, const char *msg)
{
	uint8_t t = W_ERROR;
	uint32_t len = (uint32_t)strlen(msg);

	child_write(c, &t, 1);
	child_write(c, &len, sizeof(len));
	child_write(c, msg, len);
	child_flush(c);
}

/* Interns @s and sends its definition the first time. Returns the id, 0 on failure. */
static uint32_t child_string(struct child *c, const char *s, size_t len)
{
	size_t before = pt_intern_count(c->strings);
	int64_t id = pt_intern_add(c->strings, s, len);

	if (id < 0)
		return 0;
	if (pt_intern_count(c->strings) != before) {
		uint8_t t = W_STRING;
		uint32_t id32 = (uint32_t)id, len32 = (uint32_t)strlen(pt_intern_str(c->strings, id32));

		child_write(c, &t, 1);
		child_write(c, &id32, sizeof(id32));
		child_write(c, &len32, sizeof(len32));
		child_write(c, pt_intern_str(c->strings, id32), len32);
	}
	return (uint32_t)id;
}

static uint32_t func_string(struct child *c, uint64_t addr)
{
	uint32_t sid;
	const char *name;
	char hex[32];

	if (c->last_func_sid && c->last_func == addr)
		return c->last_func_sid;
	if (pt_u64map_get(c->func_sid, addr, &sid)) {
		c->last_func = addr;
		c->last_func_sid = sid;
		return sid;
	}
	name = tep_find_function(c->tep, addr);
	if (!name) {
		snprintf(hex, sizeof(hex), "0x%llx", (unsigned long long)addr);
		name = hex;
	}
	sid = child_string(c, name, strlen(name));
	if (sid && pt_u64map_put(c->func_sid, addr, sid))
		return 0;
	return sid;
}

static uint32_t comm_string(struct child *c, int pid)
{
	uint32_t sid;
	const char *comm;

	if (pid == c->last_pid)
		return c->last_comm_sid;
	if (pt_u64map_get(c->comm_sid, (uint64_t)(uint32_t)pid, &sid)) {
		c->last_pid = pid;
		c->last_comm_sid = sid;
		return sid;
	}
	comm = tep_data_comm_from_pid(c->tep, pid);
	if (!comm || !strcmp(comm, "<...>"))
		comm = "";
	sid = *comm ? child_string(c, comm, strlen(comm)) : 0;
	pt_u64map_put(c->comm_sid, (uint64_t)(uint32_t)pid, sid);
	return sid;
}

static void child_event(struct child *c, const struct wire_event *w)
{
	uint8_t t = W_EVENT;

	child_write(c, &t, 1);
	child_write(c, w, sizeof(*w));
	c->done.events++;
	if ((c->done.events & ((1u << 18) - 1)) == 0) {
		uint64_t p[2] = {c->done.events, 0};

		t = W_PROGRESS;
		child_write(c, &t, 1);
		child_write(c, p, sizeof(p));
	}
}

static int child_record(struct tracecmd_input *h, struct tep_record *r, int cpu, void *data)
{
	struct child *c = data;
	struct wire_event w = {.cpu = cpu, .depth = -1, .child_pid = -1};
	struct pt_raw_event raw;

	(void)h;
	if (c->failed)
		return -1;
	if (r->missed_events) {
		struct wire_event l = {.type = PT_EV_LOST, .cpu = cpu, .pid = -1, .depth = -1,
				       .child_pid = -1, .ts = r->ts, .dur = PT_NO_TIME,
				       .call = PT_NO_TIME};

		l.lost = r->missed_events > 0 ? (uint64_t)r->missed_events : 0;
		if (r->missed_events > 0)
			c->done.lost += (uint64_t)r->missed_events;
		else
			c->done.lost_unknown = 1;
		child_event(c, &l);
	}
	if (pt_raw_decode(c->dec, r->data, r->size, &raw) != 1)
		return 0;
	w.type = (uint8_t)raw.type;
	w.in_irq = raw.in_irq;
	w.pid = raw.pid;
	w.depth = raw.depth;
	w.ts = r->ts;
	w.dur = PT_NO_TIME;
	w.call = PT_NO_TIME;
	if (raw.type == PT_EV_FORK) {
		w.child_pid = raw.child_pid;
		w.comm_sid = child_string(c, raw.parent_comm, strlen(raw.parent_comm));
		w.child_comm_sid = child_string(c, raw.child_comm, strlen(raw.child_comm));
	} else {
		w.func_sid = func_string(c, raw.func);
		w.comm_sid = comm_string(c, raw.pid);
		if (raw.type == PT_EV_EXIT) {
			w.call = raw.calltime;
			w.ts = raw.rettime;
			w.dur = raw.rettime >= raw.calltime ? raw.rettime - raw.calltime : PT_NO_TIME;
		}
	}
	if (c->done.first_ts == PT_NO_TIME)
		c->done.first_ts = r->ts;
	c->done.last_ts = r->ts;
	child_event(c, &w);
	return c->failed ? -1 : 0;
}

static void set_limits(off_t file_size)
{
	struct rlimit cpu, core = {0, 0};
	rlim_t secs = 60 + (rlim_t)(file_size >> 20); /* a minute plus a second per MiB */

	cpu.rlim_cur = secs;
	cpu.rlim_max = secs + 5;
	setrlimit(RLIMIT_CPU, &cpu);
	setrlimit(RLIMIT_CORE, &core);
#ifndef PT_ASAN
	{
		struct rlimit as;
		rlim_t bytes = ((rlim_t)4 << 30) + (rlim_t)file_size * 32;

		as.rlim_cur = as.rlim_max = bytes;
		setrlimit(RLIMIT_AS, &as);
	}
#endif
}

int pt_dat_reader_main(const char *path, int fd)
{
	struct stat sb;
	off_t file_size = stat(path, &sb) == 0 ? sb.st_size : 0;
	struct child *c = calloc(1, sizeof(*c));
	struct tracecmd_input *h;
	uint8_t t;
	int devnull;

	if (!c)
		return 1;
	c->fd = fd;
	c->last_pid = -1;
	c->done.first_ts = c->done.last_ts = PT_NO_TIME;
	set_limits(file_size);
	if (!getenv("PTESCOPE_DEBUG_DAT")) {
		devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
		if (devnull >= 0)
			dup2(devnull, STDERR_FILENO);
	}
	tracecmd_set_loglevel(TEP_LOG_NONE);
	if (pt_intern_new(&c->strings) || pt_u64map_new(&c->func_sid) || pt_u64map_new(&c->comm_sid))
		return 1;
	h = tracecmd_open(path, TRACECMD_FL_LOAD_NO_PLUGINS | TRACECMD_FL_LOAD_NO_SYSTEM_PLUGINS);
	if (!h) {
		child_error(c, "libtracecmd cannot open it: corrupt or unsupported trace.dat");
		return EXIT_BAD_FILE;
	}
	c->tep = tracecmd_get_tep(h);
	if (pt_raw_decoder_new(c->tep, &c->dec)) {
		child_error(c, "it holds no function_graph nor sched_process_fork events "
			       "(record with -p function_graph and/or -e sched:sched_process_fork)");
		tracecmd_close(h);
		return EXIT_BAD_FILE;
	}
	c->done.cpus = (uint32_t)tep_get_cpus(c->tep);
	tracecmd_iterate_events(h, NULL, 0, child_record, c);
	tracecmd_close(h);
	t = W_DONE;
	child_write(c, &t, 1);
	child_write(c, &c->done, sizeof(c->done));
	child_flush(c);
	return c->failed ? 1 : 0;
}

/* ----------------------------------------------------------------- parent */

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

int pt_dat_read(const char *path, pt_event_fn fn, void *ctx, struct pt_input_stats *st,
		const struct pt_read_opts *opts, char *err, size_t errlen)
{
	struct parent p = {.fd = -1};
	struct pt_intern *strings = NULL;
	struct stat sb;
	const char *helper;
	char helper_buf[4096];
	int fd, pipefd[2] = {-1, -1}, ret = 0, status, got_done = 0, got_error = 0,
	    consumer_stopped = 0;
	pid_t pid;

	fd = open(path, O_RDONLY | O_CLOEXEC);
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
	if (pipe2(pipefd, O_CLOEXEC)) {
		ret = -errno;
		set_err(err, errlen, "%s: cannot start the reader: %s", path, strerror(-ret));
		goto out;
	}
	/* fewer wake-ups between the two processes; failure only costs speed */
	fcntl(pipefd[1], F_SETPIPE_SZ, 1 << 20);
	if (pt_intern_new(&strings)) {
		ret = -ENOMEM;
		set_err(err, errlen, "%s: cannot start the reader: %s", path, strerror(-ret));
		goto out;
	}
	helper = pt_dat_reader_path(helper_buf, sizeof(helper_buf));
	if (!helper) {
		ret = -ENOENT;
		set_err(err, errlen, "%s: the trace.dat reader helper ptescope-dat-reader is not "
			"installed (or set PTESCOPE_DAT_READER)", path);
		goto out;
	}
	{
		posix_spawn_file_actions_t fa;
		char *const argv[] = {(char *)helper, (char *)path, NULL};

		if (posix_spawn_file_actions_init(&fa)) {
			ret = -ENOMEM;
			set_err(err, errlen, "%s: cannot start the reader: out of memory", path);
			goto out;
		}
		posix_spawn_file_actions_adddup2(&fa, pipefd[1], STDOUT_FILENO);
		ret = -posix_spawn(&pid, helper, &fa, NULL, argv, environ);
		posix_spawn_file_actions_destroy(&fa);
		if (ret) {
			set_err(err, errlen, "%s: cannot start the reader %s: %s", path, helper,
				strerror(-ret));
			goto out;
		}
	}
	close(pipefd[1]);
	pipefd[1] = -1;
	p.fd = pipefd[0];
	p.cap = 1 << 18;
	p.buf = malloc(p.cap);
	if (!p.buf) {
		ret = -ENOMEM;
		set_err(err, errlen, "%s: out of memory", path);
		goto reap;
	}
	for (;;) {
		uint8_t t;
		int r = parent_need(&p, 1);

		if (r <= 0) {
			ret = r;
			break;
		}
		t = (uint8_t)p.buf[p.start++];
		if (t == W_EVENT) {
			struct wire_event w;
			struct pt_event ev;

			if ((ret = parent_take(&p, &w, sizeof(w))))
				break;
			pt_event_init(&ev, (enum pt_event_type)w.type);
			ev.cpu = w.cpu;
			ev.pid = w.pid;
			ev.depth = w.depth;
			ev.ts_ns = w.ts;
			ev.dur_ns = w.dur;
			ev.call_ns = w.call;
			ev.func = pt_intern_str(strings, w.func_sid);
			ev.func_id = ev.func ? w.func_sid : 0;
			ev.comm = pt_intern_str(strings, w.comm_sid);
			ev.child_pid = w.child_pid;
			ev.child_comm = pt_intern_str(strings, w.child_comm_sid);
			ev.lost = w.lost;
			ev.in_irq = w.in_irq != 0;
			st->events++;
			ret = fn(&ev, ctx);
			if (ret < 0) {
				consumer_stopped = 1;
				set_err(err, errlen, "%s: analysis stopped: %s", path, strerror(-ret));
				break;
			}
		} else if (t == W_STRING) {
			uint32_t hdr[2];

			if ((ret = parent_take(&p, hdr, sizeof(hdr))))
				break;
			if (hdr[1] > (1u << 16) || (r = parent_need(&p, hdr[1])) <= 0) {
				ret = r < 0 ? r : -EPROTO;
				break;
			}
			ret = pt_intern_put(strings, hdr[0], p.buf + p.start, hdr[1]);
			p.start += hdr[1];
			if (ret)
				break;
		} else if (t == W_PROGRESS) {
			uint64_t pr[2];

			if ((ret = parent_take(&p, pr, sizeof(pr))))
				break;
			if (opts && opts->progress)
				opts->progress(pr[0], pr[1], opts->progress_ctx);
		} else if (t == W_DONE) {
			struct wire_done d;

			if ((ret = parent_take(&p, &d, sizeof(d))))
				break;
			st->lost_events += d.lost;
			st->lost_unknown |= d.lost_unknown != 0;
			st->cpus = (int)d.cpus;
			st->first_ts_ns = d.first_ts;
			st->last_ts_ns = d.last_ts;
			got_done = 1;
		} else if (t == W_ERROR) {
			uint32_t len;

			if ((ret = parent_take(&p, &len, sizeof(len))))
				break;
			if (len > 4096 || (r = parent_need(&p, len)) <= 0) {
				ret = -EPROTO;
				break;
			}
			set_err(err, errlen, "%s: %.*s", path, (int)len, p.buf + p.start);
			p.start += len;
			got_error = 1;
			ret = -EINVAL;
			break;
		} else {
			ret = -EPROTO;
			break;
		}
	}
reap:
	if (ret < 0 || !got_done)
		kill(pid, SIGKILL);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (got_error || consumer_stopped) {
		/* message already set */
	} else if (ret == -ETIMEDOUT) {
		set_err(err, errlen, "%s: the trace.dat reader stalled for %d s: corrupt file?",
			path, STALL_SECONDS);
		ret = -EINVAL;
	} else if (!got_done && WIFSIGNALED(status) && WTERMSIG(status) == SIGXCPU) {
		set_err(err, errlen, "%s: reading it took too long: corrupt trace.dat?", path);
		ret = -EINVAL;
	} else if (!got_done && WIFSIGNALED(status)) {
		set_err(err, errlen, "%s: corrupt trace.dat: the reader died (%s)", path,
			strsignal(WTERMSIG(status)));
		ret = -EINVAL;
	} else if (!got_done || ret == -EPROTO) {
		set_err(err, errlen, "%s: corrupt trace.dat: the reader stopped early (exit %d)",
			path, WIFEXITED(status) ? WEXITSTATUS(status) : -1);
		ret = -EINVAL;
	} else if (ret < 0) {
		set_err(err, errlen, "%s: reading it failed: %s", path, strerror(-ret));
	}
out:
	free(p.buf);
	if (pipefd[0] >= 0)
		close(pipefd[0]);
	if (pipefd[1] >= 0)
		close(pipefd[1]);
	pt_intern_free(strings);
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

/* -------------------------------------------------------- format detection */

const char *pt_format_name(enum pt_format fmt)
{
	switch (fmt) {
	case PT_FMT_DAT:
		return "dat";
	case PT_FMT_TEXT:
		return "text";
	case PT_FMT_REPORT_TEXT:
		return "report-text";
	default:
		return "unknown";
	}
}

int pt_detect_format(const unsigned char *head, size_t head_len, enum pt_format *fmt, char *err,
		     size_t errlen)
{
	size_t ctrl = 0;

	*fmt = PT_FMT_UNKNOWN;
	if (head_len == 0) {
		set_err(err, errlen, "empty file");
		return -EINVAL;
	}
	if (head_len >= DAT_MAGIC_LEN && !memcmp(head, DAT_MAGIC, DAT_MAGIC_LEN)) {
		*fmt = PT_FMT_DAT;
		return 0;
	}
	for (size_t i = 0; i < head_len; i++) {
		unsigned char ch = head[i];

		if (ch == 0)
			ctrl += 8;
		else if (ch < 0x20 && ch != '\n' && ch != '\r' && ch != '\t')
			ctrl++;
	}
	if (ctrl * 20 > head_len) {
		set_err(err, errlen, "binary data, not a trace (neither trace.dat nor text)");
		return -EINVAL;
	}
	/* trace-cmd report output names its events; kernel text does not */
	if (memmem(head, head_len, "funcgraph_entry:", 16) ||
	    memmem(head, head_len, "funcgraph_exit:", 15) ||
	    (head_len > 5 && !memcmp(head, "cpus=", 5)))
		*fmt = PT_FMT_REPORT_TEXT;
	else
		*fmt = PT_FMT_TEXT;
	return 0;
}
