/* SPDX-License-Identifier: MIT */
/*
 * What the running kernel offers a capture, probed before tracefs is set
 * up: its traceable functions (available_filter_functions, with addresses
 * where listed), the sched_switch bit of a preempted task, the BTF offsets
 * the kprobe events read (the forking task's counters, the pass checks'
 * fields), and where the pass probes go in copy_page_range
 * (callsite_live.h). Fed by capture_setup.c, once per capture start.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "btf.h"
#include "formats.h"
#include "capture_internal.h"

/* ftrace's list of traceable functions, read once for @names: with their
 * addresses where the kernel lists them (6.5, available_filter_functions_addrs),
 * which spares reading /proc/kallsyms. 0 or -errno with @err. */
int pd_cap_read_traceable(struct pd_tfs *t, const char *const *names, int nr,
			  struct pd_ksyms **out, char *err, size_t errlen)
{
	char p[PATH_MAX];

	snprintf(p, sizeof(p), "%s/available_filter_functions_addrs", pd_tfs_dir(t));
	if (!access(p, R_OK) &&
	    !pd_ksyms_load(p, PD_KSYMS_FTRACE_ADDRS, names, nr, out, err, errlen))
		return 0;
	snprintf(p, sizeof(p), "%s/available_filter_functions", pd_tfs_dir(t));
	return pd_ksyms_load(p, PD_KSYMS_FTRACE, names, nr, out, err, errlen);
}

/* The sched_switch bit of a preempted task, from the kernel's own format. */
uint64_t pd_cap_preempt_mask(struct pd_capture *c)
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

/* @func's parameter @param, 1-based, where the kernel's BTF @b has it and it
 * is passed in a register (the first six); else 0. */
static int reg_param(const struct pd_btf *b, const char *func, const char *param)
{
	char err[128];
	int i = 0;

	return pd_btf_param(b, func, param, &i, err, sizeof(err)) || i > 6 ? 0 : i;
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
	bool rss = false;

	memset(o, 0, sizeof(*o));
	*slack = -1;
	if (!b)
		return;
	if ((o->cpr_src_arg = reg_param(b, "copy_page_range", "src_vma")))
		o->vma = !pd_btf_member(b, "vm_area_struct", "vm_start", &o->vm_start, &size, err,
					sizeof(err)) &&
			 size == 8 &&
			 !pd_btf_member(b, "vm_area_struct", "vm_end", &o->vm_end, &s2, err,
					sizeof(err)) &&
			 s2 == 8;
	if (!pd_btf_member(b, "mm_struct", "rss_stat.count", &off, &size, err, sizeof(err)) &&
	    size == 4 * 8) {
		for (int i = 0; i < 4; i++)
			o->rss[i] = off + 8 * (uint32_t)i;
		rss = true;
		*slack = 0;
	} else if (!pd_btf_member(b, "mm_struct", "rss_stat", &off, &size, err, sizeof(err)) &&
		   size % 4 == 0 &&
		   !pd_btf_member(b, "percpu_counter", "count", &count, &s2, err, sizeof(err)) &&
		   s2 == 8 && count + 8 <= size / 4) {
		int64_t batch = cpus * 2 > 32 ? cpus * 2 : 32;

		for (int i = 0; i < 4; i++)
			o->rss[i] = off + (uint32_t)i * (size / 4) + count;
		rss = cpus > 0;
		*slack = (batch - 1) * cpus;
	}
	/* where dup_mmap is a function of its own, its probe reads the task's
	 * counters (and the parent's memory) once a fork, not copy_page_range's
	 * once a VMA (capture_plan.c, ctr_args); where it is inlined,
	 * uprobe_dup_mmap's, which it calls once */
	o->dup_old_arg = reg_param(b, "dup_mmap", "oldmm");
	o->start_old_arg = reg_param(b, "uprobe_dup_mmap", "oldmm");
	if (rss && (o->dup_old_arg || o->start_old_arg) &&
	    !pd_btf_member(b, "mm_struct", "pgtables_bytes", &o->pgtables, &size, err,
			   sizeof(err)) &&
	    !pd_btf_member(b, "mm_struct", "map_count", &o->map_count, &s2, err, sizeof(err)))
		o->parent_mm = size == 8 && s2 == 4;
	if (!(o->wake_arg = reg_param(b, "wake_up_new_task", "p")) ||
	    pd_btf_member(b, "task_struct", "mm", &o->task_mm, &size, err, sizeof(err)) ||
	    size != sizeof(void *))
		*slack = -1;
	else
		o->child_rss = rss;
	if (!o->child_rss)
		*slack = -1;
}

/* Where the kernel keeps its BTF: the types the counter offsets come from. */
#define KERNEL_BTF "/sys/kernel/btf/vmlinux"

/* What fork detail by kprobes reads from BTF: the task counters' offsets
 * (logged when they cannot be had) and the pass checks' (pd_site_offs). */
void pd_cap_read_btf(struct pd_capture *c, struct pd_btf **btf)
{
	const char *path = c->o.kernel_btf ? c->o.kernel_btf : KERNEL_BTF;
	char why[256];
	uint64_t t0 = pt_mono_ns();

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
void pd_cap_passes_on_calls(struct pd_capture *c)
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
void pd_cap_find_passes(struct pd_capture *c, const struct pd_btf *btf)
{
	struct pd_cs_live_opts lo = {.btf = btf,
				     .cache_dir = c->o.cache_dir,
				     .instance = c->o.instance,
				     .group = c->group};
	uint64_t t0 = pt_mono_ns();
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
		pd_cap_passes_on_calls(c);
	pd_info("pass probes: copy_page_range+%#x (pass start) and +%#x (pass end), %s shape, "
		"%s",
		c->cs.plan.start_off, c->cs.plan.end_off,
		c->cs.plan.shape == PD_CS_SHAPE_LOCK2 ? "two-lock" : "map-and-lock",
		c->cs.cached ? "from the cache" : "read from the live code");
}
