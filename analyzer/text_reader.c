/* SPDX-License-Identifier: MIT */
/*
 * The function_graph text reader: turns the text the kernel writes to
 * tracefs `trace`/`trace_pipe` (any combination of the funcgraph-* and
 * context-info/latency-format options) and `trace-cmd report` output of
 * function_graph recordings (the graph plugin's, -l, -t, and -R's raw fields
 * with the exits' calltime/rettime/overrun) into pt_events (event.h), in file
 * order, for a pt_event_fn (normally the reconstruction).
 *
 * Fed by a file descriptor (files and pipes, read in 1 MiB chunks, never
 * mapped) or by a buffer in memory (tests, fuzzers). Each line is parsed by
 * hand, left to right, column by column, the way trace_functions_graph.c
 * prints them: [abstime |] [reltime |] [cpu)] [comm-pid |] [lat flags |]
 * [duration |] indentation content. Depth is the indentation after the last
 * column (two spaces per level). Lines that match nothing are counted, not
 * fatal. Sized for multi-GB traces: memory is bounded by the longest line
 * allowed (opts->max_line_bytes) plus the function-name table, which is
 * capped; a longer line is skipped without being buffered.
 */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "intern.h"
#include "reader.h"

#define TEXT_READ_CHUNK (1u << 20)
#define TEXT_DEFAULT_MAX_LINE ((size_t)1 << 20)
#define TEXT_PROGRESS_STEP ((uint64_t)16 << 20)
#define TEXT_MAX_CPU 8192     /* the kernel's NR_CPUS limit */
#define TEXT_MAX_DEPTH 100000 /* far above any max_graph_depth */
#define TEXT_MAX_NAME 512     /* longer "function names" are not parsed */
#define TEXT_MAX_NAMES (1u << 20)
#define TEXT_MAX_NAME_BYTES ((size_t)64 << 20)
#define TEXT_COMM_MAX 64
#define TEXT_REPORT_SCAN 256 /* the report's timestamp is within this many bytes */

/* Interned function names (intern.c), bounded for hostile input: func
 * pointers stay valid until the read returns. */
struct text_names {
	struct pt_intern *in; /* created at the first name */
	size_t bytes;
	uint32_t last; /* id of the last name looked up (runs of one leaf) */
};

/* What a task-switch block or an irq marker told us about one CPU. */
struct text_cpu {
	int pid; /* -1: no task-switch block seen */
	bool in_irq;
	char comm[TEXT_COMM_MAX];
};

struct text_reader {
	pt_event_fn fn;
	void *ctx;
	struct pt_input_stats *st;
	struct text_names names;
	struct text_cpu *cpus;
	size_t ncpus;
	struct text_cpu nocpu; /* lines without a CPU column */
	int max_cpu;
	int header_cpus; /* "cpus=N" or "#P:N", 0 if not seen */
	bool graph_header;
	char comm[TEXT_COMM_MAX];
	char child_comm[TEXT_COMM_MAX];
};

/* One parsed trace line, before it becomes an event. */
struct text_line {
	int cpu;
	int pid;
	const char *comm;
	uint64_t ts_ns;
	uint64_t dur_ns;
	bool in_irq; /* the line's own flags column said so (trace-cmd report -l) */
};

static inline bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static inline const char *skip_sp(const char *p, const char *e)
{
	while (p < e && *p == ' ')
		p++;
	return p;
}

static inline const char *rtrim(const char *s, const char *e)
{
	while (e > s && e[-1] == ' ')
		e--;
	return e;
}

static inline bool has_prefix(const char *p, const char *e, const char *lit, size_t n)
{
	return e > p && (size_t)(e - p) >= n && memcmp(p, lit, n) == 0;
}

#define HAS_PREFIX(p, e, lit) has_prefix((p), (e), (lit), sizeof(lit) - 1)

/*
 * Parses a decimal "123" or "123.456" at p as a fixed-point number with
 * @frac_digits decimals (extra decimals are dropped, as the kernel truncates
 * too). Returns the end, or NULL on no digits or overflow. Hand-written:
 * lines are not NUL-terminated and this is the hot path.
 */
static const char *parse_fixed(const char *p, const char *e, int frac_digits, uint64_t *out,
			       bool *had_dot)
{
	uint64_t ip = 0, fp = 0, scale = 1;
	const char *start = p;
	int i, nf = 0;

	while (p < e && is_digit(*p)) {
		unsigned d = (unsigned)(*p - '0');

		if (ip > (UINT64_MAX - d) / 10)
			return NULL;
		ip = ip * 10 + d;
		p++;
	}
	if (p == start)
		return NULL;
	*had_dot = false;
	if (p < e && *p == '.') {
		*had_dot = true;
		p++;
		while (p < e && is_digit(*p)) {
			if (nf < frac_digits) {
				fp = fp * 10 + (unsigned)(*p - '0');
				nf++;
			}
			p++;
		}
	}
	for (i = nf; i < frac_digits; i++)
		fp *= 10;
	for (i = 0; i < frac_digits; i++)
		scale *= 10;
	/* UINT64_MAX is PT_NO_TIME: not a value a line can carry. */
	if (ip > (UINT64_MAX - fp) / scale || ip * scale + fp == UINT64_MAX)
		return NULL;
	*out = ip * scale + fp;
	return p;
}

/* Unsigned int in [0, max] spanning exactly [p, e). */
static bool parse_uint(const char *p, const char *e, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;

	if (p >= e)
		return false;
	for (; p < e; p++) {
		if (!is_digit(*p))
			return false;
		v = v * 10 + (unsigned)(*p - '0');
		if (v > max)
			return false;
	}
	*out = v;
	return true;
}

