/* SPDX-License-Identifier: MIT */
/*
 * Comm groups and rollups: per-minute/hour/day histograms per (metric, comm
 * group) and the cost sums, kept in step with the forks. Deltas are summed in
 * memory per transaction and written once per row at commit; inserts add,
 * purges and retention subtract (the same transaction as the forks), and the
 * schema-3 task rebuilds every row from the forks.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "store_internal.h"
#include "util.h"

static unsigned comm_hash(const char *comm)
{
	unsigned h = 2166136261u;

	for (; *comm; comm++)
		h = (h ^ (unsigned char)*comm) * 16777619u;
	return h;
}

int store_comm_group(struct store *s, const char *comm, bool create, int64_t *grp, char *err,
		     size_t errlen)
{
	char name[32];
	unsigned h, i;
	sqlite3_stmt *st = s->find_group;
	int rc;

	snprintf(name, sizeof(name), "%.*s", 31, comm ? comm : "");
	h = comm_hash(name);
	for (i = 0; i < STORE_COMM_CACHE; i++) {
		struct store_comm_cache *c = &s->comm[(h + i) % STORE_COMM_CACHE];

		if (!c->used)
			break;
		if (!strcmp(c->name, name)) {
			/* 0: past the cap, which a lookup reports as "no group" (-1) */
			*grp = c->grp || create ? c->grp : -1;
			return 0;
		}
	}
	if (!st) {
		rc = store_prepare(s, "SELECT id FROM comm_group WHERE name = ?1", &s->find_group,
				   err, errlen);
		if (rc)
			return rc;
		st = s->find_group;
	}
	sqlite3_reset(st);
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*grp = sqlite3_column_int64(st, 0);
	} else if (rc != SQLITE_DONE) {
		sqlite3_reset(st);
		return store_sql_fail(s, err, errlen, rc, "looking up a comm group");
	} else if (!create) {
		sqlite3_reset(st);
		*grp = -1;
		return 0;
	} else {
		if (s->nr_groups < 0) {
			sqlite3_reset(s->count_groups);
			rc = sqlite3_step(s->count_groups);
			if (rc != SQLITE_ROW) {
				sqlite3_reset(s->count_groups);
				return store_sql_fail(s, err, errlen, rc, "counting comm groups");
			}
			s->nr_groups = sqlite3_column_int64(s->count_groups, 0);
			sqlite3_reset(s->count_groups);
		}
		if (s->nr_groups >= (int64_t)s->opts.max_comm_groups) {
			*grp = 0;
		} else {
			sqlite3_reset(s->ins_group);
			sqlite3_bind_text(s->ins_group, 1, name, -1, SQLITE_STATIC);
			rc = sqlite3_step(s->ins_group);
			sqlite3_reset(s->ins_group);
			if (rc != SQLITE_DONE) {
				sqlite3_reset(st);
				return store_sql_fail(s, err, errlen, rc, "adding a comm group");
			}
			*grp = sqlite3_last_insert_rowid(s->db);
			s->nr_groups++;
		}
	}
	sqlite3_reset(st);
	/* Cache it (the cache is dropped on rollback, so it never outlives its row). */
	for (i = 0; i < STORE_COMM_CACHE / 2; i++) {
		struct store_comm_cache *c = &s->comm[(h + i) % STORE_COMM_CACHE];

		if (!c->used) {
			snprintf(c->name, sizeof(c->name), "%s", name);
			c->grp = *grp;
			c->used = 1;
			break;
		}
	}
	return 0;
}

static uint64_t agg_hash(int metric, int res, int64_t t, int64_t grp, int bin)
{
	uint64_t h = (uint64_t)t * 0x9e3779b97f4a7c15ull;

	h ^= ((uint64_t)grp << 20) ^ ((uint64_t)(bin + 1) << 4) ^ (uint64_t)(metric << 1) ^
	     (uint64_t)res;
	h *= 0xff51afd7ed558ccdull;
	return h ^ (h >> 33);
}

