/* SPDX-License-Identifier: MIT */
/*
 * The exposition of the metrics (metrics.c's state) for GET /metrics:
 * Prometheus text 0.0.4, or OpenMetrics 1.0.0 when the scraper asks for it
 * (the same samples; counters typed without their _total suffix, exemplars
 * naming the fork id on the latency buckets, "# EOF" at the end).
 *
 * Fed the core's status object with each scrape: the capture's mode, detail,
 * hooked functions, pass probes and preemptions decide which families carry
 * figures at all. A family the running capture cannot fill (the PTE lock
 * holds in syscall mode, dup_mmap where the kernel inlines it) is left out
 * unless it has data (an investigation filled it), so that no series is
 * zero forever. docs/fleet.md has the families and the measured series
 * count per comm.
 */
#include <errno.h>
#include <stddef.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics_internal.h"

#ifndef PTESCOPE_REVISION
#define PTESCOPE_REVISION "unknown"
#endif

void pd_out_printf(struct pd_out *o, const char *fmt, ...)
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

#define P pd_out_printf

/* What the running capture can fill, from the status object. */
struct carried {
	bool fork, phase[PT_PHASE_COUNT], passes, ptes, preempt, per_gib, copy_ratio;
};

static const char *str_at(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : "";
}

static bool word_in(const char *list, const char *w)
{
	size_t n = strlen(w);

	for (const char *p = list; (p = strstr(p, w)); p += n)
		if ((p == list || p[-1] == ',') && (p[n] == ',' || !p[n]))
			return true;
	return false;
}

static void carried_of(const json_t *st, struct carried *c)
{
	const json_t *cap = json_object_get(st, "capture"), *live = json_object_get(st, "live");
	const char *mode = str_at(cap, "mode"), *fn = str_at(cap, "functions");
	const char *detail = str_at(cap, "detail");
	bool armed = !strcmp(str_at(json_object_get(cap, "passes"), "state"), "armed");

	memset(c, 0, sizeof(*c));
	c->per_gib = json_is_true(json_object_get(live, "parent_mem"));
	if (!strcmp(mode, "syscall")) {
		c->fork = true; /* kernel_clone only: the fork histogram */
		return;
	}
	if (strcmp(mode, "graph")) {
		c->per_gib = false;
		return;
	}
	c->fork = true;
	/* the kernel_clone phase is the fork's total: ptescope_fork_duration_seconds */
	c->phase[PT_PHASE_COPY_PROCESS] = word_in(fn, "copy_process");
	c->phase[PT_PHASE_DUP_MMAP] = word_in(fn, "dup_mmap");
	c->phase[PT_PHASE_COPY_PAGE_RANGE] = word_in(fn, "copy_page_range");
	c->passes = armed || !strcmp(detail, "section") || !strcmp(detail, "pte");
	c->ptes = armed || !strcmp(detail, "pte");
	c->preempt = json_is_true(json_object_get(cap, "preemptions"));
	c->copy_ratio = c->phase[PT_PHASE_COPY_PAGE_RANGE] &&
			(word_in(fn, "kernel_clone") || c->phase[PT_PHASE_COPY_PROCESS] ||
			 c->phase[PT_PHASE_DUP_MMAP]);
}

/* Label values come from the allow-list, cgroup paths and fixed names, but any
 * byte may be in them: backslash, quote and newline escaped as the formats ask. */
static const char *esc(const char *s, char *buf, size_t len)
{
	size_t j = 0;

	for (; *s && j + 3 < len; s++) {
		if (*s == '\\' || *s == '"' || *s == '\n') {
			buf[j++] = '\\';
			buf[j++] = *s == '\n' ? 'n' : *s;
		} else {
			buf[j++] = *s;
		}
	}
	buf[j] = 0;
	return buf;
}

struct render {
	struct pd_metrics *m;
	const json_t *st;
	struct pd_out *o;
	bool om; /* OpenMetrics */
	struct carried c;
};

/* HELP and TYPE of a family; a counter's family name in OpenMetrics has no _total. */
static void family(struct render *r, const char *name, const char *type, const char *help)
{
	size_t n = strlen(name);

	if (r->om && !strcmp(type, "counter") && n > 6 && !strcmp(name + n - 6, "_total"))
		n -= 6;
	P(r->o, "# HELP %.*s %s\n# TYPE %.*s %s\n", (int)n, name, help, (int)n, name, type);
}

