/* SPDX-License-Identifier: MIT */
/*
 * The doctor: for each process whose forks are slow, what dominates their
 * time, with the evidence (figures and the forks they come from), and advice
 * where the evidence supports it. `ptescope doctor` (on a database or trace
 * files), GET /api/v1/doctor and the dashboard's panel show it.
 *
 * Fed fork records (a replay's, or a query of the store) with their ids;
 * groups them by process (parent comm and pid), aggregates each process's
 * complete forks (doctor.c), and runs every rule of the table in
 * doctor_rules.c over each aggregate. A rule says it fires, stays quiet, or
 * cannot judge, and then why: replays carry no parent memory (RSS, VMAs of
 * the parent, exec of the child), filters leave phases or PTEs out, so each
 * rule works from what the forks give and names what it missed.
 *
 * Sized like the report: forks in memory, one pass to sort them by process.
 */
#ifndef PTESCOPE_DOCTOR_H
#define PTESCOPE_DOCTOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "fork.h"

enum pt_verdict {
	PT_VERDICT_FIRES,   /* the evidence supports the advice */
	PT_VERDICT_QUIET,   /* the evidence says it does not apply */
	PT_VERDICT_UNKNOWN, /* the forks do not carry what it needs */
};

/* "fires", "quiet", "cannot_judge". */
const char *pt_verdict_name(enum pt_verdict v);

/* Where a process's fork time went, summed over its complete forks. */
enum pt_component {
	PT_COMP_PTE_COPY,     /* copy_page_range, on the CPU */
	PT_COMP_OFFCPU,	      /* preempted while copying page tables */
	PT_COMP_VMAS,	      /* dup_mmap outside copy_page_range: per-VMA work */
	PT_COMP_COPY_PROCESS, /* copy_process outside dup_mmap */
	PT_COMP_KERNEL_CLONE, /* kernel_clone outside copy_process */
	PT_COMP_COUNT
};

/* "page_table_copy", ... */
const char *pt_component_name(enum pt_component c);

/*
 * The baseline of a comm: the median cost per GiB of its complete forks among
 * those given (the API: the last day), from the parent's RSS (live forks of at
 * least 64 MiB) or else from the PTEs copied (at least 1024: 4 MiB), once at
 * least PT_BASELINE_MIN forks carry it. A fork costing more than
 * PT_REGRESSION_RATIO times that is a regression (rule cost_regression).
 */
#define PT_BASELINE_MIN 4
#define PT_REGRESSION_RATIO 3.0

enum pt_baseline_kind {
	PT_BASELINE_NONE = -1,
	PT_BASELINE_RSS,  /* ms per GiB of the parent's RSS */
	PT_BASELINE_PTES, /* ms of copy_page_range per GiB of PTEs copied (4 KiB pages) */
};

#define PT_DOCTOR_EVIDENCE 320
#define PT_DOCTOR_MAX_RULES 16
#define PT_DOCTOR_SLOWEST 3

/* One process's forks, aggregated: NAN / -1 where no fork carried a figure. */
struct pt_doctor_proc {
	char comm[32];
	int pid; /* -1 unknown */
	size_t forks, complete; /* of the kinds examined */
	uint64_t p50_ns, max_ns;	    /* total time of complete forks */
	int64_t slowest[PT_DOCTOR_SLOWEST]; /* fork ids, slowest first */
	size_t nr_slowest;
	double share[PT_COMP_COUNT];	 /* of the time of forks with an outer phase; NAN */
	int dominant;			 /* enum pt_component, -1 when unknown */
	double copy_share, offcpu_share; /* medians / sum ratio (cost.h) */
	double ns_per_pte, ms_per_gib_rss, gb_per_s;		  /* medians */
	int64_t ptes, pte_tables, vmas;				  /* medians from the trace */
	int64_t rss_bytes, pte_bytes, map_count, anon_huge_bytes; /* medians, parent_mem */
	bool huge_seen;	     /* a VMA copy with huge PMDs in the detail */
	int64_t lock_breaks; /* sum, -1 when not carried */
	size_t forks_with_breaks;
	size_t exec_known, exec_yes;		   /* children whose exec was seen / that exec'd */
	size_t no_mm_forks;			   /* forks that copied no VMA (vfork/threads) */
	int baseline_kind;			   /* enum pt_baseline_kind */
	double baseline_ms_per_gib;		   /* the comm's median */
	size_t baseline_forks;			   /* forks of the comm behind it */
	size_t regressions;			   /* forks of this process over the ratio */
	double worst_ms_per_gib;		   /* of this process's forks, NAN when none */
	int64_t regression_ids[PT_DOCTOR_SLOWEST]; /* the worst regressions, worst first */
	size_t nr_regression_ids;
	enum pt_verdict verdict[PT_DOCTOR_MAX_RULES]; /* per rule, in table order */
	char evidence[PT_DOCTOR_MAX_RULES]
		     [PT_DOCTOR_EVIDENCE]; /* the figures, or what was missing */
};

struct pt_doctor_rule {
	const char *id;	    /* "page_tables_huge_pages", ... */
	const char *title;  /* what it looks for, one line */
	const char *advice; /* what to do when it fires */
	const char *source; /* where the advice and thresholds come from (docs/doctor.md) */
	double threshold;   /* the rule's main figure (its unit in the title) */
	double size_min;    /* the process must map at least this many bytes (0: any) */
	enum pt_verdict (*judge)(const struct pt_doctor_rule *r, const struct pt_doctor_proc *p,
				 char *ev, size_t evlen);
};

/* The rule table (doctor_rules.c) and its length. */
extern const struct pt_doctor_rule pt_doctor_rules[];
extern const size_t pt_doctor_nr_rules;

struct pt_doctor_opts {
	uint64_t
	    slow_ns; /* a process is examined when a complete fork took at least this; 0: 1 ms */
	size_t max_procs; /* at most this many, slowest first; 0: 20 */
	/* the kinds examined (bits 1 << enum pt_fork_kind); 0: address-space
	 * copies only: a spawn waiting for its child's exec is not a slow fork */
	unsigned kinds;
};

struct pt_doctor_report {
	struct pt_doctor_proc *procs; /* slowest first; owned */
	size_t nr_procs;
	size_t processes; /* processes seen (examined or not) */
	size_t forks, complete;
	uint64_t slow_ns;
	bool ids_are_store_ids; /* else 1-based positions in the input order */
};

/*
 * Examines @forks; @ids (may be NULL: positions 1..n stand for them) names
 * each fork in the evidence. Returns 0 or -ENOMEM; release with
 * pt_doctor_release.
 */
int pt_doctor_run(const struct pt_fork *forks, const int64_t *ids, size_t n,
		  const struct pt_doctor_opts *o, struct pt_doctor_report *out);
void pt_doctor_release(struct pt_doctor_report *r);

/* The report as JSON (new reference, NULL on ENOMEM), and as text. */
json_t *pt_doctor_json(const struct pt_doctor_report *r);
/* Returns 0 or -EIO. */
int pt_doctor_write_text(FILE *out, const struct pt_doctor_report *r);

#endif
