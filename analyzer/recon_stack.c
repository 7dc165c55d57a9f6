/* SPDX-License-Identifier: MIT */
/*
 * Reconstruction, the call stacks (recon.c has the overview): one stack of
 * open calls per task, entries and exits at depths, placeholders for calls
 * whose entry the recording missed, frames set aside by an interrupt that
 * arrived before an exit was recorded, and stacks swapped when a task
 * migrates in pid-less text. Opening and closing frames drives the fork
 * builder (recon_fork.c) and the pass machine (recon_pass.c).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "recon_internal.h"
#include "util.h"

static int stack_reserve(struct task *t, int depth)
{
	if (depth < t->cap)
		return 0;
	int cap = t->cap ? t->cap : 16;

	while (cap <= depth)
		cap *= 2;
	struct frame *s = realloc(t->stack, (size_t)cap * sizeof(*s));

	if (!s)
		return -ENOMEM;
	t->stack = s;
	t->cap = cap;
	return 0;
}

static void container_refresh(struct task *t)
{
	t->container_depth = -1;
	for (int d = t->len - 1; d >= 0; d--)
		if (!t->stack[d].placeholder && is_container(t->stack[d].role) &&
		    !t->stack[d].in_irq) {
			t->container_depth = d;
			return;
		}
}

static int frame_opened(struct recon *r, struct task *t, int depth, uint64_t ts, bool entry_seen);

static int frame_closed(struct recon *r, struct task *t, int depth, const struct frame *fr,
			uint64_t start, uint64_t end, uint64_t dur, bool entry_seen);

/* Drops frames at @depth and deeper whose exits never came. */
static int stack_cut(struct recon *r, struct task *t, int depth)
{
	bool lost = false;

	while (t->len > depth) {
		struct frame *fr = &t->stack[t->len - 1];

		if (!fr->placeholder)
			lost = true;
		if (t->container_depth == t->len - 1) {
			recon_pass_end(t, NO_TIME, false, -1);
			t->container_depth = -1;
		}
		t->len--;
	}
	if (lost && t->fork)
		t->fork->f.flags |= PT_FORK_LOST_EVENTS;
	container_refresh(t);
	(void)r;
	return 0;
}

/* Fills levels [t->len, depth) with placeholders. */
static int stack_fill(struct task *t, int depth)
{
	int ret = stack_reserve(t, depth);

	if (ret)
		return ret;
	while (t->len < depth) {
		t->stack[t->len++] =
		    (struct frame){.placeholder = true, .start = NO_TIME, .vma = -1};
	}
	return 0;
}

/*
 * An interrupt that arrives after a function returned but before its exit
 * was recorded (the graph tracer pops the return stack first) shows its own
 * calls at the returning function's depth, and the exit comes after them.
 * So an entry at the depth of an open frame sets the open frames aside;
 * an exit that matches them later brings them back. Frames set aside and
 * never resumed were really cut: their fork is flagged.
 */
void recon_susp_drop(struct task *t)
{
	bool lost = false;

	for (int i = 0; i < t->susp_len; i++)
		lost |= !t->susp[i].placeholder;
	if (lost && t->fork)
		t->fork->f.flags |= PT_FORK_LOST_EVENTS;
	t->susp_len = 0;
}

static int suspend(struct task *t, int depth)
{
	int n = t->len - depth;

	recon_susp_drop(t);
	if (n > t->susp_cap) {
		struct frame *p = realloc(t->susp, (size_t)n * sizeof(*p));

		if (!p)
			return -ENOMEM;
		t->susp = p;
		t->susp_cap = n;
	}
	memcpy(t->susp, t->stack + depth, (size_t)n * sizeof(*t->susp));
	t->susp_base = depth;
	t->susp_len = n;
	t->len = depth;
	return 0;
}

/* An exit at @depth: resumes frames set aside if it is theirs. */
static void maybe_resume(struct task *t, const struct pt_event *ev, int depth)
{
	const struct frame *f;

	if (!t->susp_len)
		return;
	if (depth < t->susp_base) {
		recon_susp_drop(t);
		return;
	}
	if (t->len != t->susp_base || depth >= t->susp_base + t->susp_len)
		return;
	f = &t->susp[depth - t->susp_base];
	if (ev->func && f->func && f->func_id != ev->func_id && strcmp(f->func, ev->func))
		return;
	memcpy(t->stack + t->susp_base, t->susp, (size_t)t->susp_len * sizeof(*t->susp));
	t->len = t->susp_base + t->susp_len;
	t->susp_len = 0;
}

