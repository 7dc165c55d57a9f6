/* SPDX-License-Identifier: MIT */
/*
 * The tracefs writes that set graph capture up, as a plan: a pure function
 * of what the kernel offers (which fork-path functions are traceable, the
 * task's scheduler counters in its BTF, else the sched_switch preemption
 * bit) and what was asked (detail level, pids,
 * buffer size). capture_setup.c applies it through tfs.h; the unit tests apply it
 * to a fake tracefs and check every write's order (tests/live).
 *
 * Setup order: tracing off, clock and buffer, tracer to nop, then filters
 * (one name per write), pids, graph root and events, and only then the
 * tracer: no step hooks more than the finished setup does. With kprobes
 * (fork detail): tracing off, clock and buffer, tracer to nop, the kprobe
 * events defined (defining hooks nothing), the sched events, then the probe
 * group enabled. Stopping is tfs.h's restore, which orders its writes the
 * other way round.
 *
 * set_ftrace_filter is given each function's index in
 * available_filter_functions rather than its name where the index is known:
 * a name makes the kernel look up the symbol of every traceable function
 * (~40,000 on 6.1; 0.7 s each in an icount guest), an index does not. What
 * the kernel took is read back (a check step) while no tracer runs and
 * before the function probes, which hook at once, are written with the same
 * indices; when it is not exactly the plan's functions the caller plans
 * again with names (pd_plan_apply's -ESTALE). set_graph_function takes
 * names only (6.1 refuses an index there).
 *
 * Sized for the handful of functions of one detail level: at most
 * PD_PLAN_MAX_STEPS writes.
 */
#ifndef PTESCOPED_CAPTURE_PLAN_H
#define PTESCOPED_CAPTURE_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "callsite.h"
#include "config.h"

#define PD_PLAN_MAX_STEPS 96

/* The function probes that arm sched_switch while a fork copies page tables
 * and disarm it when the fork is done (set_ftrace_filter commands). */
#define PD_SWITCH_ARM_FUNC "copy_page_range"
#define PD_SWITCH_ARM_CMD ":enable_event:sched:sched_switch"
#define PD_SWITCH_DISARM_FUNC "wake_up_new_task"
#define PD_SWITCH_DISARM_CMD ":disable_event:sched:sched_switch"
#define PD_SWITCH_ARM PD_SWITCH_ARM_FUNC PD_SWITCH_ARM_CMD
#define PD_SWITCH_DISARM PD_SWITCH_DISARM_FUNC PD_SWITCH_DISARM_CMD
#define PD_PLAN_MAX_FUNCS 24
/* Fork-level capture by kprobes: events PD_KPROBE_GROUP/FUNC (entry, tfs.h)
 * and .../FUNC_ret (return, up to PD_KRETPROBE_MAXACTIVE calls in flight) */
#define PD_KRETPROBE_MAXACTIVE 512
/* Hooked at fork detail by kprobes only to read the forking task's counters
 * once a fork where dup_mmap is inlined (pd_task_offs): dup_mmap calls it
 * once, at its top, with the parent's mm */
#define PD_COPY_START_FUNC "uprobe_dup_mmap"

struct pd_tfs;

struct pd_tfs_step {
	char rel[96];	/* path under the target (top level or our instance) */
	char value[512]; /* what to write */
	bool append;	/* filter files: one name per appended write */
	bool check;	/* no write: @rel must list exactly the plan's funcs */
};

/*
 * Where the forking task's scheduler counters are in this kernel's structs
 * (byte offsets and sizes from its BTF: capture_probe.c), for the kprobes that read
 * them instead of arming sched_switch: at the start of the copy dup_mmap
 * reaches the task as oldmm->owner (its parameter pd_site_offs.dup_old_arg),
 * or where dup_mmap is inlined (6.12) uprobe_dup_mmap, which dup_mmap calls
 * once at its top (pd_site_offs.start_old_arg), else copy_page_range as
 * src_vma->vm_mm->owner (@cpr_src_arg); at the end wake_up_new_task as
 * p->real_parent (@wake_arg).
 */
struct pd_task_offs {
	int cpr_src_arg, wake_arg;
	uint32_t vm_mm, owner, real_parent; /* pointers */
	uint32_t nivcsw, pcount, run_delay; /* in task_struct */
	uint32_t nivcsw_size, pcount_size, run_delay_size;
};

/*
 * What the pass probes' self-checks read beside them (capture_probe.c, from BTF;
 * each part optional): the VMA copy_page_range copies (vm_area_struct's
 * vm_start and vm_end, through its src_vma parameter @cpr_src_arg), and the
 * child's memory counters at wake_up_new_task (p->mm, then in mm_struct the
 * value of each of the four counters, 8 bytes).
 */