/* One sample of a gauge or counter family without labels. */
static void single(struct render *r, const char *name, const char *type, const char *help, double v)
{
	family(r, name, type, help);
	P(r->o, "%s %.17g\n", name, v);
}

static void hist_series(struct render *r, const char *name, const char *labels,
			const struct pd_hist *h, enum pd_hist_kind k)
{
	const struct pd_bounds *b = &pd_hist_bounds[k];
	const char *sep = labels[0] ? "," : "";
	uint64_t cum = 0;

	for (size_t i = 0; i <= b->n; i++) {
		char le[32];

		cum += h->bucket[i];
		if (i < b->n)
			snprintf(le, sizeof(le), "%g", b->le[i]);
		else
			snprintf(le, sizeof(le), "+Inf");
		P(r->o, "%s_bucket{%s%sle=\"%s\"} %" PRIu64, name, labels, sep, le, cum);
		if (r->om && h->ex && h->ex[i].fork_id > 0)
			P(r->o, " # {fork_id=\"%" PRId64 "\"} %.9g %.3f", h->ex[i].fork_id,
			  h->ex[i].value, h->ex[i].wall_s);
		P(r->o, "\n");
	}
	P(r->o, "%s_sum%s%s%s %.9g\n", name, labels[0] ? "{" : "", labels, labels[0] ? "}" : "",
	  h->sum);
	P(r->o, "%s_count%s%s%s %" PRIu64 "\n", name, labels[0] ? "{" : "", labels,
	  labels[0] ? "}" : "", h->count);
}

/* Whether any comm group has values in histogram @k. */
static bool hist_has_data(const struct pd_metrics *m, enum pd_hist_kind k)
{
	for (size_t g = 0; g < m->nr_group; g++)
		if (m->group[g].h[k].count)
			return true;
	return false;
}

/* One histogram per comm group, when the capture fills it or it has values. */
static void comm_hist(struct render *r, const char *name, const char *help, enum pd_hist_kind k,
		      bool carried)
{
	char e[96], labels[160];

	if (!carried && !hist_has_data(r->m, k))
		return;
	family(r, name, "histogram", help);
	for (size_t g = 0; g < r->m->nr_group; g++) {
		snprintf(labels, sizeof(labels), "comm=\"%s\"",
			 esc(r->m->group[g].name, e, sizeof(e)));
		hist_series(r, name, labels, &r->m->group[g].h[k], k);
	}
}

/* Per-comm counters; a family the capture cannot fill is left out while zero. */
static void comm_counter(struct render *r, const char *name, const char *help, size_t off,
			 bool carried)
{
	char e[96];
	bool any = false;

	for (size_t g = 0; g < r->m->nr_group; g++)
		any |= *(const uint64_t *)((const char *)&r->m->group[g] + off) != 0;
	if (!carried && !any)
		return;
	family(r, name, "counter", help);
	for (size_t g = 0; g < r->m->nr_group; g++)
		P(r->o, "%s{comm=\"%s\"} %" PRIu64 "\n", name,
		  esc(r->m->group[g].name, e, sizeof(e)),
		  *(const uint64_t *)((const char *)&r->m->group[g] + off));
}