/* Opens the call of @ev at @depth: frames at that depth or deeper are set
 * aside (suspend()), missing levels above it become placeholders. Inline:
 * once per ENTRY (recon_on_entry()) and leaf. */
static inline __attribute__((always_inline)) int
frame_push(struct recon *r, struct task *t, const struct pt_event *ev, enum pt_role role, int depth)
{
	int ret;

	if (t->susp_len && depth < t->susp_base)
		recon_susp_drop(t);
	if (t->len > depth && (ret = suspend(t, depth)))
		return ret;
	if ((ret = stack_fill(t, depth)) || (ret = stack_reserve(t, depth)))
		return ret;
	t->stack[t->len++] = (struct frame){.func = ev->func,
					    .func_id = ev->func_id,
					    .start = ev->ts_ns,
					    .role = (uint8_t)role,
					    .in_irq = ev->in_irq,
					    .vma = -1};
	if (role == PT_ROLE_RESCHED)
		t->resched_children = false;
	if (!is_fork_path(role) || ev->in_irq)
		return 0; /* frame_opened()'s own first test: nearly every call, no call */
	return frame_opened(r, t, depth, ev->ts_ns, true);
}

int recon_on_entry(struct recon *r, struct task *t, const struct pt_event *ev, enum pt_role role)
{
	int depth = ev->depth >= 0 ? ev->depth : t->len;

	if (depth > MAX_DEPTH)
		return 0;
	return frame_push(r, t, ev, role, depth);
}

/* Looks for a task without pid whose innermost open call is this exit's call. */
static struct task *find_migrated(struct recon *r, struct task *t, const struct pt_event *ev,
				  int depth)
{
	if (ev->pid >= 0 || !ev->func_id)
		return NULL;
	for (size_t i = 0; i < r->nr_tasks; i++) {
		struct task *o = &r->tasks[i];

		if (o == t || o->pid >= 0 || o->len != depth + 1)
			continue;
		if (!o->stack[depth].placeholder && o->stack[depth].func_id == ev->func_id)
			return o;
	}
	return NULL;
}

/* After a swap of *a and *b: gives each back its own key, pid, cpu and comm. */
static void task_keep_identity(struct task *a, struct task *b)
{
	int64_t key = a->key;
	int pid = a->pid, cpu = a->cpu;
	char comm[32];

	memcpy(comm, a->comm, sizeof(comm));
	a->key = b->key, a->pid = b->pid, a->cpu = b->cpu;
	memcpy(a->comm, b->comm, sizeof(comm));
	b->key = key, b->pid = pid, b->cpu = cpu;
	memcpy(b->comm, comm, sizeof(comm));
}

/* Swaps what runs on two tasks; their keys and identities stay. The whole
 * struct moves, so a field added to struct task cannot be forgotten here
 * (the field-by-field copy this replaced missed resched_children). */
static void task_swap(struct task *a, struct task *b)
{
	struct task tmp = *a;

	*a = *b;
	*b = tmp;
	task_keep_identity(a, b);
}

/* An orphan exit on @t that is the innermost open call of another task's
 * stack: that call migrated here, so the two stacks swap. */
static void take_migrated(struct recon *r, struct task *t, const struct pt_event *ev, int depth)
{
	struct task *o = find_migrated(r, t, ev, depth);

	if (!o)
		return;
	/* what this CPU showed under the unknown caller was the migrated call */
	task_swap(t, o);
	if (t->fork) {
		for (int i = 0; i < PT_ROLE_COUNT; i++)
			t->fork->counts[i] += o->orphan_counts[i];
	}
	memset(o->orphan_counts, 0, sizeof(o->orphan_counts));
	o->len = 0;
}

/* The exit names the placeholder at @depth: a fork-path call whose entry was
 * never seen opens now, and what was counted under it joins its fork. */
