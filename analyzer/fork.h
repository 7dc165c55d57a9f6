/* SPDX-License-Identifier: MIT */
/*
 * The fork record: one fork as rebuilt from a trace, exactly the fork object
 * the JSON report and the HTTP API share (docs/api.md), plus the
 * per-VMA and per-pass detail the store keeps where the trace had it.
 *
 * Produced by the reconstruction (recon.h), consumed by statistics
 * (stats.h), the JSON/text report (report.h) and the store (store/).
 * "Null" (the trace did not carry it) is PT_NULL for counts and PT_NO_TIME
 * for times, -1 for pids, "" for comms.
 */
#ifndef PTESCOPE_FORK_H
#define PTESCOPE_FORK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

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

/* Field @k of @m known, @v. */
static inline void pt_mem_set(struct pt_parent_mem *m, enum pt_mem_field k, int64_t v)
{
	m->v[k] = v;
	m->have |= 1u << k;
}

/* RSS (anon + file + shmem) in bytes, -1 unless all three are known. */
static inline int64_t pt_mem_rss_bytes(const struct pt_parent_mem *m)
{
	if (!pt_mem_has(m, PT_MEM_RSS_ANON) || !pt_mem_has(m, PT_MEM_RSS_FILE) ||
	    !pt_mem_has(m, PT_MEM_RSS_SHMEM))
		return -1;
	return m->v[PT_MEM_RSS_ANON] + m->v[PT_MEM_RSS_FILE] + m->v[PT_MEM_RSS_SHMEM];
}

/*
 * What a clone made: a fork is a fork, not a thread or a spawn. Only PT_KIND_FORK
 * copied the parent's address space (dup_mmap, copy_page_range): fork
 * latency, cost and the statistics are about those. A thread shares the
 * address space; a spawn (vfork, posix_spawn, Go's and glibc's CLONE_VM |
 * CLONE_VFORK) shares it too and its kernel_clone waits for the child's exec
 * or exit, so its time is the child's, not the copy's.
 */
enum pt_fork_kind {
	PT_KIND_UNKNOWN = 0, /* the trace did not say (JSON null) */
	PT_KIND_FORK,	     /* a new process with a copy of the address space */
	PT_KIND_THREAD,	     /* CLONE_THREAD: a thread of the parent's process */
	PT_KIND_SPAWN,	     /* CLONE_VM or CLONE_VFORK without CLONE_THREAD */
	PT_KIND_COUNT
};

/* "unknown", "fork", "thread", "spawn" (JSON and the store write null for
 * unknown). Inline: the store names kinds without linking the analyzer. */
static inline const char *pt_kind_name(enum pt_fork_kind k)
{
	static const char *const names[PT_KIND_COUNT] = {"unknown", "fork", "thread", "spawn"};

	return (unsigned)k < PT_KIND_COUNT ? names[k] : "unknown";
}

/* The kind named @s (as pt_kind_name), or -1. */
static inline int pt_kind_parse(const char *s)
{
	for (int k = 0; s && k < PT_KIND_COUNT; k++)
		if (!strcmp(pt_kind_name((enum pt_fork_kind)k), s))
			return k;
	return -1;
}

/* A set of kinds: bit (1u << enum pt_fork_kind). */
#define PT_KINDS_FORK (1u << PT_KIND_FORK)
#define PT_KINDS_ALL ((1u << PT_KIND_COUNT) - 1)

/*
 * A comma-separated list of kind names ("fork,spawn"; "all") into a set of
 * kinds in *mask. Returns 0, or -EINVAL for an empty list or any other word.
 */
static inline int pt_kinds_parse(const char *s, unsigned *mask)
{
	char word[16];
	unsigned m = 0;

	while (s && *s) {
		size_t n = strcspn(s, ",");
		int k;

		if (!n || n >= sizeof(word))
			return -22; /* -EINVAL, without errno.h in every user */
		memcpy(word, s, n);
		word[n] = '\0';
		if (!strcmp(word, "all"))
			m |= PT_KINDS_ALL;
		else if ((k = pt_kind_parse(word)) >= 0)
			m |= 1u << k;
		else
			return -22;
		s += n + (s[n] == ',');
	}
	if (!m)
		return -22;
	*mask = m;
	return 0;
}

/* The clone flags that decide the kind (include/uapi/linux/sched.h). */
#define PT_CLONE_VM 0x00000100ull
#define PT_CLONE_VFORK 0x00004000ull
#define PT_CLONE_THREAD 0x00010000ull

/* The kind of a clone with @flags: the one rule, for every capture and replay. */
static inline enum pt_fork_kind pt_kind_of_flags(uint64_t flags)
{
	if (flags & PT_CLONE_THREAD)
		return PT_KIND_THREAD;
	if (flags & (PT_CLONE_VM | PT_CLONE_VFORK))
		return PT_KIND_SPAWN;
	return PT_KIND_FORK;
}

/* Longest parent cgroup path kept (bytes, NUL included); longer ones are cut. */
#define PT_CGROUP_MAX 256

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
	/* What the clone made, and the flags it was called with where the trace
	 * carried them (task:task_newtask; has_clone_flags false: not carried). */
	enum pt_fork_kind kind;
	bool has_clone_flags;
	uint64_t clone_flags;
	/* The parent's cgroup (v2 path, "/system.slice/redis.service"), read live
	 * from /proc/PID/cgroup; "" when not read (replays, parent gone). */
	char cgroup[PT_CGROUP_MAX];

	/* Detail, owned by the fork. */
	struct pt_vma_copy *vma;
	size_t nr_vma;
	struct pt_pte_pass *pass;
	size_t nr_pass;
};

/*
 * The phase that encloses copy_page_range: kernel_clone, else copy_process,
 * else dup_mmap; PT_NO_TIME if none was traced. The denominator of the
 * fork's copy share (cost.c) and of the doctor's components (doctor.c).
 */
static inline uint64_t pt_fork_outer_ns(const struct pt_fork *f)
{
	if (f->kernel_clone_ns != PT_NO_TIME)
		return f->kernel_clone_ns;
	if (f->copy_process_ns != PT_NO_TIME)
		return f->copy_process_ns;
	return f->dup_mmap_ns;
}

/*
 * A fork's total time: the outermost phase the trace carried (kernel_clone,
 * else copy_process, dup_mmap, copy_page_range), PT_NO_TIME if none. The one
 * definition: statistics, the report, the store (its fork.total_ns column,
 * which the SQL and the dashboard read) and the daemon's slow-fork threshold
 * use it.
 */
static inline uint64_t pt_fork_total_ns(const struct pt_fork *f)
{
	uint64_t outer = pt_fork_outer_ns(f);

	return outer != PT_NO_TIME ? outer : f->copy_page_range_ns;
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

/*
 * Frees the detail arrays of @f (not @f itself) and empties them; accepts
 * NULL. Inline so that the store, which uses the analyzer's headers and not
 * its code, releases its rows with it too.
 */
static inline void pt_fork_release(struct pt_fork *f)
{
	if (!f)
		return;
	free(f->vma);
	free(f->pass);
	f->vma = NULL;
	f->pass = NULL;
	f->nr_vma = f->nr_pass = 0;
}

/* Deep copy of @src into @dst (detail arrays duplicated). Returns 0 or -ENOMEM. */
int pt_fork_copy(struct pt_fork *dst, const struct pt_fork *src);

#endif