/* Leading digits at p as an int <= max; returns the end or NULL. */
static const char *parse_int_prefix(const char *p, const char *e, uint64_t max, int *out)
{
	const char *q = p;
	uint64_t v;

	while (q < e && is_digit(*q))
		q++;
	if (!parse_uint(p, q, max, &v))
		return NULL;
	*out = (int)v;
	return q;
}

static void copy_str(char *dst, const char *p, const char *e)
{
	size_t n = (size_t)(e - p);

	if (n > TEXT_COMM_MAX - 1)
		n = TEXT_COMM_MAX - 1;
	memcpy(dst, p, n);
	dst[n] = '\0';
}

/* ---- function-name table ---- */

static void names_free(struct text_names *t)
{
	pt_intern_free(t->in);
	memset(t, 0, sizeof(*t));
}

/*
 * Interns [p, p+n): sets *name and *id. Returns 0, -E2BIG when the table is
 * full (the line is then counted unparsed), -ENOMEM.
 */
static int names_intern(struct text_names *t, const char *p, size_t n, const char **name,
			uint64_t *id)
{
	const char *last = t->last ? pt_intern_str(t->in, t->last) : NULL;
	uint32_t found;
	int64_t added;

	if (last && strlen(last) == n && memcmp(last, p, n) == 0) {
		found = t->last;
	} else {
		if (!t->in && pt_intern_new(&t->in))
			return -ENOMEM;
		found = pt_intern_find(t->in, p, n);
	}
	if (!found) {
		if (pt_intern_count(t->in) >= TEXT_MAX_NAMES ||
		    t->bytes + n + 1 > TEXT_MAX_NAME_BYTES)
			return -E2BIG;
		added = pt_intern_add(t->in, p, n);
		if (added < 0)
			return (int)added;
		found = (uint32_t)added;
		t->bytes += n + 1;
	}
	t->last = found;
	*name = pt_intern_str(t->in, found);
	*id = found;
	return 0;
}

/* ---- per-CPU state ---- */

static struct text_cpu *reader_cpu(struct text_reader *r, int cpu)
{
	if (cpu < 0)
		return &r->nocpu;
	if ((size_t)cpu >= r->ncpus) {
		size_t n = r->ncpus ? r->ncpus : 8, i;
		struct text_cpu *v;

		while (n <= (size_t)cpu)
			n *= 2;
		v = realloc(r->cpus, n * sizeof(*v));
		if (!v)
			return NULL;
		for (i = r->ncpus; i < n; i++)
			v[i] = (struct text_cpu){.pid = -1};
		r->cpus = v;
		r->ncpus = n;
	}
	if (cpu > r->max_cpu)
		r->max_cpu = cpu;
	return &r->cpus[cpu];
}

/* ---- events ---- */

static int reader_emit(struct text_reader *r, const struct pt_event *ev)
{
	struct pt_input_stats *st = r->st;

	st->events++;
	if (ev->ts_ns != PT_NO_TIME) {
		if (st->first_ts_ns == PT_NO_TIME || ev->ts_ns < st->first_ts_ns)
			st->first_ts_ns = ev->ts_ns;
		if (st->last_ts_ns == PT_NO_TIME || ev->ts_ns > st->last_ts_ns)
			st->last_ts_ns = ev->ts_ns;
	}
	return r->fn(ev, r->ctx);
}

/* Fills the fields every event of a line shares; NULL when out of memory. */
static struct text_cpu *line_event(struct text_reader *r, const struct text_line *ln,
				   enum pt_event_type type, struct pt_event *ev)
{
	struct text_cpu *c = reader_cpu(r, ln->cpu);

	if (!c)
		return NULL;
	pt_event_init(ev, type);
	ev->cpu = ln->cpu;
	ev->ts_ns = ln->ts_ns;
	ev->pid = ln->pid;
	ev->comm = ln->comm;
	if (ln->pid < 0 && c->pid >= 0) {
		ev->pid = c->pid;
		ev->comm = c->comm;
	}
	ev->in_irq = c->in_irq || ln->in_irq;
	return c;
}

/* "comm-pid": pid after the last dash. Sets *pid and copies the comm to @comm. */
static bool parse_comm_pid(const char *p, const char *e, int *pid, char *comm)
{
	const char *d = e;
	uint64_t v;

	while (d > p && d[-1] != '-')
		d--;
	if (d == p || !parse_uint(d, e, INT_MAX, &v))
		return false;
	*pid = (int)v;
	copy_str(comm, p, d - 1);
	return true;
}

/* "comm=forker pid=96 child_comm=forker child_pid=97" (the print format), or
 * "parent_comm=forker parent_pid=96 child_comm=..." (trace-cmd report -R: the
 * fields); comms may hold spaces. */
static int emit_fork(struct text_reader *r, const struct text_line *ln, const char *p,
		     const char *e)
{
	const char *c1, *c1e, *q, *c2, *c2e;
	const char *pid_key = " pid=";
	struct pt_event ev;
	int pid, child;

	if (p >= e)
		return 1;
	p = skip_sp(p, e);
	e = rtrim(p, e);
	if (HAS_PREFIX(p, e, "parent_comm=")) {
		c1 = p + 12;
		pid_key = " parent_pid=";
	} else if (HAS_PREFIX(p, e, "comm=")) {
		c1 = p + 5;
	} else {
		return 1;
	}
	c1e = memmem(c1, (size_t)(e - c1), pid_key, strlen(pid_key));
	if (!c1e)
		return 1;
	q = parse_int_prefix(c1e + strlen(pid_key), e, INT_MAX, &pid);
	if (!q || !HAS_PREFIX(q, e, " child_comm="))
		return 1;
	c2 = q + 12;
	c2e = memmem(c2, (size_t)(e - c2), " child_pid=", 11);
	if (!c2e)
		return 1;
	q = parse_int_prefix(c2e + 11, e, INT_MAX, &child);
	if (!q)
		return 1;
	if (!line_event(r, ln, PT_EV_FORK, &ev))
		return -ENOMEM;
	copy_str(r->comm, c1, c1e);
	copy_str(r->child_comm, c2, c2e);
	ev.pid = pid;
	ev.comm = r->comm;
	ev.child_pid = child;
	ev.child_comm = r->child_comm;
	return reader_emit(r, &ev);
}