static void render_counters(struct render *r)
{
	const struct carried *c = &r->c;
	char e[96];

#define OFF(f) offsetof(struct pd_comm_group, f)
	comm_counter(r, "ptescope_forks_total",
		     "Forks that copied an address space, complete or not, by parent comm (live).",
		     OFF(forks), true);
	comm_counter(r, "ptescope_forks_incomplete_total",
		     "Of those, forks stored incomplete (lost events, partial).", OFF(incomplete),
		     true);
	family(r, "ptescope_clones_total", "counter",
	       "Clones that copied no address space, by parent comm and kind: thread "
	       "(CLONE_THREAD), spawn (vfork, posix_spawn), unknown (the capture did not say).");
	for (size_t g = 0; g < r->m->nr_group; g++)
		for (int k = 0; k < PD_CLONE_COUNT; k++)
			P(r->o, "ptescope_clones_total{comm=\"%s\",kind=\"%s\"} %" PRIu64 "\n",
			  esc(r->m->group[g].name, e, sizeof(e)), pd_clone_kind_names[k],
			  r->m->group[g].clones[k]);
	comm_counter(r, "ptescope_lock_breaks_total",
		     "Times the PTE copy loop dropped its locks to reschedule (complete forks).",
		     OFF(lock_breaks), c->passes);
	comm_counter(r, "ptescope_pte_passes_total", "PTE lock passes (complete forks).",
		     OFF(passes), c->passes);
	comm_counter(r, "ptescope_copy_resched_total",
		     "Times the forking task was preempted while copying page tables (complete "
		     "forks).",
		     OFF(copy_resched), c->preempt);
	comm_counter(r, "ptescope_ptes_copied_total",
		     "Present PTEs copied by the complete forks that carry their PTEs and "
		     "copy_page_range time (the cost per PTE's forks).",
		     OFF(cost_ptes), c->ptes);
#undef OFF
	if (!c->ptes) {
		bool any = false;

		for (size_t g = 0; g < r->m->nr_group; g++)
			any |= r->m->group[g].cost_ptes != 0;
		if (!any)
			return;
	}
	family(r, "ptescope_pte_copy_seconds_total", "counter",
	       "copy_page_range time of the forks counted in ptescope_ptes_copied_total: the "
	       "two give the cost per PTE.");
	for (size_t g = 0; g < r->m->nr_group; g++)
		P(r->o, "ptescope_pte_copy_seconds_total{comm=\"%s\"} %.9g\n",
		  esc(r->m->group[g].name, e, sizeof(e)), r->m->group[g].cost_copy_s);
}

static void render_phases(struct render *r)
{
	static const char name[] = "ptescope_fork_phase_duration_seconds";
	char e[96], labels[160];
	bool show[PT_PHASE_COUNT], any = false;

	for (int p = 0; p < PT_PHASE_COUNT; p++) {
		show[p] = r->c.phase[p] || hist_has_data(r->m, PD_H_PHASE0 + p);
		any |= show[p];
	}
	if (!any)
		return;
	family(r, name, "histogram",
	       "Duration of each fork phase below kernel_clone (complete forks; kernel_clone "
	       "itself is ptescope_fork_duration_seconds).");
	for (size_t g = 0; g < r->m->nr_group; g++)
		for (int p = 0; p < PT_PHASE_COUNT; p++) {
			if (!show[p])
				continue;
			snprintf(labels, sizeof(labels), "comm=\"%s\",phase=\"%s\"",
				 esc(r->m->group[g].name, e, sizeof(e)),
				 pt_phase_name((enum pt_phase)p));
			hist_series(r, name, labels, &r->m->group[g].h[PD_H_PHASE0 + p],
				    PD_H_PHASE0 + p);
		}
}

static void render_hists(struct render *r)
{
	const struct carried *c = &r->c;

	comm_hist(r, "ptescope_fork_duration_seconds",
		  "Duration of the outermost traced fork-path call (complete forks that copied "
		  "an address space).",
		  PD_H_FORK, c->fork);
	render_phases(r);
	comm_hist(r, "ptescope_pte_lock_hold_seconds", "How long one pass held the two PTE locks.",
		  PD_H_PASS_HOLD, c->passes);
	comm_hist(r, "ptescope_fork_max_lock_hold_seconds", "Longest PTE lock hold of each fork.",
		  PD_H_MAX_HOLD, c->passes);
	comm_hist(r, "ptescope_fork_copy_offcpu_seconds",
		  "Time the forking task spent preempted while copying page tables.", PD_H_OFFCPU,
		  c->preempt);
	comm_hist(r, "ptescope_fork_seconds_per_rss_gibibyte",
		  "Fork time per GiB of the parent's RSS (forks whose parent's memory was read; "
		  "Redis quotes about 0.01 s on bare metal).",
		  PD_H_PER_GIB, c->per_gib);
	comm_hist(r, "ptescope_fork_copy_seconds_per_pte",
		  "copy_page_range time per present PTE copied.", PD_H_PER_PTE, c->ptes);
	comm_hist(r, "ptescope_fork_copy_ratio",
		  "Share of the fork (the phase enclosing copy_page_range) spent copying page "
		  "tables.",
		  PD_H_COPY_RATIO, c->copy_ratio);
	comm_hist(r, "ptescope_fork_offcpu_ratio",
		  "Share of the fork the forking task spent preempted while copying page tables.",
		  PD_H_OFFCPU_RATIO, c->preempt);
}

