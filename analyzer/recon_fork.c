/* SPDX-License-Identifier: MIT */
/*
 * Reconstruction, the fork builder (recon.c has the overview): a fork begins
 * at a task's first fork-path call and ends when its outermost one returns
 * with nothing below still open (or, for copy_page_range runs, at the fork
 * event, a gap or the end of input). At the end its passes are built and its
 * nulls decided from what the trace could show, and it is handed over (live)
 * or held until recon_finish (replay).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "recon_internal.h"
#include "util.h"

void recon_fork_build_free(struct fork_build *b)
{
	if (!b)
		return;
	pt_fork_release(&b->f);
	free(b->cand);
	free(b);
}

int recon_fork_begin(struct recon *r, struct task *t, int depth, uint64_t ts)
{
	struct fork_build *b = calloc(1, sizeof(*b));

	if (!b)
		return -ENOMEM;
	b->f.parent_pid = t->pid;
	b->f.child_pid = -1;
	memcpy(b->f.parent_comm, t->comm, sizeof(b->f.parent_comm));
	b->f.ts_ns = ts;
	b->f.kernel_clone_ns = b->f.copy_process_ns = b->f.dup_mmap_ns = NO_TIME;
	b->f.copy_page_range_ns = 0;
	b->f.max_lock_hold_ns = NO_TIME;
	b->f.copy_resched = 0;
	b->f.copy_offcpu_ns = 0;
	b->f.input = r->opts.input;
	b->root_depth = depth;
	b->last_cpr_end = NO_TIME;
	if (t->tainted)
		b->f.flags |= PT_FORK_LOST_EVENTS;
	t->fork = b;
	return 0;
}

/*
 * A self-check that needs no knowledge of the kernel: where PTEs and passes
 * are both known, every PTE copied (vm_normal_page under copy_page_range) was
 * copied inside a pass, under the PTE locks. PTEs outside every recognised
 * pass mean the locks were not recognised (a kernel whose copy loop changed
 * shape): the fork is flagged and its pass figures nulled rather than shown
 * wrong. Whole forks only (a cut one is flagged already).
 */
static void check_loop(struct pt_fork *f, pt_caps caps)
{
	int64_t in_vmas = 0, in_passes = 0;

	if (!(caps & PT_CAP(PT_ROLE_PTE)) || f->pte_passes == PT_NULL ||
	    (f->flags & (PT_FORK_LOST_EVENTS | PT_FORK_PARTIAL)))
		return;
	for (size_t i = 0; i < f->nr_vma; i++)
		in_vmas += f->vma[i].ptes > 0 ? f->vma[i].ptes : 0;
	for (size_t i = 0; i < f->nr_pass; i++)
		in_passes += f->pass[i].ptes > 0 ? f->pass[i].ptes : 0;
	if (in_passes >= in_vmas)
		return;
	f->flags |= PT_FORK_UNKNOWN_LOOP;
	f->pte_passes = f->lock_breaks = PT_NULL;
	f->max_lock_hold_ns = NO_TIME;
	for (size_t i = 0; i < f->nr_pass; i++)
		f->pass[i].resumed = false;
}

/* Passes from the graph: candidates made passes by the rules, their nulls
 * from what the trace could show. */
static int graph_passes(struct pt_fork *f, const uint64_t *counts, const struct pass_cand *cand,
			size_t nr_cand, pt_caps caps)
{
	bool lock = caps & (PT_CAP(PT_ROLE_LOCK) | PT_CAP(PT_ROLE_LOCK_MAP));
	bool cpte = caps & PT_CAP(PT_ROLE_COPY_PTE_RANGE);
	bool passes_known;
	int ret = recon_fork_finalize_passes(f, cand, nr_cand, caps & PT_CAP(PT_ROLE_UNLOCK),
					     &passes_known);

	if (ret)
		return ret;
	if ((lock || cpte) && passes_known)
		f->pte_passes = (int64_t)f->nr_pass;
	else
		f->pte_passes = PT_NULL;
	/* Lock breaks need the pass boundaries and a way to tell a new PMD from a
	 * resumed one: copy_pte_range calls, or __pte_alloc calls. */
	if (lock && passes_known && (cpte || (caps & PT_CAP(PT_ROLE_PTE_ALLOC)))) {
		int64_t breaks = 0;

		for (size_t i = 0; i < f->nr_pass; i++)
			breaks += f->pass[i].resumed;
		f->lock_breaks = breaks;
	} else {
		f->lock_breaks = PT_NULL;
		for (size_t i = 0; i < f->nr_pass; i++)
			f->pass[i].resumed = false;
	}
	if (caps & PT_CAP(PT_ROLE_PTE))
		f->ptes = (int64_t)counts[PT_ROLE_PTE];
	else if (caps & PT_CAP(PT_ROLE_PTE_COPY))
		f->ptes = (int64_t)counts[PT_ROLE_PTE_COPY];
	else
		f->ptes = PT_NULL;
	if (!(caps & (PT_CAP(PT_ROLE_PTE) | PT_CAP(PT_ROLE_PTE_COPY)))) {
		for (size_t i = 0; i < f->nr_pass; i++)
			f->pass[i].ptes = -1;
		for (size_t i = 0; i < f->nr_vma; i++)
			f->vma[i].ptes = -1;
	}
	f->max_lock_hold_ns = NO_TIME;
	if (lock && (caps & PT_CAP_TIMES)) {
		uint64_t max = 0;
		bool unknown = false;

		for (size_t i = 0; i < f->nr_pass; i++) {
			if (f->pass[i].hold_ns == NO_TIME)
				unknown = true;
			else if (f->pass[i].hold_ns > max)
				max = f->pass[i].hold_ns;
		}
		if (!unknown || max)
			f->max_lock_hold_ns = max;
	}
	check_loop(f, caps);
	return 0;
}

