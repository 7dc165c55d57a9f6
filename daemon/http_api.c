/* SPDX-License-Identifier: MIT */
/*
 * The store-backed JSON endpoints of ptescoped under /api/v1/: forks (filtered,
 * id-cursor paging), one fork with its VMAs and passes, stats, histogram, top
 * comms, time series and the doctor (analyzer/doctor.h over the newest
 * DOCTOR_MAX_FORKS forks of a range). They run on the query workers
 * (http_pool.c), under a time budget; only routing runs on the server's
 * threads.
 *
 * Fed query parameters (checked strictly: an unknown or malformed parameter is
 * a 400 naming it) and read-only store handles (http.c's pool); feeds JSON
 * built with jansson, the fork object through pt_fork_json (report.h).
 *
 * Sized for databases of millions of forks: percentiles, histograms and the
 * cost per PTE come from the store's rollups (a few hundred rows whatever the
 * range); list pages are capped at PAGE_MAX forks.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <microhttpd.h>

#include "cost.h"
#include "doctor.h"
#include "escape.h"
#include "http_internal.h"
#include "report.h"
#include "stats.h"
#include "util.h"

#define PAGE_DEFAULT 100
#define PAGE_MAX 1000
#define TOP_MAX 100
#define TS_MAX 10000
#define DETAIL_MAX 100000
/*
 * /doctor examines at most this many forks, the newest of the range: about 700 bytes each
 * while it runs (the rows, their copy, the doctor's scratch), so about 70 MB per request, and
 * as many requests at once as there are query workers (http_pool.c: 2..8).
 */
#define DOCTOR_MAX_FORKS 100000

/* ------------------------------------------------------------- parameters */

struct param_check {
	const char *const *allowed;
	const char *bad;
};

static enum MHD_Result check_param(void *cls, enum MHD_ValueKind kind, const char *key,
				   const char *value)
{
	struct param_check *pc = cls;

	for (const char *const *a = pc->allowed; *a; a++)
		if (!strcmp(*a, key))
			return MHD_YES;
	pc->bad = key;
	return MHD_NO;
}

/* 0, or a 400 already queued (returns 1) naming the first unknown parameter. */
static int params_known(struct MHD_Connection *c, const char *const *allowed, int *ret)
{
	struct param_check pc = {.allowed = allowed};

	MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, check_param, &pc);
	if (!pc.bad)
		return 0;
	*ret = pd_http_reply_error(c, MHD_HTTP_BAD_REQUEST, "unknown parameter '%.64s'", pc.bad);
	return 1;
}

static const char *param(struct MHD_Connection *c, const char *name)
{
	return MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, name);
}

int pd_http_parse_time(const char *s, bool wall_only, int64_t now_wall_ns, int64_t *ns,
		       bool *is_wall)
{
	int rc = store_parse_time(s, now_wall_ns, ns, is_wall);

	if (rc)
		return rc;
	if (!*is_wall && *ns < 0)
		return -EINVAL;
	return wall_only && !*is_wall ? -EDOM : 0;
}

/* Parses integer parameter @name into *v (left alone when absent). 1 and a 400 queued if bad. */
static int param_int(struct MHD_Connection *c, const char *name, long long min, long long max,
		     long long *v, int *ret)
{
	const char *s = param(c, name);

	if (!s || !pt_parse_int(s, min, max, v))
		return 0;
	*ret = pd_http_reply_error(c, MHD_HTTP_BAD_REQUEST,
				   "%s: expected an integer from %lld to %lld", name, min, max);
	return 1;
}

/*
 * A time parameter: digits are trace-clock ns (*is_wall false), "-15m" or RFC
 * 3339 are wall clock. With @wall_only, trace-clock values are refused.
 */
