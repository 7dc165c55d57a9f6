/* SPDX-License-Identifier: MIT */
/*
 * Call reconstruction and fork derivation (recon.h): the task table, the
 * event dispatch and the hand-over of finished forks. The three state
 * machines below have files of their own: stacks (recon_stack.c), forks
 * (recon_fork.c), passes (recon_pass.c); they share recon_internal.h.
 *
 * Fed pt_events in time order by a reader or the live capture; feeds finished
 * pt_fork records to a callback (the report, the store). Sized for full
 * function_graph traces: tens of millions of events, thousands of tasks,
 * stacks a few dozen frames deep; per event the work is a hash lookup and a
 * few comparisons.
 *
 * 1. Stacks. Each task (a pid, or a CPU when the source names no task) has a
 *    stack of open calls indexed by depth. An entry at depth d drops frames
 *    at d and deeper (their exits were lost) and fills missing levels below d
 *    with placeholders (the recording began inside them); an exit at depth d
 *    closes the frame at d, creating it if the entry was never seen (orphan
 *    exit: its duration is still known). An exit without a name (text "}")
 *    takes the name of the frame it closes. In text without task names, an
 *    orphan exit that names the innermost open call of another CPU's stack
 *    is that call migrating: the two stacks are swapped.
 * 2. Forks. A fork starts with the first fork-path call of a task
 *    (kernel_clone, copy_process, dup_mmap, copy_page_range, copy_pte_range)
 *    and ends when its outermost fork-path call returns and nothing below it
 *    is still open. When only copy_page_range is traced (graph root), a fork
 *    is the run of its calls up to the task's sched_process_fork event; with
 *    no such event the run ends at a gap or the end of input and is flagged
 *    boundary_inferred.
 * 3. Passes. Inside the innermost copy_pte_range call (or copy_page_range
 *    where copy_pte_range is inlined), the direct children outside interrupts
 *    make passes: lock, lock, [vm_normal_page...], unlock, unlock,
 *    __cond_resched. A pass that starts a PMD is the first of its
 *    copy_pte_range call, or is preceded by __pte_alloc; any other pass
 *    resumed the same PMD after a lock break (unless add_swap_count_continuation
 *    explains the retry).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "recon_internal.h"
#include "util.h"

const char *const pt_fork_flag_names[] = {"lost_events", "partial", "boundary_inferred",
					  "graph_overrun", "unknown_loop", "pass_mismatch"};
const char *const pt_mem_names[PT_MEM_COUNT] = {
    "rss_anon_bytes", "rss_file_bytes",	 "rss_shmem_bytes", "pte_bytes",
    "map_count",      "anon_huge_bytes", "child_exec"};

/* Hands @f to the caller's callback. */
int recon_call_on_fork(struct recon *r, const struct pt_fork *f)
{
	if (r->opts.on_fork_msg)
		return r->opts.on_fork_msg(f, r->opts.ctx, r->errmsg, sizeof(r->errmsg));
	return r->opts.on_fork ? r->opts.on_fork(f, r->opts.ctx) : 0;
}

const char *recon_errmsg(const struct recon *r)
{
	return r->errmsg;
}

const char *recon_pass_mismatch(const struct recon *r)
{
	return r->site_why;
}

int recon_new(const struct recon_opts *opts, struct recon **out)
{
	struct recon *r = calloc(1, sizeof(*r));

	if (!r)
		return -ENOMEM;
	r->opts = *opts;
	r->last_key = -1;
	if (!r->opts.split_gap_ns)
		r->opts.split_gap_ns = DEFAULT_SPLIT_GAP_NS;
	if (opts->caps_known)
		r->caps = opts->caps;
	if (pt_u64map_new(&r->roles) || pt_u64map_new(&r->index)) {
		recon_free(r);
		return -ENOMEM;
	}
	*out = r;
	return 0;
}

