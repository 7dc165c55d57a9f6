/* SPDX-License-Identifier: MIT */
/*
 * Reconstruction, the pass machine (recon.c has the overview): the direct
 * children of the innermost copy_pte_range (or copy_page_range where it is
 * inlined) make pass candidates -- runs of lock calls, their unlocks and what
 * ends them -- and, when the fork ends, the candidates become its passes and
 * lock breaks (fork_finalize_passes; docs/architecture.md has the rules).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "recon_internal.h"
#include "util.h"

void recon_pass_end(struct task *t, uint64_t end_hint, bool by_resched, int switched)
{
	struct fork_build *b = t->fork;
	struct pass_state *ps = &t->ps;
	struct pass_cand *c;

	if (!ps->in_pass)
		return;
	ps->in_pass = false;
	if (!b || !b->nr_cand)
		return;
	c = &b->cand[b->nr_cand - 1];
	c->ptes = ps->ptes;
	c->locks = (uint16_t)(ps->locks > UINT16_MAX ? UINT16_MAX : ps->locks);
	c->unlocks = (uint16_t)(ps->unlocks > UINT16_MAX ? UINT16_MAX : ps->unlocks);
	c->resched_end = by_resched;
	c->switched = (int8_t)switched;
	if (ps->hold_end == NO_TIME)
		ps->hold_end = end_hint;
	if (ps->hold_start != NO_TIME && ps->hold_end != NO_TIME && ps->hold_end >= ps->hold_start)
		c->hold_ns = ps->hold_end - ps->hold_start;
}

static int pass_begin(struct task *t, uint64_t start, bool cpte_container)
{
	struct fork_build *b = t->fork;
	struct pass_state *ps = &t->ps;

	if (pt_grow_array((void **)&b->cand, &b->cand_cap, b->nr_cand + 1, sizeof(*b->cand)))
		return -ENOMEM;
	b->cand[b->nr_cand++] = (struct pass_cand){
	    .vma = b->f.nr_vma ? (int32_t)b->f.nr_vma - 1 : -1,
	    .container = b->containers,
	    .start_ns = start,
	    .hold_ns = NO_TIME,
	    .cpte = cpte_container,
	    .alloc_before = ps->pte_alloc_pending,
	    .swap_before = ps->swap_pending,
	    .foreign_before = ps->lone_unlock && !ps->pte_alloc_pending,
	    .switched = -1,
	};
	ps->in_pass = true;
	ps->locks = ps->unlocks = 0;
	ps->hold_start = start;
	ps->hold_end = NO_TIME;
	ps->ptes = 0;
	ps->pte_alloc_pending = ps->swap_pending = ps->lone_unlock = false;
	return 0;
}

/* A direct child of the current container returned: drive the pass machine. */
int recon_pass_child(struct task *t, enum pt_role role, uint64_t start, uint64_t end, uint64_t dur)
{
	int switched;

	struct pass_state *ps = &t->ps;
	bool cpte = t->stack[t->container_depth].role == PT_ROLE_COPY_PTE_RANGE;
	int ret;

	switch (role) {
	case PT_ROLE_LOCK:
	case PT_ROLE_LOCK_MAP: /* the lock is taken inside it (6.12, 7.2) */
		if (ps->in_pass && (ps->unlocks > 0 || ps->locks >= 2))
			recon_pass_end(t, start, false, -1);
		if (!ps->in_pass && (ret = pass_begin(t, start, cpte)))
			return ret;
		ps->locks++;
		break;
	case PT_ROLE_UNLOCK:
		/* once every lock of the candidate is released, a further unlock
		 * is someone else's (a huge PMD copy's allocation, on kernels with
		 * no cond_resched() to end the pass first) */
		if (ps->in_pass && ps->unlocks < ps->locks) {
			ps->unlocks++;
			ps->hold_end = end;
		} else {
			ps->lone_unlock = true;
		}
		break;
	case PT_ROLE_RESCHED:
		switched = t->resched_children || (dur != NO_TIME && dur >= RESCHED_SWITCH_NS);
		if (!t->resched_children && dur == NO_TIME)
			switched = -1;
		recon_pass_end(t, start, true, switched);
		break;
	case PT_ROLE_PTE_ALLOC:
		recon_pass_end(t, start, false, -1);
		ps->pte_alloc_pending = true;
		break;
	case PT_ROLE_SWAP_CONT:
		recon_pass_end(t, start, false, -1);
		ps->swap_pending = true;
		break;
	default:
		break;
	}
	return 0;
}

/* A candidate looks like a PTE pass: both PTE locks taken and released. */
static bool pass_shaped(const struct pass_cand *c)
{
	return c->locks >= 2 && c->unlocks >= 2;
}

/*
 * Whether a candidate of a fork is a pass (docs/architecture.md, "Passes").
 * Inside a copy_pte_range call every candidate is. Where copy_pte_range is
 * inlined, @resched_mode (the kernel calls cond_resched() after every pass and
 * the trace shows it): a pass takes two locks and ends with __cond_resched.
 * Otherwise (rt and lazy-preemption kernels, where cond_resched() is a no-op,
 * or a filter without it): a pass takes and releases both locks. Either way a
 * candidate after the unlock of untraced work and no __pte_alloc is foreign.
 */
static bool is_pass(const struct pass_cand *c, bool resched_mode)
{
	if (c->cpte)
		return true;
	if (c->foreign_before)
		return false;
	return resched_mode ? c->resched_end && c->locks >= 2 : pass_shaped(c);
}

int recon_fork_finalize_passes(struct pt_fork *f, const struct pass_cand *cand, size_t n,
			       bool unlocks_traced, bool *passes_known)
{
	bool resched_mode = false, first = true, alloc = false, swap = false;
	uint32_t container = UINT32_MAX;
	int prev_switched = -1;

	*passes_known = true;
	for (size_t i = 0; i < n; i++)
		if (!cand[i].cpte && cand[i].resched_end && cand[i].locks >= 2)
			resched_mode = true;
	free(f->pass);
	f->pass = NULL;
	f->nr_pass = 0;
	if (n && !(f->pass = calloc(n, sizeof(*f->pass))))
		return -ENOMEM;
	for (size_t i = 0; i < f->nr_vma; i++)
		f->vma[i].passes = 0;
	for (size_t i = 0; i < n; i++) {
		const struct pass_cand *c = &cand[i];
		struct pt_pte_pass *p;

		if (c->container != container) {
			container = c->container;
			first = true;
			alloc = swap = false;
		}
		alloc |= c->alloc_before;
		swap |= c->swap_before;
		/* told by shape, a pass needs its unlocks in the trace */
		if (!c->cpte && !resched_mode && !unlocks_traced)
			*passes_known = false;
		if (!is_pass(c, resched_mode))
			continue;
		p = &f->pass[f->nr_pass++];
		p->vma = c->vma;
		p->ptes = c->ptes;
		p->start_ns = c->start_ns;
		p->hold_ns = c->hold_ns;
		p->new_pmd = first || (!c->cpte && alloc);
		/* resumed after a lock break: the previous pass's cond_resched did
		 * schedule (or the trace cannot say) */
		p->resumed = !p->new_pmd && !swap && prev_switched != 0;
		prev_switched = c->switched;
		if (c->vma >= 0 && (size_t)c->vma < f->nr_vma)
			f->vma[c->vma].passes++;
		first = false;
		alloc = swap = false;
	}
	return 0;
}
