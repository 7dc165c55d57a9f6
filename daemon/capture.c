/* SPDX-License-Identifier: MIT */
/*
 * Live capture: tracefs setup per mode, per-CPU raw buffer reading with
 * libtracefs + kbuffer, the time-ordered merge and decoding (capture.h has
 * the contract and the sizing; docs/architecture.md "Live capture" the
 * merge rule). Runs in the daemon's main thread, one poll per tick.
 */
#include "capture.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <traceevent/kbuffer.h>
#include <tracefs/tracefs.h>

#include "btf.h"
#include "callsite_live.h"
#include "capture_plan.h"
#include "formats.h"
#include "ksyms.h"
#include "log.h"
#include "merge.h"
#include "raw_decode.h"
#include "sysfork.h"
#include "tfs.h"

#define MAX_QUEUE (1u << 18) /* decoded events waiting per CPU */
#define SLACK_NS 5000000ull  /* how far behind "now" an empty CPU may still commit */
#define STATS_EVERY_NS 1000000000ull /* per-CPU stats files read at most this often */
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
	struct kbuffer *kbuf;
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
	bool restored;
};

static const char *const sys_names[4] = {"clone", "clone3", "fork", "vfork"};

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int64_t wall_minus_mono_ns(void)
{
	struct timespec r, m;

	clock_gettime(CLOCK_REALTIME, &r);
	clock_gettime(CLOCK_MONOTONIC, &m);
	return ((int64_t)r.tv_sec - (int64_t)m.tv_sec) * 1000000000ll +
	       ((int64_t)r.tv_nsec - (int64_t)m.tv_nsec);
}

/* --log-level debug: how long a step of the setup took (the tracefs writes
 * are timed one by one, log_write). */
static void took(const char *what, uint64_t t0)
{
	pd_debug("%s took %.1f ms", what, (double)(mono_ns() - t0) / 1e6);
}

/* ---------------------------------------------------------------- probes */

static bool word_in(const char *list, const char *word)
{
	size_t n = strlen(word);

	for (const char *p = list; (p = strstr(p, word)); p += n)
		if ((p == list || p[-1] == ' ' || p[-1] == '\n' || p[-1] == '[') &&
		    (!p[n] || p[n] == ' ' || p[n] == '\n' || p[n] == ']'))
			return true;
	return false;
}

/* ftrace's list of traceable functions, read once for @names: with their
 * addresses where the kernel lists them (6.5, available_filter_functions_addrs),
 * which spares reading /proc/kallsyms. 0 or -errno with @err. */
static int read_traceable(struct pd_tfs *t, const char *const *names, int nr, struct pd_ksyms **out,
			  char *err, size_t errlen)
{
	char p[PATH_MAX];

	snprintf(p, sizeof(p), "%s/available_filter_functions_addrs", pd_tfs_dir(t));
	if (!access(p, R_OK) &&
	    !pd_ksyms_load(p, PD_KSYMS_FTRACE_ADDRS, names, nr, out, err, errlen))
		return 0;
	snprintf(p, sizeof(p), "%s/available_filter_functions", pd_tfs_dir(t));
	return pd_ksyms_load(p, PD_KSYMS_FTRACE, names, nr, out, err, errlen);
}

/* ----------------------------------------------------------------- setup */

static int set(struct pd_capture *c, const char *rel, const char *v, char *err, size_t errlen)
{
	return pd_tfs_write(c->tfs, rel, v, err, errlen);
}

static unsigned default_buffer_kb(enum pd_capture_mode m, enum pd_detail d)
{
	if (m == PD_CAPTURE_SYSCALL)
		return 1024;
	return d == PD_DETAIL_PTE ? 32768 : d == PD_DETAIL_SECTION ? 8192 : 4096;
}

#define MIN_BUFFER_KB 128

/*
 * The ring buffer per CPU: --buffer-kb or the mode's default, within
 * --buffer-total-mb over every CPU's buffer. The kernel's buffers are not
 * the daemon's memory (no MemoryMax= counts them): 32 MiB per CPU at pte
 * detail on a 128-CPU host would pin 4 GiB.
 */
static unsigned buffer_kb_of(struct pd_capture *c, enum pd_capture_mode m)
{
	unsigned kb = c->o.buffer_kb ? c->o.buffer_kb : default_buffer_kb(m, c->o.detail);
	long cpus = sysconf(_SC_NPROCESSORS_CONF);
	uint64_t total = (uint64_t)c->o.buffer_total_mb * 1024, per;

	c->buffer_capped = false;
	if (!total || cpus <= 0 || (uint64_t)kb * (uint64_t)cpus <= total)
		return kb;
	per = total / (uint64_t)cpus;
	if (per < MIN_BUFFER_KB)
		per = MIN_BUFFER_KB;
	if (per >= kb)
		return kb;
	c->buffer_capped = true;
	pd_notice("ring buffers: %ld CPUs x %u KiB would pin %llu MiB of kernel memory; %llu KiB "
		  "per CPU instead (--buffer-total-mb %u)",
		  cpus, kb, (unsigned long long)kb * (unsigned long long)cpus / 1024,
		  (unsigned long long)per, c->o.buffer_total_mb);
	return (unsigned)per;
}

static int common_setup(struct pd_capture *c, char *err, size_t errlen)
{
	char v[32];
	int ret;

	if ((ret = set(c, "tracing_on", "0", err, errlen)))
		return ret;
	if ((ret = set(c, "trace_clock", "mono", err, errlen)))
		return ret;
	snprintf(v, sizeof(v), "%u", c->buffer_kb);
	if ((ret = set(c, "buffer_size_kb", v, err, errlen)))
		return ret;
	if (!c->o.watermark_pct || !pd_tfs_exists(c->tfs, "buffer_percent"))
		return 0;
	snprintf(v, sizeof(v), "%u", c->o.watermark_pct);
	return set(c, "buffer_percent", v, err, errlen);
}

struct avail {
	const char *const *names;
	struct pd_ksyms *list; /* from read_traceable */
};

static int avail_at(const struct avail *a, const char *name)
{
	for (int i = 0; a->names[i]; i++)
		if (!strcmp(a->names[i], name))
			return i;
	return -1;
}

static bool avail_has(void *ctx, const char *name)
{
	const struct avail *a = ctx;

	return pd_ksyms_count(a->list, avail_at(a, name)) > 0;
}

/* Its index in available_filter_functions when only one line has its name. */
static unsigned avail_index(void *ctx, const char *name)
{
	const struct avail *a = ctx;
	int i = avail_at(a, name);

	return pd_ksyms_count(a->list, i) == 1 ? pd_ksyms_line(a->list, i) : 0;
}

/* The sched_switch bit of a preempted task, from the kernel's own format. */
static uint64_t probe_preempt_mask(struct pd_capture *c)
{
	static const char *const events[] = {"sched/sched_switch", NULL};
	struct tep_handle *tep = NULL;
	uint64_t mask = 0;
	char err[256];

	if (!pd_formats_load(pd_tfs_dir(c->tfs), events, &tep, err, sizeof(err))) {
		mask = pt_raw_switch_preempt_mask(tep);
		tep_free(tep);
	}
	return mask;
}

/*
 * Where the forking task's scheduler counters are (capture_plan.h,
 * pd_task_offs), from the running kernel's BTF @b. 0, or -errno with the
 * reason in @err (a member or parameter this kernel does not have).
 */
