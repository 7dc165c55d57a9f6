/* SPDX-License-Identifier: MIT */
/*
 * The trace.dat reader's wire format: what the helper program
 * (ptescope-dat-reader, dat_helper.c) writes to its standard output and the
 * parent (dat_reader.c) reads from the pipe, for trace.dat files and, in the
 * daemon, text traces. Private to those two files; both
 * are always built together, so the format carries no version.
 *
 * A stream of messages, each one type byte and a body in host byte order:
 *   S  uint32 id, uint32 len, len bytes   a string (function or comm) and its id
 *   E  struct dat_wire_event              one event; strings by id (0: none)
 *   N  struct dat_wire_entry              an ENTRY event, in 28 bytes
 *   R  struct dat_wire_exit               an EXIT event, in 60 bytes
 *   n  struct dat_wire_entry_ctx          an ENTRY in the context of the last N or R
 *                                         message (its pid, comm, CPU, irq flag), 16 bytes
 *   r  struct dat_wire_exit_ctx           an EXIT likewise, 28 bytes: its call time and
 *                                         record time as offsets from its return time
 *   l  struct dat_wire_leaf_ctx           an n and the r that follows it (a call with
 *                                         no call inside: the same function and depth),
 *                                         32 bytes
 *   P  uint64 done, uint64 total          progress: bytes of the file's CPU data the
 *                                         page walk has read and their total, or
 *                                         events so far and 0 (libtracecmd's walk)
 *   C  uint32 chunk                        the end of a chunk (parallel reads)
 *   Z  struct dat_wire_done               the end: the file was read whole
 *                                         (or, in a parallel read, this helper's part)
 *   X  uint32 len, len bytes              a one-line error; the helper stops
 * A stream that ends without Z or X is a crash or a limit: the parent names it.
 */
#ifndef PTESCOPE_DAT_WIRE_H
#define PTESCOPE_DAT_WIRE_H

#include <stdbool.h>
#include <stdint.h>

#include "event.h"
#include "intern.h"

enum dat_wire_type {
	DAT_W_STRING = 'S',
	DAT_W_EVENT = 'E',
	DAT_W_ENTRY = 'N',
	DAT_W_EXIT = 'R',
	DAT_W_ENTRY_CTX = 'n',
	DAT_W_EXIT_CTX = 'r',
	DAT_W_LEAF_CTX = 'l',
	DAT_W_PROGRESS = 'P',
	DAT_W_CHUNK = 'C',
	DAT_W_DONE = 'Z',
	DAT_W_ERROR = 'X',
};

#define DAT_WIRE_MAX_STRING (1u << 16) /* longer strings are a protocol error */
#define DAT_WIRE_MAX_SID (1u << 24)    /* larger string ids are a protocol error */
#define DAT_WIRE_MAX_ERROR 4096u
#define DAT_WIRE_PROGRESS_EVERY (1u << 18) /* events between progress messages */
#define DAT_WIRE_EXIT_BAD_FILE 3	   /* the helper's exit status after an X */

struct dat_wire_event {
	uint8_t type; /* enum pt_event_type */
	uint8_t in_irq;
	uint8_t preempted; /* SWITCH */
	uint8_t pad;
	int32_t cpu, pid, depth, child_pid, next_pid;
	uint32_t func_sid, comm_sid, child_comm_sid;
	uint64_t ts, dur, call, lost, rec_ts;
	int64_t overrun;
};

/*
 * The two events that are nearly every record of a function_graph trace,
 * without the fields their type leaves unset (pt_raw_to_event()): a third
 * and two thirds of dat_wire_event, so fewer bytes through the pipe.
 */
struct __attribute__((packed)) dat_wire_entry {
	uint64_t ts;
	uint32_t func_sid, comm_sid;
	int32_t pid, depth;
	uint16_t cpu;
	uint8_t in_irq, pad;
};

struct __attribute__((packed)) dat_wire_exit {
	uint64_t ts, dur, call, rec_ts;
	int64_t overrun;
	uint32_t func_sid, comm_sid;
	int32_t pid, depth;
	uint16_t cpu;
	uint8_t in_irq, pad;
};