/*
 * Function content after the indentation: "f() {", "f();", "f [mod]() {",
 * "f(a=1);", "}", "} /​* f *​/", "} /​* f = 0x0 *​/", "f(); /​* ret=0 *​/".
 * Returns 0 or the consumer's error after emitting, 1 when not understood.
 */
static int emit_call(struct text_reader *r, const struct text_line *ln, int depth, const char *c,
		     const char *e)
{
	enum pt_event_type type;
	const char *n = c, *ne, *q;
	struct pt_event ev;
	const char *func = NULL;
	uint64_t id = 0;
	int ret;

	e = rtrim(c, e);
	if (*c == '}') {
		type = PT_EV_EXIT;
		q = skip_sp(c + 1, e);
		n = ne = q;
		if (HAS_PREFIX(q, e, "/*")) {
			n = skip_sp(q + 2, e);
			for (ne = n; ne < e && (unsigned char)*ne > ' '; ne++)
				;
			if (ne > n && *n == '=')
				ne = n; /* "} /​* = 0x0 *​/": no name */
			else if (ne - n >= 2 && ne[-2] == '*' && ne[-1] == '/')
				ne -= 2; /* "} /​* f*​/" */
		}
	} else {
		for (ne = n; ne < e && *ne != '(' && (unsigned char)*ne > ' '; ne++)
			;
		if (ne == n)
			return 1;
		q = ne;
		if (HAS_PREFIX(q, e, " [")) { /* module: "f [mod]()" */
			q = memchr(q, ']', (size_t)(e - q));
			if (!q)
				return 1;
			q++;
		}
		if (q >= e || *q != '(')
			return 1;
		/* Drop a trailing comment (retval, retaddr), then look at the end. */
		if (e - q >= 4 && e[-1] == '/' && e[-2] == '*') {
			const char *k = e - 2;

			while (k > q && !(k[-1] == '/' && k[0] == '*'))
				k--;
			if (k > q)
				e = rtrim(q, k - 1);
		}
		if (e <= q)
			return 1;
		if (e[-1] == '{')
			type = PT_EV_ENTRY;
		else if (e[-1] == ';')
			type = PT_EV_LEAF;
		else
			return 1;
	}
	if (ne > n) {
		if ((size_t)(ne - n) > TEXT_MAX_NAME)
			return 1;
		ret = names_intern(&r->names, n, (size_t)(ne - n), &func, &id);
		if (ret == -E2BIG)
			return 1;
		if (ret < 0)
			return ret;
	}
	if (!line_event(r, ln, type, &ev))
		return -ENOMEM;
	ev.depth = depth;
	ev.func = func;
	ev.func_id = id;
	if (type != PT_EV_ENTRY)
		ev.dur_ns = ln->dur_ns;
	return reader_emit(r, &ev);
}

/* "CPU:1 [LOST 123 EVENTS]" (kernel), "CPU:1 [123 EVENTS DROPPED]" / "CPU:1 [EVENTS DROPPED]". */
static int parse_lost(struct text_reader *r, const char *p, const char *e)
{
	struct text_line ln = {.pid = -1, .ts_ns = PT_NO_TIME, .dur_ns = PT_NO_TIME};
	struct pt_event ev;
	uint64_t n = 0;
	const char *q;

	q = parse_int_prefix(p + 4, e, TEXT_MAX_CPU - 1, &ln.cpu);
	if (!q || !HAS_PREFIX(q, e, " ["))
		return 1;
	q += 2;
	e = rtrim(q, e);
	if (HAS_PREFIX(q, e, "LOST ")) {
		const char *d = q + 5, *de = d;

		while (de < e && is_digit(*de))
			de++;
		if (!parse_uint(d, de, UINT64_MAX / 10, &n) || e - de != 8 ||
		    memcmp(de, " EVENTS]", 8) != 0)
			return 1;
	} else if (e - q == 15 && memcmp(q, "EVENTS DROPPED]", 15) == 0) {
		n = 0;
	} else {
		const char *de = q;

		while (de < e && is_digit(*de))
			de++;
		if (!parse_uint(q, de, UINT64_MAX / 10, &n) || e - de != 16 ||
		    memcmp(de, " EVENTS DROPPED]", 16) != 0)
			return 1;
	}
	if (!line_event(r, &ln, PT_EV_LOST, &ev))
		return -ENOMEM;
	ev.pid = -1;
	ev.comm = NULL;
	ev.lost = n;
	if (n == 0)
		r->st->lost_unknown = true;
	else if (r->st->lost_events > UINT64_MAX - n)
		r->st->lost_events = UINT64_MAX;
	else
		r->st->lost_events += n;
	return reader_emit(r, &ev);
}

