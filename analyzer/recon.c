/* SPDX-License-Identifier: MIT */
/*
 * Call reconstruction and fork derivation (recon.h).
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

#include "intern.h"
#include "recon.h"
#include "util.h"

#define DEFAULT_SPLIT_GAP_NS 1000000ull
/* A __cond_resched lasting this long scheduled (no switch: about 1 us even under
 * tracing in TCG); one that switched also shows children in a full graph. */
#define RESCHED_SWITCH_NS 20000ull
#define MAX_DEPTH 512
#define NO_TIME PT_NO_TIME

const char *const pt_fork_flag_names[] = {"lost_events", "partial", "boundary_inferred"};

static const struct {
	const char *name;
	enum pt_role role;
} role_names[] = {
	{"kernel_clone", PT_ROLE_KERNEL_CLONE},
	{"_do_fork", PT_ROLE_KERNEL_CLONE},
	{"do_fork", PT_ROLE_KERNEL_CLONE},
	{"copy_process", PT_ROLE_COPY_PROCESS},
	{"dup_mmap", PT_ROLE_DUP_MMAP},
	{"copy_page_range", PT_ROLE_COPY_PAGE_RANGE},
	{"copy_pte_range", PT_ROLE_COPY_PTE_RANGE},
	{"_raw_spin_lock", PT_ROLE_LOCK},
	{"_raw_spin_lock_nested", PT_ROLE_LOCK},
	{"rt_spin_lock", PT_ROLE_LOCK},
	{"rt_spin_lock_nested", PT_ROLE_LOCK},
	{"_raw_spin_unlock", PT_ROLE_UNLOCK},
	{"rt_spin_unlock", PT_ROLE_UNLOCK},
	{"__cond_resched", PT_ROLE_RESCHED},
	{"_cond_resched", PT_ROLE_RESCHED},
	{"__pte_alloc", PT_ROLE_PTE_ALLOC},
	{"add_swap_count_continuation", PT_ROLE_SWAP_CONT},
	{"vm_normal_page", PT_ROLE_PTE},
	{"copy_present_pte", PT_ROLE_PTE_COPY},
	{"copy_present_ptes", PT_ROLE_PTE_COPY},
	{"copy_huge_pmd", PT_ROLE_HUGE},
	{"copy_huge_pud", PT_ROLE_HUGE},
	{"copy_hugetlb_page_range", PT_ROLE_HUGE},
};

enum pt_role pt_role_of(const char *func)
{
	size_t len;

	if (!func)
		return PT_ROLE_OTHER;
	/* compiler clones keep the role: copy_page_range.isra.0, .constprop.0 */
	len = strcspn(func, ".");
	for (size_t i = 0; i < sizeof(role_names) / sizeof(role_names[0]); i++)
		if (strlen(role_names[i].name) == len && !strncmp(role_names[i].name, func, len))
			return role_names[i].role;
	return PT_ROLE_OTHER;
}

static bool is_fork_path(enum pt_role role)
{
	return role >= PT_ROLE_KERNEL_CLONE && role <= PT_ROLE_COPY_PTE_RANGE;
}

static bool is_container(enum pt_role role)
{
	return role == PT_ROLE_COPY_PAGE_RANGE || role == PT_ROLE_COPY_PTE_RANGE;
}

struct frame {
	const char *func;
	uint64_t func_id;
	uint64_t start;	  /* entry time (entry base), NO_TIME if unseen */
	uint8_t role;
	bool placeholder; /* we never saw its entry, nor yet its exit */
	bool in_irq;
	int32_t vma;	  /* copy_page_range frames: index in the fork's vma array */
};

struct pass_state {
	bool in_pass;
	int locks, unlocks;
	uint64_t hold_start, hold_end;
	int32_t ptes;
	bool pte_alloc_pending, swap_pending; /* since the last candidate began */
	bool lone_unlock;		      /* an unlock outside any candidate since then */
};

/*
 * A pass candidate: a run of lock calls among the container's direct
 * children. Untraced helpers (__pmd_alloc's page_table_lock, copy_huge_pmd's
 * PMD locks under a filter) leave lock pairs there too, so which candidates
 * are PTE passes, and which of those resumed a PMD, is decided when the fork
 * is finalised (fork_finalize()).
 */
