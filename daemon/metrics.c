/* SPDX-License-Identifier: MIT */
/*
 * In-memory Prometheus metrics of ptescoped: fork counts, phase durations and
 * PTE lock hold times as fixed-bucket histograms (seconds), lock breaks, PTEs
 * copied, events read and lost per source, capture mode and health,
 * investigations (active, started by reason, refused by why, seconds spent
 * deeper), build info.
 *
 * Fed by the core (pd_metrics_observe_fork for every stored fork, capture
 * counters); read by GET /metrics (pd_metrics_render, http.c). Sized for a
 * fleet scrape every 15 s and forks arriving at up to tens of thousands per
 * second: observing is a few array increments under one mutex, and the
 * label space is fixed at creation (the comm allow-list plus "other", at most
 * PD_METRICS_MAX_COMMS + 1 groups), so the output stays a few hundred lines
 * whatever the traced workload does.
 */
#include <errno.h>
#include <stdarg.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "http_internal.h"
#include "cost.h"
#include "investigate.h"
#include "stats.h"

/* Phase histograms: 10 us .. 10 s (a fork of a 100 GB process takes seconds). */
static const double dur_bounds_s[] = {1e-5,   2.5e-5, 5e-5, 1e-4,   2.5e-4, 5e-4, 1e-3,
				      2.5e-3, 5e-3,   1e-2, 2.5e-2, 5e-2,   0.1,  0.25,
				      0.5,    1,      2.5,  5,	    10};
#define NR_DUR_BOUNDS (sizeof(dur_bounds_s) / sizeof(dur_bounds_s[0]))

/* PTE lock hold times: 1 us .. 100 ms (the copy loop breaks its lock every 32 units). */
static const double hold_bounds_s[] = {1e-6, 2.5e-6, 5e-6,   1e-5, 2.5e-5, 5e-5,   1e-4, 2.5e-4,
				       5e-4, 1e-3,   2.5e-3, 5e-3, 1e-2,   2.5e-2, 5e-2, 0.1};
#define NR_HOLD_BOUNDS (sizeof(hold_bounds_s) / sizeof(hold_bounds_s[0]))
#define NR_BUCKETS_MAX (NR_DUR_BOUNDS > NR_HOLD_BOUNDS ? NR_DUR_BOUNDS : NR_HOLD_BOUNDS)

/* The cost model (analyzer/cost.h), in base units as Prometheus wants them: seconds per
 * GiB of RSS (Redis quotes ~0.01 on bare metal, tenths on some hypervisors), seconds per
 * PTE, and shares of the fork's time. */
static const double ms_gib_bounds[] = {1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 5e-2,
				       0.1,  0.25,   0.5,  1,	 2.5,	 10};
#define NR_MS_GIB_BOUNDS (sizeof(ms_gib_bounds) / sizeof(ms_gib_bounds[0]))
static const double ns_pte_bounds[] = {2.5e-9, 5e-9, 1e-8, 2.5e-8, 5e-8, 1e-7,
				       2.5e-7, 5e-7, 1e-6, 2.5e-6, 1e-5};
#define NR_NS_PTE_BOUNDS (sizeof(ns_pte_bounds) / sizeof(ns_pte_bounds[0]))
static const double share_bounds[] = {0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1};
#define NR_SHARE_BOUNDS (sizeof(share_bounds) / sizeof(share_bounds[0]))

/* Histogram series per comm group: the fork, its four phases, per-fork max hold, per-pass hold. */
enum hist_kind {
	H_FORK,
	H_PHASE0, /* + enum pt_phase */
	H_MAX_HOLD = H_PHASE0 + PT_PHASE_COUNT,
	H_PASS_HOLD,
	H_OFFCPU,     /* copy_offcpu_ns: preempted while copying page tables */
	H_MS_PER_GIB, /* cost.h: not seconds, the plain figure */
	H_NS_PER_PTE,
	H_COPY_SHARE,
	H_OFFCPU_SHARE,
	H_COUNT
};