/*
 * Most events follow one of the same task on the same CPU: the short forms
 * leave out what the last N or R message said (struct dat_wire_ctx); an
 * EXIT's call time is its return time less the duration (which they always
 * are, pt_raw_to_event()) and its record time an offset from the return
 * time. The bundled recording: 41 MB through the pipe in the full forms,
 * 15.5 MB with these and the l message below.
 */
struct __attribute__((packed)) dat_wire_entry_ctx {
	uint64_t ts;
	uint32_t func_sid;
	int32_t depth;
};

struct __attribute__((packed)) dat_wire_exit_ctx {
	uint64_t ts;
	uint32_t dur;	   /* call = ts - dur */
	int32_t rec_delta; /* rec_ts = ts + rec_delta */
	int32_t overrun;
	uint32_t func_sid;
	int32_t depth;
};

/*
 * A leaf call, its ENTRY and its EXIT one after the other in the same
 * context (nine records in ten of the bundled recording): one message where
 * an n and an r took 46 bytes. The EXIT's return time is an offset from
 * the ENTRY's time; its function and depth are the ENTRY's.
 */
struct __attribute__((packed)) dat_wire_leaf_ctx {
	uint64_t ts; /* the ENTRY's */
	uint32_t func_sid;
	int32_t depth;
	uint32_t ret_delta; /* the EXIT's ts = ts + ret_delta */
	uint32_t dur;	    /* the EXIT's call = its ts - dur */
	int32_t rec_delta;  /* the EXIT's rec_ts = its ts + rec_delta */
	int32_t overrun;
};

/* The context of the short forms: what the last N or R message carried. */
struct dat_wire_ctx {
	bool set;
	uint32_t comm_sid;
	int32_t pid;
	uint16_t cpu;
	uint8_t in_irq;
};

static inline bool dat_wire_same_ctx(const struct dat_wire_ctx *x, uint32_t comm_sid, int32_t pid,
				     uint16_t cpu, uint8_t in_irq)
{
	return x->set && x->comm_sid == comm_sid && x->pid == pid && x->cpu == cpu &&
	       x->in_irq == in_irq;
}

static inline void dat_wire_set_ctx(struct dat_wire_ctx *x, uint32_t comm_sid, int32_t pid,
				    uint16_t cpu, uint8_t in_irq)
{
	*x = (struct dat_wire_ctx){true, comm_sid, pid, cpu, in_irq};
}

/* An EXIT's times and fields in the short form (*s) when they fit it: a
 * kernel call time, a duration and a record time offset that fit 32 bits,
 * an overrun count too. The one rule for both of the helper's ways to an
 * EXIT message (a decoded record, dat_wire_exit_to_ctx(), and a repeated
 * one's times). */
static inline bool dat_wire_times_to_ctx(uint64_t ts, uint64_t dur, uint64_t call, uint64_t rec_ts,
					 int64_t overrun, uint32_t func_sid, int32_t depth,
					 struct dat_wire_exit_ctx *s)
{
	int64_t rec_delta = (int64_t)(rec_ts - ts);

	if (call == PT_NO_TIME || rec_ts == PT_NO_TIME || ts < call || ts - call > UINT32_MAX ||
	    dur != ts - call || rec_delta < INT32_MIN || rec_delta > INT32_MAX ||
	    overrun < INT32_MIN || overrun > INT32_MAX)
		return false;
	*s = (struct dat_wire_exit_ctx){.ts = ts,
					.dur = (uint32_t)dur,
					.rec_delta = (int32_t)rec_delta,
					.overrun = (int32_t)overrun,
					.func_sid = func_sid,
					.depth = depth};
	return true;
}

/* @w in the short form (*s) when its times fit it (dat_wire_times_to_ctx()). */
static inline bool dat_wire_exit_to_ctx(const struct dat_wire_exit *w, struct dat_wire_exit_ctx *s)
{
	return dat_wire_times_to_ctx(w->ts, w->dur, w->call, w->rec_ts, w->overrun, w->func_sid,
				     w->depth, s);
}

/* @e and @x, an ENTRY's and the next EXIT's short forms, as one message
 * (*l) when they are one leaf call: the same function and depth, the EXIT
 * returning at most 4 s after the ENTRY. */