int pt_fork_copy(struct pt_fork *dst, const struct pt_fork *src)
{
	*dst = *src;
	dst->vma = NULL;
	dst->pass = NULL;
	if (src->nr_vma) {
		dst->vma = malloc(src->nr_vma * sizeof(*dst->vma));
		if (!dst->vma)
			goto fail;
		memcpy(dst->vma, src->vma, src->nr_vma * sizeof(*dst->vma));
	}
	if (src->nr_pass) {
		dst->pass = malloc(src->nr_pass * sizeof(*dst->pass));
		if (!dst->pass)
			goto fail;
		memcpy(dst->pass, src->pass, src->nr_pass * sizeof(*dst->pass));
	}
	return 0;
fail:
	pt_fork_release(dst);
	return -ENOMEM;
}

void recon_free(struct recon *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->nr_tasks; i++) {
		free(r->tasks[i].stack);
		free(r->tasks[i].susp);
		recon_fork_build_free(r->tasks[i].fork);
	}
	for (size_t i = 0; i < r->nr_held; i++) {
		pt_fork_release(&r->held[i].f);
		free(r->held[i].cand);
	}
	free(r->held);
	free(r->tasks);
	pt_u64map_free(r->roles);
	pt_u64map_free(r->index);
	free(r);
}

pt_caps recon_caps(const struct recon *r)
{
	return r->caps;
}

static enum pt_role role_of_event(struct recon *r, const struct pt_event *ev)
{
	uint32_t v;
	enum pt_role role;

	if (!ev->func)
		return PT_ROLE_OTHER;
	if (ev->func_id && ev->func_id < sizeof(r->role_of_id) && r->role_of_id[ev->func_id])
		return (enum pt_role)(r->role_of_id[ev->func_id] - 1);
	if (ev->func_id && pt_u64map_get(r->roles, ev->func_id, &v))
		return (enum pt_role)(v - 1);
	role = pt_role_of(ev->func);
	if (ev->func_id && ev->func_id < sizeof(r->role_of_id) && role < UINT8_MAX)
		r->role_of_id[ev->func_id] = (uint8_t)(role + 1);
	else if (ev->func_id)
		pt_u64map_put(r->roles, ev->func_id, (uint32_t)role + 1);
	return role;
}

static int64_t task_key(int pid, int cpu)
{
	return pid >= 0 ? pid : ((int64_t)1 << 40) + cpu + 1;
}

/* task_get() past its cache of the last task: out of line. */
static __attribute__((noinline)) struct task *task_get_slow(struct recon *r, int64_t key, int pid,
							    int cpu)
{
	uint32_t idx;
	struct task *t;

	if (pt_u64map_get(r->index, (uint64_t)key, &idx)) {
		r->last_key = key;
		r->last_idx = idx;
		return &r->tasks[idx];
	}
	if (pt_grow_array_from((void **)&r->tasks, &r->cap_tasks, r->nr_tasks + 1,
			       sizeof(*r->tasks), 64))
		return NULL;
	if (pt_u64map_put(r->index, (uint64_t)key, (uint32_t)r->nr_tasks))
		return NULL;
	r->last_key = key;
	r->last_idx = (uint32_t)r->nr_tasks;
	t = &r->tasks[r->nr_tasks++];
	*t = (struct task){.key = key, .pid = pid, .cpu = cpu, .container_depth = -1,
			   .off_since = NO_TIME, .overrun = -1};
	return t;
}

/* The task of @pid (per CPU @cpu when @pid is -1), made when new. NULL: out
 * of memory. Most events are the last one's task. */
static inline struct task *task_get(struct recon *r, int pid, int cpu)
{
	int64_t key = task_key(pid, cpu);

	return key == r->last_key ? &r->tasks[r->last_idx] : task_get_slow(r, key, pid, cpu);
}

/* The task of @pid if it was seen, else NULL. */
static struct task *task_find(struct recon *r, int pid)
{
	uint32_t idx;

	return pid >= 0 && pt_u64map_get(r->index, (uint64_t)task_key(pid, -1), &idx)
		       ? &r->tasks[idx]
		       : NULL;
}

