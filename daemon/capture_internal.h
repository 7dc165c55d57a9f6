/* SPDX-License-Identifier: MIT */
/*
 * The capture's state, shared by its files alone: capture.c (its life and
 * what it reports), capture_probe.c (what the kernel offers),
 * capture_setup.c (the mode chosen and set up), capture_read.c (the buffers
 * read, decoded and delivered). The daemon sees only capture.h.
 */
#ifndef PTESCOPED_CAPTURE_INTERNAL_H
#define PTESCOPED_CAPTURE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "callsite_live.h"
#include "capture.h"
#include "capture_plan.h"
#include "ksyms.h"
#include "log.h"
#include "merge.h"
#include "raw_decode.h"
#include "sysfork.h"
#include "tfs.h"
#include "util.h"

struct pd_btf;

#define MAX_FUNCS 24

struct cpu_buf {
	int cpu, fd;
	struct tracefs_cpu *tc;
	bool drained;
	uint64_t base_overrun, base_dropped, overrun, dropped, entries;
};

struct pd_capture {
	struct pd_capture_opts o;
	char group[64]; /* our kprobe events' group (the instance's, pd_tfs_kprobe_group) */
	enum pd_capture_mode mode;
	char reason[1024];
	char where[128];
	char functions[512];
	unsigned buffer_kb;  /* per CPU */
	bool buffer_capped; /* smaller than asked: --buffer-total-mb */
	struct pd_tfs *tfs;
	struct tep_handle *tep;
	struct pt_raw_decoder *dec;
	void *page;
	int subbuf_size;
	struct cpu_buf *cpus;
	int nr_cpus;
	struct pd_merge *merge; /* one queue per entry of cpus */
	bool *drained;		/* per entry of cpus: read empty this round */
	/* syscall event ids: enter, exit; -1 when absent */
	int sys_enter[4], sys_exit[4];
	struct tep_format_field *exit_ret[4];
	/* graph: traced functions and their addresses */
	const char *funcs[MAX_FUNCS];
	int nr_funcs;
	bool sched_switch; /* preemptions recorded (copy_resched, copy_offcpu_ns) */
	bool task_ctr;	    /* ... read from the task's counters instead (capture_plan.h) */
	bool ctr_tried;	    /* the last setup planned probes that read the counters */
	bool no_ctr;	    /* ... which the kernel refused: sched_switch instead */
	bool switch_window; /* ... only while a fork copies (capture_plan.h) */
	bool kprobes;	    /* hooked by kprobe events, no tracer (capture_plan.h) */
	/* the task counters' offsets from BTF (task_ok: known) */
	struct pd_task_offs task;
	bool task_ok;
	/* the pass probes inside copy_page_range (callsite_live.h) */
	enum pd_passes passes;
	char passes_why[512];
	struct pd_cs_found cs;
	bool cs_on_calls;	/* the probes moved back on their calls (the kernel refused) */
	struct pd_site_offs site;
	int64_t child_slack;	/* recon_opts.child_rss_slack */
	bool pass_sites;	/* armed in the running setup */
	bool site_child;	/* ... with the child's counters read for their check */
	struct pd_ksyms *ksyms;
	struct recon *recon;
	struct pd_sysfork *sysfork;
	int64_t clock_offset_ns;
	struct pd_capture_stats st;
	uint64_t stats_lost_seen; /* overrun+dropped already turned into a lost event */
	uint64_t base_missed;	  /* kprobes_missed() when reading began */
	uint64_t stats_read_ns;	  /* when the per-CPU stats files were last read */
	uint64_t stats_events;	  /* st.events then */
	uint64_t kprobes_read_ns; /* when kprobe_profile was last read */
	bool restored;
};

static const char *const sys_names[4] = {"clone", "clone3", "fork", "vfork"};

/* --log-level debug: how long a step of the setup took (the tracefs writes
 * are timed one by one, capture.c log_write). */
static inline void took(const char *what, uint64_t t0)
{
	pd_debug("%s took %.1f ms", what, (double)(pt_mono_ns() - t0) / 1e6);
}

/* capture_probe.c */
/* ftrace's traceable functions among @names into *@out (pd_ksyms_free). 0 or -errno with @err. */
int pd_cap_read_traceable(struct pd_tfs *t, const char *const *names, int nr,
			  struct pd_ksyms **out, char *err, size_t errlen);
/* The sched_switch prev_state bit of a preempted task; 0 when unknown. */
uint64_t pd_cap_preempt_mask(struct pd_capture *c);
/* The kernel's BTF into *@btf (pd_btf_free; NULL when unreadable), the task
 * counters' (c->task, c->task_ok) and pass checks' offsets read from it. */
void pd_cap_read_btf(struct pd_capture *c, struct pd_btf **btf);
/* The pass probes' plan in c->cs (c->passes PD_PASSES_PLANNED), or why not. */
void pd_cap_find_passes(struct pd_capture *c, const struct pd_btf *btf);
/* The planned pass probes moved onto their calls. */
void pd_cap_passes_on_calls(struct pd_capture *c);

/* capture_setup.c */
/* Sets up the requested mode, the reason in c->reason. 0 or -errno with @err;
 * tracefs is restored by the caller. */
int pd_cap_choose_mode(struct pd_capture *c, char *err, size_t errlen);

/* capture_read.c */
/* Once tracefs is set up: formats, buffers, the consumer, tracing on. 0 or -errno with @err. */
int pd_cap_begin_reading(struct pd_capture *c, char *err, size_t errlen);
/* Reads every CPU and hands on what is safe (@final: everything). 0 or -errno with @err. */
int pd_cap_read_all(struct pd_capture *c, bool final, char *err, size_t errlen);
/* The per-CPU stats files, and with @kprobes the kprobe misses, into c->st. */
void pd_cap_account_stats(struct pd_capture *c, bool kprobes);
/* Closes the per-CPU buffers (before our instance can be removed). */
void pd_cap_close_cpus(struct pd_capture *c);

#endif