static int name_placeholder(struct recon *r, struct task *t, const struct pt_event *ev,
			    enum pt_role role, int depth)
{
	struct frame *cf = &t->stack[depth];
	bool was_placeholder = cf->placeholder;
	int ret;

	cf->func = ev->func;
	cf->func_id = ev->func_id;
	cf->role = (uint8_t)role;
	cf->in_irq = ev->in_irq;
	cf->placeholder = false;
	if (!was_placeholder || !is_fork_path(role))
		return 0;
	if ((ret = frame_opened(r, t, depth, NO_TIME, false)))
		return ret;
	if (t->fork) {
		struct fork_build *fb = t->fork;

		cf = &t->stack[depth];
		fb->f.flags |= PT_FORK_PARTIAL;
		for (int i = 0; i < PT_ROLE_COUNT; i++)
			fb->counts[i] += t->orphan_counts[i];
		if (cf->vma >= 0)
			fb->f.vma[cf->vma].ptes += (int32_t)t->orphan_counts[PT_ROLE_PTE];
		memset(t->orphan_counts, 0, sizeof(t->orphan_counts));
	}
	return 0;
}

/* An exit (not a leaf) at @depth: cuts what is open deeper, fills what is
 * missing below, names the frame it closes. */
static int exit_reach(struct recon *r, struct task *t, const struct pt_event *ev, enum pt_role role,
		      int depth)
{
	const struct frame *fr;
	int ret;

	if (t->len > depth + 1 && (ret = stack_cut(r, t, depth + 1)))
		return ret;
	/* orphan: its entry is before the recording (or was lost) */
	if (t->len <= depth && (ret = stack_fill(t, depth + 1)))
		return ret;
	fr = &t->stack[depth];
	if (ev->func && (fr->placeholder || !fr->func))
		return name_placeholder(r, t, ev, role, depth);
	if (ev->func && fr->func_id != ev->func_id && fr->func && strcmp(fr->func, ev->func)) {
		/* the exit names another call than the one open here */
		if (t->fork)
			t->fork->f.flags |= PT_FORK_LOST_EVENTS;
	}
	return 0;
}

int recon_on_exit_ev(struct recon *r, struct task *t, const struct pt_event *ev, enum pt_role role,
		     bool leaf)
{
	int depth = ev->depth >= 0 ? ev->depth : t->len - 1;
	struct frame fr;
	uint64_t start = NO_TIME, end = NO_TIME, dur = ev->dur_ns;
	bool entry_seen;
	int ret;

	if (depth < 0 || depth > MAX_DEPTH)
		return 0;
	if (!leaf)
		maybe_resume(t, ev, depth);
	if (!leaf && (t->len <= depth || t->stack[depth].placeholder))
		take_migrated(r, t, ev, depth);
	ret = leaf ? frame_push(r, t, ev, role, depth) : exit_reach(r, t, ev, role, depth);
	if (ret)
		return ret;
	fr = t->stack[depth];
	entry_seen = fr.start != NO_TIME || leaf;
	if (ev->call_ns != NO_TIME)
		start = ev->call_ns;
	else if (leaf || fr.start != NO_TIME)
		start = leaf ? ev->ts_ns : fr.start;
	else if (ev->ts_ns != NO_TIME && dur != NO_TIME && ev->ts_ns >= dur)
		start = ev->ts_ns - dur;
	if (leaf)
		end = (start != NO_TIME && dur != NO_TIME) ? start + dur : NO_TIME;
	else
		end = ev->ts_ns;
	if (dur == NO_TIME && start != NO_TIME && end != NO_TIME && end >= start)
		dur = end - start;
	t->len = depth;
	return frame_closed(r, t, depth, &fr, start, end, dur, entry_seen && !fr.placeholder);
}

/* A call opened at @depth (t->stack[depth]): maybe a fork or a container begins. */
/*
 * A fork-path call opens at @depth while @t's copy_page_range run is open:
 * does it end the run? A call other than copy_page_range does, and a gap
 * over split_gap_ns where no fork event is known to end the run (where fork
 * events are recorded, a fork preempted between VMAs stays one fork).
 * *after_gap: the run ended at such a gap. Returns 0 or a negative errno.
 */