/* Doubles the delta table (rehashing what it holds). 0 or -ENOMEM. */
static int agg_grow(struct store *s)
{
	size_t cap = s->agg_cap ? s->agg_cap * 2 : 4096, i, k;
	struct store_agg_slot *na = calloc(cap, sizeof(*na));
	uint32_t *nl = malloc(cap * sizeof(*nl));

	if (!na || !nl || cap > UINT32_MAX) {
		free(na);
		free(nl);
		return -ENOMEM;
	}
	for (k = 0; k < s->agg_used; k++) {
		const struct store_agg_slot *o = &s->agg[s->agg_list[k]];

		i = agg_hash(o->metric, o->res, o->t, o->grp, o->bin) & (cap - 1);
		while (na[i].used)
			i = (i + 1) & (cap - 1);
		na[i] = *o;
		nl[k] = (uint32_t)i;
	}
	free(s->agg);
	free(s->agg_list);
	s->agg = na;
	s->agg_list = nl;
	s->agg_cap = cap;
	return 0;
}

void store_rollup_clear(struct store *s)
{
	for (size_t k = 0; k < s->agg_used; k++)
		s->agg[s->agg_list[k]] = (struct store_agg_slot){0};
	s->agg_used = 0;
}

int store_rollup_reserve(struct store *s, size_t n)
{
	while ((s->agg_used + n) * 2 >= s->agg_cap)
		if (agg_grow(s))
			return -ENOMEM;
	return 0;
}

static int agg_add(struct store *s, int metric, int res, int64_t t, int64_t grp, int bin, int64_t n)
{
	size_t i, mask;

	if (s->agg_used * 2 >= s->agg_cap && agg_grow(s))
		return -ENOMEM;
	mask = s->agg_cap - 1;
	i = agg_hash(metric, res, t, grp, bin) & mask;
	for (;; i = (i + 1) & mask) {
		struct store_agg_slot *a = &s->agg[i];

		if (!a->used) {
			*a = (struct store_agg_slot){.t = t,
						     .grp = (int32_t)grp,
						     .bin = bin,
						     .metric = (int8_t)metric,
						     .res = (int8_t)res,
						     .used = 1,
						     .n = n};
			s->agg_list[s->agg_used++] = (uint32_t)i;
			return 0;
		}
		if (a->t == t && a->grp == grp && a->bin == bin && a->metric == metric &&
		    a->res == res) {
			a->n += n;
			return 0;
		}
	}
}

static int agg_value(struct store *s, int metric, int64_t wall_ns, int64_t grp, int64_t v,
		     int64_t sign)
{
	int bin = v < 0 ? STORE_HIST_NULL_BIN : store_hist_bin((uint64_t)v);
	int res, r;

	for (res = 0; res < STORE_RES_COUNT; res++) {
		r = agg_add(s, metric, res, wall_ns / store_res_ns[res], grp, bin, sign);
		if (r)
			return r;
	}
	return 0;
}

/* The cost sums of a fork that counts toward them, in all three resolutions. */
static int agg_cost(struct store *s, int64_t wall_ns, int64_t grp, int64_t ns, int64_t ptes,
		    int64_t sign)
{
	int res, r = 0;

	for (res = 0; res < STORE_RES_COUNT && !r; res++) {
		int64_t t = wall_ns / store_res_ns[res];

		r = agg_add(s, STORE_M_COPY_PAGE_RANGE, res, t, grp, STORE_AGG_COST_FORKS, sign);
		if (!r)
			r = agg_add(s, STORE_M_COPY_PAGE_RANGE, res, t, grp, STORE_AGG_COST_NS,
				    sign * ns);
		if (!r)
			r = agg_add(s, STORE_M_COPY_PAGE_RANGE, res, t, grp, STORE_AGG_COST_PTES,
				    sign * ptes);
	}
	return r;
}

static int int_cmp(const void *x, const void *y)
{
	int a = *(const int *)x, b = *(const int *)y;

	return (a > b) - (a < b);
}

/*
 * The passes' hold times (@n of them, PT_NO_TIME for unknown) into the
 * PASS_HOLD histograms: counted per bin first, so that a fork's passes (39
 * for 64 MiB, most in a few bins) cost a delta-table update per distinct
 * bin and resolution rather than one per pass. The same sums as adding
 * them one by one. 0 or -ENOMEM.
 */