static int param_time(struct MHD_Connection *c, const char *name, bool wall_only, int64_t *ns,
		      bool *is_wall, int *ret)
{
	const char *s = param(c, name);
	bool wall = false;
	int rc;

	*ns = 0;
	if (is_wall)
		*is_wall = false;
	if (!s)
		return 0;
	rc = pd_http_parse_time(s, wall_only, store_now_ns(), ns, &wall);
	if (rc == -ERANGE)
		*ret = pd_http_reply_error(
		    c, MHD_HTTP_BAD_REQUEST,
		    "%s: out of range (RFC 3339 times from " STORE_TIME_RANGE ")", name);
	else if (rc == -EDOM)
		*ret = pd_http_reply_error(c, MHD_HTTP_BAD_REQUEST,
					   "%s: this endpoint takes wall-clock times (-1h or RFC "
					   "3339), not trace-clock nanoseconds",
					   name);
	else if (rc)
		*ret =
		    pd_http_reply_error(c, MHD_HTTP_BAD_REQUEST,
					"%s: expected %sa relative time (-90s, -15m, -1h, -7d) or "
					"RFC 3339 (2024-05-01T12:00:00Z)",
					name, wall_only ? "" : "trace-clock nanoseconds, ");
	if (rc)
		return 1;
	if (is_wall)
		*is_wall = wall;
	return 0;
}

#define COMM_MAX (sizeof(((struct pt_fork *)0)->parent_comm) - 1)

/*
 * The comm parameter into @buf (COMM_MAX + 1 bytes): the bytes as they came,
 * with "\\" and "\xHH" decoded (escape.h: the form the answers show), so a
 * name that is not UTF-8 can be matched.
 */
static int param_comm(struct MHD_Connection *c, char *buf, const char **comm, int *ret)
{
	const char *s = param(c, "comm");
	int rc;

	*comm = NULL;
	if (!s)
		return 0;
	rc = s[0] ? pt_unescape(s, buf, COMM_MAX + 1) : -ENAMETOOLONG;
	if (rc == -EINVAL) {
		*ret = pd_http_reply_error(c, MHD_HTTP_BAD_REQUEST,
					   "comm: a backslash starts \\\\ or \\xHH (not \\x00)");
		return 1;
	}
	if (rc || !buf[0]) {
		*ret =
		    pd_http_reply_error(c, MHD_HTTP_BAD_REQUEST, "comm: 1 to %zu bytes", COMM_MAX);
		return 1;
	}
	*comm = buf;
	return 0;
}

/* The kind parameter: "fork" (the default: address-space copies), "thread",
 * "spawn", "unknown", "all", or a comma-separated list of them. */
static int param_kinds(struct MHD_Connection *c, unsigned *kinds, int *ret)
{
	const char *s = param(c, "kind");

	*kinds = PT_KINDS_FORK;
	if (!s || !pt_kinds_parse(s, kinds))
		return 0;
	*ret = pd_http_reply_error(c, MHD_HTTP_BAD_REQUEST,
				   "kind: fork, thread, spawn, unknown or all, comma-separated");
	return 1;
}

/* Every parameter in @allowed, and a wall-clock range with comm and kinds: since,
 * until, comm (kept in @comm, COMM_MAX + 1 bytes), kind. */
static int param_range(struct MHD_Connection *c, const char *const *allowed, struct store_range *r,
		       char *comm, int *ret)
{
	memset(r, 0, sizeof(*r));
	if (params_known(c, allowed, ret) ||
	    param_time(c, "since", true, &r->since_wall_ns, NULL, ret) ||
	    param_time(c, "until", true, &r->until_wall_ns, NULL, ret) ||
	    param_comm(c, comm, &r->comm, ret) || param_kinds(c, &r->kinds, ret))
		return 1;
	return 0;
}

static int param_metric(struct MHD_Connection *c, bool allow_pass, enum store_metric *m, int *ret)
{
	const char *s = param(c, "metric");

	*m = STORE_M_FORK;
	if (!s)
		return 0;
	for (int i = 0; i < STORE_M_COUNT; i++)
		if (!strcmp(s, store_metric_name((enum store_metric)i)) &&
		    (allow_pass || i != STORE_M_PASS_HOLD)) {
			*m = (enum store_metric)i;
			return 0;
		}
	*ret = pd_http_reply_error(c, MHD_HTTP_BAD_REQUEST,
				   "metric: one of fork, kernel_clone, copy_process, dup_mmap, "
				   "copy_page_range, max_lock_hold%s",
				   allow_pass ? ", pte_pass_hold" : "");
	return 1;
}