static int task_offsets(const struct pd_btf *b, struct pd_task_offs *o, char *err, size_t errlen)
{
	const struct {
		const char *type, *path;
		uint32_t *off, *size;
		bool pointer;
	} m[] = {
	    {"vm_area_struct", "vm_mm", &o->vm_mm, NULL, true},
	    {"mm_struct", "owner", &o->owner, NULL, true},
	    {"task_struct", "real_parent", &o->real_parent, NULL, true},
	    {"task_struct", "nivcsw", &o->nivcsw, &o->nivcsw_size, false},
	    {"task_struct", "sched_info.pcount", &o->pcount, &o->pcount_size, false},
	    {"task_struct", "sched_info.run_delay", &o->run_delay, &o->run_delay_size, false},
	};
	uint32_t size;
	int ret = 0;

	for (size_t i = 0; !ret && i < sizeof(m) / sizeof(m[0]); i++) {
		ret = pd_btf_member(b, m[i].type, m[i].path, m[i].off, &size, err, errlen);
		if (!ret && (m[i].pointer ? size != sizeof(void *) : size != 4 && size != 8)) {
			snprintf(err, errlen, "%s.%s is %u bytes", m[i].type, m[i].path, size);
			ret = -EINVAL;
		}
		if (m[i].size)
			*m[i].size = size;
	}
	if (!ret)
		ret = pd_btf_param(b, "copy_page_range", "src_vma", &o->cpr_src_arg, err, errlen);
	if (!ret)
		ret = pd_btf_param(b, "wake_up_new_task", "p", &o->wake_arg, err, errlen);
	if (!ret && (o->cpr_src_arg > 6 || o->wake_arg > 6)) {
		snprintf(err, errlen, "a parameter past the sixth is not in a register");
		ret = -EINVAL;
	}
	return ret;
}

/*
 * What the pass probes' self-checks read beside them (capture_plan.h,
 * pd_site_offs), as far as @b tells, and how far the child's counters may be
 * off the passes' counts (recon.h, child_rss_slack): exact where the kernel
 * keeps them in atomics (mm_struct.rss_stat.count[4], up to 6.1), within a
 * per-CPU batch per CPU where they are percpu_counters (6.2 on: each CPU
 * folds its share into `count` once it reaches the batch, max(32, 2 x CPUs)).
 */
static void site_offsets(const struct pd_btf *b, struct pd_site_offs *o, int64_t *slack)
{
	uint32_t off, size, s2, count;
	char err[128];
	long cpus = sysconf(_SC_NPROCESSORS_CONF);

	memset(o, 0, sizeof(*o));
	*slack = -1;
	if (!b || pd_btf_param(b, "copy_page_range", "src_vma", &o->cpr_src_arg, err, sizeof(err)) ||
	    o->cpr_src_arg > 6)
		return;
	o->vma = !pd_btf_member(b, "vm_area_struct", "vm_start", &o->vm_start, &size, err,
				sizeof(err)) && size == 8 &&
		 !pd_btf_member(b, "vm_area_struct", "vm_end", &o->vm_end, &s2, err, sizeof(err)) &&
		 s2 == 8;
	if (pd_btf_param(b, "wake_up_new_task", "p", &o->wake_arg, err, sizeof(err)) ||
	    o->wake_arg > 6 ||
	    pd_btf_member(b, "task_struct", "mm", &o->task_mm, &size, err, sizeof(err)) ||
	    size != sizeof(void *))
		return;
	if (!pd_btf_member(b, "mm_struct", "rss_stat.count", &off, &size, err, sizeof(err)) &&
	    size == 4 * 8) {
		for (int i = 0; i < 4; i++)
			o->rss[i] = off + 8 * (uint32_t)i;
		o->child_rss = true;
		*slack = 0;
	} else if (!pd_btf_member(b, "mm_struct", "rss_stat", &off, &size, err, sizeof(err)) &&
		   size % 4 == 0 &&
		   !pd_btf_member(b, "percpu_counter", "count", &count, &s2, err, sizeof(err)) &&
		   s2 == 8 && count + 8 <= size / 4) {
		int64_t batch = cpus * 2 > 32 ? cpus * 2 : 32;

		for (int i = 0; i < 4; i++)
			o->rss[i] = off + (uint32_t)i * (size / 4) + count;
		o->child_rss = cpus > 0;
		*slack = (batch - 1) * cpus;
	}
}

/* Where the kernel keeps its BTF: the types the counter offsets come from. */
#define KERNEL_BTF "/sys/kernel/btf/vmlinux"

/* Plans and applies the graph setup: with indices, and again with names if
 * the kernel took the indices as other functions. */
static int plan_and_apply(struct pd_capture *c, struct pd_plan_in *in, struct pd_plan *plan,
			  char *err, size_t errlen)
{
	uint64_t t0 = mono_ns();
	int ret = pd_plan_graph(in, plan, err, errlen);

	if (!ret && (ret = pd_plan_apply(c->tfs, plan, err, errlen)) == -ESTALE) {
		pd_warn("%s: writing names instead", err);
		in->index = NULL;
		if (!(ret = pd_plan_graph(in, plan, err, errlen)))
			ret = pd_plan_apply(c->tfs, plan, err, errlen);
	}
	took("the graph setup's tracefs writes", t0);
	return ret;
}

/* The hooked functions' addresses: from ftrace's list if it had them, else kallsyms. */
static int load_ksyms(struct pd_capture *c, struct avail *av, char *err, size_t errlen)
{
	uint64_t t0 = mono_ns();
	int ret = 0;

	if (pd_ksyms_has_addrs(av->list)) {
		c->ksyms = av->list;
		av->list = NULL;
		return 0;
	}
	ret = pd_ksyms_load("/proc/kallsyms", PD_KSYMS_KALLSYMS, c->funcs, c->nr_funcs, &c->ksyms,
			    err, errlen);
	took("reading /proc/kallsyms", t0);
	return ret;
}

/* Graph mode at the current target. -ENOTSUP when the kernel cannot. */
static int setup_graph(struct pd_capture *c, char *err, size_t errlen)
{
	struct avail av = {.names = pd_plan_candidates(c->o.detail)};
	struct pd_plan_in in = {.detail = c->o.detail,
				.traceable = avail_has,
				.index = avail_index,
				.ctx = &av,
				.buffer_kb = c->buffer_kb,
				.pids = c->o.pids,
				.nr_pids = c->o.nr_pids,
				.kprobes = c->kprobes,
				.group = c->group,
				.instance = pd_tfs_instance(c->tfs) != NULL,
				.watermark_pct = pd_tfs_exists(c->tfs, "buffer_percent")
						     ? c->o.watermark_pct
						     : 0,
				.newtask = pd_tfs_exists(c->tfs, PD_NEWTASK_ENABLE)};
	struct pd_plan *plan = calloc(1, sizeof(*plan));
	char buf[4096];
	uint64_t t0 = mono_ns();
	int nr = 0, ret;

	c->ctr_tried = false;
	if (!plan)
		return -ENOMEM;
	while (av.names[nr])
		nr++;
	if ((ret = read_traceable(c->tfs, av.names, nr, &av.list, err, errlen))) {
		ret = ret == -ENOENT ? -ENOTSUP : ret;
		goto out;
	}
	took("reading available_filter_functions", t0);
	in.task = c->kprobes && c->task_ok && !c->no_ctr ? &c->task : NULL;
	c->ctr_tried = in.task != NULL;
	in.cs = c->kprobes && c->passes == PD_PASSES_PLANNED ? &c->cs.plan : NULL;
	in.site = &c->site;
	in.preempt_mask = c->o.no_preemptions || in.task ? 0 : probe_preempt_mask(c);
	if ((ret = plan_and_apply(c, &in, plan, err, errlen)))
		goto out;
	c->nr_funcs = plan->nr_funcs;
	c->functions[0] = 0;
	for (int i = 0; i < plan->nr_funcs; i++) {
		c->funcs[i] = plan->funcs[i];
		snprintf(c->functions + strlen(c->functions),
			 sizeof(c->functions) - strlen(c->functions), "%s%s", i ? "," : "",
			 plan->funcs[i]);
	}
	c->sched_switch = plan->sched_switch;
	c->switch_window = plan->switch_window;
	c->task_ctr = plan->task_ctr;
	c->pass_sites = plan->pass_sites;
	c->site_child = plan->site_child;
	/* check what the kernel took (kprobe events: their writes failed if not) */
	if (!c->kprobes && pd_tfs_read(c->tfs, "set_ftrace_filter", buf, sizeof(buf)) >= 0)
		for (int i = 0; i < c->nr_funcs; i++)
			if (!word_in(buf, c->funcs[i])) {
				snprintf(err, errlen, "set_ftrace_filter did not take %s",
					 c->funcs[i]);
				ret = -EINVAL;
				goto out;
			}
	ret = load_ksyms(c, &av, err, errlen);
out:
	pd_ksyms_free(av.list);
	free(plan);
	return ret;
}