struct hist {
	uint64_t bucket[NR_BUCKETS_MAX + 1]; /* last: +Inf (not cumulative here) */
	uint64_t count;
	double sum_s;
};

struct comm_group {
	char name[32];
	uint64_t forks, incomplete;
	uint64_t lock_breaks, ptes, passes, copy_resched;
	struct hist h[H_COUNT];
};

#define PD_METRICS_MAX_COMMS 64
#define PD_METRICS_MAX_SOURCES 8

struct event_source {
	char name[16];
	uint64_t read, lost;
};

struct pd_metrics {
	pthread_mutex_t lock;
	struct comm_group *group; /* nr_group - 1 allowed comms, then "other" */
	size_t nr_group;
	uint64_t flagged[PT_FORK_FLAG_COUNT];
	struct event_source src[PD_METRICS_MAX_SOURCES];
	size_t nr_src;
	char mode[16];
	bool healthy;
	bool store_healthy;
	uint64_t store_write_failures, live_store_failed;
	struct pd_inv_counters inv;
};

int pd_metrics_new(const struct pd_metrics_opts *opts, struct pd_metrics **out)
{
	struct pd_metrics *m;
	size_t n = 0, i;

	*out = NULL;
	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	pthread_mutex_init(&m->lock, NULL);
	if (opts && opts->comm_allow)
		n = opts->nr_comm_allow;
	if (n > PD_METRICS_MAX_COMMS)
		n = PD_METRICS_MAX_COMMS;
	m->group = calloc(n + 1, sizeof(*m->group));
	if (!m->group) {
		pd_metrics_free(m);
		return -ENOMEM;
	}
	for (i = 0; i < n; i++)
		snprintf(m->group[i].name, sizeof(m->group[i].name), "%s",
			 opts->comm_allow[i] ? opts->comm_allow[i] : "");
	snprintf(m->group[n].name, sizeof(m->group[n].name), "other");
	m->nr_group = n + 1;
	snprintf(m->mode, sizeof(m->mode), "off");
	m->healthy = true;
	m->store_healthy = true;
	*out = m;
	return 0;
}

void pd_metrics_free(struct pd_metrics *m)
{
	if (!m)
		return;
	pthread_mutex_destroy(&m->lock);
	free(m->group);
	free(m);
}

static void hist_add(struct hist *h, const double *bounds, size_t nr_bounds, uint64_t ns)
{
	double s = (double)ns / 1e9;
	size_t i;

	for (i = 0; i < nr_bounds && s > bounds[i]; i++)
		;
	h->bucket[i]++;
	h->count++;
	h->sum_s += s;
}

/* A histogram of a plain figure (not a duration): @v in the bounds' unit; NAN is skipped. */
static void hist_add_value(struct hist *h, const double *bounds, size_t nr_bounds, double v)
{
	size_t i;

	if (isnan(v))
		return;
	for (i = 0; i < nr_bounds && v > bounds[i]; i++)
		;
	h->bucket[i]++;
	h->count++;
	h->sum_s += v;
}

/* The cost model's figures of a complete fork. */
static void observe_cost(struct comm_group *g, const struct pt_fork *f)
{
	struct pt_fork_cost c;

	pt_fork_cost(f, &c);
	hist_add_value(&g->h[H_MS_PER_GIB], ms_gib_bounds, NR_MS_GIB_BOUNDS,
		       c.ms_per_gib_rss / 1e3);
	hist_add_value(&g->h[H_NS_PER_PTE], ns_pte_bounds, NR_NS_PTE_BOUNDS, c.ns_per_pte / 1e9);
	hist_add_value(&g->h[H_COPY_SHARE], share_bounds, NR_SHARE_BOUNDS, c.copy_share);
	hist_add_value(&g->h[H_OFFCPU_SHARE], share_bounds, NR_SHARE_BOUNDS, c.offcpu_share);
}

static struct comm_group *group_of(struct pd_metrics *m, const char *comm)
{
	size_t i;

