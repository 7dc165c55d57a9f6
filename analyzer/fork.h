/* SPDX-License-Identifier: MIT */
/*
 * The fork record: one fork as rebuilt from a trace, exactly the fork object
 * of product.md (the JSON report and the HTTP API share it), plus the
 * per-VMA and per-pass detail the store keeps where the trace had it.
 *
 * Produced by the reconstruction (recon.h), consumed by statistics
 * (stats.h), the JSON/text report (report.h) and the store (schema/).
 * "Null" (the trace did not carry it) is PT_NULL for counts and PT_NO_TIME
 * for times, -1 for pids, "" for comms.
 */
#ifndef PTESCOPE_FORK_H
#define PTESCOPE_FORK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "event.h"

#define PT_NULL INT64_MIN

enum pt_fork_flag {
	PT_FORK_LOST_EVENTS = 1u << 0,	     /* events were lost while it was in flight */
	PT_FORK_PARTIAL = 1u << 1,	     /* the trace starts or ends inside it */
	PT_FORK_BOUNDARY_INFERRED = 1u << 2, /* no fork event nor enclosing fork-path call:
					      * where it starts/ends is inferred */
	PT_FORK_GRAPH_OVERRUN = 1u << 3,     /* the graph tracer's return stack of its task
					      * overflowed while it was in flight (the
					      * funcgraph_exit overrun count grew): calls
					      * deeper than the stack were not recorded */
	/* PTEs were copied outside every pass the rules recognise: this kernel's
	 * copy loop does not look like any known one (docs/kernels.md), so its
	 * passes, lock breaks and hold times are null, not wrong */
	PT_FORK_UNKNOWN_LOOP = 1u << 4,
	/* live, passes from call-site probes (docs/architecture.md): a self-check
	 * failed (a pass that ends without starting, an address outside the VMA
	 * copied, PTE counts off the child's own counters, ...), so the fork's
	 * passes, PTEs, lock breaks and hold times are null, not half right */
	PT_FORK_PASS_MISMATCH = 1u << 5,
};

/* Names of the flags in JSON, indexed by bit number. */
extern const char *const pt_fork_flag_names[];
#define PT_FORK_FLAG_COUNT 6

/* One copy_page_range call: one VMA that dup_mmap copied. */
struct pt_vma_copy {
	uint64_t start_ns; /* PT_NO_TIME if unknown */
	uint64_t dur_ns;   /* PT_NO_TIME if the call was cut by the trace */
	int32_t passes;	   /* PTE passes inside it */
	int32_t ptes;	   /* present PTEs copied (vm_normal_page calls), -1 if not traced */
	bool huge;	   /* copy_huge_pmd / hugetlb copies seen */
};

/* One copy_pte_range pass: the two PTE locks taken, some PTEs copied, locks dropped. */
struct pt_pte_pass {
	int32_t vma;	   /* index into the fork's vma array */
	int32_t ptes;	   /* vm_normal_page calls while locked, -1 if not traced */
	uint64_t start_ns; /* first lock entry, PT_NO_TIME if unknown */
	uint64_t hold_ns;  /* first lock to last unlock, PT_NO_TIME if unknown */
	bool new_pmd;	   /* started a new PMD (first in its copy_pte_range call,
			    * or preceded by __pte_alloc) */
	bool resumed;	   /* resumed the same PMD after a lock break */
};

/*
 * The parent's memory when its fork was seen: live capture reads it from
 * /proc/PID of the parent (daemon/procmem.c), best effort; replays never
 * carry it. A field is known when its bit is set in `have`; a zeroed struct
 * (have == 0) is "not carried" (parent gone, rate-limited, a replay).
 */
enum pt_mem_field {
	PT_MEM_RSS_ANON,   /* RssAnon, bytes */
	PT_MEM_RSS_FILE,   /* RssFile, bytes */
	PT_MEM_RSS_SHMEM,  /* RssShmem, bytes */
	PT_MEM_PTE,	   /* VmPTE: the parent's page tables, bytes */
	PT_MEM_MAP_COUNT,  /* VMAs of the parent (lines of /proc/PID/maps) */
	PT_MEM_ANON_HUGE,  /* AnonHugePages (smaps_rollup): THP in use, bytes */
	PT_MEM_CHILD_EXEC, /* 1: the child had exec'd (its comm differed) when seen */
	PT_MEM_COUNT
};