static void task_set_comm(struct task *t, const char *comm, uint64_t comm_id)
{
	if (comm_id && comm_id == t->comm_id)
		return; /* the same name as last time, by the reader's id */
	t->comm_id = comm_id;
	if (comm && *comm && strncmp(t->comm, comm, sizeof(t->comm) - 1)) {
		strncpy(t->comm, comm, sizeof(t->comm) - 1);
		t->comm[sizeof(t->comm) - 1] = '\0';
	}
}

/* What sched_process_fork says: the parent and the child. */
static void fork_take_event(struct fork_build *b, const struct pt_event *ev)
{
	b->f.parent_pid = ev->pid;
	b->f.child_pid = ev->child_pid;
	if (ev->comm)
		snprintf(b->f.parent_comm, sizeof(b->f.parent_comm), "%s", ev->comm);
	if (ev->child_comm)
		snprintf(b->f.child_comm, sizeof(b->f.child_comm), "%s", ev->child_comm);
}

/*
 * task_newtask: the clone's flags, inside its copy_process. Kept on the task
 * until the sched_process_fork of the same child (which follows it in the
 * same task) hands them to the fork.
 */
static int on_newtask(struct recon *r, const struct pt_event *ev)
{
	struct task *t = task_get(r, ev->pid, ev->cpu);

	if (!t)
		return -ENOMEM;
	t->nt_set = true;
	t->nt_child = ev->child_pid;
	t->nt_flags = ev->clone_flags;
	return 0;
}

/* The flags of @t's last task_newtask, when it made the child of fork event @ev. */
static void fork_take_flags(struct task *t, struct fork_build *b, const struct pt_event *ev)
{
	if (!t->nt_set || t->nt_child != ev->child_pid)
		return;
	b->f.has_clone_flags = true;
	b->f.clone_flags = t->nt_flags;
	t->nt_set = false;
}

static int on_fork_event(struct recon *r, const struct pt_event *ev)
{
	struct task *t = task_get(r, ev->pid, ev->cpu), *nt;
	struct fork_build *b;
	int ret;

	if (!t)
		return -ENOMEM;
	r->caps |= PT_CAP_FORK_EVENT;
	task_set_comm(t, ev->comm, ev->comm_id);
	if (!t->fork && ev->cpu >= 0) {
		/* text without task names: the graph ran under the CPU's key */
		struct task *c = task_get(r, -1, ev->cpu);

		if (!c)
			return -ENOMEM;
		t = task_get(r, ev->pid, ev->cpu); /* task_get may have moved tasks */
		if (c->fork && c->fork->cpr_rooted) {
			c->fork->f.parent_pid = ev->pid;
			t = c;
		}
	}
	if (!t->fork) {
		/* no graph for this fork: the event alone */
		if ((ret = recon_fork_begin(r, t, -1, ev->ts_ns)))
			return ret;
		t->fork->saw_root_entry = true;
		t->fork->f.copy_page_range_ns = NO_TIME;
		fork_take_event(t->fork, ev);
		fork_take_flags(t, t->fork, ev);
		return recon_fork_end(r, t, false);
	}
	b = t->fork;
	fork_take_event(b, ev);
	/* the newtask was the parent's, even where the graph ran under a CPU's key */
	if ((nt = task_find(r, ev->pid)))
		fork_take_flags(nt, b, ev);
	if (b->cpr_rooted && t->len <= b->root_depth)
		return recon_fork_end(r, t, false);
	return 0;
}

/* @t is seen running again at @ts (trace clock): its off-CPU time ends. */
static void offcpu_close(struct task *t, uint64_t ts)
{
	if (t->off_since == NO_TIME || ts == NO_TIME)
		return;
	if (t->fork && ts >= t->off_since)
		t->fork->f.copy_offcpu_ns += ts - t->off_since;
	t->off_since = NO_TIME;
}

/*
 * sched_switch. A task preempted while it copies page tables (a copy_page_range
 * or copy_pte_range call open: copy_pte_range's progress check broke its locks
 * and cond_resched() switched, or the kernel preempted it) counts one
 * copy_resched; it is off the CPU until it is switched back in, or, where the
 * switch back was not recorded (the task that ran instead blocked: a filtered
 * recording keeps preemptions only), until its next record.
 */