static json_t *ns_or_null(int64_t v)
{
	return v ? json_integer(v) : json_null();
}

static json_t *kinds_json(unsigned kinds)
{
	json_t *a = json_array();

	for (int k = PT_KIND_UNKNOWN; k < PT_KIND_COUNT; k++)
		if (kinds & (1u << k))
			json_array_append_new(a, json_string(pt_kind_name((enum pt_fork_kind)k)));
	return a;
}

static json_t *range_json(const struct store_range *r)
{
	return json_pack("{s:o,s:o,s:o,s:o}", "since_wall_ns", ns_or_null(r->since_wall_ns),
			 "until_wall_ns", ns_or_null(r->until_wall_ns), "comm",
			 r->comm ? pt_json_text(r->comm) : json_null(), "kind",
			 kinds_json(r->kinds ? r->kinds : PT_KINDS_FORK));
}

/* Queues the reply for a store error: 404, 503 (busy, unavailable) or 500. */
static int reply_store_error(struct MHD_Connection *c, int rc, const char *err)
{
	unsigned status = 500;

	if (rc == -ENOENT)
		status = MHD_HTTP_NOT_FOUND;
	else if (rc == -EINVAL) /* a question the store does not answer (kind=thread of the rollups) */
		status = MHD_HTTP_BAD_REQUEST;
	else if (rc == -EBUSY || rc == -EAGAIN || rc == -ENOMEM || rc == -ETIMEDOUT)
		status = MHD_HTTP_SERVICE_UNAVAILABLE; /* -ETIMEDOUT: over the query budget */
	return pd_http_reply_error(c, status, "%s", err[0] ? err : strerror(-rc));
}

/* Gets a store handle or queues a 503 (returns 1). */
static int store_or_503(struct pd_http *h, struct MHD_Connection *c, struct store **s, int *ret)
{
	char err[256] = "";
	int rc = pd_http_store_get(h, s, err, sizeof(err));

	if (!rc)
		return 0;
	*ret = pd_http_reply_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, "database not available: %s",
				   err[0] ? err : strerror(-rc));
	return 1;
}

/*
 * Gives back the handle of a query that returned @rc: 1 with the reply to its
 * failure queued in *ret, or 0.
 */
static int store_failed(struct pd_http *h, struct MHD_Connection *c, struct store *s, int rc,
			const char *err, int *ret)
{
	pd_http_store_put(h, s, rc < 0);
	if (rc >= 0)
		return 0;
	*ret = reply_store_error(c, rc, err);
	return 1;
}

static json_t *row_json(const struct store_fork_row *row)
{
	json_t *o = pt_fork_json(&row->fork);

	if (!o)
		return NULL;
	json_object_set_new(o, "id", json_integer(row->id));
	json_object_set_new(o, "source_id", json_integer(row->source_id));
	json_object_set_new(o, "wall_ns", json_integer(row->wall_ns));
	json_object_set_new(o, "child_comm",
			    row->fork.child_comm[0] ? pt_json_text(row->fork.child_comm)
						    : json_null());
	return o;
}

/* ------------------------------------------------------------------ forks */

