/* SPDX-License-Identifier: MIT */
/*
 * A capture's mode chosen and tracefs set up for it (capture_plan.h plans
 * the graph writes, tfs.h makes them): graph by kprobe events in our
 * instance at fork detail, else function_graph in our instance or at the
 * top level, else syscall mode; each try restored after a failure, the
 * kprobe setup tried again without what the kernel refused. The reason for
 * the choice goes in c->reason. Once per capture start, main thread.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "btf.h"
#include "capture_internal.h"

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

static bool word_in(const char *list, const char *word)
{
	size_t n = strlen(word);

	for (const char *p = list; (p = strstr(p, word)); p += n)
		if ((p == list || p[-1] == ' ' || p[-1] == '\n' || p[-1] == '[') &&
		    (!p[n] || p[n] == ' ' || p[n] == '\n' || p[n] == ']'))
			return true;
	return false;
}

/* Plans and applies the graph setup: with indices, and again with names if
 * the kernel took the indices as other functions. */
static int plan_and_apply(struct pd_capture *c, struct pd_plan_in *in, struct pd_plan *plan,
			  char *err, size_t errlen)
{
	uint64_t t0 = pt_mono_ns();
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
	uint64_t t0 = pt_mono_ns();
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
	struct avail av = {.names = pd_plan_lookups(c->o.detail)};
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
	uint64_t t0 = pt_mono_ns();
	int nr = 0, ret;

	c->ctr_tried = false;
	if (!plan)
		return -ENOMEM;
	while (av.names[nr])
		nr++;
	if ((ret = pd_cap_read_traceable(c->tfs, av.names, nr, &av.list, err, errlen))) {
		ret = ret == -ENOENT ? -ENOTSUP : ret;
		goto out;
	}
	took("reading available_filter_functions", t0);
	in.task = c->kprobes && c->task_ok && !c->no_ctr ? &c->task : NULL;
	c->ctr_tried = in.task != NULL;
	in.cs = c->kprobes && c->passes == PD_PASSES_PLANNED ? &c->cs.plan : NULL;
	in.site = &c->site;
	in.preempt_mask = c->o.no_preemptions || in.task ? 0 : pd_cap_preempt_mask(c);
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
	pd_cap_read_btf(c, &btf);
	if (!(ret = record_cmd_off(c, err, errlen)))
		pd_cap_find_passes(c, btf);
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
			pd_cap_passes_on_calls(c);
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
	t0 = pt_mono_ns();

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

/* Sets up the requested mode (auto: graph, else syscall) and says why in
 * c->reason. 0 or -errno with @err; tracefs is restored by the caller. */
int pd_cap_choose_mode(struct pd_capture *c, char *err, size_t errlen)
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