static int on_switch(struct recon *r, const struct pt_event *ev)
{
	struct task *t;

	r->caps |= PT_CAP_SWITCH;
	if ((t = task_find(r, ev->next_pid)))
		offcpu_close(t, ev->ts_ns);
	if (!ev->preempted || ev->pid <= 0)
		return 0;
	t = task_get(r, ev->pid, ev->cpu);
	if (!t)
		return -ENOMEM;
	if (t->fork && t->container_depth >= 0) {
		t->fork->f.copy_resched++;
		if (t->off_since == NO_TIME)
			t->off_since = ev->ts_ns;
	}
	return 0;
}

/* The run_delay difference is the time the task waited for a CPU inside the
 * window, so it cannot exceed the window; this much is allowed for the
 * scheduler's clock and the trace clock ticking apart. */
#define CTR_CLOCK_SLACK_NS 1000000ull

/*
 * The forking task's counters read by a live kprobe (PT_CAP_TASK_CTR): at
 * dup_mmap (or, where it is inlined, uprobe_dup_mmap or the fork's first
 * copy_page_range: the first of them that carries them), and at
 * wake_up_new_task, where the
 * page-table copy and the rest of copy_process are over. Their differences
 * give copy_resched (preemptions: nivcsw) and copy_offcpu_ns (time runnable
 * but waiting for a CPU: sched_info.run_delay) over that window. Both reads
 * must name the same task (the first probe reaches it through the mm's
 * owner: a fork from a thread that does not own the mm reads another task,
 * and its fields stay null). copy_offcpu_ns stays null where the scheduler
 * did not count the task's runs (pcount moved less than nivcsw) or the wait
 * exceeds the window.
 */
static void on_counters(struct recon *r, struct task *t, const struct pt_event *ev,
			enum pt_role role)
{
	struct fork_build *b = t->fork;
	const struct pt_task_ctr *c0, *c1 = &ev->ctr;
	uint64_t window;

	r->caps |= PT_CAP_TASK_CTR;
	if (!b)
		return;
	if ((role == PT_ROLE_DUP_MMAP || role == PT_ROLE_COPY_START ||
	     role == PT_ROLE_COPY_PAGE_RANGE) &&
	    !b->ctr0.task && !b->ctr_ok) {
		b->ctr0 = *c1;
		b->ctr0_ts = ev->ts_ns;
		return;
	}
	c0 = &b->ctr0;
	if (role != PT_ROLE_WAKE_NEW || !c0->task || b->ctr_ok)
		return;
	if (c1->task != c0->task || c1->nivcsw < c0->nivcsw || c1->run_delay < c0->run_delay ||
	    ev->ts_ns == NO_TIME || b->ctr0_ts == NO_TIME || ev->ts_ns < b->ctr0_ts)
		return;
	window = ev->ts_ns - b->ctr0_ts;
	b->ctr_ok = true;
	b->f.copy_resched = (int64_t)(c1->nivcsw - c0->nivcsw);
	b->f.copy_offcpu_ns = c1->pcount >= c0->pcount &&
				      c1->pcount - c0->pcount >= c1->nivcsw - c0->nivcsw &&
				      c1->run_delay - c0->run_delay <= window + CTR_CLOCK_SLACK_NS
				  ? c1->run_delay - c0->run_delay
				  : NO_TIME;
}

static void on_lost(struct recon *r, const struct pt_event *ev)
{
	(void)ev;
	for (size_t i = 0; i < r->nr_tasks; i++) {
		struct task *t = &r->tasks[i];

		if (t->fork)
			t->fork->f.flags |= PT_FORK_LOST_EVENTS;
		if (t->len)
			t->tainted = true;
	}
}