static inline bool dat_wire_leaf(const struct dat_wire_entry_ctx *e,
				 const struct dat_wire_exit_ctx *x, struct dat_wire_leaf_ctx *l)
{
	if (e->func_sid != x->func_sid || e->depth != x->depth || x->ts < e->ts ||
	    x->ts - e->ts > UINT32_MAX)
		return false;
	*l = (struct dat_wire_leaf_ctx){.ts = e->ts,
					.func_sid = e->func_sid,
					.depth = e->depth,
					.ret_delta = (uint32_t)(x->ts - e->ts),
					.dur = x->dur,
					.rec_delta = x->rec_delta,
					.overrun = x->overrun};
	return true;
}

/* The two short forms @l stands for. */
static inline void dat_wire_leaf_split(const struct dat_wire_leaf_ctx *l,
				       struct dat_wire_entry_ctx *e, struct dat_wire_exit_ctx *x)
{
	*e = (struct dat_wire_entry_ctx){.ts = l->ts, .func_sid = l->func_sid, .depth = l->depth};
	*x = (struct dat_wire_exit_ctx){.ts = l->ts + l->ret_delta,
					.dur = l->dur,
					.rec_delta = l->rec_delta,
					.overrun = l->overrun,
					.func_sid = l->func_sid,
					.depth = l->depth};
}

/*
 * The events of the short forms in context @x, made in place: the reader
 * keeps one event per context (dat_wire_ctx_event()) and sets each
 * message's own fields on it (dat_wire_ctx_set_entry(),
 * dat_wire_ctx_set_exit()) rather than making a whole event per message.
 * Their strings are the caller's.
 */
static inline void dat_wire_ctx_event(const struct dat_wire_ctx *x, struct pt_event *ev)
{
	pt_event_init(ev, PT_EV_ENTRY);
	ev->cpu = x->cpu;
	ev->pid = x->pid;
	ev->in_irq = x->in_irq != 0;
}

/* @ev, made by dat_wire_ctx_event() and set by these since, as the ENTRY of
 * short form @w. */
static inline void dat_wire_ctx_set_entry(const struct dat_wire_entry_ctx *w, struct pt_event *ev)
{
	ev->type = PT_EV_ENTRY;
	ev->depth = w->depth;
	ev->ts_ns = w->ts;
	/* an EXIT's own fields, as pt_event_init() leaves them */
	ev->dur_ns = ev->call_ns = ev->rec_ts_ns = PT_NO_TIME;
	ev->overrun = -1;
}

/* The same as the EXIT of short form @w: all of an EXIT's own fields. */
static inline void dat_wire_ctx_set_exit(const struct dat_wire_exit_ctx *w, struct pt_event *ev)
{
	ev->type = PT_EV_EXIT;
	ev->depth = w->depth;
	ev->ts_ns = w->ts;
	ev->dur_ns = w->dur;
	ev->call_ns = w->ts - w->dur;
	ev->rec_ts_ns = w->ts + (uint64_t)(int64_t)w->rec_delta;
	ev->overrun = w->overrun;
}

struct dat_wire_done {
	uint64_t events, lost;
	uint32_t lost_unknown, cpus;
	uint64_t first_ts, last_ts;
	uint64_t lines, unparsed_lines; /* text traces (pt_text_reader_main); 0 for trace.dat */
};

/* The wire form of @ev; the caller sets the string ids. */
static inline void dat_wire_from_event(const struct pt_event *ev, struct dat_wire_event *w)
{
	*w = (struct dat_wire_event){.type = (uint8_t)ev->type,
				     .in_irq = ev->in_irq,
				     .cpu = ev->cpu,
				     .pid = ev->pid,
				     .depth = ev->depth,
				     .child_pid = ev->child_pid,
				     .next_pid = ev->next_pid,
				     .preempted = ev->preempted,
				     .rec_ts = ev->rec_ts_ns,
				     .ts = ev->ts_ns,
				     .dur = ev->dur_ns,
				     .call = ev->call_ns,
				     /* NEWTASK has no count lost: its flags ride there */
				     .lost = ev->type == PT_EV_NEWTASK ? ev->clone_flags : ev->lost,
				     .overrun = ev->overrun};
}

