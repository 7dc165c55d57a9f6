/* SPDX-License-Identifier: MIT */
/*
 * In-memory Prometheus metrics of ptescoped: what each live fork adds. Fork
 * counts, phase durations and PTE lock hold times as fixed-bucket
 * histograms (seconds) of address-space copies; threads, spawns and clones
 * of unknown kind counted apart; lock breaks, PTEs copied and their copy
 * time; per cgroup (opt-in); events read and lost per source; capture and
 * store health; investigations.
 *
 * Fed by the core (pd_metrics_observe_fork for every stored live fork,
 * capture and store counters); read by metrics_render.c for GET /metrics.
 * Sized for a fleet scrape every 15 s and forks arriving at up to tens of
 * thousands per second: observing is a few array increments under one
 * mutex, and the label space is fixed at creation (the comm allow-list plus
 * "other", at most PD_METRICS_MAX_COMMS + 1 groups; cgroup values up to a
 * cap, then "other").
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cgroup.h"
#include "cost.h"
#include "metrics_internal.h"

/* Phase histograms: 10 us .. 10 s (a fork of a 100 GB process takes seconds). */
static const double dur_le[] = {1e-5,	2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2,
				2.5e-2, 5e-2,	0.1,  0.25, 0.5,    1,	  2.5,	5,	10};
/* PTE lock hold times: 1 us .. 100 ms (the copy loop breaks its lock every 32 units). */
static const double hold_le[] = {1e-6, 2.5e-6, 5e-6,   1e-5, 2.5e-5, 5e-5,   1e-4, 2.5e-4,
				 5e-4, 1e-3,   2.5e-3, 5e-3, 1e-2,   2.5e-2, 5e-2, 0.1};
/* The cost model (analyzer/cost.h) in base units: seconds per GiB of RSS
 * (Redis quotes ~0.01 on bare metal, tenths on some hypervisors), seconds
 * per PTE, and ratios of the fork's time. */
static const double gib_le[] = {1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 5e-2, 0.1, 0.25, 0.5, 1, 2.5, 10};
static const double pte_le[] = {2.5e-9, 5e-9, 1e-8, 2.5e-8, 5e-8, 1e-7,
				2.5e-7, 5e-7, 1e-6, 2.5e-6, 1e-5};
static const double ratio_le[] = {0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1};

#define B(a)                                                                                       \
	{                                                                                          \
		a, sizeof(a) / sizeof(a[0])                                                        \
	}
const struct pd_bounds pd_hist_bounds[PD_H_COUNT] = {
    [PD_H_FORK] = B(dur_le),	     [PD_H_PHASE0] = B(dur_le),
    [PD_H_PHASE0 + 1] = B(dur_le),   [PD_H_PHASE0 + 2] = B(dur_le),
    [PD_H_PHASE0 + 3] = B(dur_le),   [PD_H_MAX_HOLD] = B(hold_le),
    [PD_H_PASS_HOLD] = B(hold_le),   [PD_H_OFFCPU] = B(dur_le),
    [PD_H_PER_GIB] = B(gib_le),	     [PD_H_PER_PTE] = B(pte_le),
    [PD_H_COPY_RATIO] = B(ratio_le), [PD_H_OFFCPU_RATIO] = B(ratio_le),
};
#undef B

_Static_assert(sizeof(dur_le) / sizeof(dur_le[0]) <= PD_METRICS_MAX_BUCKETS, "buckets");
_Static_assert(PT_PHASE_COUNT == 4, "one bounds entry per phase");

const char *const pd_clone_kind_names[PD_CLONE_COUNT] = {"thread", "spawn", "unknown"};

static int groups_new(struct pd_metrics *m, const struct pd_metrics_opts *o)
{
	size_t n = o && o->comm_allow ? o->nr_comm_allow : 0;

	if (n > PD_METRICS_MAX_COMMS)
		n = PD_METRICS_MAX_COMMS;
	for (size_t i = 0; i < n; i++) {
		const char *a = o->comm_allow[i] ? o->comm_allow[i] : "";

		/* one series per label value: "other" is the rest, a name is once */
		if (!a[0] || !strcmp(a, "other"))
			return -EINVAL;
		for (size_t j = 0; j < i; j++)
			if (o->comm_allow[j] && !strcmp(o->comm_allow[j], a))
				return -EINVAL;
	}
	if (!(m->group = calloc(n + 1, sizeof(*m->group))))
		return -ENOMEM;
	m->nr_group = n + 1;
	for (size_t i = 0; i <= n; i++) {
		snprintf(m->group[i].name, sizeof(m->group[i].name), "%s",
			 i < n ? o->comm_allow[i] : "other");
		for (int k = PD_H_FORK; k < PD_H_MAX_HOLD; k++)
			if (!(m->group[i].h[k].ex =
				  calloc(PD_METRICS_MAX_BUCKETS + 1, sizeof(struct pd_exemplar))))
				return -ENOMEM;
	}
	return 0;
}