struct pd_site_offs {
	int cpr_src_arg, wake_arg; /* 1-based, 0: unknown */
	bool vma;
	uint32_t vm_start, vm_end;
	bool child_rss;
	uint32_t task_mm, rss[4];
	/* dup_mmap's and uprobe_dup_mmap's oldmm parameter (1-based, 0: not in a
	 * register), through which the task's counters (pd_task_offs) and the
	 * parent's memory are read once a fork */
	int dup_old_arg, start_old_arg;
	/* the parent's memory as the fork begins: the counters at rss[],
	 * pgtables_bytes (8 bytes) and map_count (4) */
	bool parent_mm;
	uint32_t pgtables, map_count;
};

/* The event that gives each clone's flags (fork, thread or spawn). */
#define PD_NEWTASK_ENABLE "events/task/task_newtask/enable"

struct pd_plan_in {
	enum pd_detail detail;
	/* traceable(name) for every name of pd_plan_lookups() */
	bool (*traceable)(void *ctx, const char *name);
	/* optional: the function's index in available_filter_functions (its line,
	 * from 1) when exactly one line has its name, else 0 */
	unsigned (*index)(void *ctx, const char *name);
	void *ctx;
	unsigned buffer_kb;
	/* the buffers' wake-up watermark (buffer_percent), percent; 0: not written */
	unsigned watermark_pct;
	const int *pids; /* narrow function tracing to these tasks; NULL/0: all */
	size_t nr_pids;
	/* sched_switch prev_state bit of a preempted task ("R+"); 0: the kernel's
	 * format does not say, sched_switch is not used */
	uint64_t preempt_mask;
	/* fork detail, every task: hook the functions with kprobe events
	 * instead of function_graph (no tracer; see capture_plan.c) */
	bool kprobes;
	/* the writes go to our instance (kprobes: the caller turned the top
	 * level's record-cmd off before creating it; an instance has no such
	 * option and starts with the top level's flags) */
	bool instance;
	/* with kprobes: read preemptions from the task's counters, not from
	 * sched_switch (NULL: offsets unknown, or no preemptions wanted) */
	const struct pd_task_offs *task;
	/* with kprobes: the pass probes inside copy_page_range (callsite.h; NULL:
	 * none), and what their self-checks read (NULL: nothing) */
	const struct pd_cs_plan *cs;
	const struct pd_site_offs *site;
	/* with kprobes: the events' group (pd_tfs_kprobe_group; NULL: PD_KPROBE_GROUP) */
	const char *group;
	/* task:task_newtask exists: enabled, its clone_flags tell a fork from a
	 * thread or a spawn (analyzer/fork.h) */
	bool newtask;
};

struct pd_plan {
	struct pd_tfs_step step[PD_PLAN_MAX_STEPS];
	int nr;
	const char *funcs[PD_PLAN_MAX_FUNCS]; /* hooked, root first (static strings) */
	int nr_funcs;
	bool sched_switch;  /* sched_switch is used (preemptions only) */
	bool switch_window; /* ... armed only while a fork copies (PD_SWITCH_ARM) */
	bool kprobes;	    /* hooked by kprobe events (pd_plan_in.group), no tracer */
	bool task_ctr;	    /* ... two of which read the task's counters (pd_task_offs) */
	bool ctr_at_dup;    /* ... the first at dup_mmap, not at each copy_page_range */
	bool ctr_at_start;  /* ... the first at uprobe_dup_mmap (hooked for it) */
	bool pass_sites;    /* ... and the pass probes inside copy_page_range */
	bool site_vma, site_child; /* ... the VMA and the child's counters for their checks */
	/* with kprobes: the function whose entry probe reads the parent's memory
	 * (dup_mmap or uprobe_dup_mmap, pd_site_offs.parent_mm), NULL: none */
	const char *parent_mm_at;
};

/*
 * Builds the plan. Returns 0, -ENOTSUP (no fork root is traceable: message
 * in @err) or -E2BIG (too many steps).
 */
int pd_plan_graph(const struct pd_plan_in *in, struct pd_plan *out, char *err, size_t errlen);

/* Applies @p's steps in order through @t (saving each file first). 0,
 * -ESTALE when a check step found the filter other than planned (indices
 * that named other functions: plan again without them), or -errno with @err
 * naming the file. */
int pd_plan_apply(struct pd_tfs *t, const struct pd_plan *p, char *err, size_t errlen);

/* The kprobe event of @func's entry, or of its return (@ret): "GROUP/FUNC[_ret]"
 * (@group NULL: PD_KPROBE_GROUP). */
void pd_kprobe_event(char *out, size_t len, const char *group, const char *func, bool ret);

/* The functions hooked at @detail (and below), in order; NULL-terminated, static. */
const char *const *pd_plan_candidates(enum pd_detail detail);
/* ... and with them the names the plan may also hook (PD_COPY_START_FUNC):
 * what traceable() is asked about; static, NULL-terminated */
const char *const *pd_plan_lookups(enum pd_detail detail);

#endif