	for (i = 0; i + 1 < m->nr_group; i++)
		if (comm[0] && !strcmp(m->group[i].name, comm))
			return &m->group[i];
	return &m->group[m->nr_group - 1];
}

void pd_metrics_observe_fork(struct pd_metrics *m, const struct pt_fork *f)
{
	struct comm_group *g;
	uint64_t ns;
	int b;

	if (!m || !f)
		return;
	pthread_mutex_lock(&m->lock);
	g = group_of(m, f->parent_comm);
	g->forks++;
	for (b = 0; b < PT_FORK_FLAG_COUNT; b++)
		if (f->flags & (1u << b))
			m->flagged[b]++;
	/* Durations, counts and hold times of incomplete forks are cut short by the
	 * trace: like the statistics, the histograms take complete forks only. */
	if (!f->complete) {
		g->incomplete++;
		goto out;
	}
	ns = pt_fork_total_ns(f);
	if (ns != PT_NO_TIME)
		hist_add(&g->h[H_FORK], dur_bounds_s, NR_DUR_BOUNDS, ns);
	for (b = 0; b < PT_PHASE_COUNT; b++) {
		ns = pt_fork_phase_ns(f, (enum pt_phase)b);
		if (ns != PT_NO_TIME)
			hist_add(&g->h[H_PHASE0 + b], dur_bounds_s, NR_DUR_BOUNDS, ns);
	}
	if (f->max_lock_hold_ns != PT_NO_TIME)
		hist_add(&g->h[H_MAX_HOLD], hold_bounds_s, NR_HOLD_BOUNDS, f->max_lock_hold_ns);
	for (size_t i = 0; i < f->nr_pass; i++)
		if (f->pass[i].hold_ns != PT_NO_TIME)
			hist_add(&g->h[H_PASS_HOLD], hold_bounds_s, NR_HOLD_BOUNDS,
				 f->pass[i].hold_ns);
	if (f->lock_breaks != PT_NULL && f->lock_breaks > 0)
		g->lock_breaks += (uint64_t)f->lock_breaks;
	if (f->copy_resched != PT_NULL && f->copy_resched > 0)
		g->copy_resched += (uint64_t)f->copy_resched;
	if (f->copy_offcpu_ns != PT_NO_TIME)
		hist_add(&g->h[H_OFFCPU], dur_bounds_s, NR_DUR_BOUNDS, f->copy_offcpu_ns);
	if (f->ptes != PT_NULL && f->ptes > 0)
		g->ptes += (uint64_t)f->ptes;
	if (f->pte_passes != PT_NULL && f->pte_passes > 0)
		g->passes += (uint64_t)f->pte_passes;
	observe_cost(g, f);
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

/* ------------------------------------------------------------ rendering */

struct out {
	char *buf;
	size_t len, cap;
	int err;
};

__attribute__((format(printf, 2, 3))) static void out_printf(struct out *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (o->err)
		return;
	for (;;) {
		size_t room = o->cap - o->len;

		va_start(ap, fmt);
		n = vsnprintf(o->buf + o->len, room, fmt, ap);
		va_end(ap);
		if (n < 0) {
			o->err = -EINVAL;
			return;
		}
		if ((size_t)n < room) {
			o->len += (size_t)n;
			return;
		}
		size_t cap = o->cap * 2 + (size_t)n + 1;
		char *nb = realloc(o->buf, cap);

		if (!nb) {
			o->err = -ENOMEM;
			return;
		}
		o->buf = nb;
		o->cap = cap;
	}
}

/*
 * Label values here come from the allow-list and fixed names, but a comm may
 * hold any byte: escape backslash, quote and newline as the text format asks.
 */
static const char *label_escape(const char *s, char *buf, size_t len)
{
	size_t j = 0;

	for (; *s && j + 3 < len; s++) {
		if (*s == '\\' || *s == '"') {
			buf[j++] = '\\';
			buf[j++] = *s;
		} else if (*s == '\n') {
			buf[j++] = '\\';
			buf[j++] = 'n';
		} else {
			buf[j++] = *s;
		}
	}
	buf[j] = 0;
	return buf;
}

static void render_hist(struct out *o, const char *name, const char *labels, const struct hist *h,
			const double *bounds, size_t nr_bounds)
{
	uint64_t cum = 0;
	size_t i;

	for (i = 0; i < nr_bounds; i++) {
		cum += h->bucket[i];
		out_printf(o, "%s_bucket{%s,le=\"%g\"} %" PRIu64 "\n", name, labels, bounds[i],
			   cum);
	}
	cum += h->bucket[nr_bounds];
	out_printf(o, "%s_bucket{%s,le=\"+Inf\"} %" PRIu64 "\n", name, labels, cum);
	out_printf(o, "%s_sum{%s} %.9g\n", name, labels, h->sum_s);
	out_printf(o, "%s_count{%s} %" PRIu64 "\n", name, labels, h->count);
}

static const char *const capture_modes[] = {"graph", "syscall", "off"};

/* Labels are fixed names (api|auto; active|budget|cooldown|capture|error): bounded. */
static void render_investigations(struct pd_metrics *m, struct out *o)
{
	int i;

	out_printf(o,
		   "# HELP ptescope_investigation_active 1 while an investigation runs capture at "
		   "a deeper detail.\n"
		   "# TYPE ptescope_investigation_active gauge\n"
		   "ptescope_investigation_active %d\n",
		   m->inv.active);
	out_printf(o, "# HELP ptescope_investigations_total Investigations started, by reason.\n"
		      "# TYPE ptescope_investigations_total counter\n");
	for (i = 0; i < PD_INV_REASON_COUNT; i++)
		out_printf(o, "ptescope_investigations_total{reason=\"%s\"} %" PRIu64 "\n",
			   pd_inv_reason_name((enum pd_inv_reason)i), m->inv.started[i]);
	out_printf(o,
		   "# HELP ptescope_investigation_seconds_total Time spent in deeper detail by "
		   "investigations.\n"
		   "# TYPE ptescope_investigation_seconds_total counter\n"
		   "ptescope_investigation_seconds_total %.3f\n",
		   m->inv.seconds_total);
	out_printf(o, "# HELP ptescope_investigations_refused_total Investigations refused, by "
		      "why.\n"
		      "# TYPE ptescope_investigations_refused_total counter\n");
	for (i = 0; i < PD_INV_REFUSED_COUNT; i++)
		out_printf(o, "ptescope_investigations_refused_total{why=\"%s\"} %" PRIu64 "\n",
			   pd_inv_refusal_name((enum pd_inv_refusal)i), m->inv.refused[i]);
}

/* Build, capture state, investigations, events and flags. */
static void render_status(struct pd_metrics *m, struct out *o)
{
	char esc[96];
	size_t i;
	int p;

	out_printf(o,
		   "# HELP ptescope_build_info Build of ptescoped (always 1).\n"
		   "# TYPE ptescope_build_info gauge\n"
		   "ptescope_build_info{version=\"%s\"} 1\n",
		   PTESCOPE_VERSION);

	out_printf(o, "# HELP ptescope_capture_mode Current capture mode (1 for the active one).\n"
		      "# TYPE ptescope_capture_mode gauge\n");
	for (i = 0; i < sizeof(capture_modes) / sizeof(capture_modes[0]); i++)
		out_printf(o, "ptescope_capture_mode{mode=\"%s\"} %d\n", capture_modes[i],
			   !strcmp(m->mode, capture_modes[i]));
	out_printf(
	    o,
	    "# HELP ptescope_capture_healthy 0 when capture failed or stopped unexpectedly.\n"
	    "# TYPE ptescope_capture_healthy gauge\n"
	    "ptescope_capture_healthy %d\n",
	    m->healthy);
	out_printf(o,
		   "# HELP ptescope_store_healthy 0 from a failed database write until one "
		   "succeeds again.\n"
		   "# TYPE ptescope_store_healthy gauge\n"
		   "ptescope_store_healthy %d\n"
		   "# HELP ptescope_store_write_failures_total Database writes that failed.\n"
		   "# TYPE ptescope_store_write_failures_total counter\n"
		   "ptescope_store_write_failures_total %" PRIu64 "\n"
		   "# HELP ptescope_live_forks_lost_total Live forks not stored: their write "
		   "failed.\n"
		   "# TYPE ptescope_live_forks_lost_total counter\n"
		   "ptescope_live_forks_lost_total %" PRIu64 "\n",
		   m->store_healthy, m->store_write_failures, m->live_store_failed);

	render_investigations(m, o);

	out_printf(o, "# HELP ptescope_events_read_total Trace events read, by source.\n"
		      "# TYPE ptescope_events_read_total counter\n");
	for (i = 0; i < m->nr_src; i++)
		out_printf(o, "ptescope_events_read_total{source=\"%s\"} %" PRIu64 "\n",
			   label_escape(m->src[i].name, esc, sizeof(esc)), m->src[i].read);
	out_printf(o, "# HELP ptescope_events_lost_total Trace events lost (ring buffer overruns), "
		      "by source.\n"
		      "# TYPE ptescope_events_lost_total counter\n");
	for (i = 0; i < m->nr_src; i++)
		out_printf(o, "ptescope_events_lost_total{source=\"%s\"} %" PRIu64 "\n",
			   label_escape(m->src[i].name, esc, sizeof(esc)), m->src[i].lost);

	out_printf(o, "# HELP ptescope_forks_flagged_total Forks flagged incomplete, by flag.\n"
		      "# TYPE ptescope_forks_flagged_total counter\n");
	for (p = 0; p < PT_FORK_FLAG_COUNT; p++)
		out_printf(o, "ptescope_forks_flagged_total{flag=\"%s\"} %" PRIu64 "\n",
			   pt_fork_flag_names[p], m->flagged[p]);
}

/* Per-comm counters. */
static void render_counters(struct pd_metrics *m, struct out *o)
{
	char esc[96];
	size_t g;

#define COUNTER(metric, help, field)                                                               \
	do {                                                                                       \
		out_printf(o, "# HELP " metric " " help "\n# TYPE " metric " counter\n");          \
		for (g = 0; g < m->nr_group; g++)                                                  \
			out_printf(o, metric "{comm=\"%s\"} %" PRIu64 "\n",                        \
				   label_escape(m->group[g].name, esc, sizeof(esc)),               \
				   m->group[g].field);                                             \
	} while (0)
	COUNTER("ptescope_forks_total", "Forks stored, complete or not, by parent comm.", forks);
	COUNTER("ptescope_forks_incomplete_total",
		"Forks stored incomplete (lost events, partial), by parent comm.", incomplete);
	COUNTER("ptescope_lock_breaks_total",
		"Times the PTE copy loop dropped its locks to reschedule (complete forks).",
		lock_breaks);
	COUNTER("ptescope_copy_resched_total",
		"Times the forking task was preempted while copying page tables (complete forks).",
		copy_resched);
	COUNTER("ptescope_ptes_copied_total", "Present PTEs copied (complete forks).", ptes);
	COUNTER("ptescope_pte_passes_total", "PTE lock passes (complete forks).", passes);
#undef COUNTER
}

/* One histogram per comm group, labelled comm="...". */
static void render_comm_hist(struct pd_metrics *m, struct out *o, const char *name,
			     const char *help, enum hist_kind k, const double *bounds, size_t nb)
{
	char esc[96], labels[160];

	out_printf(o, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
	for (size_t g = 0; g < m->nr_group; g++) {
		snprintf(labels, sizeof(labels), "comm=\"%s\"",
			 label_escape(m->group[g].name, esc, sizeof(esc)));
		render_hist(o, name, labels, &m->group[g].h[k], bounds, nb);
	}
}

/* The cost model (analyzer/cost.h), complete forks that carry each figure. */
static void render_cost_hists(struct pd_metrics *m, struct out *o)
{
	render_comm_hist(m, o, "ptescope_fork_seconds_per_rss_gibibyte",
			 "Fork time per GiB of the parent's RSS (live forks whose parent's "
			 "memory was read; Redis quotes about 0.01 s on bare metal).",
			 H_MS_PER_GIB, ms_gib_bounds, NR_MS_GIB_BOUNDS);
	render_comm_hist(m, o, "ptescope_fork_copy_seconds_per_pte",
			 "copy_page_range time per present PTE copied (traces carrying PTEs).",
			 H_NS_PER_PTE, ns_pte_bounds, NR_NS_PTE_BOUNDS);
	render_comm_hist(m, o, "ptescope_fork_copy_share",
			 "Share of the fork (the phase enclosing copy_page_range) spent copying "
			 "page tables.",
			 H_COPY_SHARE, share_bounds, NR_SHARE_BOUNDS);
	render_comm_hist(m, o, "ptescope_fork_offcpu_share",
			 "Share of the fork the forking task spent preempted while copying page "
			 "tables.",
			 H_OFFCPU_SHARE, share_bounds, NR_SHARE_BOUNDS);
}

static void render_hists(struct pd_metrics *m, struct out *o)
{
	char esc[96], labels[160];

	render_comm_hist(m, o, "ptescope_fork_duration_seconds",
			 "Duration of the outermost traced fork-path call (complete forks).", H_FORK,
			 dur_bounds_s, NR_DUR_BOUNDS);
	out_printf(o, "# HELP ptescope_fork_phase_duration_seconds Duration of each fork phase "
		      "(complete forks).\n"
		      "# TYPE ptescope_fork_phase_duration_seconds histogram\n");
	for (size_t g = 0; g < m->nr_group; g++)
		for (int p = 0; p < PT_PHASE_COUNT; p++) {
			snprintf(labels, sizeof(labels), "comm=\"%s\",phase=\"%s\"",
				 label_escape(m->group[g].name, esc, sizeof(esc)),
				 pt_phase_name((enum pt_phase)p));
			render_hist(o, "ptescope_fork_phase_duration_seconds", labels,
				    &m->group[g].h[H_PHASE0 + p], dur_bounds_s, NR_DUR_BOUNDS);
		}
	render_comm_hist(m, o, "ptescope_pte_lock_hold_seconds",
			 "How long one pass held the two PTE locks.", H_PASS_HOLD, hold_bounds_s,
			 NR_HOLD_BOUNDS);
	render_comm_hist(m, o, "ptescope_fork_copy_offcpu_seconds",
			 "Time the forking task spent preempted while copying page tables "
			 "(complete forks).",
			 H_OFFCPU, dur_bounds_s, NR_DUR_BOUNDS);
	render_comm_hist(m, o, "ptescope_fork_max_lock_hold_seconds",
			 "Longest PTE lock hold of each fork.", H_MAX_HOLD, hold_bounds_s,
			 NR_HOLD_BOUNDS);
	render_cost_hists(m, o);
}

static void render_locked(struct pd_metrics *m, struct out *o)
{
	render_status(m, o);
	render_counters(m, o);
	render_hists(m, o);
}

int pd_metrics_render(struct pd_metrics *m, char **buf, size_t *len)
{
	struct out o = {.cap = 64 * 1024};

	*buf = NULL;
	*len = 0;
	o.buf = malloc(o.cap);
	if (!o.buf)
		return -ENOMEM;
	o.buf[0] = 0;
	pthread_mutex_lock(&m->lock);
	render_locked(m, &o);
	pthread_mutex_unlock(&m->lock);
	if (o.err) {
		free(o.buf);
		return o.err;
	}
	*buf = o.buf;
	*len = o.len;
	return 0;
}