static int agg_pass_holds(struct store *s, int64_t wall_ns, int64_t grp, const uint64_t *hold,
			  size_t n, int64_t sign)
{
	int small[64], *bin = n <= 64 ? small : malloc(n * sizeof(*bin));
	int64_t t[STORE_RES_COUNT];
	size_t i, j;
	int res, r = 0;

	if (!bin)
		return -ENOMEM;
	for (i = 0; i < n; i++)
		bin[i] = hold[i] == PT_NO_TIME || hold[i] > INT64_MAX ? STORE_HIST_NULL_BIN
								      : store_hist_bin(hold[i]);
	if (n > 16) {
		qsort(bin, n, sizeof(*bin), int_cmp);
	} else {
		for (i = 1; i < n; i++) /* a few: insertion sort */
			for (j = i; j > 0 && bin[j - 1] > bin[j]; j--) {
				int x = bin[j];

				bin[j] = bin[j - 1];
				bin[j - 1] = x;
			}
	}
	for (res = 0; res < STORE_RES_COUNT; res++)
		t[res] = wall_ns / store_res_ns[res];
	for (i = 0; i < n && !r; i = j) {
		for (j = i + 1; j < n && bin[j] == bin[i]; j++)
			;
		for (res = 0; res < STORE_RES_COUNT && !r; res++)
			r = agg_add(s, STORE_M_PASS_HOLD, res, t[res], grp, bin[i],
				    sign * (int64_t)(j - i));
	}
	if (bin != small)
		free(bin);
	return r;
}

int store_rollup_fork(struct store *s, int64_t wall_ns, const char *comm,
		      const int64_t vals_in[STORE_M_COUNT - 1], bool complete, int64_t cost_ptes,
		      const uint64_t *pass_hold, size_t nr_pass, int64_t sign, char *err,
		      size_t errlen)
{
	int64_t grp, vals[STORE_M_COUNT - 1];
	int m, r;

	for (m = 0; m < STORE_M_COUNT - 1; m++)
		vals[m] = complete ? vals_in[m] : -1;
	if (!complete) {
		cost_ptes = 0;
		nr_pass = 0;
	}

	r = store_comm_group(s, comm, true, &grp, err, errlen);
	if (r)
		return r;
	/* all of the fork's deltas or none: a failed insert must leave no trace here */
	if (store_rollup_reserve(s, (STORE_M_COUNT - 1 + 3 + nr_pass) * STORE_RES_COUNT))
		return store_fail(s, err, errlen, -ENOMEM, "out of memory");
	for (m = 0; m < STORE_M_COUNT - 1; m++) {
		r = agg_value(s, m, wall_ns, grp, vals[m], sign);
		if (r)
			return store_fail(s, err, errlen, r, "out of memory");
	}
	if (pt_counts_toward_cost(complete,
				  vals[STORE_M_COPY_PAGE_RANGE] < 0
				      ? PT_NO_TIME
				      : (uint64_t)vals[STORE_M_COPY_PAGE_RANGE],
				  cost_ptes)) {
		r = agg_cost(s, wall_ns, grp, vals[STORE_M_COPY_PAGE_RANGE], cost_ptes, sign);
		if (r)
			return store_fail(s, err, errlen, r, "out of memory");
	}
	if (nr_pass && (r = agg_pass_holds(s, wall_ns, grp, pass_hold, nr_pass, sign)))
		return store_fail(s, err, errlen, r, "out of memory");
	return 0;
}

/* Slot order of a flush: by key (metric, res, t, group), bins ascending. */
static inline bool slot_less(const struct store_agg_slot *a, const struct store_agg_slot *b)
{
	if (a->metric != b->metric)
		return a->metric < b->metric;
	if (a->res != b->res)
		return a->res < b->res;
	if (a->t != b->t)
		return a->t < b->t;
	if (a->grp != b->grp)
		return a->grp < b->grp;
	return a->bin < b->bin;
}

