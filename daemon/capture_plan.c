/* SPDX-License-Identifier: MIT */
/*
 * Graph capture's tracefs setup as a plan of writes (capture_plan.h): which
 * functions each detail level hooks, and in what order the files are
 * written. Fed by capture_probe.c's probes of the running kernel; feeds
 * pd_plan_apply() (capture_setup.c) and the fake-tracefs order test.
 *
 * The default level, fork, hooks only functions that run on the fork path
 * and nowhere else, so the rest of the kernel never enters the tracer:
 * kernel_clone, copy_process, dup_mmap, copy_page_range (and copy_pte_range
 * where the kernel does not inline it). How often the forking task was
 * preempted while copying page tables comes from the task's own scheduler
 * counters (nivcsw, sched_info.pcount and run_delay), which the entry probes
 * of dup_mmap (of copy_page_range, once a VMA, where dup_mmap is inlined) and
 * wake_up_new_task fetch at offsets read from the kernel's BTF (struct
 * pd_task_offs). Only where the BTF cannot be read, and
 * in investigations, does the sched_switch tracepoint, filtered in the kernel
 * to preemptions, give them instead; at fork detail that event is then armed
 * only while a fork copies page tables: two function probes in
 * set_ftrace_filter turn it on at copy_page_range's entry and off at
 * wake_up_new_task (right after copy_process), so between forks a context
 * switch pays only the event's soft-disabled check, not the building and
 * filtering of an event (PD_SWITCH_ARM/DISARM). The deeper levels add
 * hot global functions (spinlocks, cond_resched, vm_normal_page), which every
 * task in the kernel then pays for: they are for bounded investigations
 * (docs/operations.md, "What it costs"). Only functions the running kernel
 * can trace and needs are hooked: on an rt kernel the PTE locks are
 * rt_spin_lock, and _raw_spin_lock is left alone (docs/kernels.md).
 */
#include "capture_plan.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "raw_decode.h"
#include "roles.h"
#include "tfs.h"

/* @detail as the analyzer's level (enum pt_detail), an index of three */
static int level_of(enum pd_detail detail)
{
	return detail == PD_DETAIL_PTE ? 2 : detail == PD_DETAIL_SECTION ? 1 : 0;
}

const char *const *pd_plan_candidates(enum pd_detail detail)
{
	static const char *all[3][PD_PLAN_MAX_FUNCS + 1];
	int lvl = level_of(detail);

	/* the analyzer's role table says which functions each level hooks */
	if (!all[lvl][0])
		pt_role_names((enum pt_detail)lvl, all[lvl], PD_PLAN_MAX_FUNCS);
	return all[lvl];
}

const char *const *pd_plan_lookups(enum pd_detail detail)
{
	static const char *all[3][PD_PLAN_MAX_FUNCS + 2];
	int lvl = level_of(detail), n = 0;

	if (!all[lvl][0]) {
		for (const char *const *c = pd_plan_candidates(detail); *c; c++)
			all[lvl][n++] = *c;
		all[lvl][n] = PD_COPY_START_FUNC;
	}
	return all[lvl];
}

static int add(struct pd_plan *p, const char *rel, const char *value, bool append)
{
	struct pd_tfs_step *s;

	if (p->nr == PD_PLAN_MAX_STEPS)
		return -E2BIG;
	s = &p->step[p->nr++];
	s->append = append;
	/* a cut path or value would be another write than planned */
	if ((size_t)snprintf(s->rel, sizeof(s->rel), "%s", rel) >= sizeof(s->rel))
		return -E2BIG;
	return (size_t)snprintf(s->value, sizeof(s->value), "%s", value) < sizeof(s->value)
		   ? 0
		   : -E2BIG;
}

/* @name (with @cmd after it: a function probe) for set_ftrace_filter: by its
 * index when known and @by_index (capture_plan.h), else by name. Whether an
 * index was used. */
static bool add_func(const struct pd_plan_in *in, bool by_index, struct pd_plan *p,
		     const char *name, const char *cmd, int *ret)
{
	unsigned idx = by_index && in->index ? in->index(in->ctx, name) : 0;
	char v[96];

	if (idx)
		snprintf(v, sizeof(v), "%u%s", idx, cmd);
	else
		snprintf(v, sizeof(v), "%s%s", name, cmd);
	*ret |= add(p, "set_ftrace_filter", v, true);
	return idx != 0;
}

/* @name is needed on this kernel: traceable, and not made unneeded by another
 * traceable function (roles.h, pt_role_superseded_by: rt kernels' locks). */