static int cgroups_new(struct pd_metrics *m, const struct pd_metrics_opts *o)
{
	m->cg_label = o ? o->cgroup_label : PD_CG_LABEL_NONE;
	if (m->cg_label == PD_CG_LABEL_NONE)
		return 0;
	m->cg_max = o->cgroup_max ? o->cgroup_max : 20;
	/* "none" (no unit or container), the named ones, then "other" */
	m->cg = calloc(m->cg_max + 2, sizeof(*m->cg));
	if (!m->cg)
		return -ENOMEM;
	snprintf(m->cg[0].name, sizeof(m->cg[0].name), "none");
	m->nr_cg = 1;
	return 0;
}

int pd_metrics_new(const struct pd_metrics_opts *opts, struct pd_metrics **out)
{
	struct pd_metrics *m;
	int ret;

	*out = NULL;
	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	pthread_mutex_init(&m->lock, NULL);
	snprintf(m->mode, sizeof(m->mode), "off");
	m->healthy = true;
	m->store_healthy = true;
	if ((ret = groups_new(m, opts)) || (ret = cgroups_new(m, opts))) {
		pd_metrics_free(m);
		return ret;
	}
	*out = m;
	return 0;
}

void pd_metrics_free(struct pd_metrics *m)
{
	if (!m)
		return;
	for (size_t i = 0; m->group && i < m->nr_group; i++)
		for (int k = 0; k < PD_H_COUNT; k++)
			free(m->group[i].h[k].ex);
	pthread_mutex_destroy(&m->lock);
	free(m->group);
	free(m->cg);
	free(m);
}