/*
 * What the clone made (fork.h): from its flags where task_newtask gave them.
 * Else from its calls (function_graph replays without that event): the
 * parent waiting for the child in kernel_clone (wait_for_vfork_done) is a
 * spawn; a copy of the address space (dup_mmap or copy_page_range ran) is a
 * fork; a whole kernel_clone with neither, in a trace that shows the copy,
 * shared the address space: a thread where the trace shows vfork waits at
 * all (a CLONE_VM child nobody waits for, which no libc or runtime makes,
 * would look the same), unknown where it does not.
 */
static enum pt_fork_kind fork_kind(const struct pt_fork *f, const uint64_t *counts, pt_caps caps)
{
	pt_caps copy = PT_CAP(PT_ROLE_DUP_MMAP) | PT_CAP(PT_ROLE_COPY_PAGE_RANGE);

	if (f->has_clone_flags)
		return pt_kind_of_flags(f->clone_flags);
	if (counts[PT_ROLE_VFORK_WAIT])
		return PT_KIND_SPAWN;
	if (counts[PT_ROLE_DUP_MMAP] || counts[PT_ROLE_COPY_PAGE_RANGE] || f->nr_vma)
		return PT_KIND_FORK;
	if (!f->complete || !counts[PT_ROLE_KERNEL_CLONE] || !(caps & copy))
		return PT_KIND_UNKNOWN;
	return caps & PT_CAP(PT_ROLE_VFORK_WAIT) ? PT_KIND_THREAD : PT_KIND_UNKNOWN;
}

int recon_fork_apply_caps(struct pt_fork *f, const uint64_t *counts, const struct pass_cand *cand,
			  size_t nr_cand, const struct site_build *site, int64_t child_slack,
			  pt_caps caps, const char **why)
{
	bool cpr = caps & PT_CAP(PT_ROLE_COPY_PAGE_RANGE);
	int ret = 0;

	*why = NULL;
	if ((caps & PT_CAP_PASS_SITES) && site)
		*why = recon_site_finish(f, site, caps, child_slack);
	else
		ret = graph_passes(f, counts, cand, nr_cand, caps);
	if (ret)
		return ret;
	f->vmas = cpr ? (int64_t)f->nr_vma : PT_NULL;
	if (!cpr)
		f->copy_page_range_ns = NO_TIME;
	if (!(caps & (PT_CAP_SWITCH | PT_CAP_TASK_CTR)) || !cpr || f->copy_page_range_ns == NO_TIME) {
		f->copy_resched = PT_NULL;
		f->copy_offcpu_ns = NO_TIME;
	}
	if (f->flags) /* a flagged fork is never complete */
		f->complete = false;
	f->kind = fork_kind(f, counts, caps);
	return 0;
}