/* The opt-in cgroup label: forks and their duration per unit or container. */
static void render_cgroups(struct render *r)
{
	const char *label = r->m->cg_label == PD_CG_LABEL_UNIT ? "systemd_unit" : "container_id";
	char e[2 * PT_CGROUP_MAX], labels[2 * PT_CGROUP_MAX + 32];
	size_t other = r->m->cg_max + 1;

	if (r->m->cg_label == PD_CG_LABEL_NONE)
		return;
	family(r, "ptescope_cgroup_forks_total", "counter",
	       "Forks that copied an address space, by the parent's cgroup (capped; then "
	       "\"other\"; \"none\" without one).");
	for (size_t i = 0; i <= other; i++)
		if (i < r->m->nr_cg || (i == other && r->m->cg[other].forks))
			P(r->o, "ptescope_cgroup_forks_total{%s=\"%s\"} %" PRIu64 "\n", label,
			  esc(r->m->cg[i].name, e, sizeof(e)), r->m->cg[i].forks);
	family(r, "ptescope_cgroup_fork_duration_seconds", "histogram",
	       "Duration of complete forks, by the parent's cgroup (as above).");
	for (size_t i = 0; i <= other; i++)
		if (i < r->m->nr_cg || (i == other && r->m->cg[other].forks)) {
			snprintf(labels, sizeof(labels), "%s=\"%s\"", label,
				 esc(r->m->cg[i].name, e, sizeof(e)));
			hist_series(r, "ptescope_cgroup_fork_duration_seconds", labels,
				    &r->m->cg[i].dur, PD_H_FORK);
		}
}

/* Labels are fixed names (api|auto; active|budget|cooldown|capture|error): bounded. */
static void render_investigations(struct render *r)
{
	const struct pd_inv_counters *inv = &r->m->inv;

	single(r, "ptescope_investigation_active", "gauge",
	       "1 while an investigation runs capture at a deeper detail.", inv->active);
	family(r, "ptescope_investigations_total", "counter", "Investigations started, by reason.");
	for (int i = 0; i < PD_INV_REASON_COUNT; i++)
		P(r->o, "ptescope_investigations_total{reason=\"%s\"} %" PRIu64 "\n",
		  pd_inv_reason_name((enum pd_inv_reason)i), inv->started[i]);
	single(r, "ptescope_investigation_seconds_total", "counter",
	       "Time spent in deeper detail by investigations.", inv->seconds_total);
	family(r, "ptescope_investigations_refused_total", "counter",
	       "Investigations refused, by why.");
	for (int i = 0; i < PD_INV_REFUSED_COUNT; i++)
		P(r->o, "ptescope_investigations_refused_total{why=\"%s\"} %" PRIu64 "\n",
		  pd_inv_refusal_name((enum pd_inv_refusal)i), inv->refused[i]);
}

static int64_t int_at(const json_t *o, const char *key)
{
	return json_integer_value(json_object_get(o, key));
}

/*
 * What runs: the capture's mode, detail, hooks and the kernel as an info
 * metric, whether auto (or a failure) left a weaker mode than asked, and its
 * probes' misses.
 */
static void render_capture(struct render *r)
{
	const json_t *cap = json_object_get(r->st, "capture");
	const char *mode = cap ? str_at(cap, "mode") : r->m->mode, *req = str_at(cap, "requested");
	char e1[64], e2[64], e3[64], e4[160];
	bool weaker;

	if (!mode[0])
		mode = r->m->mode;
	/* auto and graph aim at graph; syscall at syscall: less than that is a fallback */
	weaker = req[0] && strcmp(mode, "graph") &&
		 (!strcmp(req, "auto") || !strcmp(req, "graph") ||
		  (!strcmp(req, "syscall") && strcmp(mode, "syscall")));
	family(r, "ptescope_capture_info", "gauge",
	       "The running capture (always 1): mode, detail, hooks, the kernel.");
	P(r->o, "ptescope_capture_info{mode=\"%s\",detail=\"%s\",hooks=\"%s\",kernel=\"%s\"} 1\n",
	  esc(mode, e1, sizeof(e1)), esc(str_at(cap, "detail"), e2, sizeof(e2)),
	  esc(str_at(cap, "hooks"), e3, sizeof(e3)), esc(str_at(r->st, "kernel"), e4, sizeof(e4)));
	single(r, "ptescope_capture_fallback", "gauge",
	       "1 when the capture runs a weaker mode than asked (auto fell back from graph, or "
	       "the asked mode failed).",
	       weaker);
	single(r, "ptescope_capture_healthy", "gauge",
	       "0 when capture failed or stopped unexpectedly.", r->m->healthy);
	if (!strcmp(mode, "graph"))
		single(
		    r, "ptescope_kprobe_missed_total", "counter",
		    "Hits of the capture's kprobes the kernel could not record (kprobe_profile).",
		    (double)int_at(cap, "kprobe_missed"));
}