/*
 * Sorts the @n slots of @v by slot_less, with @tmp room for as many: a
 * bottom-up merge sort, runs of 8 by insertion first. qsort's calls through
 * a pointer and element copies by size were most of a flush's sorting (a
 * commit of five 64 MiB forks holds a few hundred slots, their passes' hold
 * times in many bins). No two slots have the same key and bin: any sort
 * gives the one order.
 */
static void sort_slots(struct store_agg_slot *v, struct store_agg_slot *tmp, size_t n)
{
	struct store_agg_slot *src = v, *dst = tmp, *sw;
	size_t w, lo, i, j, k;

	for (lo = 0; lo < n; lo += 8) {
		size_t hi = lo + 8 < n ? lo + 8 : n;

		for (i = lo + 1; i < hi; i++) {
			struct store_agg_slot x = v[i];

			for (j = i; j > lo && slot_less(&x, &v[j - 1]); j--)
				v[j] = v[j - 1];
			v[j] = x;
		}
	}
	for (w = 8; w < n; w *= 2) {
		for (lo = 0; lo < n; lo += 2 * w) {
			size_t mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n;

			for (i = lo, j = mid, k = lo; i < mid && j < hi;)
				dst[k++] = slot_less(&src[j], &src[i]) ? src[j++] : src[i++];
			while (i < mid)
				dst[k++] = src[i++];
			while (j < hi)
				dst[k++] = src[j++];
		}
		sw = src;
		src = dst;
		dst = sw;
	}
	if (src != v)
		memcpy(v, src, n * sizeof(*v));
}

struct merge_buf {
	unsigned char *p;
	size_t len, cap;
	int prev;
	int64_t total;
	const struct store_agg_slot *d, *dend; /* deltas of this key, bins ascending */
};

static int merge_put(struct merge_buf *m, int bin, int64_t n)
{
	if (n <= 0)
		return 0;
	if (pt_grow_array_from((void **)&m->p, &m->cap, m->len + 20, 1, 1024))
		return -ENOMEM;
	m->len += store_hist_encode_pair(m->p + m->len, m->prev, bin, n);
	m->prev = bin;
	m->total += n;
	return 0;
}

/* One stored (bin, count): emit the deltas for smaller bins, then it plus its delta. */
static int merge_stored(int bin, int64_t n, void *ctx)
{
	struct merge_buf *m = ctx;
	int r;

	while (m->d < m->dend && m->d->bin < bin) {
		r = merge_put(m, m->d->bin, m->d->n);
		if (r)
			return r;
		m->d++;
	}
	if (m->d < m->dend && m->d->bin == bin) {
		n += m->d->n;
		m->d++;
	}
	return merge_put(m, bin, n);
}

/* Binds the key (metric, res, t, group) of @k to ?1..?4 of @st. */
static void bind_rollup_key(sqlite3_stmt *st, const struct store_agg_slot *k)
{
	sqlite3_reset(st);
	sqlite3_bind_int(st, 1, k->metric);
	sqlite3_bind_int(st, 2, k->res);
	sqlite3_bind_int64(st, 3, k->t);
	sqlite3_bind_int64(st, 4, k->grp);
}

/* Reads the stored row of @k into @m (its histogram merged with the deltas
 * from m->d on) and @cost. */
static int rollup_read(struct store *s, const struct store_agg_slot *k, struct merge_buf *m,
		       int64_t cost[3], char *err, size_t errlen)
{
	sqlite3_stmt *st = s->get_rollup;
	int rc, r = 0;

	bind_rollup_key(st, k);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		cost[0] += sqlite3_column_int64(st, 1);
		cost[1] += sqlite3_column_int64(st, 2);
		cost[2] += sqlite3_column_int64(st, 3);
		r = store_hist_decode(sqlite3_column_blob(st, 0), (size_t)sqlite3_column_bytes(st, 0),
				      merge_stored, m);
		if (r == -EINVAL)
			r = store_fail(s, err, errlen, -EUCLEAN, "%s: a rollup histogram is corrupt",
				       s->path);
		else if (r)
			r = store_fail(s, err, errlen, r, "out of memory");
	} else if (rc != SQLITE_DONE) {
		r = store_sql_fail(s, err, errlen, rc, "reading rollups");
	}
	sqlite3_reset(st);
	for (; !r && m->d < m->dend; m->d++)
		r = merge_put(m, m->d->bin, m->d->n);
	return r;
}

