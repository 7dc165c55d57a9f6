/* SPDX-License-Identifier: MIT */
/*
 * What the files of the reconstruction share (recon.c, recon_stack.c,
 * recon_fork.c, recon_pass.c): the state of tasks, frames, forks being built
 * and pass candidates, and the functions one state machine calls in another.
 * Private to those files.
 */
#ifndef PTESCOPE_RECON_INTERNAL_H
#define PTESCOPE_RECON_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "intern.h"
#include "recon.h"

#define DEFAULT_SPLIT_GAP_NS 1000000ull

/* A __cond_resched lasting this long scheduled (no switch: about 1 us even under
 * tracing in TCG); one that switched also shows children in a full graph. */
#define RESCHED_SWITCH_NS 20000ull

#define MAX_DEPTH 512

#define NO_TIME PT_NO_TIME

static inline bool is_fork_path(enum pt_role role)
{
	return role >= PT_ROLE_KERNEL_CLONE && role <= PT_ROLE_COPY_PTE_RANGE;
}

static inline bool is_container(enum pt_role role)
{
	return role == PT_ROLE_COPY_PAGE_RANGE || role == PT_ROLE_COPY_PTE_RANGE;
}

struct frame {
	const char *func;
	uint64_t func_id;
	uint64_t start; /* entry time (entry base), NO_TIME if unseen */
	uint8_t role;
	bool placeholder; /* we never saw its entry, nor yet its exit */
	bool in_irq;
	int32_t vma; /* copy_page_range frames: index in the fork's vma array */
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
	uint16_t locks, unlocks;
	bool cpte;	   /* its container is a copy_pte_range call */
	bool resched_end;  /* ended by the __cond_resched after the unlocks */
	bool alloc_before; /* __pte_alloc since the previous candidate */
	bool swap_before;  /* add_swap_count_continuation since then */
	/* an unlock of untraced work (an allocation's trylock/unlock) and no
	 * __pte_alloc since the previous candidate: e.g. copy_huge_pmd's PMD locks */
	bool foreign_before;
	int8_t switched; /* the ending __cond_resched switched: 1, did not: 0, unknown: -1 */
};

/* Passes from call-site probes (recon_site.c): the open pass, the VMA being
 * copied, what the previous pass did, and the checks' state. */
struct site_build {
	bool seen;	  /* any pass event in this fork */
	bool open;	  /* a pass started and has not ended */
	uint64_t start_ts, ptl, addr; /* of the open pass (ptl, addr 0: not read) */
	int32_t vma;
	bool has_vma;	  /* the copy_page_range entry gave its VMA */
	uint64_t vm_start, vm_end;
	bool early, broke; /* the previous pass stopped before its end; with no error */
	int32_t prev_vma;
	int64_t breaks;
	int64_t sum[4];	  /* rss[] over the passes */
	bool has_child;	  /* the child's counters at wake_up_new_task */
	int64_t child[4];
	size_t pass_cap;  /* of the fork's pass array */
	const char *bad;  /* the first check that failed, NULL */
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
	bool switch_gap;     /* sched_switch may have been disarmed during a copy */
	/* the task's counters where first read (dup_mmap, uprobe_dup_mmap or
	 * copy_page_range; task 0: not read), and whether
	 * copy_resched/copy_offcpu_ns came from them (PT_CAP_TASK_CTR) */
	struct pt_task_ctr ctr0;
	uint64_t ctr0_ts;
	bool ctr_ok;
	/* copy_page_range runs split at a gap: this piece ended at one (the next
	 * may join it), this piece began after one (alone, never complete) */
	bool gap_end, after_gap;
	struct site_build site;
};

struct task {
	int64_t key;
	int pid, cpu;
	char comm[32];
	uint64_t comm_id; /* the pt_event comm_id comm was taken from, 0: none */
	struct frame *stack;
	int len, cap;
	struct fork_build *fork;
	struct pass_state ps;
	int container_depth;   /* innermost open copy_pte_range/copy_page_range, -1 */
	bool seen_before;      /* the task had events before its current fork */
	bool resched_children; /* the open __cond_resched had calls under it */
	bool tainted;	       /* events were lost while its stack was non-empty */
	uint64_t cpr_disarms;  /* r->disarms when its copy_page_range call opened */
	int64_t overrun;       /* the last funcgraph_exit overrun count seen, -1 */
	uint64_t off_since;    /* preempted while copying page tables at this record
				* time, not yet seen back on a CPU; NO_TIME */
	uint64_t orphan_counts[PT_ROLE_COUNT]; /* calls under unnamed callers */
	/* the last task_newtask of this task, until its fork event takes it */
	bool nt_set;
	int nt_child;
	uint64_t nt_flags;
	/* Frames set aside by an entry at their depth (see suspend()). */
	struct frame *susp;
	int susp_base, susp_len, susp_cap;
};

