/* SPDX-License-Identifier: MIT */
/*
 * Reconstruction, passes from call sites (recon.c has the overview): live
 * capture's two probes inside copy_page_range mark where each
 * copy_pte_range pass takes the child's PTE lock and where it drops it, and
 * the second reads where the copy loop stopped (addr), the end of the range
 * it was copying (end), its ret and the pass's RSS counts (pt_site). A pass
 * is a start and the end after it, inside the task's open copy_page_range
 * call; it holds the lock from the one to the other; it broke the lock when
 * it stopped before its end with no error (the loop's `progress` check saw a
 * reschedule due or the lock contended); the pass after a break or a retry
 * resumed the same PMD, any other began a new one; its PTEs are the present
 * ones it copied (file + anon + shmem).
 *
 * Every pass is checked as it ends, and the fork once more at its end,
 * against what must hold whatever the kernel: the two probes alternate, the
 * lock dropped is the one taken (where the start reads it), addr and end are
 * page-aligned, within one PMD, inside the VMA being copied and after where
 * the pass began, the counts fit in what the pass scanned, ret is 0, a batch
 * size or an errno, and the counts add up to the child's own counters read at
 * wake_up_new_task (within the slack the caller gives; anon pages may exceed
 * them by whole huge pages, which copy_huge_pmd adds outside any pass). The
 * first failure flags the fork pass_mismatch and nulls its pass figures:
 * a probe reading the wrong slot on some kernel never shows as numbers.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "recon_internal.h"
#include "util.h"

#define PAGE_BYTES 4096ull
#define PMD_BYTES (2ull << 20)
#define PTES_PER_PMD 512
#define HUGE_PAGES_PER_PMD 512 /* copy_huge_pmd adds whole PMDs of anon pages */
#define MAX_ERRNO 4095

/* rss[] indices (the kernel's MM_FILEPAGES, MM_ANONPAGES, MM_SWAPENTS, MM_SHMEMPAGES) */
enum { RSS_FILE, RSS_ANON, RSS_SWAP, RSS_SHMEM };

static void site_bad(struct fork_build *b, const char *why)
{
	if (!b->site.bad)
		b->site.bad = why;
}

/* The copy_page_range frame passes of @t belong to, or NULL. */
static const struct frame *site_frame(const struct task *t)
{
	if (!t->fork || t->container_depth < 0 || t->container_depth >= t->len)
		return NULL;
	return t->stack[t->container_depth].role == PT_ROLE_COPY_PAGE_RANGE
		   ? &t->stack[t->container_depth]
		   : NULL;
}

static void site_start(struct fork_build *b, const struct frame *fr, const struct pt_event *ev)
{
	struct site_build *s = &b->site;

	if (s->open)
		site_bad(b, "a pass started while another was open");
	if (ev->site->addr &&
	    ((ev->site->addr & (PAGE_BYTES - 1)) ||
	     (s->has_vma && (ev->site->addr < s->vm_start || ev->site->addr >= s->vm_end))))
		site_bad(b, "a pass began at an address outside the VMA copied");
	s->open = true;
	s->start_ts = ev->ts_ns;
	s->ptl = ev->site->ptl;
	s->addr = ev->site->addr;
	s->vma = fr->vma;
}

/* What is wrong with pass end @e after the start in @s, or NULL. */
static const char *end_check(const struct site_build *s, const struct pt_site *e, uint64_t addr,
			     uint64_t end)
{
	int64_t all = 0;

	if (!s->open)
		return "a pass ended that had not started";
	if (s->ptl && e->ptl && s->ptl != e->ptl)
		return "a pass dropped another PTE lock than it took";
	if ((addr | end) & (PAGE_BYTES - 1) || end - addr > PMD_BYTES)
		return "a pass's addr and end are not within one PMD";
	if (s->has_vma && (addr < s->vm_start || end > s->vm_end))
		return "a pass's addr and end are outside the VMA copied";
	if (s->addr && (addr < s->addr || (end - 1) / PMD_BYTES != s->addr / PMD_BYTES))
		return "a pass ended before, or a PMD after, where it began";
	for (int k = 0; k < 4; k++) {
		if (e->rss[k] < 0 || e->rss[k] > PTES_PER_PMD)
			return "a pass's RSS counts are out of range";
		all += e->rss[k];
	}
	if (all > PTES_PER_PMD || (s->addr && (uint64_t)all > (addr - s->addr) / PAGE_BYTES))
		return "a pass counted more PTEs than it scanned";
	if (e->ret < -MAX_ERRNO || e->ret > PTES_PER_PMD)
		return "a pass's ret is neither a count nor an errno";
	return NULL;
}

