/* SPDX-License-Identifier: MIT */
/*
 * Live capture: sets tracefs up for one capture mode, reads the per-CPU raw
 * ring buffers through libtracefs (no text on this path), merges the CPUs by
 * time and hands the events to the same reconstruction as replay (graph
 * mode: recon.h) or to the tracepoint fork assembly (syscall mode:
 * sysfork.h). Finished forks go to the caller's pt_fork_fn.
 *
 * Modes (auto picks the first the kernel allows and says why):
 *   graph    function_graph rooted at kernel_clone, filtered to the fork-path
 *            functions of the detail level (capture_plan.h), plus
 *            sched_process_fork and sched_switch filtered to preemptions;
 *   syscall  clone/clone3/fork/vfork syscall entry+exit and
 *            sched_process_fork, in an instance of our own.
 * Tracefs is changed only through tfs.h (saved first, restored at stop).
 *
 * Merge: each poll reads every CPU's available pages (bounded per CPU), then
 * hands over, in timestamp order, the events no CPU can still precede: those
 * no later than the minimum over CPUs of (the latest timestamp read from a
 * CPU that still has data) or (now - 5 ms, for a CPU read empty). The trace
 * clock is "mono" (CLOCK_MONOTONIC: consistent across CPUs, and "now" is
 * known). See docs/architecture.md, "Live capture".
 *
 * Sized for fork storms of tens of thousands of forks per second in syscall
 * mode and ~1 GB/s of graph events in pte detail: at most 2^18 decoded
 * events wait per CPU between polls; beyond that the CPU is read again after
 * the older events went out, and the ring buffer absorbs the rest (its
 * overruns are counted and flag the forks they hit).
 */
#ifndef PTESCOPED_CAPTURE_H
#define PTESCOPED_CAPTURE_H

#include <stdbool.h>

#include "callsite.h"
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "recon.h"

struct pd_capture;

/* The pass probes inside copy_page_range (callsite_live.h) in this capture. */
enum pd_passes {
	PD_PASSES_OFF,	   /* not fork detail by kprobes, or --pass-probes off */
	PD_PASSES_PLANNED, /* found, being armed (during the start only) */
	PD_PASSES_ARMED,
	PD_PASSES_UNKNOWN, /* the code was not read, or has a shape not understood */
	PD_PASSES_REFUSED, /* the kernel refused the probes */
};

struct pd_capture_opts {
	enum pd_capture_mode mode; /* auto, graph or syscall */
	enum pd_detail detail;
	enum pd_fork_hooks fork_hooks; /* graph mode at fork detail: kprobes or function_graph */
	const char *tracefs;	   /* NULL: found by libtracefs */
	const char *kernel_btf;	   /* NULL: /sys/kernel/btf/vmlinux */
	const char *instance;	   /* our instance name: the caller holds its lock (tfs_lock.h) */
	const char *state_file;
	const char *lock_dir;	   /* the host-wide tracefs locks; NULL: none (tests) */
	const char *cache_dir;	   /* where the pass probes' plans are kept; NULL: nowhere */
	enum pd_pass_probes pass_probes;
	unsigned buffer_kb;	   /* 0: by mode and detail */
	unsigned buffer_total_mb;  /* every CPU's buffer together at most (0: no cap) */
	/* percent of a CPU's buffer at which a reader waiting on it wakes
	 * (buffer_percent; pd_capture_fds); 0: not set */
	unsigned watermark_pct;
	bool force;
	bool no_preemptions; /* graph: no sched_switch (copy_resched/copy_offcpu_ns null) */
	/* graph mode: narrow function tracing to these tasks (set_ftrace_pid);
	 * NULL/0: every task */
	const int *pids;
	size_t nr_pids;
	pt_fork_fn on_fork;	   /* each finished fork; valid during the call */
	void *ctx;
};

struct pd_capture_stats {
	uint64_t events;      /* events read and decoded */
	uint64_t lost;	      /* overrun + dropped, from the per-CPU stats files */
	bool lost_unknown;    /* the buffer said events were lost, count unknown */
	uint64_t overrun, dropped;
	uint64_t kprobe_missed; /* calls our kprobe events missed (in lost too) */
	uint64_t forks;
	uint64_t first_ts_ns, last_ts_ns; /* trace clock; PT_NO_TIME before any */
	int cpus;
};