static int get_forks(struct pd_http *h, struct MHD_Connection *c)
{
	static const char *const allowed[] = {"comm",  "pid",	 "since", "until", "min_us",
					      "limit", "cursor", "kind",  NULL};
	struct store_fork_filter f = {.pid = -1};
	struct store_fork_row *rows = NULL;
	long long pid = -1, min_us = 0, limit = PAGE_DEFAULT, cursor = 0;
	int64_t since, until, next = 0;
	bool since_wall, until_wall;
	char comm[COMM_MAX + 1];
	struct store *s = NULL;
	char err[256] = "";
	json_t *arr, *body;
	size_t nr = 0;
	int ret, rc;

	if (params_known(c, allowed, &ret) || param_comm(c, comm, &f.comm, &ret) ||
	    param_int(c, "pid", 0, INT_MAX, &pid, &ret) ||
	    param_int(c, "min_us", 0, INT64_MAX / 1000, &min_us, &ret) ||
	    param_int(c, "limit", 1, PAGE_MAX, &limit, &ret) ||
	    param_int(c, "cursor", 0, INT64_MAX, &cursor, &ret) ||
	    param_time(c, "since", false, &since, &since_wall, &ret) ||
	    param_time(c, "until", false, &until, &until_wall, &ret) ||
	    param_kinds(c, &f.kinds, &ret))
		return ret;
	f.pid = param(c, "pid") ? (int)pid : -1;
	f.min_us = min_us;
	f.limit = (size_t)limit;
	f.cursor = cursor;
	if (since_wall)
		f.since_wall_ns = since;
	else
		f.since_ts_ns = (uint64_t)since;
	if (until_wall)
		f.until_wall_ns = until;
	else
		f.until_ts_ns = (uint64_t)until;
	if (store_or_503(h, c, &s, &ret))
		return ret;
	rc = store_query_forks(s, &f, &rows, &nr, &next, err, sizeof(err));
	if (store_failed(h, c, s, rc, err, &ret))
		return ret;
	arr = json_array();
	for (size_t i = 0; arr && i < nr; i++)
		if (json_array_append_new(arr, row_json(&rows[i]))) {
			json_decref(arr);
			arr = NULL;
		}
	store_fork_rows_free(rows, nr);
	body = arr ? json_pack("{s:o,s:o}", "forks", arr, "next_cursor",
			       next ? json_integer(next) : json_null())
		   : NULL;
	return pd_http_reply_json(c, MHD_HTTP_OK, body);
}

static json_t *detail_json(const struct pt_fork *f)
{
	json_t *vmas = json_array(), *passes = json_array();
	size_t i, nv = f->nr_vma < DETAIL_MAX ? f->nr_vma : DETAIL_MAX;
	size_t np = f->nr_pass < DETAIL_MAX ? f->nr_pass : DETAIL_MAX;

	for (i = 0; vmas && i < nv; i++) {
		const struct pt_vma_copy *v = &f->vma[i];

		json_array_append_new(
		    vmas,
		    json_pack("{s:o,s:o,s:i,s:o,s:b}", "start_ns",
			      v->start_ns == PT_NO_TIME ? json_null()
							: json_integer((json_int_t)v->start_ns),
			      "dur_ns",
			      v->dur_ns == PT_NO_TIME ? json_null()
						      : json_integer((json_int_t)v->dur_ns),
			      "passes", (int)v->passes, "ptes",
			      v->ptes < 0 ? json_null() : json_integer(v->ptes), "huge", v->huge));
	}
	for (i = 0; passes && i < np; i++) {
		const struct pt_pte_pass *p = &f->pass[i];

		json_array_append_new(
		    passes,
		    json_pack("{s:i,s:o,s:o,s:o,s:b,s:b}", "vma", (int)p->vma, "ptes",
			      p->ptes < 0 ? json_null() : json_integer(p->ptes), "start_ns",
			      p->start_ns == PT_NO_TIME ? json_null()
							: json_integer((json_int_t)p->start_ns),
			      "hold_ns",
			      p->hold_ns == PT_NO_TIME ? json_null()
						       : json_integer((json_int_t)p->hold_ns),
			      "new_pmd", p->new_pmd, "resumed", p->resumed));
	}
	return json_pack("{s:o,s:o,s:b}", "vmas", vmas, "passes", passes, "truncated",
			 nv < f->nr_vma || np < f->nr_pass);
}