static int setup_syscall(struct pd_capture *c, char *err, size_t errlen)
{
	char rel[128];
	int ret, any = 0;

	if ((ret = common_setup(c, err, errlen)))
		return ret;
	for (int i = 0; i < 4; i++) {
		const char *dir[2] = {"sys_enter_", "sys_exit_"};

		for (int k = 0; k < 2; k++) {
			snprintf(rel, sizeof(rel), "events/syscalls/%s%s/enable", dir[k],
				 sys_names[i]);
			if (!pd_tfs_exists(c->tfs, rel))
				continue;
			if ((ret = set(c, rel, "1", err, errlen)))
				return ret;
			any++;
		}
	}
	if (!any) {
		snprintf(err, errlen, "no clone-family syscall events (CONFIG_FTRACE_SYSCALLS)");
		return -ENOTSUP;
	}
	if (pd_tfs_exists(c->tfs, PD_NEWTASK_ENABLE) &&
	    (ret = set(c, PD_NEWTASK_ENABLE, "1", err, errlen)))
		return ret;
	return set(c, "events/sched/sched_process_fork/enable", "1", err, errlen);
}

static int open_instance(struct pd_capture *c, char *err, size_t errlen)
{
	int ret = pd_tfs_use_instance(c->tfs, c->o.instance, err, errlen);

	if (ret == -ENOENT || ret == -EOPNOTSUPP)
		ret = -ENOTSUP;
	return ret;
}

static bool instance_has_graph(struct pd_capture *c)
{
	char buf[512];

	return pd_tfs_read(c->tfs, "available_tracers", buf, sizeof(buf)) > 0 &&
	       word_in(buf, "function_graph") && pd_tfs_exists(c->tfs, "set_graph_function");
}

/* The top level, unless another tool uses it (--force takes it over). */
static int take_top(struct pd_capture *c, char *err, size_t errlen)
{
	char what[400];

	snprintf(c->where, sizeof(c->where), "top level");
	if (pd_tfs_check_top_free(c->tfs, what, sizeof(what)) && !c->o.force) {
		snprintf(err, errlen,
			 "tracefs top level is in use by another tool: %s (--force takes "
			 "it over, restoring it at exit)",
			 what);
		return -EBUSY;
	}
	return 0;
}

/* What fork detail by kprobes reads from BTF: the task counters' offsets
 * (logged when they cannot be had) and the pass checks' (pd_site_offs). */
static void read_btf(struct pd_capture *c, struct pd_btf **btf)
{
	const char *path = c->o.kernel_btf ? c->o.kernel_btf : KERNEL_BTF;
	char why[256];
	uint64_t t0 = mono_ns();

	c->task_ok = false;
	if (pd_btf_load(path, btf, why, sizeof(why)))
		*btf = NULL;
	else if (!c->o.no_preemptions)
		c->task_ok = !task_offsets(*btf, &c->task, why, sizeof(why));
	site_offsets(*btf, &c->site, &c->child_slack);
	took("reading the kernel's BTF", t0);
	if (!c->task_ok && !c->o.no_preemptions)
		pd_info("preemptions from sched_switch: the task's counters cannot be read (%s)",
			why);
}

/* The pass probes on their calls rather than before them (callsite.h). */
static void passes_on_calls(struct pd_capture *c)
{
	struct pd_cs_plan *p = &c->cs.plan;

	c->cs_on_calls = true;
	p->start_off = p->call_start_off;
	p->end_off = p->call_end_off;
	memcpy(p->start_args, p->call_start_args, sizeof(p->start_args));
	memcpy(p->end_args, p->call_end_args, sizeof(p->end_args));
}

/*
 * Where the pass probes go in this kernel's copy_page_range (callsite_live.h):
 * c->passes PD_PASSES_PLANNED with the plan in c->cs, or why not in
 * c->passes_why (logged: the fork detail then has no passes).
 */
static void find_passes(struct pd_capture *c, const struct pd_btf *btf)
{
	struct pd_cs_live_opts lo = {.btf = btf,
				     .cache_dir = c->o.cache_dir,
				     .instance = c->o.instance,
				     .group = c->group};
	uint64_t t0 = mono_ns();
	int ret;

	c->passes_why[0] = 0;
	if (c->o.pass_probes == PD_PASS_PROBES_OFF) {
		c->passes = PD_PASSES_OFF;
		snprintf(c->passes_why, sizeof(c->passes_why), "--pass-probes off");
		return;
	}
	ret = pd_cs_live_find(c->tfs, &lo, &c->cs, c->passes_why, sizeof(c->passes_why));
	took("finding copy_page_range's pass call sites", t0);
	if (ret) {
		c->passes = PD_PASSES_UNKNOWN;
		if (ret != -ENOTSUP && !c->passes_why[0])
			snprintf(c->passes_why, sizeof(c->passes_why), "%s", strerror(-ret));
		pd_warn("pass probes not armed: %s; the fork detail goes on without passes, PTEs "
			"and lock breaks (docs/kernels.md)",
			c->passes_why);
		return;
	}
	c->passes = PD_PASSES_PLANNED;
	if (c->o.pass_probes == PD_PASS_PROBES_CALLS)
		passes_on_calls(c);
	pd_info("pass probes: copy_page_range+%#x (pass start) and +%#x (pass end), %s shape, "
		"%s",
		c->cs.plan.start_off, c->cs.plan.end_off,
		c->cs.plan.shape == PD_CS_SHAPE_LOCK2 ? "two-lock" : "map-and-lock",
		c->cs.cached ? "from the cache" : "read from the live code");
}

/*
 * The top level's record-cmd off, before any instance of ours is made: an
 * instance takes the top level's flags when it is created and has no option
 * file of its own for this one; left on, enabling our events would have the
 * kernel save task names at every context switch.
 */