static int hand_over(struct recon *r, struct fork_build *b)
{
	int ret = 0;

	if (r->opts.caps_known) {
		const char *why;

		ret = recon_fork_apply_caps(&b->f, b->counts, b->cand, b->nr_cand, &b->site,
					    r->opts.child_rss_slack, r->caps, &why);
		if (why)
			r->site_why = why;
		if (b->switch_gap && (r->caps & PT_CAP_SWITCH_WINDOW)) {
			/* another fork disarmed sched_switch while this one copied:
			 * its preemptions were not all recorded */
			b->f.copy_resched = PT_NULL;
			b->f.copy_offcpu_ns = NO_TIME;
		}
		if (!ret)
			ret = recon_call_on_fork(r, &b->f);
		recon_fork_build_free(b);
		return ret;
	}
	/* replay: hold it; the counts are folded in now, the nulls decided later */
	if (pt_grow_array((void **)&r->held, &r->cap_held, r->nr_held + 1, sizeof(*r->held))) {
		recon_fork_build_free(b);
		return -ENOMEM;
	}
	r->held[r->nr_held].f = b->f;
	memcpy(r->held[r->nr_held].counts, b->counts, sizeof(b->counts));
	r->held[r->nr_held].cand = b->cand;
	r->held[r->nr_held].nr_cand = b->nr_cand;
	r->held[r->nr_held].containers = b->containers;
	r->held[r->nr_held].saw_root_entry = b->saw_root_entry;
	r->held[r->nr_held].gap_end = b->gap_end;
	r->nr_held++;
	free(b);
	return 0;
}

/* The piece of @b's task that ended at a gap, still held (replay), or NULL. */
static struct held *gap_piece(struct recon *r, const struct fork_build *b)
{
	for (size_t i = r->nr_held; i-- > 0;) {
		struct held *h = &r->held[i];

		if (h->f.parent_pid == b->f.parent_pid && h->f.input == b->f.input)
			return h->gap_end ? h : NULL;
	}
	return NULL;
}

/* Appends piece @b (its VMAs, pass candidates, counts, times) to the held
 * piece @h it continues; @b is freed. The joined fork is whole if both were. */
static int join_piece(struct held *h, struct fork_build *b)
{
	struct pt_fork *d = &h->f, *s = &b->f;
	struct pt_vma_copy *v = realloc(d->vma, (d->nr_vma + s->nr_vma + 1) * sizeof(*v));
	struct pass_cand *c = realloc(h->cand, (h->nr_cand + b->nr_cand + 1) * sizeof(*c));

	if (v)
		d->vma = v;
	if (c)
		h->cand = c;
	if (!v || !c) {
		recon_fork_build_free(b);
		return -ENOMEM;
	}
	if (s->nr_vma)
		memcpy(d->vma + d->nr_vma, s->vma, s->nr_vma * sizeof(*v));
	for (size_t i = 0; i < b->nr_cand; i++) {
		c[h->nr_cand + i] = b->cand[i];
		c[h->nr_cand + i].container += h->containers;
		if (b->cand[i].vma >= 0)
			c[h->nr_cand + i].vma += (int32_t)d->nr_vma;
	}
	h->nr_cand += b->nr_cand;
	h->containers += b->containers;
	d->nr_vma += s->nr_vma;
	for (int i = 0; i < PT_ROLE_COUNT; i++)
		h->counts[i] += b->counts[i];
	d->copy_page_range_ns += s->copy_page_range_ns;
	d->copy_resched += s->copy_resched;
	d->copy_offcpu_ns += s->copy_offcpu_ns;
	d->child_pid = s->child_pid;
	memcpy(d->child_comm, s->child_comm, sizeof(d->child_comm));
	d->flags = (d->flags & ~(unsigned)PT_FORK_BOUNDARY_INFERRED) | s->flags;
	d->complete = !(d->flags & (PT_FORK_LOST_EVENTS | PT_FORK_PARTIAL)) && h->saw_root_entry;
	h->gap_end = false;
	recon_fork_build_free(b);
	return 0;
}

int recon_fork_end(struct recon *r, struct task *t, bool boundary_inferred)
{
	struct fork_build *b = t->fork;
	struct held *h;

	if (!b)
		return 0;
	recon_susp_drop(t);
	t->fork = NULL;
	if (b->after_gap && !boundary_inferred && (h = gap_piece(r, b))) {
		/* its fork event came: the piece before the gap was this fork's */
		t->seen_before = true;
		return join_piece(h, b);
	}
	/* a piece that began at a gap and could not be joined: where it began
	 * was inferred, so it is never complete */
	if (boundary_inferred || b->after_gap)
		b->f.flags |= PT_FORK_BOUNDARY_INFERRED;
	b->f.complete = !b->f.flags && b->saw_root_entry;
	if ((r->caps & PT_CAP_TASK_CTR) && !b->ctr_ok) {
		/* the counters were not read at both ends of this fork */
		b->f.copy_resched = PT_NULL;
		b->f.copy_offcpu_ns = NO_TIME;
	}
	if (!b->f.parent_comm[0])
		memcpy(b->f.parent_comm, t->comm, sizeof(b->f.parent_comm));
	t->seen_before = true;
	return hand_over(r, b);
}
