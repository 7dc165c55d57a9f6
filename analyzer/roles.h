/* SPDX-License-Identifier: MIT */
/*
 * The traced-function table: every kernel function the analysis cares about,
 * its role (what it does on the fork path) and the detail level at which live
 * capture hooks it. One table for both users: recon names roles with
 * pt_role_of(), the daemon builds its function filter with pt_role_names().
 *
 * Detail levels (ptescoped --detail, docs/operations.md): fork hooks the fork
 * path down to copy_pte_range (phases, VMAs); section adds the PTE lock, its
 * unlock, __cond_resched and what explains a retry or a foreign lock pair
 * (passes, lock breaks, hold times); pte adds the per-PTE calls (PTE counts).
 * Which of a level's functions a given kernel needs is decided from what it
 * can trace (pt_role_superseded_by), never from its version.
 */
#ifndef PTESCOPE_ROLES_H
#define PTESCOPE_ROLES_H

#include <stddef.h>

/* Roles of the functions the analysis cares about, by what they do. */
enum pt_role {
	PT_ROLE_OTHER = 0,
	PT_ROLE_KERNEL_CLONE, /* kernel_clone, _do_fork, do_fork */
	PT_ROLE_COPY_PROCESS,
	PT_ROLE_DUP_MMAP,
	PT_ROLE_COPY_PAGE_RANGE,
	PT_ROLE_COPY_PTE_RANGE,
	PT_ROLE_LOCK,	   /* _raw_spin_lock, rt_spin_lock, ... */
	PT_ROLE_UNLOCK,	   /* _raw_spin_unlock, rt_spin_unlock */
	PT_ROLE_RESCHED,   /* __cond_resched, _cond_resched */
	PT_ROLE_PTE_ALLOC, /* __pte_alloc */
	PT_ROLE_SWAP_CONT, /* add_swap_count_continuation */
	PT_ROLE_PTE,	   /* vm_normal_page: one per present PTE copied */
	PT_ROLE_PTE_COPY,  /* copy_present_pte(s), when not inlined */
	PT_ROLE_HUGE,	   /* copy_huge_pmd, copy_huge_pud, copy_hugetlb_page_range */
	PT_ROLE_WAKE_NEW,  /* wake_up_new_task: the new task starts (after copy_process) */
	/* __pte_offset_map_lock (6.12), pte_offset_map_lock (7.2): maps a PTE
	 * table and takes its lock inside, so in a full graph the child's PTE
	 * lock is one level below copy_page_range: a direct child of this role
	 * counts as a lock. Never hooked live: under a filter without it, the
	 * lock it takes shows as a direct child itself. */
	PT_ROLE_LOCK_MAP,
	/* wait_for_vfork_done, and what it calls where the compiler inlined it
	 * (wait_for_completion_state on 6.1 on, wait_for_completion_killable
	 * before): as a direct child of kernel_clone, the parent waiting for a
	 * vfork child's exec or exit (a spawn, fork.h). Counted only there;
	 * never hooked live (task_newtask gives live capture the clone flags). */
	PT_ROLE_VFORK_WAIT,
	/* uprobe_dup_mmap: called once a fork at the top of dup_mmap (after
	 * the parent's mmap lock), with the parent's mm. Where dup_mmap is
	 * inlined (6.12) live capture's kprobes read the forking task's
	 * counters there (capture_plan.c, ctr_args), not at every
	 * copy_page_range; hooked only for that. */
	PT_ROLE_COPY_START,
	PT_ROLE_COUNT
};

/* The detail level at which live capture hooks a function; each level
 * includes the ones below it. */
enum pt_detail { PT_DETAIL_FORK, PT_DETAIL_SECTION, PT_DETAIL_PTE };

/* The role of a kernel function name. Compiler clones keep the role
 * (copy_page_range.isra.0). PT_ROLE_OTHER for NULL or a name not in the table. */
enum pt_role pt_role_of(const char *func);

/*
 * The names live capture hooks at @detail (every function of that level and
 * below), in table order: the fork roots first (kernel_clone, _do_fork,
 * do_fork, PT_ROLE_KERNEL_CLONE: alternatives, a kernel has one of them),
 * then the fork path, then the lower levels. Writes up to @max static strings
 * to @out (may be NULL with @max 0) and returns how many there are.
 */
size_t pt_role_names(enum pt_detail detail, const char **out, size_t max);

/*
 * The function whose presence makes @name unneeded on a kernel, or NULL.
 * Where rt_spin_lock is traceable (PREEMPT_RT: spinlock_t is an rt_mutex),
 * the PTE locks are rt_spin_lock/rt_spin_unlock, and _raw_spin_lock there
 * takes only raw spinlocks (scheduler, timers): hooking it would cost every
 * task and show nothing of the copy loop. Live capture skips @name when the
 * returned function is traceable.
 */
const char *pt_role_superseded_by(const char *name);

#endif