struct held {
	struct pt_fork f;
	uint64_t counts[PT_ROLE_COUNT];
	struct pass_cand *cand;
	size_t nr_cand;
	uint32_t containers;
	bool saw_root_entry;
	bool gap_end; /* ended at a gap: a later piece of its task may join it */
};

struct recon {
	struct recon_opts opts;
	pt_caps caps;
	struct pt_u64map *roles; /* func_id -> role + 1 */
	uint8_t role_of_id[256]; /* the same for the small ids: role + 1, 0 unknown */
	struct pt_u64map *index; /* task key -> index in tasks */
	int64_t last_key;	 /* the task of the last event: its key (-1 none) and */
	uint32_t last_idx;	 /* index, before the map (runs of one task) */
	struct task *tasks;
	size_t nr_tasks, cap_tasks;
	uint64_t disarms;  /* wake_up_new_task calls seen (PT_CAP_SWITCH_WINDOW) */
	struct held *held; /* forks waiting for recon_finish() */
	size_t nr_held, cap_held;
	bool finished;
	char errmsg[512]; /* on_fork_msg's message */
	const char *site_why; /* the last pass_mismatch's reason (recon_site.c) */
};

/* Hands @f to the caller's callback. */
int recon_call_on_fork(struct recon *r, const struct pt_fork *f);
void recon_fork_build_free(struct fork_build *b);
int recon_fork_begin(struct recon *r, struct task *t, int depth, uint64_t ts);
/* Builds @f's passes from its candidates (or, with PT_CAP_PASS_SITES, checks
 * the passes the call-site probes gave, @site) and decides its nulls from what
 * the trace could show (@caps). The reason of a pass_mismatch, if any, in
 * *@why (static). Returns 0 or -ENOMEM. */
int recon_fork_apply_caps(struct pt_fork *f, const uint64_t *counts, const struct pass_cand *cand,
			  size_t nr_cand, const struct site_build *site, int64_t child_slack,
			  pt_caps caps, const char **why);
/* A pass start or end of a call-site probe, in task @t (NULL: not seen). 0 or -ENOMEM. */
int recon_site_event(struct recon *r, struct task *t, const struct pt_event *ev);
/* What an entry probe of copy_page_range or wake_up_new_task fetched. */
void recon_site_entry(struct task *t, enum pt_role role, const struct pt_site *s);
/* The fork's pass figures from its call-site passes, or nulls and the
 * pass_mismatch flag; returns the reason then (static), else NULL. */
const char *recon_site_finish(struct pt_fork *f, const struct site_build *s, pt_caps caps,
			      int64_t child_slack);
int recon_fork_end(struct recon *r, struct task *t, bool boundary_inferred);
void recon_pass_end(struct task *t, uint64_t end_hint, bool by_resched, int switched);
/* A direct child of the current container returned: drive the pass machine. */
int recon_pass_child(struct task *t, enum pt_role role, uint64_t start, uint64_t end, uint64_t dur);
/*
 * Turns a fork's pass candidates into its passes (recon_pass.c has the rules:
 * which candidates are passes on which kernel). A kept pass starts a new PMD
 * when it is the first of its container call or a __pte_alloc came since the
 * previous kept pass; otherwise it resumed after a lock break, unless a swap
 * continuation explains the retry. *passes_known is false where passes cannot
 * be told from other lock pairs (told by shape, but the trace has no unlock
 * calls: @unlocks_traced false). Returns 0 or -ENOMEM.
 */
int recon_fork_finalize_passes(struct pt_fork *f, const struct pass_cand *cand, size_t n,
			       bool unlocks_traced, bool *passes_known);
/* Drops the frames a task set aside (suspend()); they never resume. */
void recon_susp_drop(struct task *t);
int recon_on_entry(struct recon *r, struct task *t, const struct pt_event *ev, enum pt_role role);
int recon_on_exit_ev(struct recon *r, struct task *t, const struct pt_event *ev, enum pt_role role,
		     bool leaf);

#endif