/* The event @w stands for, its strings from @strings (valid as long as they are). */
static inline void dat_wire_to_event(const struct dat_wire_event *w,
				     const struct pt_intern *strings, struct pt_event *ev)
{
	pt_event_init(ev, (enum pt_event_type)w->type);
	ev->cpu = w->cpu;
	ev->pid = w->pid;
	ev->depth = w->depth;
	ev->ts_ns = w->ts;
	ev->dur_ns = w->dur;
	ev->call_ns = w->call;
	ev->func = pt_intern_str(strings, w->func_sid);
	ev->func_id = ev->func ? w->func_sid : 0;
	ev->comm = pt_intern_str(strings, w->comm_sid);
	ev->child_pid = w->child_pid;
	ev->child_comm = pt_intern_str(strings, w->child_comm_sid);
	if (w->type == PT_EV_NEWTASK)
		ev->clone_flags = w->lost;
	else
		ev->lost = w->lost;
	ev->in_irq = w->in_irq != 0;
	ev->next_pid = w->next_pid;
	ev->preempted = w->preempted != 0;
	ev->rec_ts_ns = w->rec_ts;
	ev->overrun = w->overrun;
}

/* Whether @ev fits the short form of its type: an ENTRY or EXIT on a CPU
 * below 65535 with only its type's fields set. */
static inline bool dat_wire_short(const struct pt_event *ev)
{
	if (ev->cpu < 0 || ev->cpu >= UINT16_MAX || ev->child_pid != -1 || ev->next_pid != -1 ||
	    ev->lost || ev->preempted || ev->child_comm)
		return false;
	if (ev->type == PT_EV_ENTRY)
		return ev->dur_ns == PT_NO_TIME && ev->call_ns == PT_NO_TIME &&
		       ev->rec_ts_ns == PT_NO_TIME && ev->overrun == -1;
	return ev->type == PT_EV_EXIT;
}

static inline void dat_wire_from_entry(const struct pt_event *ev, struct dat_wire_entry *w)
{
	*w = (struct dat_wire_entry){.ts = ev->ts_ns,
				     .pid = ev->pid,
				     .depth = ev->depth,
				     .cpu = (uint16_t)ev->cpu,
				     .in_irq = ev->in_irq};
}

static inline void dat_wire_from_exit(const struct pt_event *ev, struct dat_wire_exit *w)
{
	*w = (struct dat_wire_exit){.ts = ev->ts_ns,
				    .dur = ev->dur_ns,
				    .call = ev->call_ns,
				    .rec_ts = ev->rec_ts_ns,
				    .overrun = ev->overrun,
				    .pid = ev->pid,
				    .depth = ev->depth,
				    .cpu = (uint16_t)ev->cpu,
				    .in_irq = ev->in_irq};
}

/* The events of the short forms; their strings are the caller's. */
static inline void dat_wire_to_entry(const struct dat_wire_entry *w, struct pt_event *ev)
{
	pt_event_init(ev, PT_EV_ENTRY);
	ev->cpu = w->cpu;
	ev->pid = w->pid;
	ev->depth = w->depth;
	ev->ts_ns = w->ts;
	ev->in_irq = w->in_irq != 0;
}

static inline void dat_wire_to_exit(const struct dat_wire_exit *w, struct pt_event *ev)
{
	pt_event_init(ev, PT_EV_EXIT);
	ev->cpu = w->cpu;
	ev->pid = w->pid;
	ev->depth = w->depth;
	ev->ts_ns = w->ts;
	ev->dur_ns = w->dur;
	ev->call_ns = w->call;
	ev->rec_ts_ns = w->rec_ts;
	ev->overrun = w->overrun;
	ev->in_irq = w->in_irq != 0;
}

/*
 * A parallel read (dat_reader.c): the records' time span cut into @chunks
 * equal slices, chunk k read by helper k % @parts; this helper is @part.
 */
struct dat_wire_part {
	uint32_t part, parts, chunks;
};

/*
 * The helper's side (the ptescope-dat-reader program): reads @path with
 * libtracecmd under resource limits and writes the messages above to @fd:
 * the whole file, or with @part its chunks, each followed by a C message.
 * Returns the helper's exit status.
 */
int pt_dat_reader_main(const char *path, int fd, const struct dat_wire_part *part);

/*
 * The same for a text trace (function_graph text, `trace-cmd report`
 * output) read from @in_fd with the text reader (reader.h), under the same
 * limits: the daemon reads uploaded text this way, never in its own process.
 * Progress messages carry bytes read and the file's size.
 */
int pt_text_reader_main(int in_fd, int fd);

#endif
