/* SPDX-License-Identifier: MIT */
/*
 * Synthetic fork records for the store's tests and benchmark: deterministic
 * from (seed, index), with nulls sprinkled in where struct pt_fork allows
 * them, and VMA/pass detail of a realistic shape (a few VMAs, most passes in
 * one big VMA). Not a stand-in for real traces: the replay tests use those.
 */
#ifndef PTESCOPE_TEST_SYNTH_H
#define PTESCOPE_TEST_SYNTH_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fork.h"

static inline uint64_t synth_rand(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static const char *const synth_comms[] = {"redis-server", "postgres", "python3", "bash",
					  "sshd",	  "make",     "cc1",	 "forker"};

/* Fills @f (detail malloc'ed: pt_fork_release or synth_release). */
static inline void synth_fork(struct pt_fork *f, uint64_t seed, uint64_t i, unsigned max_pass)
{
	uint64_t s = seed * 1000003 + i, r = synth_rand(&s);
	size_t k;

	memset(f, 0, sizeof(*f));
	f->parent_pid = 100 + (int)(r % 50);
	snprintf(f->parent_comm, sizeof(f->parent_comm), "%s", synth_comms[r % 8]);
	f->child_pid = (int)(1000 + i % 30000);
	snprintf(f->child_comm, sizeof(f->child_comm), "%s", f->parent_comm);
	f->ts_ns = 1000000000ull + i * 1000003ull;
	/* Log-uniform durations from 10 us to ~100 ms. */
	f->copy_page_range_ns = 10000 + (synth_rand(&s) % 1000) * (synth_rand(&s) % 100000) / 10;
	f->dup_mmap_ns = f->copy_page_range_ns + synth_rand(&s) % 20000;
	f->copy_process_ns = f->dup_mmap_ns + synth_rand(&s) % 30000;
	f->kernel_clone_ns = f->copy_process_ns + synth_rand(&s) % 5000;
	f->max_lock_hold_ns = synth_rand(&s) % 200000;
	f->vmas = 3 + (int64_t)(synth_rand(&s) % 5);
	f->ptes = (int64_t)(synth_rand(&s) % 60000);
	f->lock_breaks = (int64_t)(synth_rand(&s) % 10);
	f->complete = true;
	f->kind = PT_KIND_FORK;
	if (r % 5 == 0) { /* live: the clone's flags (fork(): SIGCHLD) and the parent's cgroup */
		f->has_clone_flags = true;
		f->clone_flags = 0x11;
		snprintf(f->cgroup, sizeof(f->cgroup), "/system.slice/%s.service", f->parent_comm);
	}
	if (r % 17 == 0) { /* a partial fork: no kernel_clone, no counts */
		f->kernel_clone_ns = PT_NO_TIME;
		f->lock_breaks = PT_NULL;
		f->complete = false;
		f->flags = PT_FORK_PARTIAL;
	}
	if (r % 23 == 0) {
		f->parent_pid = -1;
		f->parent_comm[0] = 0;
		f->max_lock_hold_ns = PT_NO_TIME;
		f->flags |= PT_FORK_LOST_EVENTS;
	}
	if (r % 3 == 0) { /* a live fork with its parent's memory, some fields missing */
		for (k = 0; k < PT_MEM_COUNT; k++)
			if ((r >> (8 + k)) % 4) {
				f->mem.have |= 1u << k;
				f->mem.v[k] = k == PT_MEM_CHILD_EXEC
						  ? (int64_t)(r >> 20) % 2
						  : (int64_t)(synth_rand(&s) >> 20);
			}
	}
	f->nr_vma = (size_t)f->vmas;
	f->vma = calloc(f->nr_vma, sizeof(*f->vma));
	f->nr_pass = max_pass ? (size_t)(synth_rand(&s) % (max_pass + 1)) : 0;
	f->pass = f->nr_pass ? calloc(f->nr_pass, sizeof(*f->pass)) : NULL;
	f->pte_passes = (int64_t)f->nr_pass;
	for (k = 0; k < f->nr_vma; k++) {
		f->vma[k].start_ns = f->ts_ns + k * 1000;
		f->vma[k].dur_ns = k == 1 ? PT_NO_TIME : 500 + k;
		f->vma[k].passes = k == 0 ? (int32_t)f->nr_pass : 0;
		f->vma[k].ptes = k == 2 ? -1 : (int32_t)(k * 10);
		f->vma[k].huge = k == 3;
	}
	for (k = 0; k < f->nr_pass; k++) {
		f->pass[k].vma = 0;
		f->pass[k].ptes = k % 7 == 6 ? -1 : 32;
		f->pass[k].start_ns = f->ts_ns + 10 * k;
		f->pass[k].hold_ns = k % 11 == 10 ? PT_NO_TIME : 1000 + synth_rand(&s) % 50000;
		f->pass[k].new_pmd = k % 16 == 0;
		f->pass[k].resumed = k % 16 != 0;
	}
}

static inline void synth_release(struct pt_fork *f)
{
	free(f->vma);
	free(f->pass);
	f->vma = NULL;
	f->pass = NULL;
}

#endif
