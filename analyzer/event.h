/* SPDX-License-Identifier: MIT */
/*
 * The event model: what every trace source (trace.dat, function_graph text,
 * trace-cmd report text, live tracefs) is reduced to before analysis.
 *
 * Readers produce `struct pt_event`s in time order (readers of multi-CPU raw
 * data merge CPUs by timestamp; text is already in the kernel's merged order)
 * and hand them one at a time to a `pt_event_fn`, normally recon_feed()
 * (recon.h). Nothing here allocates: strings in an event are owned by the
 * reader and valid only during the callback, except `func`, which must stay
 * valid for the life of the reader (readers intern function names), because
 * the reconstruction keeps it on its call stacks.
 *
 * Sized for tens of millions of events per input: the struct is small and
 * passed by pointer, and `func_id` lets the consumer cache per-function facts
 * without comparing strings per event.
 */
#ifndef PTESCOPE_EVENT_H
#define PTESCOPE_EVENT_H

#include <stdbool.h>
#include <stdint.h>

/* "The trace did not carry this value." */
#define PT_NO_TIME UINT64_MAX

enum pt_event_type {
	/* A function was entered; the graph shows it as "f() {". */
	PT_EV_ENTRY = 1,
	/* A function returned. `func` may be NULL when the source did not name it (text "}"). */
	PT_EV_EXIT,
	/* Entry and return in one: text "f();" and trace-cmd report leaf lines. */
	PT_EV_LEAF,
	/* sched:sched_process_fork: pid/comm are the parent, child_* the child. */
	PT_EV_FORK,
	/* The source says events were lost here on `cpu` (count in `lost`, 0 = unknown). */
	PT_EV_LOST,
	/* sched:sched_switch: `pid` left the CPU, `next_pid` got it; `preempted`: the
	 * task left while still runnable (prev_state "R+": preemption, cond_resched). */
	PT_EV_SWITCH,
	/* Live capture's probes on call sites inside copy_page_range (`site`): a
	 * copy_pte_range pass takes its first PTE lock / drops its last one. */
	PT_EV_PASS_START,
	PT_EV_PASS_END,
	/* task:task_newtask, fired in copy_process once the child exists: `pid`
	 * is the parent task, `child_pid` the child, `clone_flags` the flags of
	 * the clone (what tells a fork from a thread or a spawn, fork.h). */
	PT_EV_NEWTASK,
};

/*
 * What live capture's probes fetch beside the event itself (the daemon's
 * callsite.h and capture_plan.h): at a pass's start and end inside
 * copy_page_range, at copy_page_range's entry (the VMA it copies) and at
 * wake_up_new_task (the child's memory counters once the copy is done).
 */
struct pt_site {
	/* PT_EV_PASS_START: the child's PTE lock or the pass's first address
	 * (which one the kernel's code lets a probe read; 0: not fetched) */
	uint64_t ptl, addr;
	/* PT_EV_PASS_END: the child's PTE lock, the two operands of the copy
	 * loop's `addr != end` test (either order: addr is the smaller), its
	 * `ret`, and the pass's counts rss[4] (file, anon, swap entries, shmem) */
	uint64_t a, b;
	int64_t ret;
	int32_t rss[4];
	/* ENTRY of copy_page_range: the VMA it copies, [vm_start, vm_end) */
	uint64_t vm_start, vm_end;
	/* ENTRY of wake_up_new_task: the child's mm counters (same order as rss) */
	int64_t child_rss[4];
	/* ENTRY of dup_mmap (or uprobe_dup_mmap): the parent's memory as the fork
	 * begins, from its mm_struct: the four counters (pages, same order),
	 * pgtables_bytes and map_count */
	int64_t parent_rss[4], parent_pte, parent_maps;
	bool has_vma, has_child_rss, has_parent_mm;
};

/*
 * The forking task's own scheduler counters, as live capture's kprobes read
 * them from its task_struct at two points of a fork (capture_plan.h): where
 * the page-table copy begins and where the child is woken. The difference
 * says how often the task was preempted in between and how long it waited
 * for a CPU, with no probe on the scheduler.
 */