/*
 * Repairs a leftover setup of ours, chooses the mode, sets tracefs up and
 * starts tracing. On failure everything changed is restored and the reason
 * is in @err (-EBUSY: another tool uses tracefs; -ENOTSUP: the kernel lacks
 * the mode; -EPERM/-EACCES: permissions). *out owned by the caller
 * (pd_capture_stop).
 */
int pd_capture_start(const struct pd_capture_opts *o, struct pd_capture **out, char *err,
		     size_t errlen);

/*
 * Whether our tracefs setup is still in place: tracing on in our target
 * (the instance still there), our kprobe events enabled, or our tracer or
 * fork event set. Another tool may have taken it apart (trace-cmd reset, a
 * second tracer in our instance): the capture then records nothing. 0, or
 * -ESTALE with what changed in @why.
 */
int pd_capture_check(struct pd_capture *c, char *why, size_t len);

/* The per-CPU buffers' descriptors into @fds (at most @max): each polls
 * readable (POLLIN) once its buffer holds the watermark's share. Returns how
 * many; 0 in modes with nothing to poll. Valid until pd_capture_stop(). */
int pd_capture_fds(const struct pd_capture *c, int *fds, int max);

/* Reads what the buffers hold and hands over finished forks. 0 or -errno
 * (the fork callback's error, or a read error) with @err. */
int pd_capture_poll(struct pd_capture *c, char *err, size_t errlen);

/*
 * Stops tracing, hands over what is left (open forks as partial), restores
 * tracefs and frees @c. Accepts NULL. Returns 0 or the first error (with
 * @err); tracefs is restored as far as possible in any case.
 */
int pd_capture_stop(struct pd_capture *c, char *err, size_t errlen);

/* Restores tracefs without draining (fatal paths). @c stays to be stopped. */
void pd_capture_abort(struct pd_capture *c);

enum pd_capture_mode pd_capture_mode(const struct pd_capture *c);

struct pd_passes_info {
	enum pd_passes state;
	const char *why;	     /* "" or why not armed */
	const struct pd_cs_plan *plan; /* ARMED: the sites and fetch args */
	const char *build_id;	     /* ARMED: the kernel's build id, "" when none */
	bool cached;		     /* ARMED: the plan came from the cache */
	double read_ms;		     /* ARMED: reading the code took */
	const char *child_check;     /* ARMED: "exact", "approximate" or "off" */
	int before_calls; /* ARMED: probes placed before their calls (0-2; jump-optimizable) */
};
/* The pass probes' state; strings owned by @c. */
void pd_capture_passes(const struct pd_capture *c, struct pd_passes_info *out);
/* Why the last fork flagged pass_mismatch was, NULL before any. */
const char *pd_capture_pass_mismatch(const struct pd_capture *c);
/* Why this mode (one line). */
const char *pd_capture_reason(const struct pd_capture *c);
/* "instances/NAME" or "top level". */
const char *pd_capture_where(const struct pd_capture *c);
/* Functions traced (graph mode), comma-separated, "" otherwise. */
const char *pd_capture_functions(const struct pd_capture *c);
/* What hooks them: "kprobes" or "function_graph" (graph mode), "" otherwise. */
const char *pd_capture_hooks(const struct pd_capture *c);
/* How the forking task's preemptions are recorded (graph mode): "task_counters"
 * (kprobes read its scheduler counters), "sched_switch", or NULL (not at all). */
const char *pd_capture_preemptions(const struct pd_capture *c);
/* The ring buffer per CPU, KiB; *@capped (may be NULL): smaller than asked, by --buffer-total-mb. */
unsigned pd_capture_buffer_kb(const struct pd_capture *c, bool *capped);
/* Wall clock minus trace clock, ns (for the store). */
int64_t pd_capture_clock_offset_ns(const struct pd_capture *c);
void pd_capture_get_stats(const struct pd_capture *c, struct pd_capture_stats *st);
/* One CPU's ring-buffer counters since the capture started (from its stats file). */
struct pd_cpu_stat {
	int cpu;
	uint64_t overrun, dropped, entries;
};

/* Copies the counters of at most @max CPUs into @out; returns how many CPUs
 * the capture reads (may exceed @max). */
int pd_capture_cpu_stats(const struct pd_capture *c, struct pd_cpu_stat *out, int max);

#endif