/* Replays and uploads: their own counters, never the live fork families. */
static void render_replays(struct render *r)
{
	const json_t *rp = json_object_get(r->st, "replays");

	family(r, "ptescope_replays_total", "counter",
	       "Replays (--replay files and uploads) by result: stored, skipped (stored "
	       "before), failed.");
	P(r->o, "ptescope_replays_total{result=\"stored\"} %" PRId64 "\n", int_at(rp, "done"));
	P(r->o, "ptescope_replays_total{result=\"skipped\"} %" PRId64 "\n", int_at(rp, "skipped"));
	P(r->o, "ptescope_replays_total{result=\"failed\"} %" PRId64 "\n", int_at(rp, "failed"));
	single(r, "ptescope_replay_forks_total", "counter",
	       "Forks stored from replays (in the database and the API, not in the fork "
	       "families).",
	       (double)int_at(rp, "forks"));
	single(r, "ptescope_replays_queued", "gauge", "Replays waiting or running.",
	       (double)int_at(rp, "queued"));
}

static void render_store(struct render *r)
{
	single(r, "ptescope_store_healthy", "gauge",
	       "0 from a failed database write until one succeeds again.", r->m->store_healthy);
	single(r, "ptescope_store_write_failures_total", "counter", "Database writes that failed.",
	       (double)r->m->store_write_failures);
	single(r, "ptescope_live_forks_lost_total", "counter",
	       "Live forks not stored: their write failed.", (double)r->m->live_store_failed);
}

static void render_events(struct render *r)
{
	char e[96];

	family(r, "ptescope_events_read_total", "counter", "Trace events read, by source.");
	for (size_t i = 0; i < r->m->nr_src; i++)
		P(r->o, "ptescope_events_read_total{source=\"%s\"} %" PRIu64 "\n",
		  esc(r->m->src[i].name, e, sizeof(e)), r->m->src[i].read);
	family(r, "ptescope_events_lost_total", "counter",
	       "Trace events lost (ring buffer overruns), by source.");
	for (size_t i = 0; i < r->m->nr_src; i++)
		P(r->o, "ptescope_events_lost_total{source=\"%s\"} %" PRIu64 "\n",
		  esc(r->m->src[i].name, e, sizeof(e)), r->m->src[i].lost);
	family(r, "ptescope_forks_flagged_total", "counter",
	       "Forks flagged incomplete, by flag (live).");
	for (int p = 0; p < PT_FORK_FLAG_COUNT; p++)
		P(r->o, "ptescope_forks_flagged_total{flag=\"%s\"} %" PRIu64 "\n",
		  pt_fork_flag_names[p], r->m->flagged[p]);
}

static void render_all(struct render *r)
{
	family(r, "ptescope_build_info", "gauge", "Build of ptescoped (always 1).");
	P(r->o, "ptescope_build_info{version=\"%s\",revision=\"%s\"} 1\n", PTESCOPE_VERSION,
	  PTESCOPE_REVISION);
	render_capture(r);
	render_store(r);
	render_replays(r);
	render_investigations(r);
	render_events(r);
	render_counters(r);
	render_hists(r);
	render_cgroups(r);
}

int pd_metrics_render(struct pd_metrics *m, const json_t *status, bool openmetrics, char **buf,
		      size_t *len)
{
	struct pd_out o = {.cap = 64 * 1024};
	struct render r = {.m = m, .st = status, .o = &o, .om = openmetrics};

	*buf = NULL;
	*len = 0;
	o.buf = malloc(o.cap);
	if (!o.buf)
		return -ENOMEM;
	o.buf[0] = 0;
	carried_of(status, &r.c);
	pthread_mutex_lock(&m->lock);
	render_all(&r);
	pthread_mutex_unlock(&m->lock);
	pd_metrics_self(&o, str_at(json_object_get(status, "database"), "path"), openmetrics);
	if (openmetrics)
		P(&o, "# EOF\n");
	if (o.err) {
		free(o.buf);
		return o.err;
	}
	*buf = o.buf;
	*len = o.len;
	return 0;
}