static int cpr_run_cut(struct recon *r, struct task *t, enum pt_role role, uint64_t ts,
		       bool *after_gap)
{
	struct fork_build *b = t->fork;
	bool time_gap = ts != NO_TIME && b->last_cpr_end != NO_TIME &&
			ts > b->last_cpr_end + r->opts.split_gap_ns &&
			!(r->caps & PT_CAP_FORK_EVENT);

	*after_gap = false;
	if (role == PT_ROLE_COPY_PAGE_RANGE && !time_gap)
		return 0;
	*after_gap = b->gap_end = role == PT_ROLE_COPY_PAGE_RANGE;
	return recon_fork_end(r, t, true);
}

/* A fork begins with @t's call at @depth. */
static int fork_open(struct recon *r, struct task *t, int depth, uint64_t ts, bool entry_seen,
		     bool after_gap)
{
	enum pt_role role = t->stack[depth].role;
	bool below_open = false;
	struct fork_build *b;
	int ret;

	for (int d = 0; d < depth; d++)
		if (t->stack[d].placeholder || is_fork_path(t->stack[d].role))
			below_open = true;
	if ((ret = recon_fork_begin(r, t, depth, ts)))
		return ret;
	b = t->fork;
	b->saw_root_entry = entry_seen && !below_open;
	if (below_open)
		b->f.flags |= PT_FORK_PARTIAL;
	b->cpr_rooted =
	    (role == PT_ROLE_COPY_PAGE_RANGE || role == PT_ROLE_COPY_PTE_RANGE) && !below_open;
	/* a copy_page_range run is whole only if the task was seen before it */
	if (b->cpr_rooted && !t->seen_before)
		b->f.flags |= PT_FORK_PARTIAL;
	b->after_gap = after_gap;
	return 0;
}

static int frame_opened(struct recon *r, struct task *t, int depth, uint64_t ts, bool entry_seen)
{
	struct frame *fr = &t->stack[depth];
	enum pt_role role = fr->role;
	struct fork_build *b;
	bool after_gap = false;
	int ret;

	if (!is_fork_path(role) || fr->in_irq)
		return 0;
	/* a run of copy_page_range calls with nothing above them */
	if (t->fork && t->fork->cpr_rooted && depth <= t->fork->root_depth &&
	    (ret = cpr_run_cut(r, t, role, ts, &after_gap)))
		return ret;
	if (!t->fork && (ret = fork_open(r, t, depth, ts, entry_seen, after_gap)))
		return ret;
	b = t->fork;
	fr = &t->stack[depth];
	if (depth < b->root_depth)
		b->root_depth = depth;
	if (b->f.ts_ns == NO_TIME)
		b->f.ts_ns = ts;
	if (role == PT_ROLE_COPY_PAGE_RANGE) {
		struct pt_vma_copy *v;

		if (pt_grow_array((void **)&b->f.vma, &b->vma_cap, b->f.nr_vma + 1,
				  sizeof(*b->f.vma)))
			return -ENOMEM;
		fr->vma = (int32_t)b->f.nr_vma;
		t->cpr_disarms = r->disarms;
		v = &b->f.vma[b->f.nr_vma++];
		*v = (struct pt_vma_copy){.start_ns = NO_TIME, .dur_ns = NO_TIME};
	}
	if (is_container(role)) {
		recon_pass_end(t, NO_TIME, false, -1);
		t->container_depth = depth;
		b->containers++;
		t->ps.pte_alloc_pending = t->ps.swap_pending = false;
		if (role == PT_ROLE_COPY_PTE_RANGE && t->ps.in_pass)
			t->ps.in_pass = false;
	}
	return 0;
}

/* The innermost copy_page_range frame below @depth with a VMA, or NULL. */
static struct pt_vma_copy *enclosing_vma(struct task *t, int depth)
{
	for (int d = depth - 1; d >= 0; d--)
		if (t->stack[d].role == PT_ROLE_COPY_PAGE_RANGE && t->stack[d].vma >= 0)
			return &t->fork->f.vma[t->stack[d].vma];
	return NULL;
}