/* "# tracer: function_graph", "#P:2" in the latency header. */
static void parse_header(struct text_reader *r, const char *p, const char *e)
{
	const char *q;
	int n;

	p = skip_sp(p + 1, e);
	e = rtrim(p, e);
	if (HAS_PREFIX(p, e, "tracer:")) {
		q = skip_sp(p + 7, e);
		if (e - q == 14 && memcmp(q, "function_graph", 14) == 0)
			r->graph_header = true;
		return;
	}
	q = memmem(p, (size_t)(e - p), "#P:", 3);
	if (q && parse_int_prefix(q + 3, e, TEXT_MAX_CPU, &n))
		r->header_cpus = n;
}

/* " [mark] 12.345 us " of the duration column; empty = entry filler. */
static bool parse_duration_col(const char *p, const char *e, uint64_t *dur)
{
	bool dot;

	p = skip_sp(p, e);
	e = rtrim(p, e);
	if (p == e) {
		*dur = PT_NO_TIME;
		return true;
	}
	if (*p && strchr("+!#*@$", *p) && e - p > 1 && p[1] == ' ')
		p = skip_sp(p + 1, e);
	p = parse_fixed(p, e, 3, dur, &dot);
	if (!p)
		return false;
	p = skip_sp(p, e);
	return e - p == 2 && p[0] == 'u' && p[1] == 's';
}

/* The latency-format column " d..1. | ": one short token, no comm-pid shape. */
static bool is_lat_col(const char *p, const char *e)
{
	const char *q;

	p = skip_sp(p, e);
	e = rtrim(p, e);
	if (p == e || e - p > 8)
		return false;
	for (q = p; q < e; q++)
		if (*q == ' ' || *q == '-' || (unsigned char)*q < ' ')
			return false;
	return true;
}

/* " bash-1234  =>  forker-96 " after the CPU column of a task-switch block. */
static int parse_switch(struct text_reader *r, int cpu, const char *c, const char *e)
{
	const char *arrow = memmem(c, (size_t)(e - c), " => ", 4);
	struct text_cpu *tc;
	char comm[TEXT_COMM_MAX];
	const char *p;
	int pid;

	if (!arrow)
		return 1;
	p = skip_sp(arrow + 4, e);
	e = rtrim(p, e);
	if (!parse_comm_pid(p, e, &pid, comm))
		return 1;
	/* Lines without a CPU column take the last switch seen on any CPU. */
	r->nocpu.pid = pid;
	memcpy(r->nocpu.comm, comm, sizeof(comm));
	if (cpu >= 0) {
		tc = reader_cpu(r, cpu);
		if (!tc)
			return -ENOMEM;
		tc->pid = pid;
		memcpy(tc->comm, comm, sizeof(comm));
	}
	return 0;
}

/* Where the columns of a kernel line end, and how many spaces after them
 * belong to the separator rather than the call depth. */
struct kernel_cols {
	const char *end;
	int sep;
};

/* The time and CPU columns: "%5lu.%06lu |  ", "%9llu us |  ", " %*d) ".
 * Returns 0, or 1 for a CPU number out of range. */
static int parse_time_cpu(const char **pp, const char *e, struct text_line *ln,
			  struct kernel_cols *cols)
{
	const char *p = *pp, *q;
	uint64_t v;
	bool dot;

	if (p < e && is_digit(*p)) { /* absolute time */
		q = parse_fixed(p, e, 9, &v, &dot);
		if (q && dot && q < e && *q == ' ') {
			q = skip_sp(q, e);
			if (q < e && *q == '|') {
				ln->ts_ns = v;
				cols->end = q + 1;
				cols->sep = 2;
				p = skip_sp(cols->end, e);
			}
		}
	}
	/* relative time, only when another column follows */
	if (p < e && is_digit(*p)) {
		q = parse_fixed(p, e, 0, &v, &dot);
		if (q && !dot && HAS_PREFIX(q, e, " us |") && v <= UINT64_MAX / 1000 &&
		    memchr(q + 5, '|', (size_t)(e - q - 5))) {
			if (ln->ts_ns == PT_NO_TIME)
				ln->ts_ns = v * 1000;
			cols->end = q + 5;
			cols->sep = 2;
			p = skip_sp(cols->end, e);
		}
	}
	if (p < e && is_digit(*p)) { /* CPU */
		q = parse_int_prefix(p, e, INT_MAX, &ln->cpu);
		if (q && q < e && *q == ')') {
			if (ln->cpu >= TEXT_MAX_CPU)
				return 1;
			cols->end = q + 1;
			cols->sep = 1;
			p = skip_sp(cols->end, e);
		} else {
			ln->cpu = -1;
		}
	}
	*pp = p;
	return 0;
}

/* The columns of a kernel line: times, CPU, then [comm-pid |] [lat |]
 * [duration |], each ending at a '|'. Returns 0 or 1 (not understood). */
static int parse_kernel_cols(struct text_reader *r, const char *s, const char *e,
			     struct text_line *ln, struct kernel_cols *cols)
{
	const char *p = skip_sp(s, e), *bar;
	int stage = 0;

	cols->end = s;
	cols->sep = 0;
	if (p < e && *p == '|' && p + 1 < e && p[1] == ' ') /* old " | 1) a-1 => b-2" */
		p = skip_sp(p + 1, e);
	if (parse_time_cpu(&p, e, ln, cols))
		return 1;
	while (stage < 3 && (bar = memchr(p, '|', (size_t)(e - p)))) {
		const char *fe = rtrim(p, bar);

		if (stage == 0 && fe > p && parse_comm_pid(p, fe, &ln->pid, r->comm)) {
			ln->comm = r->comm;
			stage = 1;
			cols->sep = 1;
		} else if (stage <= 1 && is_lat_col(p, fe)) {
			stage = 2;
			cols->sep = 1;
		} else if (parse_duration_col(p, fe, &ln->dur_ns)) {
			stage = 3;
			cols->sep = 2;
		} else {
			break;
		}
		cols->end = bar + 1;
		p = skip_sp(cols->end, e);
	}
	return 0;
}