static bool needed(const struct pd_plan_in *in, const char *name)
{
	const char *by = pt_role_superseded_by(name);

	return in->traceable(in->ctx, name) && !(by && in->traceable(in->ctx, by));
}

/* The functions to hook: the first traceable root, then every needed one of the level. */
static int choose_funcs(const struct pd_plan_in *in, struct pd_plan *p, char *err, size_t errlen)
{
	const char *const *cand = pd_plan_candidates(in->detail);

	p->nr_funcs = 0;
	for (int i = 0; cand[i] && !p->nr_funcs; i++)
		if (pt_role_of(cand[i]) == PT_ROLE_KERNEL_CLONE && in->traceable(in->ctx, cand[i]))
			p->funcs[p->nr_funcs++] = cand[i];
	if (!p->nr_funcs) {
		snprintf(err, errlen,
			 "no fork root (kernel_clone, _do_fork, do_fork) is traceable");
		return -ENOTSUP;
	}
	for (int i = 0; cand[i] && p->nr_funcs < PD_PLAN_MAX_FUNCS; i++)
		if (pt_role_of(cand[i]) != PT_ROLE_KERNEL_CLONE && needed(in, cand[i]))
			p->funcs[p->nr_funcs++] = cand[i];
	return 0;
}

/*
 * Whether sched_switch can be armed per fork: at fork detail, for every task
 * (the analyzer must see every wake_up_new_task that disarms it to know
 * which copies it may have cut short), where copy_page_range and
 * wake_up_new_task are hooked. Investigations (section, pte, pids) keep it
 * on throughout.
 */
static bool hooks_role(const struct pd_plan *p, enum pt_role role)
{
	for (int i = 0; i < p->nr_funcs; i++)
		if (pt_role_of(p->funcs[i]) == role)
			return true;
	return false;
}

static bool switch_window(const struct pd_plan_in *in, const struct pd_plan *p)
{
	if (in->detail != PD_DETAIL_FORK || in->nr_pids)
		return false;
	return hooks_role(p, PT_ROLE_COPY_PAGE_RANGE) && hooks_role(p, PT_ROLE_WAKE_NEW);
}

/* Tracing off, unhooked, clock and buffer: the first writes of every plan.
 * (A new instance of ours has no tracer; setting one there, even nop,
 * expands every ring buffer on 6.1, the top level's too: not written then.) */
static int plan_begin(const struct pd_plan_in *in, struct pd_plan *p, bool tracer)
{
	char v[32];
	int ret = 0;

	snprintf(v, sizeof(v), "%u", in->buffer_kb);
	ret |= add(p, "tracing_on", "0", false);
	ret |= add(p, "trace_clock", "mono", false);
	ret |= add(p, "buffer_size_kb", v, false);
	if (in->watermark_pct) {
		snprintf(v, sizeof(v), "%u", in->watermark_pct);
		ret |= add(p, "buffer_percent", v, false);
	}
	if (tracer)
		ret |= add(p, "current_tracer", "nop", false);
	return ret;
}

/*
 * sched_process_fork, task_newtask (the clone flags) where the kernel has it,
 * and sched_switch for preemptions (armed per fork where
 * it can be) unless the kprobes read the task's counters instead. @by_index:
 * the probes may name their functions by index (a check step has shown the
 * indices right), else by name.
 */
static int plan_events(const struct pd_plan_in *in, struct pd_plan *p, bool by_index)
{
	char v[96];
	int ret = 0;

	ret |= add(p, "events/sched/sched_process_fork/enable", "1", false);
	if (in->newtask)
		ret |= add(p, PD_NEWTASK_ENABLE, "1", false);
	if (!in->preempt_mask || p->task_ctr)
		return ret;
	snprintf(v, sizeof(v), "prev_state & %" PRIu64, in->preempt_mask);
	ret |= add(p, "events/sched/sched_switch/filter", v, false);
	if (p->switch_window) {
		/* armed by the probes alone: the event stays soft-disabled between
		 * forks. Written off first so that stopping writes it off again
		 * once the probes are gone (tfs.c STEP_PROBES_OFF) */
		ret |= add(p, "events/sched/sched_switch/enable", "0", false);
		add_func(in, by_index, p, PD_SWITCH_ARM_FUNC, PD_SWITCH_ARM_CMD, &ret);
		add_func(in, by_index, p, PD_SWITCH_DISARM_FUNC, PD_SWITCH_DISARM_CMD,
			 &ret);
	} else {
		ret |= add(p, "events/sched/sched_switch/enable", "1", false);
	}
	p->sched_switch = true;
	return ret;
}

void pd_kprobe_event(char *out, size_t len, const char *group, const char *func, bool ret)
{
	snprintf(out, len, "%s/%s%s", group ? group : PD_KPROBE_GROUP, func, ret ? "_ret" : "");
}