struct pt_task_ctr {
	uint64_t task;	    /* the task_struct's address; 0: not carried */
	uint64_t nivcsw;    /* involuntary context switches (preemptions) */
	uint64_t pcount;    /* times it was put on a CPU (sched_info.pcount) */
	uint64_t run_delay; /* ns spent runnable, waiting for a CPU (sched_info) */
};

struct pt_event {
	enum pt_event_type type;
	int cpu;	  /* -1 when the source has no CPU column */
	int pid;	  /* -1 when the source does not say which task */
	int depth;	  /* call depth for ENTRY/EXIT/LEAF, -1 when not known */
	uint64_t ts_ns;	  /* when it happened: entry time for ENTRY/LEAF, return time
			   * for EXIT, event time otherwise; PT_NO_TIME if not carried */
	uint64_t dur_ns;  /* EXIT/LEAF: duration; PT_NO_TIME if not carried */
	uint64_t call_ns; /* EXIT: the entry time as recorded with the exit (raw
			   * funcgraph_exit calltime); PT_NO_TIME if not carried */
	const char *func; /* function name, interned by the reader (see above) */
	uint64_t func_id; /* nonzero id unique per function name within one reader,
			   * 0 when func is NULL */
	const char *comm; /* task name or NULL; valid during the callback only */
	uint64_t comm_id; /* nonzero id unique per task name within one reader (the
			   * trace.dat reader's), 0 when comm is NULL or the reader
			   * has none: lets the consumer skip comparing the name */
	/* PT_EV_FORK */
	int child_pid;
	const char *child_comm;
	/* PT_EV_NEWTASK */
	uint64_t clone_flags;
	/* PT_EV_LOST */
	uint64_t lost;
	/* PT_EV_SWITCH */
	int next_pid;
	bool preempted;
	/* The record's own time in the trace clock, where it differs from ts_ns:
	 * EXIT events whose ts_ns is the kernel's rettime. PT_NO_TIME if unknown;
	 * for other events ts_ns is the record time. */
	uint64_t rec_ts_ns;
	/* ENTRY/LEAF/EXIT inside an interrupt the source marked (text "==========>") */
	bool in_irq;
	/* EXIT: the task's return-stack overrun count as the raw funcgraph_exit
	 * carries it (trace.dat, live, `trace-cmd report -R`): calls the graph
	 * tracer could not record because the task's return stack was full, summed
	 * over the task's life. -1 when the source does not carry it. */
	int64_t overrun;
	/* ENTRY of a live kprobe that read the task's counters (task 0: none) */
	struct pt_task_ctr ctr;
	/* PT_EV_PASS_*, and ENTRY of probes that fetch more (NULL: none); owned
	 * by the source, valid during the callback */
	const struct pt_site *site;
};

/* Consumer of events. Returns 0 to go on, a negative errno to stop the reader. */
typedef int (*pt_event_fn)(const struct pt_event *ev, void *ctx);

/* Statistics a reader keeps about one input, for the report's "inputs" list. */
struct pt_input_stats {
	uint64_t events;	   /* events handed to the consumer */
	uint64_t lines;		   /* text inputs: lines read */
	uint64_t unparsed_lines;   /* text inputs: lines not understood (not fatal) */
	uint64_t lost_events;	   /* events the source says were lost */
	bool lost_unknown;	   /* the source says events were lost, count unknown */
	uint64_t first_ts_ns, last_ts_ns; /* PT_NO_TIME when the source has no times */
	int cpus;		   /* CPUs in the source, 0 if unknown */
};

static inline void pt_event_init(struct pt_event *ev, enum pt_event_type type)
{
	*ev = (struct pt_event){.type = type,
				.cpu = -1,
				.pid = -1,
				.depth = -1,
				.ts_ns = PT_NO_TIME,
				.dur_ns = PT_NO_TIME,
				.call_ns = PT_NO_TIME,
				.rec_ts_ns = PT_NO_TIME,
				.child_pid = -1,
				.next_pid = -1,
				.overrun = -1};
}

static inline void pt_input_stats_init(struct pt_input_stats *st)
{
	*st = (struct pt_input_stats){.first_ts_ns = PT_NO_TIME, .last_ts_ns = PT_NO_TIME};
}

#endif