static int site_end(struct fork_build *b, const struct frame *fr, const struct pt_event *ev)
{
	struct site_build *s = &b->site;
	const struct pt_site *e = ev->site;
	uint64_t addr = e->a < e->b ? e->a : e->b, end = e->a < e->b ? e->b : e->a;
	const char *why = end_check(s, e, addr, end);
	struct pt_pte_pass *p;
	int32_t ptes;

	if (why) {
		site_bad(b, why);
		s->open = false;
		return 0;
	}
	s->open = false;
	if (pt_grow_array((void **)&b->f.pass, &s->pass_cap, b->f.nr_pass + 1, sizeof(*b->f.pass)))
		return -ENOMEM;
	ptes = e->rss[RSS_FILE] + e->rss[RSS_ANON] + e->rss[RSS_SHMEM];
	p = &b->f.pass[b->f.nr_pass++];
	*p = (struct pt_pte_pass){
	    .vma = fr->vma,
	    .ptes = ptes,
	    .start_ns = s->start_ts,
	    .hold_ns = s->start_ts != NO_TIME && ev->ts_ns != NO_TIME && ev->ts_ns >= s->start_ts
			   ? ev->ts_ns - s->start_ts
			   : NO_TIME,
	    /* the same VMA and the previous pass stopped early: this one resumed */
	    .new_pmd = !(s->early && s->prev_vma == fr->vma),
	    .resumed = s->broke && s->prev_vma == fr->vma,
	};
	for (int k = 0; k < 4; k++)
		s->sum[k] += e->rss[k];
	if (fr->vma >= 0 && (size_t)fr->vma < b->f.nr_vma) {
		struct pt_vma_copy *v = &b->f.vma[fr->vma];

		v->passes++;
		v->ptes = (v->ptes > 0 ? v->ptes : 0) + ptes;
	}
	/* stopped before its end: a lock break (no error) or a retry */
	s->early = addr < end;
	s->broke = s->early && e->ret >= 0;
	s->breaks += s->broke;
	s->prev_vma = fr->vma;
	return 0;
}

int recon_site_event(struct recon *r, struct task *t, const struct pt_event *ev)
{
	const struct frame *fr;

	r->caps |= PT_CAP_PASS_SITES;
	if (!ev->site || !t || !(fr = site_frame(t)))
		return 0; /* outside a fork we follow: the fork was cut (lost, partial) */
	t->fork->site.seen = true;
	if (ev->type == PT_EV_PASS_START) {
		site_start(t->fork, fr, ev);
		return 0;
	}
	return site_end(t->fork, fr, ev);
}

/* One of the parent's counters in bytes, as /proc/PID/status shows it: a
 * per-CPU counter's sum may read below zero for a moment (status: 0). */
static void mem_set(struct pt_parent_mem *m, enum pt_mem_field k, int64_t v)
{
	pt_mem_set(m, k, v > 0 ? v : 0);
}

/* The parent's memory as the fork began, read by the probe at dup_mmap (or
 * uprobe_dup_mmap) from its mm_struct: what /proc/PID/status and the count
 * of its VMAs would give, read where the fork is, not after it. */
static void parent_mem(struct pt_parent_mem *m, const struct pt_site *s)
{
	mem_set(m, PT_MEM_RSS_ANON, s->parent_rss[RSS_ANON] * (int64_t)PAGE_BYTES);
	mem_set(m, PT_MEM_RSS_FILE, s->parent_rss[RSS_FILE] * (int64_t)PAGE_BYTES);
	mem_set(m, PT_MEM_RSS_SHMEM, s->parent_rss[RSS_SHMEM] * (int64_t)PAGE_BYTES);
	mem_set(m, PT_MEM_PTE, s->parent_pte);
	mem_set(m, PT_MEM_MAP_COUNT, s->parent_maps);
}