static int record_cmd_off(struct pd_capture *c, char *err, size_t errlen)
{
	int ret;

	if (!pd_tfs_exists(c->tfs, "options/record-cmd"))
		return 0;
	ret = pd_tfs_write(c->tfs, "options/record-cmd", "0", err, errlen);
	if (ret == -EBUSY) {
		/* another ptescoped has the top level: its record-cmd stays */
		pd_debug("record-cmd left as it is: %s", err);
		return 0;
	}
	return ret;
}

/*
 * Fork detail for every task is hooked with kprobe events where the kernel
 * has them (--fork-hooks auto or kprobe), enabled in our own instance: the
 * top level stays free for other tools (trace-cmd), and only the events'
 * definitions (kprobe_events) and record-cmd are the top level's. 1 when
 * kprobes were not tried, else setup_graph's result; tracefs is restored
 * after a failure. A failed setup is tried again (at most three times) when
 * events of our group were left by a run killed with its state file lost
 * (they are removed), when the kernel refused the pass probes (then without
 * them), and when it refused the probes that read the task's counters (then
 * without them: sched_switch).
 */
static int try_kprobes(struct pd_capture *c, char *err, size_t errlen)
{
	struct pd_btf *btf = NULL;
	bool leftovers = false;
	char msg[NAME_MAX + 48]; /* pd_tfs_group_in_use: "instances/NAME has them enabled" */
	int ret;

	if (c->o.detail != PD_DETAIL_FORK || c->o.nr_pids || c->o.fork_hooks == PD_HOOKS_GRAPH ||
	    (!pd_tfs_exists(c->tfs, "kprobe_events") && c->o.fork_hooks == PD_HOOKS_AUTO))
		return 1;
	if ((ret = pd_tfs_group_in_use(c->tfs, c->group, c->o.instance, c->o.force, msg,
				       sizeof(msg)))) {
		snprintf(err, errlen,
			 "the kprobe events of group %s (instance %s's) are in use: %s; another "
			 "tool enabled them, or a killed run left an instance (--force removes it)",
			 c->group, c->o.instance, msg);
		return ret;
	}
	c->kprobes = true;
	c->no_ctr = false;
	c->cs_on_calls = false;
	read_btf(c, &btf);
	if (!(ret = record_cmd_off(c, err, errlen)))
		find_passes(c, btf);
	pd_btf_free(btf);
	for (int attempt = 0; !ret && attempt < 4; attempt++) {
		if ((ret = record_cmd_off(c, err, errlen)) || (ret = open_instance(c, err, errlen)))
			break;
		snprintf(c->where, sizeof(c->where), "instances/%s", c->o.instance);
		if (!(ret = setup_graph(c, err, errlen))) {
			if (c->passes == PD_PASSES_PLANNED)
				c->passes = c->pass_sites ? PD_PASSES_ARMED : PD_PASSES_OFF;
			return 0;
		}
		pd_tfs_restore(c->tfs, msg, sizeof(msg));
		if (ret == -EEXIST && !leftovers) {
			/* our group's: its instance's lock is ours, so their run is dead */
			pd_tfs_remove_group(c->tfs, c->group);
			pd_warn("kprobe events: %s; removed the leftover %s events, trying again",
				err, c->group);
			leftovers = true;
		} else if (c->passes == PD_PASSES_PLANNED && !c->cs_on_calls &&
			   (c->cs.plan.start_off != c->cs.plan.call_start_off ||
			    c->cs.plan.end_off != c->cs.plan.call_end_off)) {
			/* where the kernel can optimize them, before the calls; on the
			 * calls themselves otherwise */
			pd_warn("pass probes before their calls: %s; placing them on the calls",
				err);
			passes_on_calls(c);
		} else if (c->passes == PD_PASSES_PLANNED) {
			c->passes = PD_PASSES_REFUSED;
			snprintf(c->passes_why, sizeof(c->passes_why), "the kernel refused them: %s",
				 err);
			pd_warn("pass probes: %s; the fork detail goes on without passes, PTEs and "
				"lock breaks",
				c->passes_why);
		} else if (c->ctr_tried && !c->no_ctr) {
			pd_warn("kprobe events that read the task's counters: %s; preemptions from "
				"sched_switch instead",
				err);
			c->no_ctr = true;
		} else {
			break;
		}
		ret = 0;
	}
	if (!ret)
		ret = -EINVAL;
	pd_tfs_restore(c->tfs, msg, sizeof(msg));
	c->kprobes = false;
	c->nr_funcs = 0;
	c->functions[0] = 0;
	return ret;
}

/* Graph mode: kprobes at fork detail (above), else function_graph in our
 * instance when the kernel allows it there, else at the top level. */
static int try_graph(struct pd_capture *c, char *err, size_t errlen)
{
	char buf[512], what[400];
	uint64_t t0;
	int ret = try_kprobes(c, err, errlen);

	if (ret <= 0 && (!ret || ret == -EBUSY || c->o.fork_hooks == PD_HOOKS_KPROBE))
		return ret;
	if (ret < 0)
		pd_warn("kprobe events: %s; hooking with function_graph", err);
	t0 = mono_ns();

	if (pd_tfs_read(c->tfs, "available_tracers", buf, sizeof(buf)) < 0 ||
	    !word_in(buf, "function_graph")) {
		snprintf(err, errlen,
			 "function_graph is not in available_tracers (kernel without "
				      "CONFIG_FUNCTION_GRAPH_TRACER)");
		return -ENOTSUP;
	}
	if (!open_instance(c, err, errlen)) {
		if (instance_has_graph(c)) {
			snprintf(c->where, sizeof(c->where), "instances/%s", c->o.instance);
			ret = setup_graph(c, err, errlen);
			if (!ret)
				return 0;
			if (ret != -EINVAL && ret != -ENOTSUP)
				return ret;
		}
		/* 6.1: instances cannot host function_graph */
		pd_tfs_restore(c->tfs, what, sizeof(what));
	}
	took("trying our instance", t0);
	if ((ret = take_top(c, err, errlen)))
		return ret;
	ret = setup_graph(c, err, errlen);
	if (ret == -EPERM || ret == -EACCES || ret == -EBUSY || ret == -ENODEV)
		snprintf(err + strlen(err), errlen - strlen(err),
			 " (function tracing is locked or not permitted)");
	return ret;
}

static int try_syscall(struct pd_capture *c, char *err, size_t errlen)
{
	int ret = open_instance(c, err, errlen);

	if (ret)
		return ret;
	snprintf(c->where, sizeof(c->where), "instances/%s", c->o.instance);
	return setup_syscall(c, err, errlen);
}

/* -------------------------------------------------------------- reading */

static int read_size_file(struct pd_capture *c, const char *rel)
{
	char buf[64];
	long v;

	if (pd_tfs_read(c->tfs, rel, buf, sizeof(buf)) <= 0)
		return -1;
	v = strtol(buf, NULL, 10);
	return v > 0 && v <= 1024 ? (int)v : -1;
}

static void read_cpu_stats(struct pd_capture *c, struct cpu_buf *b)
{
	char rel[64], buf[1024];
	const char *p;

	snprintf(rel, sizeof(rel), "per_cpu/cpu%d/stats", b->cpu);
	if (pd_tfs_read(c->tfs, rel, buf, sizeof(buf)) <= 0)
		return;
	if ((p = strstr(buf, "\noverrun:")))
		b->overrun = strtoull(p + 9, NULL, 10);
	if ((p = strstr(buf, "dropped events:")))
		b->dropped = strtoull(p + 15, NULL, 10);
	if (!strncmp(buf, "entries:", 8))
		b->entries = strtoull(buf + 8, NULL, 10);
}