/* A call inside a fork returned: counts, passes, PTEs and huge copies. */
static int fork_call_closed(struct task *t, int depth, const struct frame *fr, uint64_t start,
			    uint64_t end, uint64_t dur)
{
	enum pt_role role = fr->role;
	struct pt_vma_copy *v;

	/* a vfork wait is one only as kernel_clone's own call */
	if (!fr->in_irq && (role != PT_ROLE_VFORK_WAIT ||
			    (depth > 0 && t->stack[depth - 1].role == PT_ROLE_KERNEL_CLONE)))
		t->fork->counts[role]++;
	if (t->container_depth >= 0 && depth == t->container_depth + 1 && !fr->in_irq) {
		int ret = recon_pass_child(t, role, start, end, dur);

		if (ret)
			return ret;
	}
	if (role == PT_ROLE_PTE && !fr->in_irq) {
		if (t->ps.in_pass)
			t->ps.ptes++;
		if ((v = enclosing_vma(t, depth)))
			v->ptes++;
	}
	if (role == PT_ROLE_HUGE && (v = enclosing_vma(t, depth)))
		v->huge = true;
	return 0;
}

/* A fork-path call returned: its phase time. */
static void phase_closed(struct fork_build *b, const struct frame *fr, uint64_t start, uint64_t end,
			 uint64_t dur)
{
	switch ((enum pt_role)fr->role) {
	case PT_ROLE_KERNEL_CLONE:
		b->f.kernel_clone_ns = dur;
		break;
	case PT_ROLE_COPY_PROCESS:
		b->f.copy_process_ns = dur;
		break;
	case PT_ROLE_DUP_MMAP:
		b->f.dup_mmap_ns = dur;
		break;
	case PT_ROLE_COPY_PAGE_RANGE:
		if (fr->vma >= 0 && (size_t)fr->vma < b->f.nr_vma) {
			struct pt_vma_copy *v = &b->f.vma[fr->vma];

			v->start_ns = start;
			v->dur_ns = dur;
		}
		if (dur != NO_TIME)
			b->f.copy_page_range_ns += dur;
		else
			b->f.flags |= PT_FORK_PARTIAL;
		b->last_cpr_end = end;
		break;
	default:
		break;
	}
}

/* A call closed at @depth (its frame in @fr): counts, passes, phases, and
 * maybe the end of its fork. */
static int frame_closed(struct recon *r, struct task *t, int depth, const struct frame *fr,
			uint64_t start, uint64_t end, uint64_t dur, bool entry_seen)
{
	enum pt_role role = fr->role;
	struct fork_build *b = t->fork;
	int ret;

	if (role != PT_ROLE_OTHER)
		r->caps |= PT_CAP(role);
	if (depth > 0 && depth <= t->len && t->stack[depth - 1].role == PT_ROLE_RESCHED)
		t->resched_children = true;
	if (!b) {
		/* calls under a caller we have not identified yet (the recording
		 * began inside it): counted, in case it turns out to be a fork */
		if (!fr->in_irq && t->len && t->stack[0].placeholder)
			t->orphan_counts[role]++;
		return 0;
	}
	if ((ret = fork_call_closed(t, depth, fr, start, end, dur)))
		return ret;
	if (!is_fork_path(role) || fr->in_irq)
		return 0;
	/* a fork-path call returned */
	if (is_container(role) && t->container_depth == depth) {
		recon_pass_end(t, end, false, -1);
		container_refresh(t);
	}
	phase_closed(b, fr, start, end, dur);
	if (role == PT_ROLE_COPY_PAGE_RANGE && r->disarms != t->cpr_disarms)
		b->switch_gap = true;
	if (!entry_seen && depth <= b->root_depth)
		b->f.flags |= PT_FORK_PARTIAL;
	if (depth > b->root_depth)
		return 0;
	/* the outermost fork-path call returned: is anything below still open? */
	for (int d = 0; d < depth; d++)
		if (t->stack[d].placeholder || is_fork_path(t->stack[d].role)) {
			b->root_depth = d;
			return 0;
		}
	if (b->cpr_rooted)
		return 0; /* wait for the fork event, a gap, or the end */
	return recon_fork_end(r, t, false);
}