void recon_site_entry(struct task *t, enum pt_role role, const struct pt_site *s)
{
	struct site_build *sb;

	if (!t->fork || !s)
		return;
	sb = &t->fork->site;
	if (role == PT_ROLE_COPY_PAGE_RANGE && s->has_vma) {
		if (s->vm_start >= s->vm_end || (s->vm_start | s->vm_end) & (PAGE_BYTES - 1))
			site_bad(t->fork, "copy_page_range's VMA bounds are not a range of pages");
		sb->has_vma = true;
		sb->vm_start = s->vm_start;
		sb->vm_end = s->vm_end;
		sb->early = sb->broke = false; /* a new VMA begins with a new PMD */
	} else if (role == PT_ROLE_WAKE_NEW && s->has_child_rss) {
		sb->has_child = true;
		memcpy(sb->child, s->child_rss, sizeof(sb->child));
	} else if ((role == PT_ROLE_DUP_MMAP || role == PT_ROLE_COPY_START) && s->has_parent_mm) {
		parent_mem(&t->fork->f.mem, s);
	}
}

/* The passes' counts against the child's counters, within @slack per counter;
 * anon may exceed the passes' by whole huge PMDs copied outside any pass. */
static const char *child_check(const struct site_build *s, int64_t slack)
{
	for (int k = 0; k < 4; k++) {
		int64_t d = s->child[k] - s->sum[k], r;

		if (k != RSS_ANON) {
			if (d > slack || d < -slack)
				return "the passes' PTE counts differ from the child's counters";
			continue;
		}
		if (d < -slack)
			return "the passes copied more anon pages than the child has";
		if (slack >= HUGE_PAGES_PER_PMD / 2)
			continue; /* too loose to tell huge pages apart */
		r = d % HUGE_PAGES_PER_PMD;
		if (r > slack && HUGE_PAGES_PER_PMD - r > slack)
			return "the child's anon pages differ from the passes' by less than a huge "
			       "page";
	}
	return NULL;
}

const char *recon_site_finish(struct pt_fork *f, const struct site_build *s, pt_caps caps,
			      int64_t child_slack)
{
	const char *why = s->bad;
	uint64_t max = 0;
	bool unknown = false;
	int64_t ptes = 0;

	if (!why && s->open)
		why = "a pass started and never ended";
	/* a child that shares its parent's mm (a thread, vfork, CLONE_VM: no
	 * copy_page_range) has the parent's counters, not a copy's */
	if (!why && s->has_child && child_slack >= 0 && f->nr_vma &&
	    !(f->flags & (PT_FORK_LOST_EVENTS | PT_FORK_PARTIAL)))
		why = child_check(s, child_slack);
	if (why) {
		/* a fork that lost events is flagged for that already: what was
		 * missed, not the probes, explains it */
		if (!(f->flags & (PT_FORK_LOST_EVENTS | PT_FORK_PARTIAL)))
			f->flags |= PT_FORK_PASS_MISMATCH;
		else
			why = NULL;
		f->pte_passes = f->lock_breaks = f->ptes = PT_NULL;
		f->max_lock_hold_ns = NO_TIME;
		free(f->pass);
		f->pass = NULL;
		f->nr_pass = 0;
		for (size_t i = 0; i < f->nr_vma; i++) {
			f->vma[i].passes = 0;
			f->vma[i].ptes = -1;
		}
		return why;
	}
	for (size_t i = 0; i < f->nr_pass; i++) {
		ptes += f->pass[i].ptes;
		if (f->pass[i].hold_ns == NO_TIME)
			unknown = true;
		else if (f->pass[i].hold_ns > max)
			max = f->pass[i].hold_ns;
	}
	for (size_t i = 0; i < f->nr_vma; i++)
		if (f->vma[i].ptes < 0)
			f->vma[i].ptes = 0; /* copied, with no pass: nothing present */
	f->pte_passes = (int64_t)f->nr_pass;
	f->lock_breaks = s->breaks;
	f->ptes = ptes;
	f->max_lock_hold_ns = (caps & PT_CAP_TIMES) && (!unknown || max) ? max : NO_TIME;
	return NULL;
}