static int get_fork(struct pd_http *h, struct MHD_Connection *c, const char *idstr)
{
	static const char *const allowed[] = {NULL};
	struct store_fork_row row;
	struct store *s = NULL;
	char err[256] = "";
	long long id;
	json_t *o;
	int ret, rc;

	if (params_known(c, allowed, &ret))
		return ret;
	if (pt_parse_int(idstr, 1, LLONG_MAX, &id))
		return pd_http_reply_error(c, MHD_HTTP_NOT_FOUND,
					   "no such fork: '%.32s' (ids are positive integers)",
					   idstr);
	if (store_or_503(h, c, &s, &ret))
		return ret;
	memset(&row, 0, sizeof(row));
	rc = store_get_fork(s, id, &row, err, sizeof(err));
	pd_http_store_put(h, s, rc < 0 && rc != -ENOENT);
	if (rc == -ENOENT)
		return pd_http_reply_error(c, MHD_HTTP_NOT_FOUND, "no such fork: %lld", id);
	if (rc < 0)
		return reply_store_error(c, rc, err);
	o = row_json(&row);
	if (o)
		json_object_set_new(o, "detail", detail_json(&row.fork));
	pt_fork_release(&row.fork);
	return pd_http_reply_json(c, MHD_HTTP_OK, o);
}

/* ------------------------------------------------------ stats & friends */

static json_t *stat_json(const struct store_stat *st)
{
	bool any = st->count > st->nulls;

#define Q(v) (any ? json_integer((json_int_t)(v)) : json_null())
	return json_pack("{s:I,s:I,s:o,s:o,s:o,s:o,s:o,s:b}", "count", (json_int_t)st->count,
			 "nulls", (json_int_t)st->nulls, "p50_ns", Q(st->p50_ns), "p90_ns",
			 Q(st->p90_ns), "p99_ns", Q(st->p99_ns), "p999_ns", Q(st->p999_ns),
			 "max_ns", Q(st->max_ns), "exact", st->exact);
#undef Q
}

static int get_stats(struct pd_http *h, struct MHD_Connection *c)
{
	static const char *const allowed[] = {"since", "until", "comm", "kind", NULL};
	struct store_stat st[STORE_M_COUNT];
	struct store_cost cost;
	struct store_range r;
	char comm[COMM_MAX + 1];
	struct store *s = NULL;
	char err[256] = "";
	json_t *metrics, *jcost;
	int ret, rc;

	if (param_range(c, allowed, &r, comm, &ret))
		return ret;
	if (store_or_503(h, c, &s, &ret))
		return ret;
	rc = store_stats(s, &r, st, err, sizeof(err));
	if (!rc)
		rc = store_cost(s, &r, &cost, err, sizeof(err));
	if (store_failed(h, c, s, rc, err, &ret))
		return ret;
	metrics = json_object();
	for (int m = 0; metrics && m < STORE_M_COUNT; m++)
		json_object_set_new(metrics, store_metric_name((enum store_metric)m),
				    stat_json(&st[m]));
	/* As stats.c: copy_page_range time over the PTEs it copied, complete forks. */
	if (cost.ptes) {
		double ns_per_pte = (double)cost.ns / (double)cost.ptes;

		jcost = json_pack("{s:f,s:f,s:I}", "ns_per_pte", ns_per_pte, "ms_per_gib",
				  pt_ms_per_gib_of_ns_per_pte(ns_per_pte), "forks",
				  (json_int_t)cost.forks);
	} else {
		jcost = json_pack("{s:n,s:n,s:i}", "ns_per_pte", "ms_per_gib", "forks", 0);
	}
	return pd_http_reply_json(c, MHD_HTTP_OK,
				  json_pack("{s:o,s:I,s:o,s:o}", "range", range_json(&r), "forks",
					    (json_int_t)st[STORE_M_FORK].count, "metrics", metrics,
					    "cost", jcost));
}