/* One rollup row: the deltas v[0..n) (one key) merged into what is stored. */
static int rollup_write_one(struct store *s, const struct store_agg_slot *v, size_t n,
			    struct merge_buf *m, char *err, size_t errlen)
{
	int64_t cost[3] = {0, 0, 0}; /* forks, ns, ptes */
	sqlite3_stmt *st;
	int rc, r;

	m->len = 0;
	m->prev = INT32_MIN;
	m->total = 0;
	m->d = v;
	m->dend = v + n;
	for (; m->d < m->dend && m->d->bin < STORE_HIST_NULL_BIN; m->d++)
		cost[m->d->bin == STORE_AGG_COST_FORKS ? 0
		     : m->d->bin == STORE_AGG_COST_NS  ? 1
						       : 2] += m->d->n;
	r = rollup_read(s, v, m, cost, err, errlen);
	if (r)
		return r;
	st = m->total > 0 ? s->put_rollup : s->del_rollup;
	bind_rollup_key(st, v);
	if (m->total > 0) {
		sqlite3_bind_int64(st, 5, m->total);
		sqlite3_bind_blob(st, 6, m->p, (int)m->len, SQLITE_STATIC);
		sqlite3_bind_int64(st, 7, cost[0]);
		sqlite3_bind_int64(st, 8, cost[1]);
		sqlite3_bind_int64(st, 9, cost[2]);
	}
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : store_sql_fail(s, err, errlen, rc, "updating rollups");
}

/*
 * Writes the transaction's rollup deltas: per (metric, res, t, group), one
 * read-modify-write of its packed histogram and cost sums. Bins whose count
 * drops to zero disappear; a histogram left empty is deleted (its cost sums
 * are zero then: they count a subset of its forks).
 */
int store_rollup_flush(struct store *s, char *err, size_t errlen)
{
	struct store_agg_slot *v;
	struct merge_buf m = {0};
	size_t n = 0, i, j;
	int r = 0;

	if (!s->agg_used)
		return 0;
	v = malloc(2 * s->agg_used * sizeof(*v)); /* the slots, and sort_slots' room */
	if (!v)
		return store_fail(s, err, errlen, -ENOMEM, "out of memory");
	for (i = 0; i < s->agg_used; i++)
		if (s->agg[s->agg_list[i]].n)
			v[n++] = s->agg[s->agg_list[i]];
	sort_slots(v, v + s->agg_used, n);
	for (i = 0; i < n && !r; i = j) {
		for (j = i + 1; j < n && v[j].metric == v[i].metric && v[j].res == v[i].res &&
				v[j].t == v[i].t && v[j].grp == v[i].grp;
		     j++)
			;
		r = rollup_write_one(s, &v[i], j - i, &m, err, errlen);
	}
	free(m.p);
	free(v);
	if (!r)
		store_rollup_clear(s);
	return r;
}

/* A time as a column value: -1 for null. */
static int64_t time_val(uint64_t ns)
{
	return ns == PT_NO_TIME || ns > INT64_MAX ? -1 : (int64_t)ns;
}

/* The per-fork metric values (-1 for null), in enum store_metric order. */
void store_fork_metric_values(const struct pt_fork *f, int64_t vals[STORE_M_COUNT - 1])
{
	vals[STORE_M_FORK] = time_val(pt_fork_total_ns(f));
	vals[STORE_M_KERNEL_CLONE] = time_val(f->kernel_clone_ns);
	vals[STORE_M_COPY_PROCESS] = time_val(f->copy_process_ns);
	vals[STORE_M_DUP_MMAP] = time_val(f->dup_mmap_ns);
	vals[STORE_M_COPY_PAGE_RANGE] = time_val(f->copy_page_range_ns);
	vals[STORE_M_MAX_LOCK_HOLD] = time_val(f->max_lock_hold_ns);
}