static const char *group_of(const struct pd_plan_in *in)
{
	return in->group ? in->group : PD_KPROBE_GROUP;
}

/*
 * The fetch arguments of @func's entry probe that read the forking task's
 * counters (PT_RAW_CTR_*, raw_decode.h) through the offsets @o, or "" for a
 * function that does not. 0 or -E2BIG.
 */
static int ctr_args(const struct pd_plan *p, const struct pd_task_offs *o,
		    const struct pd_site_offs *s, const char *func, char *out, size_t len)
{
	enum pt_role role = pt_role_of(func);
	char task[64];
	int n;

	out[0] = '\0';
	if (!p->task_ctr)
		return 0;
	if (role == PT_ROLE_DUP_MMAP && p->ctr_at_dup)
		snprintf(task, sizeof(task), "+%u($arg%d)", o->owner, s->dup_old_arg);
	else if (role == PT_ROLE_COPY_START && p->ctr_at_start)
		snprintf(task, sizeof(task), "+%u($arg%d)", o->owner, s->start_old_arg);
	else if (role == PT_ROLE_COPY_PAGE_RANGE && !p->ctr_at_dup && !p->ctr_at_start)
		snprintf(task, sizeof(task), "+%u(+%u($arg%d))", o->owner, o->vm_mm, o->cpr_src_arg);
	else if (role == PT_ROLE_WAKE_NEW)
		snprintf(task, sizeof(task), "+%u($arg%d)", o->real_parent, o->wake_arg);
	else
		return 0;
	n = snprintf(out, len,
		     " " PT_RAW_CTR_TASK "=%s:u64 " PT_RAW_CTR_NIVCSW "=+%u(%s):u%u " PT_RAW_CTR_PCOUNT
		     "=+%u(%s):u%u " PT_RAW_CTR_WAIT "=+%u(%s):u%u",
		     task, o->nivcsw, task, 8 * o->nivcsw_size, o->pcount, task, 8 * o->pcount_size,
		     o->run_delay, task, 8 * o->run_delay_size);
	return n < 0 || (size_t)n >= len ? -E2BIG : 0;
}

/*
 * The fetch arguments the pass probes' self-checks add to @func's entry
 * probe (PT_RAW_VMA_*, PT_RAW_CHILD_RSS*), appended to @out. 0 or -E2BIG.
 */
static int site_args(const struct pd_plan *p, const struct pd_site_offs *o, const char *func,
		     char *out, size_t len)
{
	enum pt_role role = pt_role_of(func);
	size_t n = strlen(out);
	int k;

	if (role == PT_ROLE_COPY_PAGE_RANGE && p->site_vma) {
		k = snprintf(out + n, len - n,
			     " " PT_RAW_VMA_START "=+%u($arg%d):x64 " PT_RAW_VMA_END "=+%u($arg%d):x64",
			     o->vm_start, o->cpr_src_arg, o->vm_end, o->cpr_src_arg);
		if (k < 0 || (size_t)k >= len - n)
			return -E2BIG;
	} else if (p->parent_mm_at && !strcmp(func, p->parent_mm_at)) {
		int arg = role == PT_ROLE_DUP_MMAP ? o->dup_old_arg : o->start_old_arg;

		for (int i = 0; i < 4; i++, n = strlen(out)) {
			k = snprintf(out + n, len - n, " " PT_RAW_PARENT_RSS "%d=+%u($arg%d):s64", i,
				     o->rss[i], arg);
			if (k < 0 || (size_t)k >= len - n)
				return -E2BIG;
		}
		k = snprintf(out + n, len - n,
			     " " PT_RAW_PARENT_PTE "=+%u($arg%d):s64 " PT_RAW_PARENT_MAPS
			     "=+%u($arg%d):s32",
			     o->pgtables, arg, o->map_count, arg);
		if (k < 0 || (size_t)k >= len - n)
			return -E2BIG;
	} else if (role == PT_ROLE_WAKE_NEW && p->site_child) {
		for (int i = 0; i < 4; i++, n = strlen(out)) {
			k = snprintf(out + n, len - n, " " PT_RAW_CHILD_RSS "%d=+%u(+%u($arg%d)):s64",
				     i, o->rss[i], o->task_mm, o->wake_arg);
			if (k < 0 || (size_t)k >= len - n)
				return -E2BIG;
		}
	}
	return 0;
}