/* Clones of each kind in the range: what the fork figures leave out. */
static int get_kinds(struct pd_http *h, struct MHD_Connection *c)
{
	static const char *const allowed[] = {"since", "until", "comm", NULL};
	uint64_t n[PT_KIND_COUNT];
	struct store_range r;
	char comm[COMM_MAX + 1];
	struct store *s = NULL;
	char err[256] = "";
	json_t *kinds;
	int ret, rc;

	if (param_range(c, allowed, &r, comm, &ret))
		return ret;
	if (store_or_503(h, c, &s, &ret))
		return ret;
	rc = store_kind_counts(s, &r, n, err, sizeof(err));
	if (store_failed(h, c, s, rc, err, &ret))
		return ret;
	kinds = json_object();
	for (int k = 0; k < PT_KIND_COUNT; k++)
		json_object_set_new(kinds, pt_kind_name((enum pt_fork_kind)k),
				    json_integer((json_int_t)n[k]));
	r.kinds = PT_KINDS_ALL;
	return pd_http_reply_json(c, MHD_HTTP_OK,
				  json_pack("{s:o,s:o}", "range", range_json(&r), "kinds", kinds));
}

static int get_histogram(struct pd_http *h, struct MHD_Connection *c)
{
	static const char *const allowed[] = {"since", "until", "comm", "metric", "kind", NULL};
	struct store_histogram hist;
	enum store_metric metric;
	struct store_range r;
	char comm[COMM_MAX + 1];
	struct store *s = NULL;
	char err[256] = "";
	struct pt_hist *coarse;
	json_t *bins;
	size_t i;
	int ret, rc;

	if (param_range(c, allowed, &r, comm, &ret) || param_metric(c, false, &metric, &ret) ||
	    store_or_503(h, c, &s, &ret))
		return ret;
	rc = store_histogram(s, &r, metric, &hist, err, sizeof(err));
	if (store_failed(h, c, s, rc, err, &ret))
		return ret;
	/*
	 * The store's bins (64 per power of two) regrouped into the API's (4 per
	 * power of two): each store bin lies inside one API bucket, so the counts
	 * stay exact.
	 */
	coarse = calloc(1, sizeof(*coarse));
	if (!coarse) {
		store_histogram_free(&hist);
		return pd_http_reply_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory");
	}
	for (i = 0; i < hist.nr_bins; i++)
		coarse->count[pt_hist_index(hist.bins[i].le_ns)] += hist.bins[i].count;
	bins = json_array();
	for (i = 0; bins && i < PT_HIST_BUCKETS; i++)
		if (coarse->count[i])
			json_array_append_new(bins, json_pack("{s:I,s:I}", "le_ns",
							      (json_int_t)pt_hist_upper(i), "count",
							      (json_int_t)coarse->count[i]));
	ret = pd_http_reply_json(c, MHD_HTTP_OK,
				 json_pack("{s:o,s:s,s:I,s:I,s:o}", "range", range_json(&r),
					   "metric", store_metric_name(metric), "forks",
					   (json_int_t)hist.count, "values",
					   (json_int_t)(hist.count - hist.nulls), "bins", bins));
	free(coarse);
	store_histogram_free(&hist);
	return ret;
}

static int get_top(struct pd_http *h, struct MHD_Connection *c)
{
	static const char *const allowed[] = {"since", "until", "limit", "kind", NULL};
	struct store_top_comm top[TOP_MAX];
	long long limit = 10;
	struct store_range r;
	char comm[COMM_MAX + 1];
	struct store *s = NULL;
	char err[256] = "";
	json_t *arr;
	size_t nr = 0;
	int ret, rc;

	if (param_range(c, allowed, &r, comm, &ret) ||
	    param_int(c, "limit", 1, TOP_MAX, &limit, &ret))
		return ret;
	if (store_or_503(h, c, &s, &ret))
		return ret;
	rc = store_top_comms(s, &r, top, (size_t)limit, &nr, err, sizeof(err));
	if (store_failed(h, c, s, rc, err, &ret))
		return ret;
	arr = json_array();
	for (size_t i = 0; arr && i < nr; i++)
		json_array_append_new(
		    arr, json_pack("{s:o,s:I,s:o}", "comm", pt_json_text(top[i].name), "forks",
				   (json_int_t)top[i].forks, "p99_ns",
				   top[i].forks ? json_integer((json_int_t)top[i].p99_ns)
						: json_null()));
	return pd_http_reply_json(c, MHD_HTTP_OK,
				  json_pack("{s:o,s:o}", "range", range_json(&r), "comms", arr));
}