static int open_cpus(struct pd_capture *c, char *err, size_t errlen)
{
	long n = sysconf(_SC_NPROCESSORS_CONF);
	int kb = read_size_file(c, "buffer_subbuf_size_kb");

	c->subbuf_size = kb > 0 ? kb * 1024 : getpagesize();
	if (n < 1 || n > 8192)
		n = 1;
	c->cpus = calloc((size_t)n, sizeof(*c->cpus));
	c->page = malloc((size_t)c->subbuf_size);
	if (!c->cpus || !c->page)
		return -ENOMEM;
	for (int cpu = 0; cpu < n; cpu++) {
		char rel[64], p[PATH_MAX];
		struct cpu_buf *b = &c->cpus[c->nr_cpus];
		int fd;

		snprintf(rel, sizeof(rel), "per_cpu/cpu%d/trace_pipe_raw", cpu);
		if (pd_tfs_path(c->tfs, rel, p, sizeof(p)))
			continue;
		fd = open(p, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
		if (fd < 0) {
			if (errno == ENOENT)
				continue; /* CPU not possible */
			snprintf(err, errlen, "cannot open %s: %s", p, strerror(errno));
			return -errno;
		}
		b->cpu = cpu;
		b->fd = fd;
		b->tc = tracefs_cpu_alloc_fd(fd, c->subbuf_size, true);
		if (!b->tc) {
			close(fd);
			snprintf(err, errlen, "libtracefs cannot read %s", p);
			return -ENOMEM;
		}
		c->nr_cpus++;
		read_cpu_stats(c, b);
		b->base_overrun = b->overrun;
		b->base_dropped = b->dropped;
	}
	if (!c->nr_cpus) {
		snprintf(err, errlen, "no per_cpu/cpuN/trace_pipe_raw under %s",
			 pd_tfs_dir(c->tfs));
		return -ENOENT;
	}
	c->st.cpus = c->nr_cpus;
	c->drained = calloc((size_t)c->nr_cpus, sizeof(*c->drained));
	if (!c->drained || pd_merge_new(c->nr_cpus, MAX_QUEUE, &c->merge))
		return -ENOMEM;
	return 0;
}

static int load_events(struct pd_capture *c, char *err, size_t errlen)
{
	/* only the events this mode reads: parsing every syscall format, or all
	 * of kallsyms as libtracefs does, took seconds at start (formats.h) */
	static const char *const graph[] = {"ftrace/funcgraph_entry", "ftrace/funcgraph_exit",
					    "sched/sched_process_fork", "sched/sched_switch",
					    "task/task_newtask", NULL};
	static const char *const sys[] = {"sched/sched_process_fork", "task/task_newtask",
					  "syscalls/sys_enter_clone",
					  "syscalls/sys_exit_clone",  "syscalls/sys_enter_clone3",
					  "syscalls/sys_exit_clone3", "syscalls/sys_enter_fork",
					  "syscalls/sys_exit_fork",   "syscalls/sys_enter_vfork",
					  "syscalls/sys_exit_vfork",  NULL};
	char kpn[2 * MAX_FUNCS + 2][96];
	const char *kp[2 * MAX_FUNCS + 6] = {"sched/sched_process_fork", "sched/sched_switch",
					     "task/task_newtask"};
	int ret, nkp = 3;

	for (int i = 0; c->kprobes && i < c->nr_funcs; i++) {
		pd_kprobe_event(kpn[2 * i], sizeof(kpn[0]), c->group, c->funcs[i], false);
		pd_kprobe_event(kpn[2 * i + 1], sizeof(kpn[0]), c->group, c->funcs[i], true);
		kp[nkp++] = kpn[2 * i];
		kp[nkp++] = kpn[2 * i + 1];
	}
	if (c->pass_sites) {
		snprintf(kpn[2 * MAX_FUNCS], sizeof(kpn[0]), "%s/" PT_RAW_PASS_START_EVENT,
			 c->group);
		snprintf(kpn[2 * MAX_FUNCS + 1], sizeof(kpn[0]), "%s/" PT_RAW_PASS_END_EVENT,
			 c->group);
		kp[nkp++] = kpn[2 * MAX_FUNCS];
		kp[nkp++] = kpn[2 * MAX_FUNCS + 1];
	}
	ret = pd_formats_load(pd_tfs_dir(c->tfs), c->mode == PD_CAPTURE_SYSCALL ? sys
						 : c->kprobes		     ? kp
									     : graph,
			      &c->tep, err, errlen);
	if (ret)
		return ret;
	if (pt_raw_decoder_new(c->tep, &c->dec) || !pt_raw_decoder_has_fork(c->dec) ||
	    (c->mode == PD_CAPTURE_GRAPH && !c->kprobes && !pt_raw_decoder_has_graph(c->dec))) {
		snprintf(err, errlen, "the event formats lack sched_process_fork%s",
			 c->mode == PD_CAPTURE_GRAPH ? " or funcgraph_entry/exit" : "");
		return -ENOTSUP;
	}
	if (c->kprobes && pt_raw_decoder_add_probes(c->dec, c->group) !=
			      2 * c->nr_funcs + (c->pass_sites ? 2 : 0)) {
		snprintf(err, errlen, "the formats of the %s kprobe events are not readable",
			 c->group);
		return -ENOTSUP;
	}
	for (int i = 0; i < 4; i++) {
		char name[32];
		struct tep_event *e;

		c->sys_enter[i] = c->sys_exit[i] = -1;
		if (c->mode != PD_CAPTURE_SYSCALL)
			continue;
		snprintf(name, sizeof(name), "sys_enter_%s", sys_names[i]);
		if ((e = tep_find_event_by_name(c->tep, "syscalls", name)))
			c->sys_enter[i] = e->id;
		snprintf(name, sizeof(name), "sys_exit_%s", sys_names[i]);
		if ((e = tep_find_event_by_name(c->tep, "syscalls", name)) &&
		    (c->exit_ret[i] = tep_find_field(e, "ret")))
			c->sys_exit[i] = e->id;
	}
	c->kbuf = kbuffer_alloc(sizeof(long) == 8 ? KBUFFER_LSIZE_8 : KBUFFER_LSIZE_4,
				KBUFFER_ENDIAN_LITTLE);
	if (!c->kbuf)
		return -ENOMEM;
	if (tep_is_file_bigendian(c->tep) || tep_is_local_bigendian(c->tep)) {
		kbuffer_free(c->kbuf);
		c->kbuf = kbuffer_alloc(sizeof(long) == 8 ? KBUFFER_LSIZE_8 : KBUFFER_LSIZE_4,
					KBUFFER_ENDIAN_BIG);
		if (!c->kbuf)
			return -ENOMEM;
	}
	return 0;
}

/* A clone-family syscall entry (1) or exit (2, its return value in @ret) of
 * syscall mode, or 0 for any other event. */
static int decode_sys(const struct pd_capture *c, struct tep_record *rec, int64_t *ret)
{
	int type = tep_data_type(c->tep, rec);

	for (int k = 0; k < 4; k++) {
		if (type == c->sys_enter[k])
			return 1;
		if (type == c->sys_exit[k]) {
			unsigned long long v = 0;
			struct tep_format_field *f = c->exit_ret[k];

			if (f->offset + f->size > rec->size ||
			    tep_read_number_field(f, rec->data, &v))
				return -1;
			*ret = f->size == 4 ? (int64_t)(int32_t)v : (int64_t)v;
			return 2;
		}
	}
	return 0;
}

/* Queues one record of queue @qi's CPU: 0, or -ENOSPC when its queue is full. */
static int queue_record(struct pd_capture *c, int qi, void *data, uint64_t ts)
{
	struct tep_record rec = {
	    .ts = ts, .cpu = c->cpus[qi].cpu, .data = data, .size = kbuffer_event_size(c->kbuf)};
	struct pt_raw_event raw;
	struct pd_qev *e;
	int64_t sret = 0;
	int sys = c->mode == PD_CAPTURE_SYSCALL ? decode_sys(c, &rec, &sret) : 0;

	if (sys < 0 || (!sys && pt_raw_decode(c->dec, data, rec.size, &raw) != 1))
		return 0;
	if (!(e = pd_merge_push(c->merge, qi, ts)))
		return -ENOSPC;
	if (sys) {
		e->kind = sys == 1 ? PD_Q_SYS_ENTER : PD_Q_SYS_EXIT;
		e->pid = tep_data_pid(c->tep, &rec);
		e->ret = sret;
	} else {
		e->kind = PD_Q_RAW;
		e->raw = raw;
	}
	c->st.events++;
	if (c->st.first_ts_ns == PT_NO_TIME)
		c->st.first_ts_ns = ts;
	return 0;
}

/* Decodes one sub-buffer of queue @qi's CPU into its queue. */
static int decode_page(struct pd_capture *c, int qi)
{
	unsigned long long ts;
	void *data;
	int missed, ret;
	struct pd_qev *e;

	if (kbuffer_load_subbuffer(c->kbuf, c->page))
		return 0;
	missed = kbuffer_missed_events(c->kbuf);
	data = kbuffer_read_event(c->kbuf, &ts);
	if (missed) {
		if (!(e = pd_merge_push(c->merge, qi, data ? ts : pd_merge_last_ts(c->merge, qi))))
			return -ENOSPC;
		e->kind = PD_Q_LOST;
		e->lost = missed > 0 ? (uint64_t)missed : 0;
		if (missed < 0)
			c->st.lost_unknown = true;
	}
	for (; data; data = kbuffer_next_event(c->kbuf, &ts))
		if ((ret = queue_record(c, qi, data, ts)))
			return ret;
	return 0;
}

static int deliver(const struct pd_qev *q, int qi, void *ctx)
{
	struct pd_capture *c = ctx;
	int cpu = qi >= 0 ? c->cpus[qi].cpu : -1;
	struct pt_event ev;

	if (q->ts > c->st.last_ts_ns || c->st.last_ts_ns == PT_NO_TIME)
		c->st.last_ts_ns = q->ts;
	if (c->mode == PD_CAPTURE_SYSCALL) {
		switch (q->kind) {
		case PD_Q_SYS_ENTER:
			return pd_sysfork_enter(c->sysfork, q->pid, q->ts);
		case PD_Q_SYS_EXIT:
			return pd_sysfork_exit(c->sysfork, q->pid, q->ret, q->ts);
		case PD_Q_LOST:
			pd_sysfork_lost(c->sysfork);
			return 0;
		default:
			if (q->raw.type == PT_EV_NEWTASK)
				return pd_sysfork_newtask(c->sysfork, q->raw.pid, q->raw.child_pid,
							  q->raw.clone_flags);
			if (q->raw.type != PT_EV_FORK)
				return 0;
			return pd_sysfork_fork(c->sysfork, q->raw.pid, q->raw.parent_comm,
					       q->raw.child_pid, q->raw.child_comm, q->ts);
		}
	}
	if (q->kind == PD_Q_LOST) {
		pt_event_init(&ev, PT_EV_LOST);
		ev.cpu = cpu;
		ev.ts_ns = q->ts;
		ev.lost = q->lost;
		return recon_feed(&ev, c->recon);
	}
	/* the same record-to-event conversion as trace.dat replay */
	if (q->kind != PD_Q_RAW || pt_raw_to_event(&q->raw, cpu, q->ts, &ev))
		return 0;
	if (ev.type == PT_EV_ENTRY || ev.type == PT_EV_EXIT)
		ev.func = pd_ksyms_name(c->ksyms, q->raw.func, &ev.func_id);
	return recon_feed(&ev, c->recon);
}

/* Reads queue @qi's CPU until it is empty or its queue nearly full. 0 or -errno. */
static int read_cpu(struct pd_capture *c, int qi, char *err, size_t errlen)
{
	struct cpu_buf *b = &c->cpus[qi];
	int ret;

	b->drained = false;
	while (pd_merge_len(c->merge, qi) + (size_t)c->subbuf_size / 8 <= MAX_QUEUE) {
		int n = tracefs_cpu_read(b->tc, c->page, true);

		if (n <= 0) {
			if (n < 0 && errno != EAGAIN && errno != EINTR && errno != EWOULDBLOCK &&
			    errno != ENODATA) {
				snprintf(err, errlen, "reading CPU %d: %s", b->cpu,
					 strerror(errno));
				return -errno;
			}
			b->drained = true;
			return 0;
		}
		if ((ret = decode_page(c, qi))) {
			snprintf(err, errlen, "CPU %d: event queue full", b->cpu);
			return ret;
		}
	}
	return 0;
}

/* Reads every CPU (bounded) and merges out what is safe; @final: everything. */
static int read_all(struct pd_capture *c, bool final, char *err, size_t errlen)
{
	uint64_t now = mono_ns();
	bool *drained = c->drained;
	int ret;

	for (int round = 0; round < 64; round++) {
		bool all_drained = true;

		for (int i = 0; i < c->nr_cpus; i++) {
			if ((ret = read_cpu(c, i, err, errlen)))
				return ret;
			drained[i] = c->cpus[i].drained;
			all_drained &= drained[i];
		}
		ret = pd_merge_out(c->merge,
				   pd_merge_safe_upto(c->merge, drained, now, SLACK_NS, final),
				   deliver, c);
		if (ret) {
			snprintf(err, errlen, "handing over forks: %s", strerror(-ret));
			return ret;
		}
		if (all_drained)
			break;
	}
	return 0;
}

/* Calls our kprobe events could not record (kprobe_profile's third column:
 * a return probe out of instances, a probe hit inside another), summed. */
static uint64_t kprobes_missed(struct pd_capture *c)
{
	char buf[4096], name[128];
	unsigned long long hits, missed, sum = 0;
	const char *p = buf;
	int n;

	if (!c->kprobes || pd_tfs_read(c->tfs, "kprobe_profile", buf, sizeof(buf)) <= 0)
		return 0;
	while (sscanf(p, "%127s %llu %llu%n", name, &hits, &missed, &n) == 3) {
		if (!strncmp(name, c->group, strlen(c->group)) && name[strlen(c->group)] == '/')
			sum += missed;
		p += n;
	}
	return sum;
}

static void account_stats(struct pd_capture *c)
{
	uint64_t over = 0, drop = 0;

	for (int i = 0; i < c->nr_cpus; i++) {
		read_cpu_stats(c, &c->cpus[i]);
		over += c->cpus[i].overrun - c->cpus[i].base_overrun;
		drop += c->cpus[i].dropped - c->cpus[i].base_dropped;
	}
	c->st.overrun = over;
	c->st.dropped = drop;
	c->st.kprobe_missed = kprobes_missed(c) - c->base_missed;
	c->st.lost = over + drop + c->st.kprobe_missed;
}

int pd_capture_poll(struct pd_capture *c, char *err, size_t errlen)
{
	int ret = read_all(c, false, err, errlen);
	uint64_t now = mono_ns();

	if (ret)
		return ret;
	/* the stats files cost more to read than an idle buffer: once a second
	 * (a sub-buffer's own missed-events mark flags losses at once), and only
	 * after events were read: the kernel loses events (overrun, dropped,
	 * kprobe misses) only while recording them, and what it records we
	 * read. Their printing was over half of an idle daemon's CPU */
	if (now - c->stats_read_ns < STATS_EVERY_NS || c->st.events == c->stats_events)
		return 0;
	c->stats_read_ns = now;
	c->stats_events = c->st.events;
	account_stats(c);
	if (c->st.lost > c->stats_lost_seen) {
		/* the stats files saw losses: forks in flight cannot be whole */
		struct pd_qev q = {.ts = c->st.last_ts_ns,
				   .kind = PD_Q_LOST,
				.lost = c->st.lost - c->stats_lost_seen};

		c->stats_lost_seen = c->st.lost;
		if ((ret = deliver(&q, -1, c))) {
			snprintf(err, errlen, "handing over forks: %s", strerror(-ret));
			return ret;
		}
	}
	return 0;
}

/* ------------------------------------------------------------- lifecycle */

static int count_fork(const struct pt_fork *f, void *ctx)
{
	struct pd_capture *c = ctx;

	c->st.forks++;
	return c->o.on_fork(f, c->o.ctx);
}

static pt_caps graph_caps(const struct pd_capture *c)
{
	pt_caps caps = PT_CAP_TIMES | PT_CAP_FORK_EVENT;

	for (int i = 0; i < c->nr_funcs; i++)
		caps |= PT_CAP(pt_role_of(c->funcs[i]));
	if (c->sched_switch)
		caps |= PT_CAP_SWITCH;
	if (c->switch_window)
		caps |= PT_CAP_SWITCH_WINDOW;
	if (c->task_ctr)
		caps |= PT_CAP_TASK_CTR;
	if (c->pass_sites)
		caps |= PT_CAP_PASS_SITES;
	return caps & ~PT_CAP(PT_ROLE_OTHER);
}

/* An instance cannot be removed while its buffers are open: close them first. */
static void close_cpus(struct pd_capture *c)
{
	for (int i = 0; i < c->nr_cpus; i++) {
		if (c->cpus[i].tc)
			tracefs_cpu_free_fd(c->cpus[i].tc);
		if (c->cpus[i].fd >= 0)
			close(c->cpus[i].fd);
		c->cpus[i].tc = NULL;
		c->cpus[i].fd = -1;
	}
}

static void free_capture(struct pd_capture *c)
{
	close_cpus(c);
	pd_merge_free(c->merge);
	pd_ksyms_free(c->ksyms);
	free(c->drained);
	free(c->cpus);
	free(c->page);
	if (c->kbuf)
		kbuffer_free(c->kbuf);
	pt_raw_decoder_free(c->dec);
	if (c->tep)
		tep_free(c->tep);
	recon_free(c->recon);
	pd_sysfork_free(c->sysfork);
	pd_tfs_free(c->tfs);
	free(c);
}

void pd_capture_abort(struct pd_capture *c)
{
	char err[512];

	if (!c || c->restored)
		return;
	c->restored = true;
	close_cpus(c);
	if (!pd_tfs_dirty(c->tfs))
		return;
	pd_tfs_write(c->tfs, "tracing_on", "0", err, sizeof(err));
	pd_tfs_restore(c->tfs, err, sizeof(err));
}

/* --log-level debug shows every tracefs write, in order, with what it took
 * (a write that makes ftrace update the kernel's code takes far longer). */
static void log_write(void *ctx, const char *rel, const char *value, bool append, int result,
		      uint64_t ns)
{
	(void)ctx;
	pd_debug("tracefs: %s %s '%.*s'%s%s (%.1f ms)", append ? "append" : "write", rel,
		 (int)strcspn(value, "\n"), value, result ? ": " : "",
		 result ? strerror(-result) : "", (double)ns / 1e6);
}

/* Sets up the requested mode (auto: graph, else syscall) and says why in
 * c->reason. 0 or -errno with @err; tracefs is restored by the caller. */
static int choose_mode(struct pd_capture *c, char *err, size_t errlen)
{
	const struct pd_capture_opts *o = &c->o;
	bool is_auto = o->mode == PD_CAPTURE_AUTO;
	char why[512] = "", msg[512];
	size_t n = strlen(c->reason);
	int ret;

	if (o->mode == PD_CAPTURE_GRAPH || is_auto) {
		c->mode = PD_CAPTURE_GRAPH;
		c->buffer_kb = buffer_kb_of(c, c->mode);
		if (!(ret = try_graph(c, why, sizeof(why)))) {
			snprintf(c->reason + n, sizeof(c->reason) - n,
				 "%s: %s at %s (%s)", is_auto ? "auto chose graph" : "graph requested",
				 c->kprobes ? "kprobes on the fork path" : "function_graph rooted",
				 c->funcs[0], c->where);
			return 0;
		}
		pd_tfs_restore(c->tfs, msg, sizeof(msg));
		if (!is_auto) {
			snprintf(err, errlen, "graph capture: %s", why);
			return ret;
		}
		c->nr_funcs = 0;
		pd_ksyms_free(c->ksyms);
		c->ksyms = NULL;
		c->functions[0] = 0;
	}
	c->mode = PD_CAPTURE_SYSCALL;
	c->buffer_kb = buffer_kb_of(c, c->mode);
	if ((ret = try_syscall(c, msg, sizeof(msg)))) {
		if (is_auto)
			snprintf(err, errlen, "no capture mode works: graph: %s; syscall: %s", why,
				 msg);
		else
			snprintf(err, errlen, "syscall capture: %s", msg);
		return ret;
	}
	snprintf(c->reason + n, sizeof(c->reason) - n, "%s%s",
		 is_auto ? "auto chose syscall: graph unavailable: " : "syscall requested",
		 is_auto ? why : "");
	return 0;
}

/* Once tracefs is set up: formats, buffers, the consumer, a clean buffer,
 * tracing on. 0 or -errno with @err. */
static int begin_reading(struct pd_capture *c, char *err, size_t errlen)
{
	uint64_t t0 = mono_ns();
	int ret;

	c->clock_offset_ns = wall_minus_mono_ns();
	if ((ret = load_events(c, err, errlen)) || (ret = open_cpus(c, err, errlen)))
		return ret;
	took("loading event formats and opening the per-CPU buffers", t0);
	if (c->mode == PD_CAPTURE_GRAPH) {
		struct recon_opts ro = {.on_fork = count_fork,
					.ctx = c,
					.caps_known = true,
					.caps = graph_caps(c),
					.child_rss_slack = c->site_child ? c->child_slack : -1};

		ret = recon_new(&ro, &c->recon);
	} else {
		ret = pd_sysfork_new(count_fork, c, mono_ns(), 1000000000ull, &c->sysfork);
	}
	if (ret) {
		snprintf(err, errlen, "out of memory");
		return ret;
	}
	/* start clean: what an earlier run left in our buffer is not ours to count */
	if ((ret = pd_tfs_write(c->tfs, "trace", "", err, errlen)))
		return ret;
	c->base_missed = kprobes_missed(c);
	for (int i = 0; i < c->nr_cpus; i++) {
		read_cpu_stats(c, &c->cpus[i]);
		c->cpus[i].base_overrun = c->cpus[i].overrun;
		c->cpus[i].base_dropped = c->cpus[i].dropped;
	}
	return pd_tfs_write(c->tfs, "tracing_on", "1", err, errlen);
}

int pd_capture_start(const struct pd_capture_opts *o, struct pd_capture **out, char *err,
		     size_t errlen)
{
	struct pd_capture *c = calloc(1, sizeof(*c));
	uint64_t t0 = mono_ns();
	const char *dir;
	char msg[512];
	int ret;

	err[0] = 0;
	if (!c)
		return -ENOMEM;
	c->o = *o;
	c->st.first_ts_ns = c->st.last_ts_ns = PT_NO_TIME;
	dir = o->tracefs ? o->tracefs : tracefs_tracing_dir();
	if (!dir || access(dir, F_OK)) {
		snprintf(err, errlen,
			 "no tracefs mounted%s%s (mount -t tracefs nodev "
				      "/sys/kernel/tracing)",
			 o->tracefs ? " at " : "", o->tracefs ? o->tracefs : "");
		free(c);
		return -ENOTSUP;
	}
	if ((ret = pd_tfs_kprobe_group(o->instance, c->group, sizeof(c->group))) ||
	    (ret = pd_tfs_new(dir, o->state_file, &c->tfs))) {
		snprintf(err, errlen, "cannot use tracefs at %s: %s", dir, strerror(-ret));
		free(c);
		return ret;
	}
	pd_tfs_set_lock_dir(c->tfs, o->lock_dir);
	pd_tfs_set_observer(c->tfs, log_write, NULL);
	ret = pd_tfs_repair(c->tfs, o->instance, msg, sizeof(msg));
	if (ret < 0) {
		snprintf(err, errlen, "%s", msg);
		goto fail;
	}
	if (msg[0])
		snprintf(c->reason, sizeof(c->reason), "%s; ", msg); /* main logs it */
	if ((ret = choose_mode(c, err, errlen)) || (ret = begin_reading(c, err, errlen)))
		goto fail;
	took("starting the capture", t0);
	*out = c;
	return 0;
fail:
	pd_capture_abort(c);
	free_capture(c);
	return ret < 0 ? ret : -EINVAL;
}

int pd_capture_stop(struct pd_capture *c, char *err, size_t errlen)
{
	char msg[512];
	int ret = 0, r;

	if (!c)
		return 0;
	if (!c->restored) {
		pd_tfs_write(c->tfs, "tracing_on", "0", msg, sizeof(msg));
		ret = read_all(c, true, err, errlen);
		account_stats(c);
	}
	r = c->recon ? recon_finish(c->recon) : c->sysfork ? pd_sysfork_finish(c->sysfork) : 0;
	if (r && !ret) {
		ret = r;
		snprintf(err, errlen, "handing over the last forks: %s", strerror(-r));
	}
	if (!c->restored) {
		uint64_t t0 = mono_ns();

		close_cpus(c);
		r = pd_tfs_restore(c->tfs, msg, sizeof(msg));
		took("restoring tracefs", t0);
		if (r && !ret) {
			ret = r;
			snprintf(err, errlen, "%s", msg);
		}
		c->restored = true;
	}
	free_capture(c);
	return ret;
}

int pd_capture_check(struct pd_capture *c, char *why, size_t len)
{
	char buf[64], rel[128];

	if (c->restored)
		return 0;
	if (pd_tfs_read(c->tfs, "tracing_on", buf, sizeof(buf)) <= 0 || buf[0] != '1') {
		snprintf(why, len, "%s/tracing_on is %s", c->where,
			 pd_tfs_exists(c->tfs, "tracing_on") ? "not 1" : "gone (the instance too)");
		return -ESTALE;
	}
	if (c->kprobes)
		snprintf(rel, sizeof(rel), "events/%s/enable", c->group);
	else if (c->mode == PD_CAPTURE_GRAPH)
		snprintf(rel, sizeof(rel), "current_tracer");
	else
		snprintf(rel, sizeof(rel), "events/sched/sched_process_fork/enable");
	if (pd_tfs_read(c->tfs, rel, buf, sizeof(buf)) <= 0 ||
	    (c->kprobes || c->mode != PD_CAPTURE_GRAPH
		 ? buf[0] != '1'
		 : strncmp(buf, "function_graph", 14))) {
		snprintf(why, len, "%s/%s is %s", c->where, rel,
			 pd_tfs_exists(c->tfs, rel) ? "not ours any more" : "gone");
		return -ESTALE;
	}
	return 0;
}

int pd_capture_fds(const struct pd_capture *c, int *fds, int max)
{
	int n = 0;

	for (int i = 0; i < c->nr_cpus && n < max; i++)
		if (c->cpus[i].fd >= 0)
			fds[n++] = c->cpus[i].fd;
	return n;
}

enum pd_capture_mode pd_capture_mode(const struct pd_capture *c)
{
	return c->mode;
}

const char *pd_capture_reason(const struct pd_capture *c)
{
	return c->reason;
}

const char *pd_capture_hooks(const struct pd_capture *c)
{
	return c->mode != PD_CAPTURE_GRAPH ? "" : c->kprobes ? "kprobes" : "function_graph";
}

const char *pd_capture_where(const struct pd_capture *c)
{
	return c->where;
}

const char *pd_capture_functions(const struct pd_capture *c)
{
	return c->functions;
}

void pd_capture_passes(const struct pd_capture *c, struct pd_passes_info *out)
{
	*out = (struct pd_passes_info){.state = c->passes, .why = c->passes_why};
	if (c->passes != PD_PASSES_ARMED)
		return;
	out->plan = &c->cs.plan;
	out->build_id = c->cs.build_id;
	out->cached = c->cs.cached;
	out->read_ms = c->cs.read_ms;
	out->child_check = !c->site_child ? "off" : c->child_slack ? "approximate" : "exact";
	out->before_calls = (c->cs.plan.start_off != c->cs.plan.call_start_off) +
			    (c->cs.plan.end_off != c->cs.plan.call_end_off);
}

const char *pd_capture_pass_mismatch(const struct pd_capture *c)
{
	return c->recon ? recon_pass_mismatch(c->recon) : NULL;
}

const char *pd_capture_preemptions(const struct pd_capture *c)
{
	return c->task_ctr ? "task_counters" : c->sched_switch ? "sched_switch" : NULL;
}

unsigned pd_capture_buffer_kb(const struct pd_capture *c, bool *capped)
{
	if (capped)
		*capped = c->buffer_capped;
	return c->buffer_kb;
}

int64_t pd_capture_clock_offset_ns(const struct pd_capture *c)
{
	return c->clock_offset_ns;
}

void pd_capture_get_stats(const struct pd_capture *c, struct pd_capture_stats *st)
{
	*st = c->st;
}

int pd_capture_cpu_stats(const struct pd_capture *c, struct pd_cpu_stat *out, int max)
{
	for (int i = 0; i < c->nr_cpus && i < max; i++) {
		const struct cpu_buf *b = &c->cpus[i];

		out[i] = (struct pd_cpu_stat){.cpu = b->cpu,
					      .overrun = b->overrun - b->base_overrun,
					      .dropped = b->dropped - b->base_dropped,
					      .entries = b->entries};
	}
	return c->nr_cpus;
}