static double wall_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Adds @v (the bounds' unit; NAN is skipped) to @h; its exemplar names @id. */
static void hist_add(struct pd_hist *h, enum pd_hist_kind k, double v, int64_t id)
{
	const struct pd_bounds *b = &pd_hist_bounds[k];
	size_t i;

	if (isnan(v))
		return;
	for (i = 0; i < b->n && v > b->le[i]; i++)
		;
	h->bucket[i]++;
	h->count++;
	h->sum += v;
	if (h->ex && id > 0)
		h->ex[i] = (struct pd_exemplar){id, v, wall_s()};
}

static void hist_add_ns(struct pd_hist *h, enum pd_hist_kind k, uint64_t ns, int64_t id)
{
	if (ns != PT_NO_TIME)
		hist_add(h, k, (double)ns / 1e9, id);
}

/* The cost model's figures of a complete fork. */
static void observe_cost(struct pd_comm_group *g, const struct pt_fork *f)
{
	struct pt_fork_cost c;

	pt_fork_cost(f, &c);
	hist_add(&g->h[PD_H_PER_GIB], PD_H_PER_GIB, c.ms_per_gib_rss / 1e3, 0);
	hist_add(&g->h[PD_H_PER_PTE], PD_H_PER_PTE, c.ns_per_pte / 1e9, 0);
	hist_add(&g->h[PD_H_COPY_RATIO], PD_H_COPY_RATIO, c.copy_share, 0);
	hist_add(&g->h[PD_H_OFFCPU_RATIO], PD_H_OFFCPU_RATIO, c.offcpu_share, 0);
	if (pt_counts_toward_cost(f->complete, f->copy_page_range_ns, f->ptes)) {
		g->cost_ptes += (uint64_t)f->ptes;
		g->cost_copy_s += (double)f->copy_page_range_ns / 1e9;
	}
}

static struct pd_comm_group *group_of(struct pd_metrics *m, const char *comm)
{
	for (size_t i = 0; i + 1 < m->nr_group; i++)
		if (comm[0] && !strcmp(m->group[i].name, comm))
			return &m->group[i];
	return &m->group[m->nr_group - 1];
}

/* The durations and counts of a complete address-space copy. */
static void observe_complete(struct pd_comm_group *g, const struct pt_fork *f, int64_t id)
{
	hist_add_ns(&g->h[PD_H_FORK], PD_H_FORK, pt_fork_total_ns(f), id);
	/* kernel_clone, where a capture has it, is the fork's total: the fork
	 * histogram above; its phase series would repeat it */
	for (int p = PT_PHASE_COPY_PROCESS; p < PT_PHASE_COUNT; p++)
		hist_add_ns(&g->h[PD_H_PHASE0 + p], PD_H_PHASE0 + p,
			    pt_fork_phase_ns(f, (enum pt_phase)p), id);
	hist_add_ns(&g->h[PD_H_MAX_HOLD], PD_H_MAX_HOLD, f->max_lock_hold_ns, 0);
	for (size_t i = 0; i < f->nr_pass; i++)
		hist_add_ns(&g->h[PD_H_PASS_HOLD], PD_H_PASS_HOLD, f->pass[i].hold_ns, 0);
	hist_add_ns(&g->h[PD_H_OFFCPU], PD_H_OFFCPU, f->copy_offcpu_ns, 0);
	if (f->lock_breaks != PT_NULL && f->lock_breaks > 0)
		g->lock_breaks += (uint64_t)f->lock_breaks;
	if (f->copy_resched != PT_NULL && f->copy_resched > 0)
		g->copy_resched += (uint64_t)f->copy_resched;
	if (f->pte_passes != PT_NULL && f->pte_passes > 0)
		g->passes += (uint64_t)f->pte_passes;
	observe_cost(g, f);
}

/* The cgroup group of @f (its unit or container), added while under the cap. */
static struct pd_cgroup_group *cgroup_of(struct pd_metrics *m, const struct pt_fork *f)
{
	char v[PT_CGROUP_MAX];
	bool named = m->cg_label == PD_CG_LABEL_UNIT ? pt_cgroup_unit(f->cgroup, v, sizeof(v))
						     : pt_cgroup_container(f->cgroup, v, sizeof(v));
	size_t i;

	if (!named)
		return &m->cg[0];
	for (i = 1; i < m->nr_cg; i++)
		if (!strcmp(m->cg[i].name, v))
			return &m->cg[i];
	if (m->nr_cg <= m->cg_max) { /* room for one more named value */
		snprintf(m->cg[m->nr_cg].name, sizeof(m->cg[0].name), "%s", v);
		return &m->cg[m->nr_cg++];
	}
	snprintf(m->cg[m->cg_max + 1].name, sizeof(m->cg[0].name), "other");
	return &m->cg[m->cg_max + 1];
}

static void observe_cgroup(struct pd_metrics *m, const struct pt_fork *f)
{
	struct pd_cgroup_group *c;

	if (m->cg_label == PD_CG_LABEL_NONE)
		return;
	c = cgroup_of(m, f);
	c->forks++;
	if (f->complete)
		hist_add_ns(&c->dur, PD_H_FORK, pt_fork_total_ns(f), 0);
}

void pd_metrics_observe_fork(struct pd_metrics *m, const struct pt_fork *f, int64_t fork_id)
{
	struct pd_comm_group *g;

	if (!m || !f)
		return;
	pthread_mutex_lock(&m->lock);
	g = group_of(m, f->parent_comm);
	if (f->kind != PT_KIND_FORK) {
		/* a thread's or a spawn's time is not a fork's: counted, never timed */
		g->clones[f->kind == PT_KIND_THREAD  ? PD_CLONE_THREAD
			  : f->kind == PT_KIND_SPAWN ? PD_CLONE_SPAWN
						     : PD_CLONE_UNKNOWN]++;
		goto out;
	}
	g->forks++;
	for (int b = 0; b < PT_FORK_FLAG_COUNT; b++)
		if (f->flags & (1u << b))
			m->flagged[b]++;
	observe_cgroup(m, f);
	/* Durations, counts and hold times of incomplete forks are cut short by the
	 * trace: like the statistics, the histograms take complete forks only. */
	if (!f->complete)
		g->incomplete++;
	else
		observe_complete(g, f, fork_id);
out:
	pthread_mutex_unlock(&m->lock);
}

void pd_metrics_add_events(struct pd_metrics *m, const char *source, uint64_t read, uint64_t lost)
{
	size_t i;

	if (!m)
		return;
	if (!source || !source[0])
		source = "unknown";
	pthread_mutex_lock(&m->lock);
	for (i = 0; i < m->nr_src; i++)
		if (!strncmp(m->src[i].name, source, sizeof(m->src[i].name) - 1))
			break;
	if (i == m->nr_src) {
		/* Sources are a handful of fixed names; past the table, fold into the last. */
		if (m->nr_src < PD_METRICS_MAX_SOURCES)
			snprintf(m->src[m->nr_src++].name, sizeof(m->src[0].name), "%s", source);
		else
			i = PD_METRICS_MAX_SOURCES - 1;
	}
	m->src[i].read += read;
	m->src[i].lost += lost;
	pthread_mutex_unlock(&m->lock);
}

void pd_metrics_set_capture(struct pd_metrics *m, const char *mode, bool healthy)
{
	if (!m)
		return;
	pthread_mutex_lock(&m->lock);
	snprintf(m->mode, sizeof(m->mode), "%s", mode ? mode : "off");
	m->healthy = healthy;
	pthread_mutex_unlock(&m->lock);
}

void pd_metrics_set_store(struct pd_metrics *m, bool healthy, uint64_t write_failures,
			  uint64_t live_forks_lost)
{
	if (!m)
		return;
	pthread_mutex_lock(&m->lock);
	m->store_healthy = healthy;
	m->store_write_failures = write_failures;
	m->live_store_failed = live_forks_lost;
	pthread_mutex_unlock(&m->lock);
}

void pd_metrics_set_investigations(struct pd_metrics *m, const struct pd_inv_counters *c)
{
	if (!m || !c)
		return;
	pthread_mutex_lock(&m->lock);
	m->inv = *c;
	pthread_mutex_unlock(&m->lock);
}
