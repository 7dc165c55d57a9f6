/* SPDX-License-Identifier: MIT */
/*
 * The doctor's rules (doctor.h), as a table: each row names what it looks
 * for, its thresholds, its advice and the sources of both (docs/doctor.md
 * cites them in full), and a judge that reads one process's aggregate and
 * says fires / quiet / cannot judge with the figures it used, or what it
 * missed. A judge answers "quiet" only when a figure it has rules the advice
 * out, and "cannot judge" when the forks lack what it needs (replays carry
 * no parent memory; a filter may leave out phases, PTEs or passes).
 */
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>

#include "cost.h"
#include "doctor.h"

#define MIB (1024.0 * 1024.0)

/* A judge's answer: @v, with the figures it used written into @ev. */
static enum pt_verdict verdict(enum pt_verdict v, char *ev, size_t evlen, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static enum pt_verdict verdict(enum pt_verdict v, char *ev, size_t evlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(ev, evlen, fmt, ap);
	va_end(ap);
	return v;
}

/* Bytes the process maps with 4 KiB pages, and how that was found; -1 unknown. */
static double mapped_bytes(const struct pt_doctor_proc *p, const char **how)
{
	if (p->rss_bytes >= 0) {
		*how = "RSS";
		return (double)p->rss_bytes;
	}
	if (p->ptes >= 0) {
		*how = "PTEs copied x 4 KiB";
		return (double)p->ptes * 4096;
	}
	if (p->pte_tables >= 0) {
		*how = "PTE tables copied x 2 MiB, at most";
		return (double)p->pte_tables * 2 * MIB;
	}
	return -1;
}

/*
 * Live forks carry no phases (syscall mode) or no copy share, but the parent's
 * memory: in a process of this size with little THP, what grows with memory
 * is the page-table copy, so a cost per GiB at or above bare metal's (Redis:
 * 9-13 ms per GB) is that copy's. Returns FIRES with the figures, or UNKNOWN.
 */
static enum pt_verdict huge_pages_from_memory(const struct pt_doctor_rule *r,
					      const struct pt_doctor_proc *p, char *ev,
					      size_t evlen)
{
	double thp = p->anon_huge_bytes >= 0 && p->rss_bytes > 0
			 ? (double)p->anon_huge_bytes / (double)p->rss_bytes
			 : NAN;

	if (!isnan(thp) && thp >= 0.5)
		return verdict(PT_VERDICT_QUIET, ev, evlen,
			       "%.0f%% of the RSS (%.0f MiB) is in huge pages already", 100 * thp,
			       (double)p->rss_bytes / MIB);
	if (p->rss_bytes < r->size_min || isnan(thp) || thp >= 0.1 || isnan(p->ms_per_gib_rss) ||
	    p->ms_per_gib_rss < 10)
		return verdict(
		    PT_VERDICT_UNKNOWN, ev, evlen,
		    "the share of copy_page_range is unknown: the forks carry no phase above "
		    "it (dup_mmap, copy_process, kernel_clone)%s",
		    p->rss_bytes >= 0 ? ", and the parent's memory does not settle it" : "");
	return verdict(
	    PT_VERDICT_FIRES, ev, evlen,
	    "no phase split, but RSS %.0f MiB with %.0f%% in huge pages costs %.0f ms per "
	    "GiB (median), page tables %.0f KiB: at this size what grows with memory is the "
	    "page-table copy",
	    (double)p->rss_bytes / MIB, 100 * thp, p->ms_per_gib_rss,
	    p->pte_bytes >= 0 ? (double)p->pte_bytes / 1024 : -1.0);
}

static enum pt_verdict judge_huge_pages(const struct pt_doctor_rule *r,
					const struct pt_doctor_proc *p, char *ev, size_t evlen)
{
	const char *how = "";
	double size = mapped_bytes(p, &how);

	if (isnan(p->copy_share))
		return huge_pages_from_memory(r, p, ev, evlen);
	if (p->copy_share < r->threshold)
		return verdict(PT_VERDICT_QUIET, ev, evlen,
			       "copying page tables is %.0f%% of the fork (median), under %.0f%%",
			       100 * p->copy_share, 100 * r->threshold);
	if (size < 0)
		return verdict(
		    PT_VERDICT_UNKNOWN, ev, evlen,
		    "copying page tables is %.0f%% of the fork (median), but the process's "
		    "size is unknown (no RSS, PTE count or PTE passes in the forks)",
		    100 * p->copy_share);
	if (size < r->size_min)
		return verdict(
		    PT_VERDICT_QUIET, ev, evlen,
		    "copying page tables is %.0f%% of the fork, but only %.0f MiB is mapped "
		    "(%s), under %.0f MiB",
		    100 * p->copy_share, size / MIB, how, r->size_min / MIB);
	return verdict(
	    PT_VERDICT_FIRES, ev, evlen,
	    "copying page tables is %.0f%% of the fork (median) and %.0f MiB is mapped (%s)%s",
	    100 * p->copy_share, size / MIB, how,
	    p->anon_huge_bytes > 0 || p->huge_seen
		? "; huge pages are already in use for part of it"
		: "");
}

static enum pt_verdict judge_contention(const struct pt_doctor_rule *r,
					const struct pt_doctor_proc *p, char *ev, size_t evlen)
{
	if (isnan(p->offcpu_share)) {
		int n = snprintf(ev, evlen,
				 "the forks carry no off-CPU time (the recording or capture did not record "
				 "preemptions)");

		if (p->lock_breaks > 0 && n > 0 && (size_t)n < evlen)
			snprintf(ev + n, evlen - (size_t)n,
				 "; %" PRId64 " lock breaks in %zu of %zu forks show that the copy "
				 "loop did reschedule",
				 p->lock_breaks, p->forks_with_breaks, p->complete);
		return PT_VERDICT_UNKNOWN;
	}
	if (p->offcpu_share < r->threshold)
		return verdict(PT_VERDICT_QUIET, ev, evlen,
			       "scheduled out %.1f%% of the fork time while copying, under %.0f%%",
			       100 * p->offcpu_share, 100 * r->threshold);
	return verdict(
	    PT_VERDICT_FIRES, ev, evlen,
	    "scheduled out %.0f%% of the fork time while copying page tables (preempted, "
	    "runnable)",
	    100 * p->offcpu_share);
}

static enum pt_verdict judge_exec(const struct pt_doctor_rule *r, const struct pt_doctor_proc *p,
				  char *ev, size_t evlen)
{
	double share;

	if (p->complete && p->no_mm_forks == p->complete)
		return verdict(
		    PT_VERDICT_QUIET, ev, evlen,
		    "its forks copy no VMA at all (vfork, posix_spawn or CLONE_VM already)");
	if (p->vmas < 0)
		return verdict(
		    PT_VERDICT_UNKNOWN, ev, evlen,
		    "the forks do not say whether they copied the parent's memory (no VMA "
		    "count: syscall capture), and children of vfork or posix_spawn exec too");
	if (!p->exec_known)
		return verdict(
		    PT_VERDICT_UNKNOWN, ev, evlen,
		    "whether the children exec is not in the forks: the live daemon notes it "
		    "(child_exec), a trace does not");
	share = (double)p->exec_yes / (double)p->exec_known;
	if (share < r->threshold)
		return verdict(PT_VERDICT_QUIET, ev, evlen,
			       "%zu of %zu children seen had exec'd, under %.0f%%", p->exec_yes,
			       p->exec_known, 100 * r->threshold);
	return verdict(
	    PT_VERDICT_FIRES, ev, evlen,
	    "%zu of %zu children seen had exec'd when the fork was seen: each fork copied "
	    "the parent's memory map only for exec to drop it",
	    p->exec_yes, p->exec_known);
}

static enum pt_verdict judge_vmas(const struct pt_doctor_rule *r, const struct pt_doctor_proc *p,
				  char *ev, size_t evlen)
{
	double vma_share = p->share[PT_COMP_VMAS];
	int64_t n = p->map_count >= 0 ? p->map_count : p->vmas;
	const char *what = p->map_count >= 0
			       ? "VMAs in the parent"
			       : "VMAs with page tables copied (the parent may have more)";

	if (n < 0)
		return verdict(PT_VERDICT_UNKNOWN, ev, evlen, "no VMA count in the forks");
	if ((double)n >= r->threshold) {
		snprintf(ev, evlen, "%" PRId64 " %s (median)%s", n, what,
			 isnan(vma_share) ? "" : "; per-VMA work outside the page-table copy is");
		if (!isnan(vma_share)) {
			size_t len = 0;

			while (len < evlen && ev[len])
				len++;
			snprintf(ev + len, evlen - len, " %.0f%% of the fork", 100 * vma_share);
		}
		return PT_VERDICT_FIRES;
	}
	if (p->map_count < 0 && !isnan(vma_share) && vma_share >= 0.25)
		return verdict(PT_VERDICT_UNKNOWN, ev, evlen,
			       "%" PRId64
			       " %s, yet per-VMA work is %.0f%% of the fork: the parent's "
			       "own VMA count (live only) would tell",
			       n, what, 100 * vma_share);
	return verdict(PT_VERDICT_QUIET, ev, evlen, "%" PRId64 " %s (median), under %.0f", n, what,
		       r->threshold);
}

static enum pt_verdict judge_hypervisor(const struct pt_doctor_rule *r,
					const struct pt_doctor_proc *p, char *ev, size_t evlen)
{
	enum pt_rate_band band = pt_rate_band_of(p->gb_per_s);

	if (isnan(p->gb_per_s) || p->rss_bytes < 0)
		return verdict(
		    PT_VERDICT_UNKNOWN, ev, evlen,
		    "needs the parent's RSS (the live daemon reads it; replays do not carry "
		    "it, and a trace's own cost per PTE is inflated by the tracing)");
	if ((double)p->rss_bytes < r->size_min)
		return verdict(
		    PT_VERDICT_UNKNOWN, ev, evlen,
		    "RSS %.0f MiB is under %.0f MiB: fixed costs dominate, a rate per GB says "
		    "little",
		    (double)p->rss_bytes / MIB, r->size_min / MIB);
	if (p->gb_per_s >= r->threshold)
		return verdict(PT_VERDICT_QUIET, ev, evlen,
			       "%.1f GB/s (%s), %.1f ms per GiB of RSS (median)", p->gb_per_s,
			       pt_band_name(band), p->ms_per_gib_rss);
	return verdict(
	    PT_VERDICT_FIRES, ev, evlen,
	    "%.1f GB/s (%s in Redis's bands), %.0f ms per GiB of RSS (median); Redis measures "
	    "9-13 ms per GB on bare metal%s",
	    p->gb_per_s, pt_band_name(band), p->ms_per_gib_rss,
	    isnan(p->offcpu_share) ? "; time scheduled out is not in these forks, and on a loaded "
				     "host it inflates the figure"
	    : p->offcpu_share >= 0.2 ? "; part of it is time scheduled out (see cpu_contention)"
				     : "");
}

static enum pt_verdict judge_regression(const struct pt_doctor_rule *r,
					const struct pt_doctor_proc *p, char *ev, size_t evlen)
{
	const char *what = p->baseline_kind == PT_BASELINE_RSS ? "of RSS" : "of PTEs copied";

	if (p->baseline_kind == PT_BASELINE_NONE)
		return verdict(
		    PT_VERDICT_UNKNOWN, ev, evlen,
		    "no baseline: fewer than %d forks of %s carry a cost per GiB (live forks of "
		    "64 MiB of RSS or more, or traces with 1024 PTEs or more)",
		    PT_BASELINE_MIN, p->comm[0] ? p->comm : "this process");
	if (isnan(p->worst_ms_per_gib))
		return verdict(
		    PT_VERDICT_UNKNOWN, ev, evlen,
		    "none of its forks carries the cost per GiB %s that the baseline of %s "
		    "(%.1f ms, %zu forks) is made of",
		    what, p->comm, p->baseline_ms_per_gib, p->baseline_forks);
	if (!p->regressions)
		return verdict(
		    PT_VERDICT_QUIET, ev, evlen,
		    "its forks cost at most %.1f ms per GiB %s, within %.0fx the baseline of %s "
		    "(%.1f, median of %zu forks)",
		    p->worst_ms_per_gib, what, r->threshold, p->comm, p->baseline_ms_per_gib,
		    p->baseline_forks);
	return verdict(
	    PT_VERDICT_FIRES, ev, evlen,
	    "%zu of its forks cost over %.0fx the baseline of %s (%.1f ms per GiB %s, median "
	    "of %zu forks): up to %.1f",
	    p->regressions, r->threshold, p->comm, p->baseline_ms_per_gib, what, p->baseline_forks,
	    p->worst_ms_per_gib);
}

const struct pt_doctor_rule pt_doctor_rules[] = {
    {.id = "page_tables_huge_pages",
     .title = "copying page tables dominates the fork (at least 50% of it) in a large process "
	      "(at least 100 MiB mapped); live forks without phases: at least 100 MiB of RSS, "
	      "under 10% of it in huge pages, at least 10 ms per GiB",
     .advice = "Back the large anonymous memory with huge pages (transparent huge pages through "
	       "madvise(MADV_HUGEPAGE) or THP 'always', or hugetlbfs): a 2 MiB page is one PMD "
	       "entry, so the fork copies 1/512 of the page-table entries. The price: after the "
	       "fork, the first write to a shared huge page copies 2 MiB instead of 4 KiB (Redis "
	       "advises THP off for that latency and memory), so weigh it against how long the "
	       "child lives and how much the parent writes meanwhile.",
     .source = "Linux mm/memory.c copy_page_range/copy_pte_range; "
	       "Documentation/admin-guide/mm/transhuge.rst; Redis latency docs (fork, THP)",
     .threshold = 0.5,
     .size_min = 100 * MIB,
     .judge = judge_huge_pages},
    {.id = "cpu_contention",
     .title = "the forking task is scheduled out for at least 20% of the fork while it copies "
	      "page tables",
     .advice = "The fork waited for a CPU, not for copying: copy_pte_range drops its locks and "
	       "calls cond_resched(), and another runnable task took the CPU. Give the forking "
	       "task a CPU when it forks (fewer runnable tasks on its CPUs, affinity or a cpuset "
	       "away from busy CPUs, a higher priority for the forking thread), or fork when the "
	       "host is less loaded. Faster page-table copying does not remove this time.",
     .source = "Linux mm/memory.c copy_pte_range (need_resched, cond_resched); "
	       "ptescope copy_offcpu_ns (the task's run_delay, or sched_switch preemptions)",
     .threshold = 0.2,
     .judge = judge_contention},
    {.id = "fork_then_exec",
     .title = "the process forks only to exec (at least 90% of the children seen had exec'd)",
     .advice = "Start the program with posix_spawn(3) (glibc 2.24+ uses clone(CLONE_VM | "
	       "CLONE_VFORK)) or vfork(2): the child borrows the parent's memory until it execs, "
	       "so no VMA and no page table is copied, whatever the parent's size.",
     .source = "posix_spawn(3), vfork(2); glibc sysdeps/unix/sysv/linux/spawni.c",
     .threshold = 0.9,
     .judge = judge_exec},
    {.id = "many_vmas",
     .title = "the parent has many VMAs (at least 1000)",
     .advice = "dup_mmap copies every VMA (the vm_area_struct, its anon_vma chain, file "
	       "references) under the parent's mmap lock: fewer, larger mappings make the fork "
	       "cheaper. Look for many small mappings (per-thread malloc arenas: "
	       "MALLOC_ARENA_MAX; many mapped files; mprotect() splitting regions) and mark "
	       "regions the child never needs with madvise(MADV_DONTFORK).",
     .source = "Linux kernel/fork.c dup_mmap; madvise(2) MADV_DONTFORK; mallopt(3) M_ARENA_MAX",
     .threshold = 1000,
     .judge = judge_vmas},
    {.id = "hypervisor_cost",
     .title = "the fork costs like a virtual machine's (under 25 GB/s of RSS, Redis's 'poor' "
	      "and 'terrible', in a process of at least 256 MiB)",
     .advice = "At this cost per GB, page-table updates are probably trapped or shadowed by a "
	       "hypervisor (Redis's docs: Xen PV guests take hundreds of ms per GB, bare metal "
	       "9-13). Use an instance type with hardware-assisted paging (EPT/NPT: KVM, Xen HVM) "
	       "or bare metal; in the guest, huge pages and a smaller heap shrink what is copied.",
     .source = "Redis src/latency.c (LATENCY DOCTOR fork rate bands), src/server.c "
	       "(stat_fork_rate); Redis latency docs, 'Fork time in different systems'",
     .threshold = 25,
     .size_min = 256 * MIB,
     .judge = judge_hypervisor},
    {.id = "cost_regression",
     .title = "forks cost more than 3 times per GiB what the same program's forks usually cost "
	      "(its baseline: the median over the forks examined, the API's last day)",
     .advice = "Something changed for these forks: open them (the fork ids) beside typical ones "
	       "and compare the time scheduled out and lock breaks (contention), huge pages in "
	       "use, the VMA count, then what changed on the host at that time (kernel, THP "
	       "setting, memory pressure, co-located load).",
     .source = "ptescope's baseline (docs/doctor.md); the Prometheus alert "
	       "PtescopeForkCostRegression (docs/fleet.md) watches the same per comm",
     .threshold = PT_REGRESSION_RATIO,
     .judge = judge_regression},
};

const size_t pt_doctor_nr_rules = sizeof(pt_doctor_rules) / sizeof(pt_doctor_rules[0]);
_Static_assert(sizeof(pt_doctor_rules) / sizeof(pt_doctor_rules[0]) <= PT_DOCTOR_MAX_RULES,
	       "struct pt_doctor_proc holds a verdict per rule");