/* JSON keys in "parent_mem" (and, prefixed "mem_", store columns), by enum pt_mem_field. */
extern const char *const pt_mem_names[PT_MEM_COUNT];

struct pt_parent_mem {
	unsigned have; /* bit (1u << enum pt_mem_field) per field known */
	int64_t v[PT_MEM_COUNT];
};

static inline bool pt_mem_has(const struct pt_parent_mem *m, enum pt_mem_field k)
{
	return m->have & (1u << k);
}

/* RSS (anon + file + shmem) in bytes, -1 unless all three are known. */
static inline int64_t pt_mem_rss_bytes(const struct pt_parent_mem *m)
{
	if (!pt_mem_has(m, PT_MEM_RSS_ANON) || !pt_mem_has(m, PT_MEM_RSS_FILE) ||
	    !pt_mem_has(m, PT_MEM_RSS_SHMEM))
		return -1;
	return m->v[PT_MEM_RSS_ANON] + m->v[PT_MEM_RSS_FILE] + m->v[PT_MEM_RSS_SHMEM];
}

struct pt_fork {
	int parent_pid;	      /* -1 if not known */
	char parent_comm[32]; /* "" if not known */
	int child_pid;	      /* -1 if not known */
	char child_comm[32];
	uint64_t ts_ns; /* start of the outermost fork-path call seen (or the fork
			 * event's time when no call was traced); PT_NO_TIME */
	uint64_t kernel_clone_ns, copy_process_ns, dup_mmap_ns, copy_page_range_ns;
	int64_t vmas, pte_passes, lock_breaks, ptes; /* PT_NULL when not carried */
	uint64_t max_lock_hold_ns;		     /* PT_NO_TIME when not carried */
	/* Times the forking task was preempted (left the CPU runnable) while
	 * copying page tables (inside copy_page_range), and how long it was off
	 * the CPU then; from sched_switch. PT_NULL / PT_NO_TIME when not carried. */
	int64_t copy_resched;
	uint64_t copy_offcpu_ns;
	struct pt_parent_mem mem; /* the parent's memory, live only (zeroed: none) */
	bool complete;
	unsigned flags; /* enum pt_fork_flag */
	int input;	/* index of the input it came from */

	/* Detail, owned by the fork. */
	struct pt_vma_copy *vma;
	size_t nr_vma;
	struct pt_pte_pass *pass;
	size_t nr_pass;
};

/*
 * A fork's total time: the outermost phase the trace carried (kernel_clone,
 * else copy_process, dup_mmap, copy_page_range), PT_NO_TIME if none. The one
 * definition: statistics, the report, the store (its fork.total_ns column,
 * which the SQL and the dashboard read) and the daemon's slow-fork threshold
 * use it.
 */
static inline uint64_t pt_fork_total_ns(const struct pt_fork *f)
{
	if (f->kernel_clone_ns != PT_NO_TIME)
		return f->kernel_clone_ns;
	if (f->copy_process_ns != PT_NO_TIME)
		return f->copy_process_ns;
	if (f->dup_mmap_ns != PT_NO_TIME)
		return f->dup_mmap_ns;
	return f->copy_page_range_ns;
}

/*
 * Whether a fork counts toward the cost per PTE: complete, with a
 * copy_page_range time and PTEs copied. The one rule for the analyzer's
 * statistics and the store's cost sums (rollups and exact statistics; the
 * store passes its column values).
 */
static inline bool pt_counts_toward_cost(bool complete, uint64_t copy_page_range_ns, int64_t ptes)
{
	return complete && copy_page_range_ns != PT_NO_TIME && ptes != PT_NULL && ptes > 0;
}

/* Frees the detail arrays of @f (not @f itself); accepts NULL. */
void pt_fork_release(struct pt_fork *f);

/* Deep copy of @src into @dst (detail arrays duplicated). Returns 0 or -ENOMEM. */
int pt_fork_copy(struct pt_fork *dst, const struct pt_fork *src);

#endif