struct pass_cand {
	int32_t vma;
	uint32_t container; /* serial of its container call in the fork */
	uint64_t start_ns, hold_ns;
	int32_t ptes;
	uint16_t locks;
	bool cpte;	   /* its container is a copy_pte_range call */
	bool resched_end;  /* ended by the __cond_resched after the unlocks */
	bool alloc_before; /* __pte_alloc since the previous candidate */
	bool swap_before;  /* add_swap_count_continuation since then */
	/* an unlock of untraced work (an allocation's trylock/unlock) and no
	 * __pte_alloc since the previous candidate: e.g. copy_huge_pmd's PMD locks */
	bool foreign_before;
	int8_t switched; /* the ending __cond_resched switched: 1, did not: 0, unknown: -1 */
};

struct fork_build {
	struct pt_fork f;
	size_t vma_cap;
	int root_depth;	     /* depth of the outermost fork-path frame */
	bool cpr_rooted;     /* only copy_page_range calls, nothing above them */
	bool saw_root_entry; /* the outermost call's entry was seen */
	uint64_t last_cpr_end;
	uint64_t counts[PT_ROLE_COUNT]; /* calls seen by role */
	struct pass_cand *cand;
	size_t nr_cand, cand_cap;
	uint32_t containers; /* container calls opened so far */
};

struct task {
	int64_t key;
	int pid, cpu;
	char comm[32];
	struct frame *stack;
	int len, cap;
	struct fork_build *fork;
	struct pass_state ps;
	int container_depth; /* innermost open copy_pte_range/copy_page_range, -1 */
	bool seen_before;    /* the task had events before its current fork */
	bool resched_children; /* the open __cond_resched had calls under it */
	bool tainted;	     /* events were lost while its stack was non-empty */
	uint64_t off_since;  /* preempted while copying page tables at this record
			      * time, not yet seen back on a CPU; NO_TIME */
	uint64_t orphan_counts[PT_ROLE_COUNT]; /* calls under unnamed callers */
	/* Frames set aside by an entry at their depth (see suspend()). */
	struct frame *susp;
	int susp_base, susp_len, susp_cap;
};

static void susp_drop(struct task *t);

struct held {
	struct pt_fork f;
	uint64_t counts[PT_ROLE_COUNT];
	struct pass_cand *cand;
	size_t nr_cand;
};

struct recon {
	struct recon_opts opts;
	pt_caps caps;
	struct pt_u64map *roles; /* func_id -> role + 1 */
	struct pt_u64map *index; /* task key -> index in tasks */
	struct task *tasks;
	size_t nr_tasks, cap_tasks;
	struct held *held; /* forks waiting for recon_finish() */
	size_t nr_held, cap_held;
	bool finished;
};

