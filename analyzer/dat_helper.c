/* SPDX-License-Identifier: MIT */
/*
 * The trace.dat reader's helper side: the body of the ptescope-dat-reader
 * program (cli/ptescope-dat-reader.c), which dat_reader.c starts for every
 * trace.dat. Under CPU-time and memory limits (stderr silenced) it reads the
 * file one of two ways: a v7 file it fully understands through its own page
 * walk (dat_fly.h; libtracecmd opens only the file's metadata, the kallsyms
 * are indexed by dat_kallsyms.h), going on with libtracecmd from the same
 * record if the walk stops in doubt; any other file, or a parallel read's
 * time slices (child_part()), with libtracecmd. Each record is decoded
 * (raw_decode.h: fields by name once per file, by offset per record;
 * pt_raw_to_event), function and task names are interned, and the wire
 * format (dat_wire.h) goes to its output. A record that repeats the last
 * one's bytes (an ENTRY), or all of them but its two times (an EXIT), is
 * sent as that one was without decoding it: nearly every record of a
 * function_graph trace.
 *
 * The only code that uses libtracecmd, so only the helper program links it.
 *
 * The helper also reads text traces for the daemon (pt_text_reader_main: the
 * text reader, text_reader.c, over its standard input), so that an uploaded
 * text file is parsed under the same limits, in a process of its own.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <trace-cmd/trace-cmd.h>

#include "dat_fly.h"
#include "dat_kallsyms.h"
#include "dat_wire.h"
#include "intern.h"
#include "raw_decode.h"
#include "reader.h"

/* Exported by libtracecmd 3.x but declared in its private header only. */
struct tep_record *tracecmd_peek_data(struct tracecmd_input *handle, int cpu);
struct tep_record *tracecmd_read_cpu_last(struct tracecmd_input *handle, int cpu);
int tracecmd_set_cpu_to_timestamp(struct tracecmd_input *handle, int cpu, unsigned long long ts);
int tracecmd_cpus(struct tracecmd_input *handle);
int tracecmd_page_size(struct tracecmd_input *handle);

/* AddressSanitizer and ThreadSanitizer reserve terabytes of shadow address space at start: an
 * address-space limit set afterwards would make every later mmap fail, so those builds go
 * without it (PT_SHADOW_VM). */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define PT_SHADOW_VM 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define PT_SHADOW_VM 1
#endif
#endif

#define MEMO_MAX_BYTES 64
#define MEMO_SLOTS 16

struct child {
	int fd;
	char buf[1 << 18];
	size_t used;
	int failed;
	bool byte_progress; /* text: progress in bytes, from the reader, not in events */
	struct pt_fly *fly; /* while the page walk reads: progress in its bytes */

