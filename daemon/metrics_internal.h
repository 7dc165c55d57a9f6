/* SPDX-License-Identifier: MIT */
/*
 * What the metrics' files share (metrics.c keeps the state and takes the
 * forks, metrics_render.c writes the exposition, metrics_self.c reads the
 * daemon's own process and database): the histograms, the comm and cgroup
 * groups, the bucket bounds. Private to those files.
 */
#ifndef PTESCOPED_METRICS_INTERNAL_H
#define PTESCOPED_METRICS_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "api.h"
#include "investigate.h"
#include "stats.h"

#define PD_METRICS_MAX_COMMS 64
#define PD_METRICS_MAX_SOURCES 8
#define PD_METRICS_MAX_BUCKETS 20 /* bounds of the widest histogram, +Inf apart */

/* Histogram series per comm group (address-space copies, complete forks). */
enum pd_hist_kind {
	PD_H_FORK,
	PD_H_PHASE0, /* + enum pt_phase */
	PD_H_MAX_HOLD = PD_H_PHASE0 + PT_PHASE_COUNT,
	PD_H_PASS_HOLD,
	PD_H_OFFCPU,	 /* copy_offcpu_ns: preempted while copying page tables */
	PD_H_PER_GIB,	 /* seconds per GiB of the parent's RSS (cost.h) */
	PD_H_PER_PTE,	 /* copy_page_range seconds per PTE */
	PD_H_COPY_RATIO, /* share of the fork spent in copy_page_range */
	PD_H_OFFCPU_RATIO,
	PD_H_COUNT
};

/* The fixed bucket bounds of each histogram kind. */
struct pd_bounds {
	const double *le;
	size_t n;
};
extern const struct pd_bounds pd_hist_bounds[PD_H_COUNT];

/* The last fork that fell in a bucket, for OpenMetrics exemplars (id 0: none). */
struct pd_exemplar {
	int64_t fork_id;
	double value;  /* seconds */
	double wall_s; /* when it was stored, seconds since 1970 */
};

struct pd_hist {
	uint64_t bucket[PD_METRICS_MAX_BUCKETS + 1]; /* last: +Inf; not cumulative */
	uint64_t count;
	double sum;
	struct pd_exemplar *ex; /* PD_METRICS_MAX_BUCKETS + 1, latency kinds only */
};

/* Kinds other than address-space copies, counted on their own. */
enum pd_clone_kind { PD_CLONE_THREAD, PD_CLONE_SPAWN, PD_CLONE_UNKNOWN, PD_CLONE_COUNT };
extern const char *const pd_clone_kind_names[PD_CLONE_COUNT];

struct pd_comm_group {
	char name[32];
	uint64_t forks, incomplete, clones[PD_CLONE_COUNT];
	uint64_t lock_breaks, passes, copy_resched;
	uint64_t cost_ptes; /* PTEs of the forks that count toward cost (fork.h) */
	double cost_copy_s; /* and their copy_page_range time */
	struct pd_hist h[PD_H_COUNT];
};

/* The opt-in cgroup label: forks and their duration per unit or container. */
struct pd_cgroup_group {
	char name[PT_CGROUP_MAX];
	uint64_t forks;
	struct pd_hist dur;
};

struct pd_event_source {
	char name[16];
	uint64_t read, lost;
};

struct pd_metrics {
	pthread_mutex_t lock;
	struct pd_comm_group *group; /* nr_group - 1 allowed comms, then "other" */
	size_t nr_group;
	enum pd_metrics_cgroup_label cg_label;
	struct pd_cgroup_group *cg; /* cg_max named, then "other" (and "none" first) */
	size_t nr_cg, cg_max;
	uint64_t flagged[PT_FORK_FLAG_COUNT];
	struct pd_event_source src[PD_METRICS_MAX_SOURCES];
	size_t nr_src;
	char mode[16];
	bool healthy;
	bool store_healthy;
	uint64_t store_write_failures, live_store_failed;
	struct pd_inv_counters inv;
};

/* An output buffer that grows; err set on the first failure. */
struct pd_out {
	char *buf;
	size_t len, cap;
	int err;
};

__attribute__((format(printf, 2, 3))) void pd_out_printf(struct pd_out *o, const char *fmt, ...);

/* The daemon's own process (/proc/self) and database files, as samples. */
void pd_metrics_self(struct pd_out *o, const char *db_path, bool openmetrics);

#endif