/* An irq marker: "==========>" enters, "<==========" leaves. */
static int set_irq(struct text_reader *r, int cpu, bool in_irq)
{
	struct text_cpu *tc = reader_cpu(r, cpu);

	if (!tc)
		return -ENOMEM;
	tc->in_irq = in_irq;
	return 0;
}

/* The text after the columns, at depth @k: a call, a comment, an irq
 * marker, a task switch. Returns 0, 1 (not understood), -errno. */
static int parse_kernel_body(struct text_reader *r, const struct text_line *ln, int k,
			     const char *c, const char *e)
{
	int ret;

	if (*c == '}')
		return emit_call(r, ln, k, c, e);
	if (HAS_PREFIX(c, e, "/* sched_process_fork: ")) {
		e = rtrim(c, e);
		if (e - c >= 25 && e[-1] == '/' && e[-2] == '*')
			e -= 2;
		if (e - c < 23)
			return 0;
		ret = emit_fork(r, ln, c + 23, e);
		return ret == 1 ? 0 : ret; /* an odd fork event is still a comment */
	}
	if (HAS_PREFIX(c, e, "/*"))
		return 0; /* other events, trace_printk */
	if (HAS_PREFIX(c, e, "==========>"))
		return set_irq(r, ln->cpu, true);
	if (HAS_PREFIX(c, e, "<=========="))
		return set_irq(r, ln->cpu, false);
	if (HAS_PREFIX(c, e, "(Overruns:"))
		return 0;
	ret = emit_call(r, ln, k, c, e);
	if (ret != 1)
		return ret;
	return parse_switch(r, ln->cpu, c, e);
}

/* One line of kernel function_graph text. Returns 0, 1 (not understood), -errno. */
static int parse_kernel_line(struct text_reader *r, const char *s, const char *e)
{
	struct text_line ln = {.cpu = -1, .pid = -1, .ts_ns = PT_NO_TIME, .dur_ns = PT_NO_TIME};
	struct kernel_cols cols;
	const char *c;
	size_t k;

	if (parse_kernel_cols(r, s, e, &ln, &cols))
		return 1;
	c = skip_sp(cols.end, e);
	if (c == e)
		return 1;
	k = (size_t)(c - cols.end);
	k = k >= (size_t)cols.sep ? (k - (size_t)cols.sep) / 2 : 0;
	if (k > TEXT_MAX_DEPTH)
		return 1;
	return parse_kernel_body(r, &ln, (int)k, c, e);
}

/*
 * A call of the function named [n, ne) at @depth, from @ln, in @ev. 0, 1 when
 * the name cannot be a kernel symbol's (empty, too long, a space, NUL or
 * control byte in it: not a call), or -errno.
 */
static int call_event(struct text_reader *r, const struct text_line *ln, bool entry,
		      const char *n, const char *ne, int depth, struct pt_event *ev)
{
	const char *func;
	uint64_t id;
	int ret;

	if (ne == n || (size_t)(ne - n) > TEXT_MAX_NAME)
		return 1;
	for (const char *q = n; q < ne; q++)
		if ((unsigned char)*q <= ' ')
			return 1;
	ret = names_intern(&r->names, n, (size_t)(ne - n), &func, &id);
	if (ret == -E2BIG)
		return 1;
	if (ret < 0)
		return ret;
	if (!line_event(r, ln, entry ? PT_EV_ENTRY : PT_EV_EXIT, ev))
		return -ENOMEM;
	ev->depth = depth;
	ev->func = func;
	ev->func_id = id;
	return 0;
}

/*
 * Without the function_graph plugin trace-cmd prints the raw formats:
 * "--> f (3)" and "<-- f (3) (start: 5a  end: 6b) over: 3".
 */
static int emit_raw_graph(struct text_reader *r, const struct text_line *ln, const char *p,
			  const char *e)
{
	bool entry = HAS_PREFIX(p, e, "--> ");
	const char *n, *ne, *q;
	struct pt_event ev;
	int depth, ret;

	if (!entry && !HAS_PREFIX(p, e, "<-- "))
		return 1;
	n = p + 4;
	for (ne = n; ne < e && (unsigned char)*ne > ' '; ne++)
		;
	if (!HAS_PREFIX(ne, e, " ("))
		return 1;
	q = parse_int_prefix(ne + 2, e, TEXT_MAX_DEPTH, &depth);
	if (!q || q >= e || *q != ')')
		return 1;
	if ((ret = call_event(r, ln, entry, n, ne, depth, &ev)))
		return ret;
	return reader_emit(r, &ev);
}

/* The value of "KEY=value" among the space-separated fields [p, e): sets
 * [*v, *ve). Returns false when the field is absent or empty. */
static bool raw_field(const char *p, const char *e, const char *key, const char **v,
		      const char **ve)
{
	size_t n = strlen(key);
	const char *q = p;

	while (q < e && (q = memmem(q, (size_t)(e - q), key, n))) {
		if ((q == p || q[-1] == ' ') && q + n < e && q[n] == '=') {
			*v = q + n + 1;
			for (*ve = *v; *ve < e && **ve != ' '; (*ve)++)
				;
			return *ve > *v;
		}
		q += n;
	}
	return false;
}

/* A number of a raw field: hex with "0x", else hex when @hex (calltime and
 * rettime print as "%llx"), else decimal. Spans exactly [p, e). */