/* The two pass probes inside copy_page_range (callsite.h). */
static int plan_pass_sites(const struct pd_plan_in *in, struct pd_plan *p)
{
	const struct pd_cs_plan *cs = in->cs;
	char v[sizeof(p->step[0].value)];
	int ret = 0;

	if ((size_t)snprintf(v, sizeof(v), "p:%s/" PT_RAW_PASS_START_EVENT " copy_page_range+%#x %s\n",
			     group_of(in), cs->start_off, cs->start_args) >= sizeof(v))
		return -E2BIG;
	ret |= add(p, "kprobe_events", v, true);
	if ((size_t)snprintf(v, sizeof(v), "p:%s/" PT_RAW_PASS_END_EVENT " copy_page_range+%#x %s\n",
			     group_of(in), cs->end_off, cs->end_args) >= sizeof(v))
		return -E2BIG;
	ret |= add(p, "kprobe_events", v, true);
	p->pass_sites = true;
	return ret;
}

/*
 * Fork detail by kprobes: an entry and a return probe per function, no
 * tracer. Nothing but these functions is hooked: no tracer means no return
 * stack per task and no probe of the tracer's own on sched_switch, and with
 * record-cmd off no task names are saved on every context switch (the fork
 * event carries both names). Defining an event hooks nothing; enabling the
 * group does, last.
 *
 * Preemptions: where the kernel's BTF gave the offsets (in->task), the
 * dup_mmap (or uprobe_dup_mmap, or copy_page_range) and wake_up_new_task
 * probes read the forking task's own scheduler counters, and nothing probes
 * the scheduler. At dup_mmap, or uprobe_dup_mmap where dup_mmap is inlined,
 * that is one read a fork; at copy_page_range one a VMA, of which the
 * reconstruction keeps the first: 11 memory reads each, about 1,500
 * instructions on 6.1. Otherwise
 * sched_switch is armed per fork by function probes (plan_events), whose
 * soft-disabled check every context switch then pays; they go by name, as no
 * check step vouches for indices here.
 */
static int plan_kprobes(const struct pd_plan_in *in, struct pd_plan *p)
{
	char ev[96], args[400], v[sizeof(p->step[0].value)];
	int ret = plan_begin(in, p, !in->instance);
	bool cpr = hooks_role(p, PT_ROLE_COPY_PAGE_RANGE);

	p->task_ctr = in->task && cpr && hooks_role(p, PT_ROLE_WAKE_NEW);
	p->ctr_at_dup = p->task_ctr && in->site && in->site->dup_old_arg &&
			hooks_role(p, PT_ROLE_DUP_MMAP);
	/* where dup_mmap is inlined, the one function it calls once at its top
	 * with the parent's mm is hooked for the reading (an entry and return
	 * probe: about 16 us of a fork in the icount guest, against 11 memory
	 * reads at every VMA's copy_page_range) */
	if (p->task_ctr && !p->ctr_at_dup && in->site && in->site->start_old_arg &&
	    p->nr_funcs < PD_PLAN_MAX_FUNCS && in->traceable(in->ctx, PD_COPY_START_FUNC)) {
		p->funcs[p->nr_funcs++] = PD_COPY_START_FUNC;
		p->ctr_at_start = true;
	}
	p->site_vma = in->cs && cpr && in->site && in->site->vma;
	p->site_child = in->cs && cpr && in->site && in->site->child_rss &&
			hooks_role(p, PT_ROLE_WAKE_NEW);
	/* the parent's memory, once a fork where the page-table copy begins: what
	 * the /proc reader would otherwise read from status and maps after it */
	if (in->site && in->site->parent_mm && in->site->dup_old_arg &&
	    hooks_role(p, PT_ROLE_DUP_MMAP))
		p->parent_mm_at = "dup_mmap";
	else if (in->site && in->site->parent_mm && in->site->start_old_arg &&
		 hooks_role(p, PT_ROLE_COPY_START))
		p->parent_mm_at = PD_COPY_START_FUNC;
	if (!in->instance)
		ret |= add(p, "options/record-cmd", "0", false);
	for (int i = 0; i < p->nr_funcs; i++) {
		ret |= ctr_args(p, in->task, in->site, p->funcs[i], args, sizeof(args));
		ret |= site_args(p, in->site, p->funcs[i], args, sizeof(args));
		pd_kprobe_event(ev, sizeof(ev), in->group, p->funcs[i], false);
		if ((size_t)snprintf(v, sizeof(v), "p:%s %s%s\n", ev, p->funcs[i], args) >= sizeof(v))
			ret |= -E2BIG;
		ret |= add(p, "kprobe_events", v, true);
		pd_kprobe_event(ev, sizeof(ev), in->group, p->funcs[i], true);
		snprintf(v, sizeof(v), "r%d:%s %s\n", PD_KRETPROBE_MAXACTIVE, ev, p->funcs[i]);
		ret |= add(p, "kprobe_events", v, true);
	}
	if (in->cs && cpr)
		ret |= plan_pass_sites(in, p);
	p->switch_window = !p->task_ctr && in->preempt_mask && switch_window(in, p);
	ret |= plan_events(in, p, false);
	snprintf(v, sizeof(v), "events/%s/enable", group_of(in));
	ret |= add(p, v, "1", false);
	p->kprobes = true;
	return ret;
}