/*
 * Adds (@sign 1) or subtracts (-1) the fork in the current row of @sel
 * (FORK_DELETE_COLUMNS) to or from the rollups, with its passes' hold times.
 */
int store_rollup_fork_row(struct store *s, sqlite3_stmt *sel, int64_t sign, char *err,
			  size_t errlen)
{
	int64_t id = sqlite3_column_int64(sel, 0), wall = sqlite3_column_int64(sel, 1);
	const char *comm = (const char *)sqlite3_column_text(sel, 2);
	int64_t vals[STORE_M_COUNT - 1], ptes = 0;
	bool complete = sqlite3_column_int(sel, 9) != 0;
	struct pt_pte_pass *pass = NULL;
	uint64_t hold_small[64], *hold = hold_small;
	size_t n = 0;
	int m, r;

	/* the rollups hold address-space copies only (schema 8) */
	if (sqlite3_column_type(sel, 11) != SQLITE_TEXT ||
	    strcmp((const char *)sqlite3_column_text(sel, 11), "fork"))
		return 0;
	for (m = 0; m < 5; m++) {
		int col = 3 + m;

		vals[STORE_M_KERNEL_CLONE + m] = sqlite3_column_type(sel, col) == SQLITE_NULL
						     ? -1
						     : sqlite3_column_int64(sel, col);
	}
	vals[STORE_M_FORK] =
	    sqlite3_column_type(sel, 10) == SQLITE_NULL ? -1 : sqlite3_column_int64(sel, 10);
	if (sqlite3_column_type(sel, 8) != SQLITE_NULL)
		ptes = sqlite3_column_int64(sel, 8);
	if ((r = store_fork_passes(s, id, &pass, &n, err, errlen)))
		return r;
	if (n > sizeof(hold_small) / sizeof(hold_small[0]) && !(hold = malloc(n * sizeof(*hold)))) {
		free(pass);
		return store_fail(s, err, errlen, -ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < n; i++)
		hold[i] = pass[i].hold_ns;
	/* no passes: no array (hold_small is then never written) */
	r = store_rollup_fork(s, wall, comm ? comm : "", vals, complete, ptes, n ? hold : NULL, n,
			      sign, err, errlen);
	if (hold != hold_small)
		free(hold);
	free(pass);
	return r;
}

/*
 * Rebuilds every rollup row from the forks (schema 3 made them count complete
 * forks' values only), in one transaction with the clearing of the task, so
 * that a crash leaves the task pending, never the rollups half built. About
 * 5 s per million forks.
 */
static int rollup_rebuild(struct store *s, char *err, size_t errlen)
{
	sqlite3_stmt *sel = NULL;
	int rc = SQLITE_DONE, r;

	r = store_txn_begin(s, err, errlen);
	if (r)
		return r;
	r = store_exec(s, "DELETE FROM rollup", err, errlen);
	if (!r)
		r = store_prepare(s, "SELECT " FORK_DELETE_COLUMNS " FROM fork ORDER BY id", &sel,
				  err, errlen);
	while (!r && (rc = sqlite3_step(sel)) == SQLITE_ROW)
		r = store_rollup_fork_row(s, sel, 1, err, errlen);
	if (!r && rc != SQLITE_DONE)
		r = store_sql_fail(s, err, errlen, rc, "reading forks to rebuild the rollups");
	if (!r)
		r = store_exec(s, "DELETE FROM pending_task WHERE name = 'rebuild_rollups'", err,
			       errlen);
	sqlite3_finalize(sel);
	if (r) {
		store_txn_abort(s);
		return r;
	}
	return store_txn_commit(s, err, errlen);
}

/* Runs what a migration left for a writer to do (only a writer gets here). */
int store_run_pending_tasks(struct store *s, char *err, size_t errlen)
{
	int64_t n = 0;
	int r = store_query_int(
	    s, "SELECT count(*) FROM pending_task WHERE name = 'rebuild_rollups'", &n, err, errlen);

	if (r || !n)
		return r;
	return rollup_rebuild(s, err, errlen);
}
