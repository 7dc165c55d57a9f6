/* SPDX-License-Identifier: MIT */
/*
 * The traced-function table (roles.h): names, roles, detail levels.
 */
#include "roles.h"

#include <stdbool.h>
#include <string.h>

static const struct {
	const char *name;
	enum pt_role role;
	enum pt_detail detail;
	bool live;	    /* hooked by live capture at its level */
	const char *unless; /* not needed where this one is traceable */
} role_table[] = {
    {"kernel_clone", PT_ROLE_KERNEL_CLONE, PT_DETAIL_FORK, true, NULL},
    {"_do_fork", PT_ROLE_KERNEL_CLONE, PT_DETAIL_FORK, true, NULL},
    {"do_fork", PT_ROLE_KERNEL_CLONE, PT_DETAIL_FORK, true, NULL},
    {"copy_process", PT_ROLE_COPY_PROCESS, PT_DETAIL_FORK, true, NULL},
    {"dup_mmap", PT_ROLE_DUP_MMAP, PT_DETAIL_FORK, true, NULL},
    {"copy_page_range", PT_ROLE_COPY_PAGE_RANGE, PT_DETAIL_FORK, true, NULL},
    {"copy_pte_range", PT_ROLE_COPY_PTE_RANGE, PT_DETAIL_FORK, true, NULL},
    {"wake_up_new_task", PT_ROLE_WAKE_NEW, PT_DETAIL_FORK, true, NULL},
    {"_raw_spin_lock", PT_ROLE_LOCK, PT_DETAIL_SECTION, true, "rt_spin_lock"},
    {"_raw_spin_lock_nested", PT_ROLE_LOCK, PT_DETAIL_SECTION, true, "rt_spin_lock"},
    {"rt_spin_lock", PT_ROLE_LOCK, PT_DETAIL_SECTION, true, NULL},
    {"rt_spin_lock_nested", PT_ROLE_LOCK, PT_DETAIL_SECTION, true, NULL},
    {"_raw_spin_unlock", PT_ROLE_UNLOCK, PT_DETAIL_SECTION, true, "rt_spin_lock"},
    {"rt_spin_unlock", PT_ROLE_UNLOCK, PT_DETAIL_SECTION, true, NULL},
    {"__cond_resched", PT_ROLE_RESCHED, PT_DETAIL_SECTION, true, NULL},
    {"_cond_resched", PT_ROLE_RESCHED, PT_DETAIL_SECTION, true, NULL},
    {"__pte_alloc", PT_ROLE_PTE_ALLOC, PT_DETAIL_SECTION, true, NULL},
    {"add_swap_count_continuation", PT_ROLE_SWAP_CONT, PT_DETAIL_SECTION, true, NULL},
    {"copy_huge_pmd", PT_ROLE_HUGE, PT_DETAIL_SECTION, true, NULL},
    {"copy_huge_pud", PT_ROLE_HUGE, PT_DETAIL_SECTION, true, NULL},
    {"copy_hugetlb_page_range", PT_ROLE_HUGE, PT_DETAIL_SECTION, true, NULL},
    {"vm_normal_page", PT_ROLE_PTE, PT_DETAIL_PTE, true, NULL},
    {"copy_present_pte", PT_ROLE_PTE_COPY, PT_DETAIL_PTE, true, NULL},
    {"copy_present_ptes", PT_ROLE_PTE_COPY, PT_DETAIL_PTE, true, NULL},
    {"__pte_offset_map_lock", PT_ROLE_LOCK_MAP, PT_DETAIL_SECTION, false, NULL},
    {"pte_offset_map_lock", PT_ROLE_LOCK_MAP, PT_DETAIL_SECTION, false, NULL},
    {"wait_for_vfork_done", PT_ROLE_VFORK_WAIT, PT_DETAIL_FORK, false, NULL},
    {"wait_for_completion_state", PT_ROLE_VFORK_WAIT, PT_DETAIL_FORK, false, NULL},
    {"wait_for_completion_killable", PT_ROLE_VFORK_WAIT, PT_DETAIL_FORK, false, NULL},
    {"uprobe_dup_mmap", PT_ROLE_COPY_START, PT_DETAIL_FORK, false, NULL},
};

#define NR_ROLES (sizeof(role_table) / sizeof(role_table[0]))

enum pt_role pt_role_of(const char *func)
{
	size_t len;

	if (!func)
		return PT_ROLE_OTHER;
	/* compiler clones keep the role: copy_page_range.isra.0, .constprop.0 */
	len = strcspn(func, ".");
	for (size_t i = 0; i < NR_ROLES; i++)
		if (strlen(role_table[i].name) == len && !strncmp(role_table[i].name, func, len))
			return role_table[i].role;
	return PT_ROLE_OTHER;
}

size_t pt_role_names(enum pt_detail detail, const char **out, size_t max)
{
	size_t n = 0;

	for (size_t i = 0; i < NR_ROLES; i++) {
		if (role_table[i].detail > detail || !role_table[i].live)
			continue;
		if (n < max)
			out[n] = role_table[i].name;
		n++;
	}
	return n;
}

const char *pt_role_superseded_by(const char *name)
{
	for (size_t i = 0; name && i < NR_ROLES; i++)
		if (!strcmp(role_table[i].name, name))
			return role_table[i].unless;
	return NULL;
}