static int plan_graph(const struct pd_plan_in *in, struct pd_plan *p)
{
	char v[96];
	bool by_index = false;
	int ret = plan_begin(in, p, true);

	/* then what the tracer will hook, with no tracer running */
	ret |= add(p, "set_ftrace_filter", "", false);
	for (int i = 0; i < p->nr_funcs; i++)
		by_index |= add_func(in, true, p, p->funcs[i], "", &ret);
	if (by_index && !(ret |= add(p, "set_ftrace_filter", "", false)))
		p->step[p->nr - 1].check = true;
	ret |= add(p, "set_ftrace_pid", "", false);
	for (size_t i = 0; i < in->nr_pids; i++) {
		snprintf(v, sizeof(v), "%d", in->pids[i]);
		ret |= add(p, "set_ftrace_pid", v, true);
	}
	ret |= add(p, "set_graph_function", p->funcs[0], false);
	p->switch_window = in->preempt_mask && switch_window(in, p);
	if (p->switch_window) /* also where io_uring starts its workers, outside kernel_clone */
		ret |= add(p, "set_graph_function", PD_SWITCH_DISARM_FUNC, true);
	ret |= plan_events(in, p, by_index);
	/* the tracer last; its options exist only once it is set */
	ret |= add(p, "current_tracer", "function_graph", false);
	ret |= add(p, "options/funcgraph-irqs", "0", false);
	return ret;
}

int pd_plan_graph(const struct pd_plan_in *in, struct pd_plan *p, char *err, size_t errlen)
{
	int ret;

	memset(p, 0, sizeof(*p));
	if ((ret = choose_funcs(in, p, err, errlen)))
		return ret;
	if (in->kprobes && (in->detail != PD_DETAIL_FORK || in->nr_pids)) {
		snprintf(err, errlen, "kprobes hook fork detail for every task only");
		return -EINVAL;
	}
	if (in->kprobes ? plan_kprobes(in, p) : plan_graph(in, p)) {
		snprintf(err, errlen, "the graph setup needs more than %d tracefs writes",
			 PD_PLAN_MAX_STEPS);
		return -E2BIG;
	}
	return 0;
}

/* Whether @list (a filter file's content) names exactly @p's functions:
 * each of them, and nothing else but comments and function probes. */
static bool lists_funcs(const struct pd_plan *p, const char *list)
{
	bool seen[PD_PLAN_MAX_FUNCS] = {0};

	for (const char *s = list; *s;) {
		size_t l = strcspn(s, "\n"), n = strcspn(s, " \t\n");
		int i = 0;

		if (l && s[0] != '#' && !memchr(s, ':', l)) {
			while (i < p->nr_funcs &&
			       (strlen(p->funcs[i]) != n || strncmp(s, p->funcs[i], n)))
				i++;
			if (i == p->nr_funcs)
				return false;
			seen[i] = true;
		}
		s += l + (s[l] == '\n');
	}
	for (int i = 0; i < p->nr_funcs; i++)
		if (!seen[i])
			return false;
	return true;
}

static int check(struct pd_tfs *t, const struct pd_plan *p, const char *rel, char *err,
		 size_t errlen)
{
	char buf[8192];
	int n = pd_tfs_read(t, rel, buf, sizeof(buf));

	if (n < 0) {
		snprintf(err, errlen, "cannot read back %s: %s", rel, strerror(-n));
		return n;
	}
	if (lists_funcs(p, buf))
		return 0;
	snprintf(err, errlen, "%s took the functions' indices as other functions ('%.*s')", rel,
		 (int)strcspn(buf, "\n"), buf);
	return -ESTALE;
}

int pd_plan_apply(struct pd_tfs *t, const struct pd_plan *p, char *err, size_t errlen)
{
	for (int i = 0; i < p->nr; i++) {
		const struct pd_tfs_step *s = &p->step[i];
		int ret = s->check    ? check(t, p, s->rel, err, errlen)
			  : s->append ? pd_tfs_append(t, s->rel, s->value, err, errlen)
				    : pd_tfs_write(t, s->rel, s->value, err, errlen);

		if (ret)
			return ret;
	}
	return 0;
}