int recon_new(const struct recon_opts *opts, struct recon **out)
{
	struct recon *r = calloc(1, sizeof(*r));

	if (!r)
		return -ENOMEM;
	r->opts = *opts;
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

void pt_fork_release(struct pt_fork *f)
{
	if (!f)
		return;
	free(f->vma);
	free(f->pass);
	f->vma = NULL;
	f->pass = NULL;
	f->nr_vma = f->nr_pass = 0;
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

static void fork_build_free(struct fork_build *b)
{
	if (!b)
		return;
	pt_fork_release(&b->f);
	free(b->cand);
	free(b);
}

void recon_free(struct recon *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->nr_tasks; i++) {
		free(r->tasks[i].stack);
		free(r->tasks[i].susp);
		fork_build_free(r->tasks[i].fork);
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
	if (ev->func_id && pt_u64map_get(r->roles, ev->func_id, &v))
		return (enum pt_role)(v - 1);
	role = pt_role_of(ev->func);
	if (ev->func_id)
		pt_u64map_put(r->roles, ev->func_id, (uint32_t)role + 1);
	return role;
}

static int64_t task_key(int pid, int cpu)
{
	return pid >= 0 ? pid : ((int64_t)1 << 40) + cpu + 1;
}

static struct task *task_get(struct recon *r, int pid, int cpu)
{
	int64_t key = task_key(pid, cpu);
	uint32_t idx;
	struct task *t;

	if (pt_u64map_get(r->index, (uint64_t)key, &idx))
		return &r->tasks[idx];
	if (r->nr_tasks == r->cap_tasks) {
		size_t cap = r->cap_tasks ? r->cap_tasks * 2 : 64;
		struct task *tasks = realloc(r->tasks, cap * sizeof(*tasks));

		if (!tasks)
			return NULL;
		r->tasks = tasks;
		r->cap_tasks = cap;
	}
	if (pt_u64map_put(r->index, (uint64_t)key, (uint32_t)r->nr_tasks))
		return NULL;
	t = &r->tasks[r->nr_tasks++];
	*t = (struct task){.key = key, .pid = pid, .cpu = cpu, .container_depth = -1,
			   .off_since = NO_TIME};
	return t;
}

/* The task of @pid if it was seen, else NULL. */
static struct task *task_find(struct recon *r, int pid)
{
	uint32_t idx;

	return pid >= 0 && pt_u64map_get(r->index, (uint64_t)task_key(pid, -1), &idx)
		       ? &r->tasks[idx]
		       : NULL;
}

static void task_set_comm(struct task *t, const char *comm)
{
	if (comm && *comm && strncmp(t->comm, comm, sizeof(t->comm) - 1)) {
		strncpy(t->comm, comm, sizeof(t->comm) - 1);
		t->comm[sizeof(t->comm) - 1] = '\0';
	}
}

/* ------------------------------------------------------------- fork builder */

static int fork_begin(struct recon *r, struct task *t, int depth, uint64_t ts)
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

static int fork_finalize_passes(struct pt_fork *f, const struct pass_cand *cand, size_t n,
				bool *passes_known);

/* Builds @f's passes from its candidates and decides its nulls from what the
 * trace could show (@caps). Returns 0 or -ENOMEM. */
static int fork_apply_caps(struct pt_fork *f, const uint64_t *counts, const struct pass_cand *cand,
			   size_t nr_cand, pt_caps caps)
{
	bool lock = caps & PT_CAP(PT_ROLE_LOCK), cpte = caps & PT_CAP(PT_ROLE_COPY_PTE_RANGE);
	bool cpr = caps & PT_CAP(PT_ROLE_COPY_PAGE_RANGE);
	bool passes_known;
	int ret = fork_finalize_passes(f, cand, nr_cand, &passes_known);

	if (ret)
		return ret;
	f->vmas = cpr ? (int64_t)f->nr_vma : PT_NULL;
	if (!cpr)
		f->copy_page_range_ns = NO_TIME;
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
	if (!(caps & PT_CAP_SWITCH) || !cpr || f->copy_page_range_ns == NO_TIME) {
		f->copy_resched = PT_NULL;
		f->copy_offcpu_ns = NO_TIME;
	}
	if (f->flags & (PT_FORK_LOST_EVENTS | PT_FORK_PARTIAL | PT_FORK_BOUNDARY_INFERRED))
		f->complete = false;
	return 0;
}

static int hand_over(struct recon *r, struct fork_build *b)
{
	int ret = 0;

	if (r->opts.caps_known) {
		ret = fork_apply_caps(&b->f, b->counts, b->cand, b->nr_cand, r->caps);
		if (!ret && r->opts.on_fork)
			ret = r->opts.on_fork(&b->f, r->opts.ctx);
		fork_build_free(b);
		return ret;
	}
	/* replay: hold it; the counts are folded in now, the nulls decided later */
	if (pt_grow_array((void **)&r->held, &r->cap_held, r->nr_held + 1, sizeof(*r->held))) {
		fork_build_free(b);
		return -ENOMEM;
	}
	r->held[r->nr_held].f = b->f;
	memcpy(r->held[r->nr_held].counts, b->counts, sizeof(b->counts));
	r->held[r->nr_held].cand = b->cand;
	r->held[r->nr_held].nr_cand = b->nr_cand;
	r->nr_held++;
	free(b);
	return 0;
}

static int fork_end(struct recon *r, struct task *t, bool boundary_inferred)
{
	struct fork_build *b = t->fork;

	if (!b)
		return 0;
	susp_drop(t);
	t->fork = NULL;
	if (boundary_inferred)
		b->f.flags |= PT_FORK_BOUNDARY_INFERRED;
	b->f.complete = !(b->f.flags & (PT_FORK_LOST_EVENTS | PT_FORK_PARTIAL)) &&
			b->saw_root_entry && !boundary_inferred;
	if (!b->f.parent_comm[0])
		memcpy(b->f.parent_comm, t->comm, sizeof(b->f.parent_comm));
	t->seen_before = true;
	return hand_over(r, b);
}

static void pass_end(struct task *t, uint64_t end_hint, bool by_resched, int switched)
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
static int pass_child(struct task *t, enum pt_role role, uint64_t start, uint64_t end,
		      uint64_t dur)
{
	int switched;

	struct pass_state *ps = &t->ps;
	bool cpte = t->stack[t->container_depth].role == PT_ROLE_COPY_PTE_RANGE;
	int ret;

	switch (role) {
	case PT_ROLE_LOCK:
		if (ps->in_pass && (ps->unlocks > 0 || ps->locks >= 2))
			pass_end(t, start, false, -1);
		if (!ps->in_pass && (ret = pass_begin(t, start, cpte)))
			return ret;
		ps->locks++;
		break;
	case PT_ROLE_UNLOCK:
		if (ps->in_pass) {
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
		pass_end(t, start, true, switched);
		break;
	case PT_ROLE_PTE_ALLOC:
		pass_end(t, start, false, -1);
		ps->pte_alloc_pending = true;
		break;
	case PT_ROLE_SWAP_CONT:
		pass_end(t, start, false, -1);
		ps->swap_pending = true;
		break;
	default:
		break;
	}
	return 0;
}

/*
 * Turns a fork's pass candidates into its passes. Where copy_pte_range is a
 * function every candidate inside it is a pass. Where it is inlined, a PTE
 * pass takes the two PTE locks and ends with the cond_resched() that follows
 * every pass; when the fork shows any such candidate, candidates that do not
 * look like that are foreign lock pairs and are dropped; when it shows none
 * (a kernel or filter without __cond_resched), passes cannot be told apart:
 * *passes_known is false. A kept pass starts a new PMD when it is the first
 * of its container call or a __pte_alloc came since the previous kept pass;
 * otherwise it resumed after a lock break, unless a swap continuation
 * explains the retry. Returns 0 or -ENOMEM.
 */
static int fork_finalize_passes(struct pt_fork *f, const struct pass_cand *cand, size_t n,
				bool *passes_known)
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
		if (!c->cpte && resched_mode &&
		    (!(c->resched_end && c->locks >= 2) || c->foreign_before))
			continue;
		if (!c->cpte && !resched_mode)
			*passes_known = false;
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

/* ------------------------------------------------------------------ stacks */

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

static int frame_opened(struct recon *r, struct task *t, int depth, uint64_t ts,
			bool entry_seen);
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
			pass_end(t, NO_TIME, false, -1);
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
		t->stack[t->len++] = (struct frame){.placeholder = true, .start = NO_TIME, .vma = -1};
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
static void susp_drop(struct task *t)
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

	susp_drop(t);
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
		susp_drop(t);
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
 * aside (suspend()), missing levels above it become placeholders. */
static int frame_push(struct recon *r, struct task *t, const struct pt_event *ev,
		      enum pt_role role, int depth)
{
	int ret;

	if (t->susp_len && depth < t->susp_base)
		susp_drop(t);
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
	return frame_opened(r, t, depth, ev->ts_ns, true);
}

static int on_entry(struct recon *r, struct task *t, const struct pt_event *ev, enum pt_role role)
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

static void task_swap(struct task *a, struct task *b)
{
	struct task tmp = *a;

	/* keys and identities stay; what runs on them moves */
	a->stack = b->stack, a->len = b->len, a->cap = b->cap, a->fork = b->fork, a->ps = b->ps;
	a->container_depth = b->container_depth, a->seen_before = b->seen_before;
	a->tainted = b->tainted;
	a->susp = b->susp, a->susp_base = b->susp_base, a->susp_len = b->susp_len;
	a->susp_cap = b->susp_cap;
	memcpy(a->orphan_counts, b->orphan_counts, sizeof(a->orphan_counts));
	b->stack = tmp.stack, b->len = tmp.len, b->cap = tmp.cap, b->fork = tmp.fork, b->ps = tmp.ps;
	b->container_depth = tmp.container_depth, b->seen_before = tmp.seen_before;
	b->tainted = tmp.tainted;
	b->susp = tmp.susp, b->susp_base = tmp.susp_base, b->susp_len = tmp.susp_len;
	b->susp_cap = tmp.susp_cap;
	memcpy(b->orphan_counts, tmp.orphan_counts, sizeof(b->orphan_counts));
}

static int on_exit_ev(struct recon *r, struct task *t, const struct pt_event *ev,
		      enum pt_role role, bool leaf)
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
	if (!leaf && (t->len <= depth || t->stack[depth].placeholder)) {
		struct task *o = find_migrated(r, t, ev, depth);

		if (o) {
			/* what this CPU showed under the unknown caller was the migrated call */
			task_swap(t, o);
			if (t->fork) {
				for (int i = 0; i < PT_ROLE_COUNT; i++)
					t->fork->counts[i] += o->orphan_counts[i];
			}
			memset(o->orphan_counts, 0, sizeof(o->orphan_counts));
			o->len = 0;
		}
	}
	if (leaf) {
		if ((ret = frame_push(r, t, ev, role, depth)))
			return ret;
	} else {
		if (t->len > depth + 1 && (ret = stack_cut(r, t, depth + 1)))
			return ret;
		if (t->len <= depth) {
			/* orphan: its entry is before the recording (or was lost) */
			if ((ret = stack_fill(t, depth + 1)))
				return ret;
		}
		fr = t->stack[depth];
		if (ev->func && (fr.placeholder || !fr.func)) {
			t->stack[depth].func = ev->func;
			t->stack[depth].func_id = ev->func_id;
			t->stack[depth].role = (uint8_t)role;
			t->stack[depth].in_irq = ev->in_irq;
			if (fr.placeholder && is_fork_path(role)) {
				/* a fork-path call whose entry we never saw */
				t->stack[depth].placeholder = false;
				if ((ret = frame_opened(r, t, depth, NO_TIME, false)))
					return ret;
				if (t->fork) {
					struct fork_build *fb = t->fork;
					struct frame *cf = &t->stack[depth];

					fb->f.flags |= PT_FORK_PARTIAL;
					for (int i = 0; i < PT_ROLE_COUNT; i++)
						fb->counts[i] += t->orphan_counts[i];
					if (cf->vma >= 0)
						fb->f.vma[cf->vma].ptes +=
							(int32_t)t->orphan_counts[PT_ROLE_PTE];
					memset(t->orphan_counts, 0, sizeof(t->orphan_counts));
				}
			}
			t->stack[depth].placeholder = false;
		} else if (ev->func && fr.func_id != ev->func_id && fr.func &&
			   strcmp(fr.func, ev->func)) {
			/* the exit names another call than the one open here */
			if (t->fork)
				t->fork->f.flags |= PT_FORK_LOST_EVENTS;
		}
	}
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
	ret = frame_closed(r, t, depth, &fr, start, end, dur, entry_seen && !fr.placeholder);
	return ret;
}

/* A call opened at @depth (t->stack[depth]): maybe a fork or a container begins. */
static int frame_opened(struct recon *r, struct task *t, int depth, uint64_t ts,
			bool entry_seen)
{
	struct frame *fr = &t->stack[depth];
	enum pt_role role = fr->role;
	struct fork_build *b;
	int ret;

	if (!is_fork_path(role) || fr->in_irq)
		return 0;
	b = t->fork;
	if (b && b->cpr_rooted && depth <= b->root_depth) {
		/* a run of copy_page_range calls with nothing above them */
		bool gap = role != PT_ROLE_COPY_PAGE_RANGE ||
			   (ts != NO_TIME && b->last_cpr_end != NO_TIME &&
			    ts > b->last_cpr_end + r->opts.split_gap_ns);

		if (gap) {
			if ((ret = fork_end(r, t, true)))
				return ret;
			b = NULL;
		}
	}
	if (!b) {
		bool below_open = false;

		for (int d = 0; d < depth; d++)
			if (t->stack[d].placeholder || is_fork_path(t->stack[d].role))
				below_open = true;
		if ((ret = fork_begin(r, t, depth, ts)))
			return ret;
		b = t->fork;
		b->saw_root_entry = entry_seen && !below_open;
		if (below_open)
			b->f.flags |= PT_FORK_PARTIAL;
		b->cpr_rooted = (role == PT_ROLE_COPY_PAGE_RANGE || role == PT_ROLE_COPY_PTE_RANGE) &&
				!below_open;
		/* a copy_page_range run is whole only if the task was seen before it */
		if (b->cpr_rooted && !t->seen_before)
			b->f.flags |= PT_FORK_PARTIAL;
	} else if (depth < b->root_depth) {
		b->root_depth = depth;
	}
	if (b->f.ts_ns == NO_TIME)
		b->f.ts_ns = ts;
	if (role == PT_ROLE_COPY_PAGE_RANGE) {
		struct pt_vma_copy *v;

		if (pt_grow_array((void **)&b->f.vma, &b->vma_cap, b->f.nr_vma + 1, sizeof(*b->f.vma)))
			return -ENOMEM;
		fr->vma = (int32_t)b->f.nr_vma;
		v = &b->f.vma[b->f.nr_vma++];
		*v = (struct pt_vma_copy){.start_ns = NO_TIME, .dur_ns = NO_TIME};
	}
	if (is_container(role)) {
		pass_end(t, NO_TIME, false, -1);
		t->container_depth = depth;
		b->containers++;
		t->ps.pte_alloc_pending = t->ps.swap_pending = false;
		if (role == PT_ROLE_COPY_PTE_RANGE && t->ps.in_pass)
			t->ps.in_pass = false;
	}
	return 0;
}

static int frame_closed(struct recon *r, struct task *t, int depth, const struct frame *fr,
			uint64_t start, uint64_t end, uint64_t dur, bool entry_seen)
{
	enum pt_role role = fr->role;
	struct fork_build *b = t->fork;

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
	if (!fr->in_irq)
		b->counts[role]++;
	if (t->container_depth >= 0 && depth == t->container_depth + 1 && !fr->in_irq) {
		int ret = pass_child(t, role, start, end, dur);

		if (ret)
			return ret;
	}
	if (role == PT_ROLE_PTE && !fr->in_irq) {
		if (t->ps.in_pass)
			t->ps.ptes++;
		for (int d = depth - 1; d >= 0; d--)
			if (t->stack[d].role == PT_ROLE_COPY_PAGE_RANGE && t->stack[d].vma >= 0) {
				b->f.vma[t->stack[d].vma].ptes++;
				break;
			}
	}
	if (role == PT_ROLE_HUGE) {
		for (int d = depth - 1; d >= 0; d--)
			if (t->stack[d].role == PT_ROLE_COPY_PAGE_RANGE && t->stack[d].vma >= 0) {
				b->f.vma[t->stack[d].vma].huge = true;
				break;
			}
	}
	if (!is_fork_path(role) || fr->in_irq)
		return 0;

	/* a fork-path call returned */
	if (is_container(role) && t->container_depth == depth) {
		pass_end(t, end, false, -1);
		container_refresh(t);
	}
	switch (role) {
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
	return fork_end(r, t, false);
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

static int on_fork_event(struct recon *r, const struct pt_event *ev)
{
	struct task *t = task_get(r, ev->pid, ev->cpu);
	struct fork_build *b;
	int ret;

	if (!t)
		return -ENOMEM;
	r->caps |= PT_CAP_FORK_EVENT;
	task_set_comm(t, ev->comm);
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
		if ((ret = fork_begin(r, t, -1, ev->ts_ns)))
			return ret;
		t->fork->saw_root_entry = true;
		t->fork->f.copy_page_range_ns = NO_TIME;
		fork_take_event(t->fork, ev);
		return fork_end(r, t, false);
	}
	b = t->fork;
	fork_take_event(b, ev);
	if (b->cpr_rooted && t->len <= b->root_depth)
		return fork_end(r, t, false);
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
	case PT_EV_LOST:
		on_lost(r, ev);
		return 0;
	case PT_EV_SWITCH:
		return on_switch(r, ev);
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
	task_set_comm(t, ev->comm);
	if (t->off_since != NO_TIME)
		offcpu_close(t, ev->type == PT_EV_EXIT ? ev->rec_ts_ns : ev->ts_ns);
	role = role_of_event(r, ev);
	if (ev->type == PT_EV_ENTRY)
		ret = on_entry(r, t, ev, role);
	else
		ret = on_exit_ev(r, t, ev, role, ev->type == PT_EV_LEAF);
	if (ret)
		return ret;
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
			ret = fork_end(r, t, true);
		} else {
			/* cut by the end of the recording */
			b->f.flags |= PT_FORK_PARTIAL;
			ret = fork_end(r, t, false);
		}
	}
	if (r->opts.caps_known)
		return ret;
	for (size_t i = 0; i < r->nr_held; i++) {
		struct held *h = &r->held[i];

		if (!ret)
			ret = fork_apply_caps(&h->f, h->counts, h->cand, h->nr_cand, r->caps);
		if (!ret && r->opts.on_fork)
			ret = r->opts.on_fork(&h->f, r->opts.ctx);
		pt_fork_release(&h->f);
		free(h->cand);
		h->cand = NULL;
	}
	r->nr_held = 0;
	return ret;
}