static bool raw_number(const char *p, const char *e, bool hex, uint64_t *out)
{
	uint64_t v = 0;

	if (e - p > 2 && p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
		p += 2;
		hex = true;
	}
	if (!hex)
		return parse_uint(p, e, UINT64_MAX / 10, out);
	if (p == e || e - p > 16)
		return false;
	for (; p < e; p++) {
		int d = is_digit(*p)				   ? *p - '0'
			: (*p | 0x20) >= 'a' && (*p | 0x20) <= 'f' ? (*p | 0x20) - 'a' + 10
								   : -1;

		if (d < 0)
			return false;
		v = v << 4 | (uint64_t)d;
	}
	*out = v;
	return true;
}

/* The irq context from a latency flags column: "d.h1." (its third
 * character: h, s, H, z, Z), or `report -R -l`'s raw common_flags "-0x9"
 * (hardirq 0x08, softirq 0x10, NMI 0x40, as raw_decode.c reads them). */
static bool lat_in_irq(const char *p, const char *e)
{
	uint64_t fl;

	if (HAS_PREFIX(p, e, "-0x"))
		return raw_number(p + 1, e, true, &fl) && (fl & 0x58);
	return e - p >= 3 && p[2] && strchr("hsHzZ", p[2]);
}

/*
 * One `trace-cmd report` line:
 *   "  comm-pid  [001]  5.849871: funcgraph_entry:   0.901 us  |    f();"
 *   "  comm-pid  [001] d..1.  5.849871: ..." or (-l) "  comm-pid  1d..1.  5.8: ..."
 * Returns 0, 1 (not a report line), -errno.
 */
/* The report's timestamp: "TS:" within the first TEXT_REPORT_SCAN bytes,
 * after a space. Sets *t (its start), *colon and *ts. Returns 0 or 1. */
static int find_report_ts(const char *s, const char *e, const char **t, const char **colon,
			  uint64_t *ts)
{
	const char *lim = e - s > TEXT_REPORT_SCAN ? s + TEXT_REPORT_SCAN : e;
	const char *c = s, *p, *q;
	bool dot;

	while ((c = memchr(c, ':', (size_t)(lim - c)))) {
		if (c + 1 == e || c[1] == ' ') {
			p = c;
			while (p > s && (is_digit(p[-1]) || p[-1] == '.'))
				p--;
			if (p < c && p > s && p[-1] == ' ' && is_digit(*p)) {
				q = parse_fixed(p, c, 9, ts, &dot);
				if (q == c) {
					*t = p;
					*colon = c;
					return 0;
				}
			}
		}
		c++;
	}
	return 1;
}

/* Backwards from the timestamp at @t over the CPU ("[001]" or "1") and
 * flags columns to the comm-pid. Returns 0 or 1. */
static int parse_report_cols(struct text_reader *r, const char *s, const char *t,
			     struct text_line *ln)
{
	const char *pe = rtrim(s, t), *t1, *t1e, *q;
	uint64_t v;

	for (t1 = pe; t1 > s && t1[-1] != ' '; t1--)
		;
	t1e = pe;
	if (t1 == t1e)
		return 1;
	if (*t1 != '[' && !is_digit(*t1)) { /* flags after "[001]" */
		pe = rtrim(s, t1);
		for (t1 = pe; t1 > s && t1[-1] != ' '; t1--)
			;
		t1e = pe;
		if (t1 == t1e || *t1 != '[')
			return 1;
	}
	if (*t1 == '[') {
		if (t1e[-1] != ']' ||
		    !parse_int_prefix(t1 + 1, t1e - 1, TEXT_MAX_CPU - 1, &ln->cpu) ||
		    !parse_uint(t1 + 1, t1e - 1, TEXT_MAX_CPU - 1, &v))
			return 1;
		if (pe < rtrim(s, t)) /* "[001] d.h1." */
			ln->in_irq = lat_in_irq(skip_sp(pe, t), rtrim(s, t));
	} else if (!(q = parse_int_prefix(t1, t1e, TEXT_MAX_CPU - 1, &ln->cpu))) {
		return 1;
	} else { /* -l: "1d.h1." or, with -R, "1-0x9" */
		ln->in_irq = lat_in_irq(q, t1e);
	}
	q = skip_sp(s, t1);
	pe = rtrim(q, t1);
	if (!parse_comm_pid(q, pe, &ln->pid, r->comm))
		return 1;
	ln->comm = r->comm;
	return 0;
}

/* The exit's times from its calltime/rettime fields (the kernel's own, as
 * trace.dat replay takes them: event.h); the line's time when absent. */
static void raw_exit_times(const char *p, const char *e, struct pt_event *ev)
{
	const char *v, *ve;
	uint64_t call, ret;

	ev->rec_ts_ns = ev->ts_ns;
	if (raw_field(p, e, "calltime", &v, &ve) && raw_number(v, ve, true, &call) &&
	    raw_field(p, e, "rettime", &v, &ve) && raw_number(v, ve, true, &ret) &&
	    ret != PT_NO_TIME && call != PT_NO_TIME) {
		ev->call_ns = call;
		ev->ts_ns = ret;
		ev->dur_ns = ret >= call ? ret - call : PT_NO_TIME;
	}
	if (raw_field(p, e, "overrun", &v, &ve) && raw_number(v, ve, false, &ret) &&
	    ret <= INT64_MAX)
		ev->overrun = (int64_t)ret;
}

/*
 * `trace-cmd report -R` prints the raw fields: "func=copy_page_range depth=0"
 * and "func=0xffffffff81234560 depth=0 overrun=0 calltime=44cbed0ea
 * rettime=44cbfac12" (in any order). The function is named where the file
 * had symbols, else kept as its address (which then plays no role).
 */