	struct tep_handle *tep;
	struct pt_raw_decoder *dec;
	struct pt_intern *strings;
	struct pt_u64map *func_sid; /* function address -> string id */
	struct pt_ksyms *ksyms;	    /* the fast walk's function names (else tep's) */
	struct pt_u64map *comm_sid; /* pid -> string id */
	/* one-entry caches in front of the maps: runs of one function and one
	 * task are the common case (vm_normal_page after vm_normal_page) */
	uint64_t last_func;
	uint32_t last_func_sid;
	int last_pid;
	uint32_t last_comm_sid;
	uint64_t skip;		 /* records libtracecmd's walk passes over (child_record) */
	struct dat_wire_ctx ctx; /* what the last N or R message carried (dat_wire.h) */
	/* an n message held back: sent with the next message, or as one l
	 * message with the r of its leaf call */
	bool has_pend;
	struct dat_wire_entry_ctx pend;
	struct dat_wire_done done;
	/* the last decoding of a record of each size class: pt_raw_decode()
	 * depends on the bytes alone, and a function_graph trace repeats its
	 * entries byte for byte (the bundled one: 45% of records); exits, which
	 * carry their times, never repeat: their size is not remembered */
	struct decode_memo {
		int size, ret, exit_size;
		uint8_t bytes[MEMO_MAX_BYTES];
		struct pt_raw_event raw;
		/* the ENTRY message sent for those bytes on entry_cpu (-1:
		 * none): the same again but for its time */
		int entry_cpu;
		struct dat_wire_entry entry;
	} memo[MEMO_SLOTS];
	struct pt_raw_event scratch; /* the decoding of records too long to remember */
	/* the last EXIT sent (xm_size 0: none, or the file does not allow it):
	 * an EXIT with the same bytes on the same CPU but for its calltime and
	 * rettime (xm_call, xm_ret: pt_raw_decoder_exit_times(); xm_mask, per
	 * 8 bytes of a record: all ones but over those two fields) is the same
	 * message but for its times */
	int xm_size, xm_cpu, xm_call, xm_ret;
	uint8_t xm_bytes[MEMO_MAX_BYTES];
	uint64_t xm_mask[MEMO_MAX_BYTES / 8];
	struct dat_wire_exit xm_msg;
	bool xm_ok; /* the decoder allows it */
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

/* Message @type with body @w, @len bytes, copied once into the buffer. */
static inline void child_put(struct child *c, uint8_t type, const void *w, size_t len)
{
	if (c->used + 1 + len > sizeof(c->buf))
		child_flush(c);
	if (c->failed)
		return;
	c->buf[c->used] = (char)type;
	memcpy(c->buf + c->used + 1, w, len);
	c->used += 1 + len;
}

/* The n message held back, if any, into the buffer: before any other. */
static inline void child_unhold(struct child *c)
{
	if (c->has_pend) {
		c->has_pend = false;
		child_put(c, DAT_W_ENTRY_CTX, &c->pend, sizeof(c->pend));
	}
}

static void child_write(struct child *c, const void *p, size_t len)
{
	child_unhold(c);
	if (c->used + len > sizeof(c->buf))
		child_flush(c);
	if (c->failed || len > sizeof(c->buf))
		return;
	memcpy(c->buf + c->used, p, len);
	c->used += len;
}

static void child_error(struct child *c, const char *msg)
{
	uint8_t t = DAT_W_ERROR;
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
		uint8_t t = DAT_W_STRING;
		uint32_t id32 = (uint32_t)id,
			 len32 = (uint32_t)strlen(pt_intern_str(c->strings, id32));

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
	name = c->ksyms ? pt_ksyms_find(c->ksyms, addr) : tep_find_function(c->tep, addr);
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

/* The progress message child_count() sends. */
static __attribute__((noinline)) void child_progress(struct child *c)
{
	uint8_t t = DAT_W_PROGRESS;
	uint64_t p[2] = {c->done.events, 0};

	if (c->fly)
		pt_fly_progress(c->fly, &p[0], &p[1]);

	child_write(c, &t, 1);
	child_write(c, p, sizeof(p));
}

/* One event's count, and a progress message every DAT_WIRE_PROGRESS_EVERY.
 * Inline (LTO left it out of line): once per record. */
static inline __attribute__((always_inline)) void child_count(struct child *c)
{
	c->done.events++;
	if (!c->byte_progress && (c->done.events & (DAT_WIRE_PROGRESS_EVERY - 1)) == 0)
		child_progress(c);
}

/* Message @type with body @w, @len bytes, after the n held back. */
static inline void child_message(struct child *c, uint8_t type, const void *w, size_t len)
{
	child_unhold(c);
	child_put(c, type, w, len);
}

static void child_event(struct child *c, const struct dat_wire_event *w)
{
	child_message(c, DAT_W_EVENT, w, sizeof(*w));
	child_count(c);
}

/* An ENTRY message @w: its short form when the last N or R message had its
 * context (held back: the next message may be its EXIT), else N (which
 * sets the context). Inline: once per repeated ENTRY record. */
static inline __attribute__((always_inline)) void child_entry(struct child *c,
							      const struct dat_wire_entry *w)
{
	if (dat_wire_same_ctx(&c->ctx, w->comm_sid, w->pid, w->cpu, w->in_irq)) {
		child_unhold(c);
		c->pend = (struct dat_wire_entry_ctx){
		    .ts = w->ts, .func_sid = w->func_sid, .depth = w->depth};
		c->has_pend = true;
		return;
	}
	child_message(c, DAT_W_ENTRY, w, sizeof(*w));
	dat_wire_set_ctx(&c->ctx, w->comm_sid, w->pid, w->cpu, w->in_irq);
}

/* The same for an EXIT message @w (r when its times fit the short form too;
 * l with the n held back when they are one leaf call). */
static inline void child_exit_ctx(struct child *c, const struct dat_wire_exit_ctx *s)
{
	struct dat_wire_leaf_ctx l;

	if (c->has_pend && dat_wire_leaf(&c->pend, s, &l)) {
		c->has_pend = false;
		child_put(c, DAT_W_LEAF_CTX, &l, sizeof(l));
	} else {
		child_message(c, DAT_W_EXIT_CTX, s, sizeof(*s));
	}
}

static void child_exit(struct child *c, const struct dat_wire_exit *w)
{
	struct dat_wire_exit_ctx s;

	if (dat_wire_same_ctx(&c->ctx, w->comm_sid, w->pid, w->cpu, w->in_irq) &&
	    dat_wire_exit_to_ctx(w, &s)) {
		child_exit_ctx(c, &s);
		return;
	}
	child_message(c, DAT_W_EXIT, w, sizeof(*w));
	dat_wire_set_ctx(&c->ctx, w->comm_sid, w->pid, w->cpu, w->in_irq);
}

/* @ev in the shortest form that carries it, with its strings' ids; an ENTRY
 * message also kept in @keep (when not NULL) with @keep_cpu. */
static void child_send(struct child *c, const struct pt_event *ev, uint32_t func_sid,
		       uint32_t comm_sid, uint32_t child_comm_sid, struct decode_memo *keep)
{
	if (dat_wire_short(ev) && ev->type == PT_EV_ENTRY) {
		struct dat_wire_entry w;

		dat_wire_from_entry(ev, &w);
		w.func_sid = func_sid;
		w.comm_sid = comm_sid;
		child_entry(c, &w);
		if (keep) {
			keep->entry = w;
			keep->entry_cpu = ev->cpu;
		}
	} else if (dat_wire_short(ev)) {
		struct dat_wire_exit w;

		dat_wire_from_exit(ev, &w);
		w.func_sid = func_sid;
		w.comm_sid = comm_sid;
		child_exit(c, &w);
	} else {
		struct dat_wire_event w;

		dat_wire_from_event(ev, &w);
		w.func_sid = func_sid;
		w.comm_sid = comm_sid;
		w.child_comm_sid = child_comm_sid;
		child_message(c, DAT_W_EVENT, &w, sizeof(w));
	}
	child_count(c);
}

/* The bits that differ in the 8 bytes at @i of @a and @b. */
static inline uint64_t word_diff(const uint8_t *a, const uint8_t *b, int i)
{
	uint64_t x, y;

	memcpy(&x, a + i, 8);
	memcpy(&y, b + i, 8);
	return x ^ y;
}

/*
 * Whether @n bytes (a multiple of 4, at most MEMO_MAX_BYTES) at @a and @b
 * are equal where @mask (per 8 bytes; little endian: the first 4 bytes of a
 * word are its low half) has ones. Every word compared, unrolled: no loop,
 * no call; nearly every comparison is of equal bytes, all of them read.
 */
static inline bool same_masked(const uint8_t *a, const uint8_t *b, const uint64_t *mask, int n)
{
	uint64_t d = 0;

	if (n % 8) {
		uint32_t u, v;

		memcpy(&u, a + n - 4, 4);
		memcpy(&v, b + n - 4, 4);
		d = (u ^ v) & mask[n / 8];
	}
	switch (n / 8) {
	case 8:
		d |= word_diff(a, b, 56) & mask[7];
		__attribute__((fallthrough));
	case 7:
		d |= word_diff(a, b, 48) & mask[6];
		__attribute__((fallthrough));
	case 6:
		d |= word_diff(a, b, 40) & mask[5];
		__attribute__((fallthrough));
	case 5:
		d |= word_diff(a, b, 32) & mask[4];
		__attribute__((fallthrough));
	case 4:
		d |= word_diff(a, b, 24) & mask[3];
		__attribute__((fallthrough));
	case 3:
		d |= word_diff(a, b, 16) & mask[2];
		__attribute__((fallthrough));
	case 2:
		d |= word_diff(a, b, 8) & mask[1];
		__attribute__((fallthrough));
	case 1:
		d |= word_diff(a, b, 0) & mask[0];
		__attribute__((fallthrough));
	default:
		break;
	}
	return d == 0;
}

_Static_assert(MEMO_MAX_BYTES == 64, "same_masked() compares at most 8 words");

static const uint64_t all_ones[MEMO_MAX_BYTES / 8] = {~0ull, ~0ull, ~0ull, ~0ull,
						      ~0ull, ~0ull, ~0ull, ~0ull};

/* Whether @n bytes (as same_masked()) at @a and @b are equal. */
static inline bool same_bytes(const uint8_t *a, const uint8_t *b, int n)
{
	return same_masked(a, b, all_ones, n);
}

/* pt_raw_decode() of @data, @size bytes, through c->memo: *raw points at
 * the decoding (valid until the next call); *mp the memo entry that holds
 * it (NULL: none), *hit whether it held it already. */
static int child_decode(struct child *c, const void *data, int size,
			const struct pt_raw_event **raw, struct decode_memo **mp, bool *hit)
{
	struct decode_memo *m = &c->memo[((unsigned)size / 4) % MEMO_SLOTS];

	*mp = NULL;
	*hit = false;
	if (size <= 0 || size > MEMO_MAX_BYTES || size % 4 || m->exit_size == size) {
		*raw = &c->scratch;
		return pt_raw_decode(c->dec, data, size, &c->scratch);
	}
	*raw = &m->raw;
	*mp = m;
	if (m->size == size && same_bytes(m->bytes, data, size)) {
		*hit = true;
		return m->ret;
	}
	m->entry_cpu = -1;
	m->ret = pt_raw_decode(c->dec, data, size, &m->raw);
	m->size = size;
	memcpy(m->bytes, data, (size_t)size);
	if (m->ret == 1 && m->raw.type == PT_EV_EXIT) {
		m->exit_size = size;
		m->size = 0;
	}
	return m->ret;
}

/* c->xm_mask from c->xm_call and c->xm_ret. */
static void exit_mask_init(struct child *c)
{
	uint8_t m[MEMO_MAX_BYTES];

	memset(m, 0xff, sizeof(m));
	if (c->xm_call <= MEMO_MAX_BYTES - 8)
		memset(m + c->xm_call, 0, 8);
	if (c->xm_ret <= MEMO_MAX_BYTES - 8)
		memset(m + c->xm_ret, 0, 8);
	memcpy(c->xm_mask, m, sizeof(m));
}

/* Record time bookkeeping for the helper's end message. */
static inline void child_times(struct child *c, uint64_t ts)
{
	if (c->done.first_ts == PT_NO_TIME)
		c->done.first_ts = ts;
	c->done.last_ts = ts;
}

/* A LOST event: the ring buffer lost @missed events (-1: some) before @ts. */
static void child_lost(struct child *c, int cpu, uint64_t ts, long long missed)
{
	struct pt_event ev;
	struct dat_wire_event w;

	pt_event_init(&ev, PT_EV_LOST);
	ev.cpu = cpu;
	ev.ts_ns = ts;
	ev.lost = missed > 0 ? (uint64_t)missed : 0;
	if (missed > 0)
		c->done.lost += (uint64_t)missed;
	else
		c->done.lost_unknown = 1;
	dat_wire_from_event(&ev, &w);
	child_event(c, &w);
}

/*
 * An EXIT record (@data, @size bytes, at @ts) that repeats the last one sent
 * on its CPU but for its calltime and rettime: sent as that message with its
 * times, as pt_raw_to_event() sets them, without decoding it. False when it
 * is not one.
 */
static bool child_exit_again(struct child *c, uint64_t ts, const void *data, int size)
{
	const struct dat_wire_exit *m = &c->xm_msg;
	struct dat_wire_exit_ctx s;
	uint64_t call, ret, dur;

	if (!same_masked(data, c->xm_bytes, c->xm_mask, size))
		return false;
	memcpy(&call, (const uint8_t *)data + c->xm_call, 8);
	memcpy(&ret, (const uint8_t *)data + c->xm_ret, 8);
	if (ret == PT_NO_TIME)
		return false;
	dur = ret >= call ? ret - call : PT_NO_TIME;
	child_times(c, ts);
	/* child_exit() of the message with these times, its short form built
	 * without the long one */
	if (dat_wire_same_ctx(&c->ctx, m->comm_sid, m->pid, m->cpu, m->in_irq) &&
	    dat_wire_times_to_ctx(ret, dur, call, ts, m->overrun, m->func_sid, m->depth, &s)) {
		child_exit_ctx(c, &s);
	} else {
		struct dat_wire_exit w = *m;

		w.ts = ret;
		w.call = call;
		w.dur = dur;
		w.rec_ts = ts;
		child_exit(c, &w);
	}
	child_count(c);
	return true;
}

/* One record (@data, @size: its payload): a LOST event first when the ring
 * buffer lost some before it, then the record itself when it is one of ours
 * (an ENTRY whose bytes and CPU repeat the last one's: the same message but
 * for its time). */
static void child_raw(struct child *c, int cpu, uint64_t ts, const void *data, int size,
		      long long missed)
{
	const struct pt_raw_event *raw;
	struct decode_memo *m;
	struct pt_event ev;
	uint32_t func_sid = 0, comm_sid = 0, child_comm_sid = 0;
	bool hit;

	if (missed)
		child_lost(c, cpu, ts, missed);
	if (c->xm_size == size && c->xm_cpu == cpu && child_exit_again(c, ts, data, size))
		return;
	if (child_decode(c, data, size, &raw, &m, &hit) != 1)
		return;
	if (hit && m->entry_cpu == cpu) {
		m->entry.ts = ts;
		child_entry(c, &m->entry);
		child_count(c);
		child_times(c, ts);
		return;
	}
	if (pt_raw_to_event(raw, cpu, ts, &ev))
		return;
	if (raw->type == PT_EV_FORK) {
		comm_sid = child_string(c, ev.comm, strlen(ev.comm));
		child_comm_sid = child_string(c, ev.child_comm, strlen(ev.child_comm));
	} else if (raw->type == PT_EV_NEWTASK) {
		comm_sid = comm_string(c, raw->pid);
	} else if (raw->type != PT_EV_SWITCH) {
		func_sid = func_string(c, raw->func);
		comm_sid = comm_string(c, raw->pid);
	}
	child_times(c, ts);
	child_send(c, &ev, func_sid, comm_sid, child_comm_sid, m);
	if (c->xm_ok && raw->type == PT_EV_EXIT && raw->rettime != PT_NO_TIME && func_sid &&
	    size <= MEMO_MAX_BYTES && size % 4 == 0 && dat_wire_short(&ev)) {
		c->xm_size = size;
		c->xm_cpu = cpu;
		memcpy(c->xm_bytes, data, (size_t)size);
		dat_wire_from_exit(&ev, &c->xm_msg);
		c->xm_msg.func_sid = func_sid;
		c->xm_msg.comm_sid = comm_sid;
	} else if (raw->type == PT_EV_EXIT) {
		c->xm_size = 0;
	}
}

/* A record of libtracecmd's walk; the first c->skip are the fast walk's
 * (dat_fly.h), handed on already. */
static int child_record(struct tracecmd_input *h, struct tep_record *r, int cpu, void *data)
{
	struct child *c = data;

	(void)h;
	if (c->failed)
		return -1;
	if (c->skip) {
		c->skip--;
		return 0;
	}
	child_raw(c, cpu, r->ts, r->data, r->size, r->missed_events);
	return c->failed ? -1 : 0;
}

/*
 * Whether what libtracecmd parsed of the file's page format agrees with what
 * the fast walk (dat_fly.c) assumes: 8-byte page timestamps and commits, the
 * file's byte order, the current ring-buffer format, one buffer, as many
 * CPUs.
 */
static bool fly_agrees(struct pt_fly *f, struct tracecmd_input *h)
{
	struct tep_handle *tep = tracecmd_get_tep(h);

	return tep_get_header_page_size(tep) == 8 && tep_get_header_timestamp_size(tep) == 8 &&
	       !tep_is_file_bigendian(tep) && !tep_is_old_format(tep) &&
	       tracecmd_buffer_instances(h) == 0 && tracecmd_cpus(h) == pt_fly_cpus(f);
}

/*
 * @path opened for the fast walk: taken by pt_fly_open() (*fp), libtracecmd
 * opened on its metadata alone (pt_fly_meta(): no CPU data to set up, no
 * kallsyms to parse) for the formats, task names and CPU count, the kallsyms
 * indexed our way (dat_kallsyms.h: *ks, NULL when the file has none), the
 * page format checked. Returns the handle; NULL (*fp NULL too) with @why when
 * the walk cannot take the file.
 */
static struct tracecmd_input *fly_open(const char *path, struct pt_fly **fp, struct pt_ksyms **ks,
				       char *why, size_t whylen)
{
	struct tracecmd_input *h = NULL;
	char *kallsyms;
	char meta[64];
	int fd;

	if (pt_fly_open(path, fp, why, whylen) || pt_fly_meta(*fp, &fd, &kallsyms, why, whylen))
		goto fail;
	snprintf(meta, sizeof(meta), "/proc/self/fd/%d", fd);
	h = tracecmd_open(meta, TRACECMD_FL_LOAD_NO_PLUGINS | TRACECMD_FL_LOAD_NO_SYSTEM_PLUGINS);
	close(fd); /* libtracecmd holds its own */
	if (!h)
		snprintf(why, whylen, "libtracecmd cannot open its metadata");
	else if (!fly_agrees(*fp, h))
		snprintf(why, whylen, "a page format it does not read");
	else if (kallsyms && pt_ksyms_new(kallsyms, ks))
		snprintf(why, whylen, "kallsyms lines it does not read");
	else
		return h;
fail:
	if (h)
		tracecmd_close(h);
	pt_fly_free(*fp);
	*fp = NULL;
	return NULL;
}

/*
 * The whole file through the fast walk @f. Where it stops in doubt,
 * libtracecmd reads @path from the start and the records handed on already
 * (c->skip) are passed over; with @only (PTESCOPE_DAT_FLY=only: tests) that
 * is an error instead.
 */
static void child_fly(struct child *c, const char *path, struct pt_fly *f, bool only)
{
	struct tracecmd_input *h;
	struct pt_fly_rec r;
	int ret = PT_FLY_END;

	c->fly = f;
	while (!c->failed && (ret = pt_fly_next(f, &r)) == PT_FLY_REC) {
		child_raw(c, r.cpu, r.ts, r.data, r.size, r.missed);
		c->skip++;
	}
	c->fly = NULL; /* libtracecmd's walk from here, if any: events */
	if (c->failed || ret == PT_FLY_END)
		return;
	if (only) {
		child_error(c, "the fast reader stopped (PTESCOPE_DAT_FLY=only): "
			       "a page it does not read as libtracecmd does");
		c->failed = 1;
		return;
	}
	h = tracecmd_open(path, TRACECMD_FL_LOAD_NO_PLUGINS | TRACECMD_FL_LOAD_NO_SYSTEM_PLUGINS);
	if (!h) {
		child_error(c, "libtracecmd cannot open it: corrupt or unsupported trace.dat");
		c->failed = 1;
		return;
	}
	tracecmd_iterate_events(h, NULL, 0, child_record, c);
	tracecmd_close(h);
}

/*
 * libtracecmd's handle on @path: on its metadata for the fast walk (*fp)
 * unless @part (parallel reads use libtracecmd) or $PTESCOPE_DAT_FLY=0,
 * else on the file. NULL after an error message.
 */
static struct tracecmd_input *child_open(struct child *c, const char *path,
					 const struct dat_wire_part *part, struct pt_fly **fp)
{
	const char *mode = getenv("PTESCOPE_DAT_FLY");
	struct tracecmd_input *h = NULL;
	char why[128] = "", msg[256];

	*fp = NULL;
	if (!part && !(mode && !strcmp(mode, "0")))
		h = fly_open(path, fp, &c->ksyms, why, sizeof(why));
	if (!h && mode && !strcmp(mode, "only")) {
		snprintf(msg, sizeof(msg), "the fast reader refused it (PTESCOPE_DAT_FLY=only): %s",
			 why);
		child_error(c, msg);
		return NULL;
	}
	if (!h)
		h = tracecmd_open(path,
				  TRACECMD_FL_LOAD_NO_PLUGINS | TRACECMD_FL_LOAD_NO_SYSTEM_PLUGINS);
	if (!h)
		child_error(c, "libtracecmd cannot open it: corrupt or unsupported trace.dat");
	return h;
}

/* The time span of the records, over every CPU: [*first, *last], and each
 * CPU's last record time in @cpu_last (0: none); then every CPU back at its
 * first record. */
static void time_span(struct tracecmd_input *h, int cpus, uint64_t *first, uint64_t *last,
		      uint64_t *cpu_last)
{
	*first = UINT64_MAX;
	*last = 0;
	for (int cpu = 0; cpu < cpus; cpu++) {
		struct tep_record *r = tracecmd_read_cpu_last(h, cpu);

		cpu_last[cpu] = r ? r->ts : 0;
		if (r && r->ts > *last)
			*last = r->ts;
		tracecmd_free_record(r);
		r = tracecmd_read_cpu_first(h, cpu);
		if (r && r->ts < *first)
			*first = r->ts;
		tracecmd_free_record(r);
		/* back to the start of the first page (the record just read again) */
		tracecmd_set_cpu_to_timestamp(h, cpu, 0);
	}
}

/* Where chunk @c of @chunks begins: equal slices of [first, last]; chunk 0
 * from the start, the end of the last one open. */
static uint64_t chunk_start(uint64_t first, uint64_t last, uint32_t c, uint32_t chunks)
{
	if (c == 0 || first > last)
		return 0;
	if (c >= chunks)
		return UINT64_MAX;
	return first + (uint64_t)((unsigned __int128)(last - first + 1) * c / chunks);
}

/*
 * One chunk: the records with from <= ts < to of every CPU, merged by time as
 * tracecmd_iterate_events() merges them (the smallest timestamp first, the
 * lowest CPU on a tie), then the chunk's end mark. Within a CPU timestamps
 * only grow, so the chunks split the file's merged order exactly. A CPU
 * whose next record lies before @from (other helpers' chunks) is moved
 * there: libtracecmd finds the page, the rest of it is skipped. A CPU whose
 * last record lies before @from is done (@live): libtracecmd 3.1 asked to
 * seek past a CPU's end goes back to its start.
 */
static void child_chunk(struct child *c, struct tracecmd_input *h, int cpus,
			const uint64_t *cpu_last, bool *live, uint64_t from, uint64_t to,
			uint32_t index)
{
	uint8_t t = DAT_W_CHUNK;

	for (int cpu = 0; cpu < cpus; cpu++) {
		struct tep_record *r = tracecmd_peek_data(h, cpu);

		if (!r || from > cpu_last[cpu])
			live[cpu] = false;
		if (!live[cpu] || r->ts >= from)
			continue;
		tracecmd_set_cpu_to_timestamp(h, cpu, from);
		while ((r = tracecmd_peek_data(h, cpu)) && r->ts < from)
			tracecmd_free_record(tracecmd_read_data(h, cpu));
	}
	for (;;) {
		struct tep_record *r, *best = NULL;
		int best_cpu = -1;

		for (int cpu = 0; cpu < cpus; cpu++) {
			r = live[cpu] ? tracecmd_peek_data(h, cpu) : NULL;
			if (r && r->ts < to && (!best || r->ts < best->ts)) {
				best = r;
				best_cpu = cpu;
			}
		}
		if (!best || c->failed)
			break;
		r = tracecmd_read_data(h, best_cpu);
		if (!r)
			break;
		child_record(h, r, best_cpu, c);
		tracecmd_free_record(r);
	}
	child_write(c, &t, 1);
	child_write(c, &index, sizeof(index));
	child_flush(c); /* the parent waits for this chunk's end before the next */
}

/* Part @part of @parts: chunks part, part + parts, ... of @chunks. */
static void child_part(struct child *c, struct tracecmd_input *h, uint32_t part, uint32_t parts,
		       uint32_t chunks)
{
	int cpus = tep_get_cpus(c->tep);
	size_t n = cpus > 0 ? (size_t)cpus : 1;
	uint64_t first, last, *cpu_last = calloc(n, sizeof(*cpu_last));
	bool *live = malloc(n * sizeof(*live));

	if (!cpu_last || !live) {
		child_error(c, "out of memory");
		c->failed = 1;
	} else {
		memset(live, 1, n * sizeof(*live));
		time_span(h, cpus, &first, &last, cpu_last);
		for (uint32_t k = part; k < chunks && !c->failed; k += parts)
			child_chunk(c, h, cpus, cpu_last, live, chunk_start(first, last, k, chunks),
				    chunk_start(first, last, k + 1, chunks), k);
	}
	free(cpu_last);
	free(live);
}

/* ------------------------------------------------------------- text traces */

struct text_child {
	struct child *c;
	struct pt_u64map *func; /* the text reader's function id -> string id */
};

/* One event of the text reader, in the wire format. */
static int text_event(const struct pt_event *ev, void *ctx)
{
	struct text_child *t = ctx;
	struct child *c = t->c;
	uint32_t func_sid = 0, comm_sid = 0, child_comm_sid = 0;

	if (ev->func && !pt_u64map_get(t->func, ev->func_id, &func_sid)) {
		func_sid = child_string(c, ev->func, strlen(ev->func));
		if (!func_sid || pt_u64map_put(t->func, ev->func_id, func_sid))
			return -ENOMEM;
	}
	/* "" stays "" (not NULL): the events are the in-process reader's, exactly */
	if (ev->comm && !(comm_sid = child_string(c, ev->comm, strlen(ev->comm))))
		return -ENOMEM;
	if (ev->child_comm &&
	    !(child_comm_sid = child_string(c, ev->child_comm, strlen(ev->child_comm))))
		return -ENOMEM;
	child_send(c, ev, func_sid, comm_sid, child_comm_sid, NULL);
	return c->failed ? -EPIPE : 0;
}

static void text_progress(uint64_t done, uint64_t total, void *ctx)
{
	struct child *c = ctx;
	uint8_t t = DAT_W_PROGRESS;
	uint64_t p[2] = {done, total};

	child_write(c, &t, 1);
	child_write(c, p, sizeof(p));
}

static void set_limits(off_t file_size);

int pt_text_reader_main(int in_fd, int fd)
{
	struct pt_read_opts ro = {.progress = text_progress};
	struct pt_input_stats st;
	struct text_child t = {0};
	struct stat sb;
	char err[DAT_WIRE_MAX_ERROR];
	struct child *c = calloc(1, sizeof(*c));
	uint8_t type = DAT_W_DONE;
	int ret, devnull;

	if (!c)
		return 1;
	c->fd = fd;
	c->byte_progress = true;
	set_limits(fstat(in_fd, &sb) == 0 ? sb.st_size : 0);
	if (!getenv("PTESCOPE_DEBUG_DAT")) {
		devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
		if (devnull >= 0)
			dup2(devnull, STDERR_FILENO);
	}
	if (pt_intern_new(&c->strings) || pt_u64map_new(&t.func))
		return 1;
	t.c = c;
	ro.progress_ctx = c;
	pt_input_stats_init(&st);
	err[0] = 0;
	ret = pt_text_read_fd(in_fd, text_event, &t, &st, &ro, err, sizeof(err));
	if (ret) {
		child_error(c, err[0] ? err : strerror(-ret));
		return DAT_WIRE_EXIT_BAD_FILE;
	}
	c->done = (struct dat_wire_done){.events = st.events,
					 .lost = st.lost_events,
					 .lost_unknown = st.lost_unknown,
					 .cpus = (uint32_t)(st.cpus > 0 ? st.cpus : 0),
					 .first_ts = st.first_ts_ns,
					 .last_ts = st.last_ts_ns,
					 .lines = st.lines,
					 .unparsed_lines = st.unparsed_lines};
	child_write(c, &type, 1);
	child_write(c, &c->done, sizeof(c->done));
	child_flush(c);
	return c->failed ? 1 : 0;
}

static void set_limits(off_t file_size)
{
	struct rlimit cpu, core = {0, 0};
	rlim_t secs = 60 + (rlim_t)(file_size >> 20); /* a minute plus a second per MiB */

	cpu.rlim_cur = secs;
	cpu.rlim_max = secs + 5;
	setrlimit(RLIMIT_CPU, &cpu);
	setrlimit(RLIMIT_CORE, &core);
#ifndef PT_SHADOW_VM
	{
		struct rlimit as;
		rlim_t bytes = ((rlim_t)4 << 30) + (rlim_t)file_size * 32;

		as.rlim_cur = as.rlim_max = bytes;
		setrlimit(RLIMIT_AS, &as);
	}
#endif
}

int pt_dat_reader_main(const char *path, int fd, const struct dat_wire_part *part)
{
	struct stat sb;
	off_t file_size = stat(path, &sb) == 0 ? sb.st_size : 0;
	struct child *c = calloc(1, sizeof(*c));
	const char *mode = getenv("PTESCOPE_DAT_FLY");
	struct tracecmd_input *h;
	struct pt_fly *f;
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
	if (pt_intern_new(&c->strings) || pt_u64map_new(&c->func_sid) ||
	    pt_u64map_new(&c->comm_sid))
		return 1;
	h = child_open(c, path, part, &f);
	if (!h)
		return DAT_WIRE_EXIT_BAD_FILE;
	c->tep = tracecmd_get_tep(h);
	if (pt_raw_decoder_new(c->tep, &c->dec)) {
		child_error(c,
			    "it holds no function_graph nor sched_process_fork events "
			    "(record with -p function_graph and/or -e sched:sched_process_fork)");
		tracecmd_close(h);
		pt_fly_free(f);
		return DAT_WIRE_EXIT_BAD_FILE;
	}
	c->done.cpus = (uint32_t)tep_get_cpus(c->tep);
	c->xm_ok = pt_raw_decoder_exit_times(c->dec, &c->xm_call, &c->xm_ret);
	if (c->xm_ok)
		exit_mask_init(c);
	if (part)
		child_part(c, h, part->part, part->parts, part->chunks);
	else if (f)
		child_fly(c, path, f, mode && !strcmp(mode, "only"));
	else
		tracecmd_iterate_events(h, NULL, 0, child_record, c);
	pt_ksyms_free(c->ksyms);
	pt_fly_free(f);
	tracecmd_close(h);
	t = DAT_W_DONE;
	child_write(c, &t, 1);
	child_write(c, &c->done, sizeof(c->done));
	child_flush(c);
	return c->failed ? 1 : 0;
}