/*
 * A funcgraph_exit's overrun count: the calls the graph tracer could not
 * record in this task because its return stack was full, summed over the
 * task's life. When it grew since the task's previous exit, calls were lost
 * since then, and a fork in flight is flagged graph_overrun (even if the loss
 * came just before the fork began: never reported as whole). At the task's
 * first exit the count is compared with 0: when the loss happened is unknown.
 */
static void on_overrun(struct task *t, int64_t overrun)
{
	if (t->fork && overrun > (t->overrun >= 0 ? t->overrun : 0))
		t->fork->f.flags |= PT_FORK_GRAPH_OVERRUN;
	t->overrun = overrun;
}

int recon_feed(const struct pt_event *ev, void *ctx)
{
	struct recon *r = ctx;
	struct task *t;
	enum pt_role role;
	int ret;

	if (ev->ts_ns != NO_TIME)
		r->caps |= PT_CAP_TIMES;
	switch (ev->type) {
	case PT_EV_FORK:
		return on_fork_event(r, ev);
	case PT_EV_NEWTASK:
		return on_newtask(r, ev);
	case PT_EV_LOST:
		on_lost(r, ev);
		return 0;
	case PT_EV_SWITCH:
		return on_switch(r, ev);
	case PT_EV_PASS_START:
	case PT_EV_PASS_END:
		return recon_site_event(r, task_find(r, ev->pid), ev);
	case PT_EV_ENTRY:
	case PT_EV_EXIT:
	case PT_EV_LEAF:
		break;
	default:
		return 0;
	}
	t = task_get(r, ev->pid, ev->cpu);
	if (!t)
		return -ENOMEM;
	task_set_comm(t, ev->comm, ev->comm_id);
	if (t->off_since != NO_TIME)
		offcpu_close(t, ev->type == PT_EV_EXIT ? ev->rec_ts_ns : ev->ts_ns);
	if (ev->type == PT_EV_EXIT && ev->overrun >= 0)
		on_overrun(t, ev->overrun);
	role = role_of_event(r, ev);
	if (role == PT_ROLE_WAKE_NEW && ev->type != PT_EV_EXIT)
		r->disarms++; /* the capture's probe turned sched_switch off here */
	if (ev->type == PT_EV_ENTRY)
		ret = recon_on_entry(r, t, ev, role);
	else
		ret = recon_on_exit_ev(r, t, ev, role, ev->type == PT_EV_LEAF);
	if (ret)
		return ret;
	if (ev->type == PT_EV_ENTRY && ev->ctr.task)
		on_counters(r, t, ev, role);
	if (ev->type == PT_EV_ENTRY && ev->site)
		recon_site_entry(t, role, ev->site);
	if (!t->len) {
		t->tainted = false;
		memset(t->orphan_counts, 0, sizeof(t->orphan_counts));
		if (!t->fork)
			t->seen_before = true;
	}
	return 0;
}

int recon_finish(struct recon *r)
{
	int ret = 0;

	if (r->finished)
		return 0;
	r->finished = true;
	for (size_t i = 0; i < r->nr_tasks && !ret; i++) {
		struct task *t = &r->tasks[i];
		struct fork_build *b = t->fork;

		if (!b)
			continue;
		if (b->cpr_rooted && t->len <= b->root_depth && !(r->caps & PT_CAP_FORK_EVENT)) {
			/* a copy_page_range run, and no fork events to say where forks end */
			ret = recon_fork_end(r, t, true);
		} else {
			/* cut by the end of the recording */
			b->f.flags |= PT_FORK_PARTIAL;
			ret = recon_fork_end(r, t, false);
		}
	}
	if (r->opts.caps_known)
		return ret;
	for (size_t i = 0; i < r->nr_held; i++) {
		struct held *h = &r->held[i];

		const char *why;

		if (!ret)
			ret = recon_fork_apply_caps(&h->f, h->counts, h->cand, h->nr_cand, NULL, -1,
						    r->caps, &why);
		if (!ret)
			ret = recon_call_on_fork(r, &h->f);
		pt_fork_release(&h->f);
		free(h->cand);
		h->cand = NULL;
	}
	r->nr_held = 0;
	return ret;
}