static int get_timeseries(struct pd_http *h, struct MHD_Connection *c)
{
	static const char *const allowed[] = {"since", "until", "comm", "metric",
					      "step",  "limit", "kind", NULL};
	long long step = 60, limit = 1440;
	struct store_ts_point *pts;
	enum store_metric metric;
	struct store_range r;
	char comm[COMM_MAX + 1];
	struct store *s = NULL;
	char err[256] = "";
	json_t *arr;
	size_t nr = 0;
	int ret, rc;

	if (param_range(c, allowed, &r, comm, &ret) || param_metric(c, true, &metric, &ret) ||
	    param_int(c, "step", 60, 86400, &step, &ret) ||
	    param_int(c, "limit", 1, TS_MAX, &limit, &ret))
		return ret;
	if (step != 60 && step != 3600 && step != 86400)
		return pd_http_reply_error(c, MHD_HTTP_BAD_REQUEST,
					   "step: 60, 3600 or 86400 (seconds)");
	pts = calloc((size_t)limit, sizeof(*pts));
	if (!pts)
		return pd_http_reply_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory");
	if (store_or_503(h, c, &s, &ret)) {
		free(pts);
		return ret;
	}
	rc = store_timeseries(s, &r, metric, (int)step, pts, (size_t)limit, &nr, err, sizeof(err));
	if (store_failed(h, c, s, rc, err, &ret)) {
		free(pts);
		return ret;
	}
	arr = json_array();
	for (size_t i = 0; arr && i < nr; i++)
		json_array_append_new(
		    arr, json_pack("{s:I,s:I,s:I,s:I,s:I}", "t_wall_ns",
				   (json_int_t)pts[i].t_wall_ns, "count", (json_int_t)pts[i].count,
				   "p50_ns", (json_int_t)pts[i].p50_ns, "p99_ns",
				   (json_int_t)pts[i].p99_ns, "max_ns", (json_int_t)pts[i].max_ns));
	free(pts);
	return pd_http_reply_json(c, MHD_HTTP_OK,
				  json_pack("{s:o,s:s,s:I,s:b,s:o}", "range", range_json(&r),
					    "metric", store_metric_name(metric), "step_s",
					    (json_int_t)step, "truncated", nr == (size_t)limit,
					    "points", arr));
}

/* ----------------------------------------------------------------- doctor */

/* The doctor over forks of @rows (store ids name them). Returns a new reference or NULL. */
static json_t *doctor_json(const struct store_fork_row *rows, size_t nr,
			   const struct pt_doctor_opts *o)
{
	struct pt_fork *forks = calloc(nr ? nr : 1, sizeof(*forks));
	int64_t *ids = calloc(nr ? nr : 1, sizeof(*ids));
	struct pt_doctor_report rep;
	json_t *j = NULL;

	if (forks && ids) {
		for (size_t i = 0; i < nr; i++) {
			forks[i] = rows[i].fork; /* shallow: the rows keep the memory */
			ids[i] = rows[i].id;
		}
		if (!pt_doctor_run(forks, ids, nr, o, &rep)) {
			j = pt_doctor_json(&rep);
			pt_doctor_release(&rep);
		}
	}
	free(forks);
	free(ids);
	return j;
}