static int emit_raw_fields(struct text_reader *r, const struct text_line *ln, bool entry,
			   const char *p, const char *e)
{
	const char *v, *ve, *d, *de, *plus;
	struct pt_event ev;
	uint64_t depth;
	int ret;

	e = rtrim(p, e);
	if (!raw_field(p, e, "func", &v, &ve) || !raw_field(p, e, "depth", &d, &de) ||
	    !raw_number(d, de, false, &depth) || depth > TEXT_MAX_DEPTH)
		return 1;
	plus = memchr(v, '+', (size_t)(ve - v)); /* "f+0x0/0x1f0" */
	if (plus && plus > v)
		ve = plus;
	if ((ret = call_event(r, ln, entry, v, ve, (int)depth, &ev)))
		return ret;
	if (!entry)
		raw_exit_times(p, e, &ev);
	return reader_emit(r, &ev);
}

/* A funcgraph_entry/exit payload: "DURATION | DEPTH-INDENTED CALL", or the
 * raw formats when trace-cmd printed no graph. */
static int parse_report_graph(struct text_reader *r, struct text_line *ln, bool entry,
			      const char *pay, const char *e)
{
	const char *bar = memchr(pay, '|', (size_t)(e - pay)), *c;
	size_t k;

	if (!bar && HAS_PREFIX(pay, e, "func="))
		return emit_raw_fields(r, ln, entry, pay, e);
	if (!bar)
		return emit_raw_graph(r, ln, pay, e);
	if (!parse_duration_col(pay, bar, &ln->dur_ns))
		return 1;
	c = skip_sp(bar + 1, e);
	if (c == e)
		return 1;
	k = (size_t)(c - bar - 1);
	k = k >= 2 ? (k - 2) / 2 : 0;
	if (k > TEXT_MAX_DEPTH)
		return 1;
	return emit_call(r, ln, (int)k, c, e);
}

static int parse_report_line(struct text_reader *r, const char *s, const char *e)
{
	struct text_line ln = {.cpu = -1, .pid = -1, .ts_ns = PT_NO_TIME, .dur_ns = PT_NO_TIME};
	const char *t, *colon, *name, *q, *pay;
	uint64_t v = 0;

	if (find_report_ts(s, e, &t, &colon, &v))
		return 1;
	ln.ts_ns = v;
	if (parse_report_cols(r, s, t, &ln))
		return 1;
	name = skip_sp(colon + 1, e);
	q = memchr(name, ':', (size_t)(e - name));
	if (!q || q == name)
		return 1;
	pay = skip_sp(q + 1, e);
	if (q - name == 15 && memcmp(name, "funcgraph_entry", 15) == 0)
		return parse_report_graph(r, &ln, true, pay, e);
	if (q - name == 14 && memcmp(name, "funcgraph_exit", 14) == 0)
		return parse_report_graph(r, &ln, false, pay, e);
	if (q - name == 18 && memcmp(name, "sched_process_fork", 18) == 0) {
		int ret = emit_fork(r, &ln, pay, e);

		return ret == 1 ? 0 : ret;
	}
	return 0; /* another event: understood, not ours */
}

static int parse_line(struct text_reader *r, const char *s, const char *e)
{
	const char *p;
	int ret;

	if (e > s && e[-1] == '\r')
		e--;
	p = skip_sp(s, e);
	if (p == e)
		return 0;
	switch (*p) {
	case '#':
		parse_header(r, p, e);
		return 0;
	case '-':
		for (; p < e && *p == '-'; p++)
			;
		if (skip_sp(p, e) == e)
			return 0; /* task-switch block border */
		break;
	case 'C':
		if (HAS_PREFIX(p, e, "CPU:"))
			return parse_lost(r, p, e);
		if (HAS_PREFIX(p, e, "CPU ") && e - p > 9 && memcmp(e - 9, " is empty", 9) == 0)
			return 0;
		break;
	case 'c':
		if (HAS_PREFIX(p, e, "cpus=")) {
			uint64_t n;

			if (parse_uint(p + 5, rtrim(p, e), TEXT_MAX_CPU, &n))
				r->header_cpus = (int)n;
			return 0;
		}
		break;
	default:
		break;
	}
	/* trace-cmd report lines carry "ts: event:"; kernel lines have no ": " early on. */
	if (memchr(s, ':', (size_t)(e - s))) {
		ret = parse_report_line(r, s, e);
		if (ret != 1)
			return ret;
	}
	return parse_kernel_line(r, s, e);
}

/* ---- drivers ---- */

static int reader_line(struct text_reader *r, const char *s, const char *e)
{
	int ret;

	r->st->lines++;
	ret = parse_line(r, s, e);
	if (ret == 1) {
		r->st->unparsed_lines++;
		ret = 0;
	}
	return ret;
}

static size_t max_line_of(const struct pt_read_opts *opts)
{
	return opts && opts->max_line_bytes ? opts->max_line_bytes : TEXT_DEFAULT_MAX_LINE;
}

static void reader_init(struct text_reader *r, pt_event_fn fn, void *ctx, struct pt_input_stats *st)
{
	memset(r, 0, sizeof(*r));
	r->fn = fn;
	r->ctx = ctx;
	r->st = st;
	r->max_cpu = -1;
	r->nocpu.pid = -1;
	pt_input_stats_init(st);
}

/* Frees what the read allocated, sets the stats' CPU count, decides the verdict. */
static int reader_finish(struct text_reader *r, int ret, char *err, size_t errlen)
{
	struct pt_input_stats *st = r->st;

	st->cpus = r->header_cpus ? r->header_cpus : r->max_cpu + 1;
	if (r->header_cpus && r->max_cpu + 1 > r->header_cpus)
		st->cpus = r->max_cpu + 1;
	if (ret == 0 && st->events == 0 && !r->graph_header) {
		if (err && errlen)
			snprintf(err, errlen,
				 "not a function_graph trace (no trace lines in %llu lines)",
				 (unsigned long long)st->lines);
		ret = -EINVAL;
	} else if (ret == -ENOMEM && err && errlen) {
		snprintf(err, errlen, "out of memory reading function_graph text");
	}
	names_free(&r->names);
	free(r->cpus);
	r->cpus = NULL;
	return ret;
}

int pt_text_read_mem(const char *buf, size_t len, pt_event_fn fn, void *ctx,
		     struct pt_input_stats *st, const struct pt_read_opts *opts, char *err,
		     size_t errlen)
{
	size_t max_line = max_line_of(opts);
	const char *p = buf, *end = buf + len, *nl;
	uint64_t next_progress = TEXT_PROGRESS_STEP;
	struct text_reader r;
	int ret = 0;

	if (!fn || !st || (!buf && len))
		return -EINVAL;
	reader_init(&r, fn, ctx, st);
	while (p < end) {
		nl = memchr(p, '\n', (size_t)(end - p));
		if (!nl)
			nl = end;
		if ((size_t)(nl - p) > max_line) {
			st->lines++;
			st->unparsed_lines++;
		} else {
			ret = reader_line(&r, p, nl);
			if (ret < 0)
				break;
		}
		p = nl < end ? nl + 1 : end;
		if (opts && opts->progress && (uint64_t)(p - buf) >= next_progress) {
			opts->progress((uint64_t)(p - buf), len, opts->progress_ctx);
			next_progress = (uint64_t)(p - buf) + TEXT_PROGRESS_STEP;
		}
	}
	return reader_finish(&r, ret, err, errlen);
}

/* A read of a file descriptor: the buffer of lines not yet complete. */
struct fd_buf {
	char *buf;
	size_t cap, len;
	size_t max_line;
	bool skipping; /* inside a line longer than max_line */
};

/* Keeps a whole chunk of room; grows only up to max_line + a chunk. */
static int fd_buf_room(struct fd_buf *b)
{
	size_t ncap = b->cap * 2;
	char *nb;

	if (b->cap - b->len >= TEXT_READ_CHUNK)
		return 0;
	if (ncap < b->len + TEXT_READ_CHUNK)
		ncap = b->len + TEXT_READ_CHUNK;
	nb = realloc(b->buf, ncap);
	if (!nb)
		return -ENOMEM;
	b->buf = nb;
	b->cap = ncap;
	return 0;
}

/* Parses the complete lines of the @n bytes just read after b->len; keeps
 * the rest (a line too long is counted and skipped up to its '\n'). */
static int fd_buf_lines(struct text_reader *r, struct fd_buf *b, size_t n)
{
	struct pt_input_stats *st = r->st;
	size_t start = 0, i = b->len;
	char *nl;
	int ret;

	b->len += n;
	while ((nl = memchr(b->buf + i, '\n', b->len - i))) {
		size_t at = (size_t)(nl - b->buf);

		if (b->skipping) {
			b->skipping = false;
		} else if (at - start > b->max_line) {
			st->lines++;
			st->unparsed_lines++;
		} else if ((ret = reader_line(r, b->buf + start, nl)) < 0) {
			return ret;
		}
		start = i = at + 1;
	}
	if (b->skipping) {
		b->len = 0;
	} else if (b->len - start > b->max_line) {
		/* Too long: count it now and drop bytes until its '\n'. */
		st->lines++;
		st->unparsed_lines++;
		b->skipping = true;
		b->len = 0;
	} else if (start) {
		memmove(b->buf, b->buf + start, b->len - start);
		b->len -= start;
	}
	return 0;
}

int pt_text_read_fd(int fd, pt_event_fn fn, void *ctx, struct pt_input_stats *st,
		    const struct pt_read_opts *opts, char *err, size_t errlen)
{
	struct fd_buf b = {.cap = 2 * (size_t)TEXT_READ_CHUNK, .max_line = max_line_of(opts)};
	uint64_t done = 0, total = 0, next_progress = TEXT_PROGRESS_STEP;
	struct text_reader r;
	struct stat sb;
	ssize_t n;
	int ret = 0;

	if (!fn || !st || fd < 0)
		return -EINVAL;
	reader_init(&r, fn, ctx, st);
	if (fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode))
		total = (uint64_t)sb.st_size;
	b.buf = malloc(b.cap);
	if (!b.buf)
		return reader_finish(&r, -ENOMEM, err, errlen);
	while (!(ret = fd_buf_room(&b))) {
		n = read(fd, b.buf + b.len, TEXT_READ_CHUNK);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = -errno;
			if (err && errlen)
				snprintf(err, errlen, "reading function_graph text: %s",
					 strerror(-ret));
			break;
		}
		done += (uint64_t)n;
		if (n == 0) { /* EOF: a last line without '\n' */
			if (b.len && !b.skipping)
				ret = reader_line(&r, b.buf, b.buf + b.len);
			break;
		}
		ret = fd_buf_lines(&r, &b, (size_t)n);
		if (ret < 0)
			break;
		if (opts && opts->progress && done >= next_progress) {
			opts->progress(done, total, opts->progress_ctx);
			next_progress = done + TEXT_PROGRESS_STEP;
		}
	}
	free(b.buf);
	return reader_finish(&r, ret, err, errlen);
}