/* GET /api/v1/doctor: ptescope doctor over a wall-clock range (default: the last day). */
static int get_doctor(struct pd_http *h, struct MHD_Connection *c)
{
	static const char *const allowed[] = {"comm",	 "since",     "until", "slow_us",
					      "max_procs", "kind",	   NULL};
	struct store_fork_filter f = {.pid = -1, .limit = DOCTOR_MAX_FORKS};
	struct pt_doctor_opts o = {0};
	struct store_fork_row *rows = NULL;
	long long slow_us = 1000, max_procs = 20;
	struct store_range r;
	char comm[COMM_MAX + 1];
	struct store *s = NULL;
	char err[256] = "";
	json_t *body;
	size_t nr = 0;
	int ret, rc;

	if (param_range(c, allowed, &r, comm, &ret) ||
	    param_int(c, "slow_us", 1, 3600000000LL, &slow_us, &ret) ||
	    param_int(c, "max_procs", 1, 1000, &max_procs, &ret))
		return ret;
	if (!param(c, "since"))
		r.since_wall_ns = store_now_ns() - 86400000000000LL;
	f.comm = r.comm;
	f.since_wall_ns = r.since_wall_ns;
	f.until_wall_ns = r.until_wall_ns;
	f.kinds = o.kinds = r.kinds;
	o.slow_ns = (uint64_t)slow_us * 1000;
	o.max_procs = (size_t)max_procs;
	if (store_or_503(h, c, &s, &ret))
		return ret;
	rc = store_query_forks(s, &f, &rows, &nr, NULL, err, sizeof(err));
	if (store_failed(h, c, s, rc, err, &ret))
		return ret;
	body = doctor_json(rows, nr, &o);
	store_fork_rows_free(rows, nr);
	if (body) {
		json_object_set_new(body, "range", range_json(&r));
		json_object_set_new(body, "truncated", json_boolean(nr == DOCTOR_MAX_FORKS));
	}
	return pd_http_reply_json(c, MHD_HTTP_OK, body);
}

/* ---------------------------------------------------------------- routing */

static const struct {
	const char *path;
	int (*fn)(struct pd_http *, struct MHD_Connection *);
} routes[] = {
    {"/api/v1/forks", get_forks},	    {"/api/v1/stats", get_stats},
    {"/api/v1/histogram", get_histogram},   {"/api/v1/top", get_top},
    {"/api/v1/timeseries", get_timeseries}, {"/api/v1/doctor", get_doctor},
    {"/api/v1/kinds", get_kinds},
};
#define NR_ROUTES (sizeof(routes) / sizeof(routes[0]))

/* The route of @url: its index, NR_ROUTES with *id set for /forks/{id}, or -1. */
static long route_of(const char *url, const char **id)
{
	*id = NULL;
	for (size_t i = 0; i < NR_ROUTES; i++)
		if (!strcmp(url, routes[i].path))
			return (long)i;
	if (strncmp(url, "/api/v1/forks/", 14) || !url[14] || strchr(url + 14, '/'))
		return -1;
	*id = url + 14;
	return NR_ROUTES;
}

/* On a query worker (http_pool.c): the endpoint itself. */
static int run_query(struct pd_http *h, struct MHD_Connection *c, const char *url,
		     const char *method, struct pd_req *r)
{
	const char *id;
	long i = route_of(url, &id);

	if (i < 0)
		return pd_http_reply_error(c, MHD_HTTP_NOT_FOUND, "no such endpoint: %.128s", url);
	return id ? get_fork(h, c, id) : routes[i].fn(h, c);
}

int pd_http_api(struct pd_http *h, struct MHD_Connection *c, const char *url, const char *method,
		struct pd_req *r)
{
	bool get = !strcmp(method, MHD_HTTP_METHOD_GET) || !strcmp(method, MHD_HTTP_METHOD_HEAD);
	const char *id;

	/* what needs no query is answered here; the queries wait for a worker */
	if (route_of(url, &id) < 0)
		return pd_http_reply_error(c, MHD_HTTP_NOT_FOUND, "no such endpoint: %.128s", url);
	if (!get)
		return pd_http_reply_method_not_allowed(c, "GET, HEAD");
	return pd_http_defer(h, c, r, PD_LANE_QUERY, run_query, url, method);
}
