/* SPDX-License-Identifier: MIT */
/*
 * The store's read side: sources, forks (filtered, paged by id), one fork
 * with its detail, and statistics read from the histogram rollups.
 *
 * Fed by the database store.c writes; feeds `ptescope report` and the
 * daemon's HTTP API, normally through a read-only handle of its own. Sized
 * for millions of forks: fork listings walk an index and stop at the limit;
 * statistics over any range read at most (minutes at the edges + hours in
 * between) x bins rows of the rollups, never the forks.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store_internal.h"
#include "util.h"

static const char *const metric_names[STORE_M_COUNT] = {
	"fork",		   "kernel_clone",  "copy_process", "dup_mmap",
	"copy_page_range", "max_lock_hold", "pte_pass_hold",
};

const char *store_metric_name(enum store_metric m)
{
	return (unsigned)m < STORE_M_COUNT ? metric_names[m] : "unknown";
}

static int qfail(struct store *s, char *err, size_t errlen, int rc, const char *what)
{
	return store_sql_fail(s, err, errlen, rc, what);
}

/* ---- column readers: SQL NULL becomes the pt_fork null ---- */

static int64_t col_count(sqlite3_stmt *st, int i)
{
	return sqlite3_column_type(st, i) == SQLITE_NULL ? PT_NULL : sqlite3_column_int64(st, i);
}

static void col_comm(sqlite3_stmt *st, int i, char out[32])
{
	const char *v = (const char *)sqlite3_column_text(st, i);

	snprintf(out, 32, "%s", v ? v : "");
}

static char *col_strdup(sqlite3_stmt *st, int i, int *oom)
{
	const char *v = (const char *)sqlite3_column_text(st, i);
	char *d;

	if (!v)
		return NULL;
	d = strdup(v);
	if (!d)
		*oom = 1;
	return d;
}

/* ---- sources ---- */

void store_sources_free(struct store_source *v, size_t nr)
{
	size_t i;

	if (!v)
		return;
	for (i = 0; i < nr; i++) {
		free(v[i].host);
		free(v[i].path);
		free(v[i].format);
		free(v[i].kernel);
		free(v[i].content_sha256);
	}
	free(v);
}

int store_list_sources(struct store *s, bool complete_only, struct store_source **out, size_t *nr,
		       char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	struct store_source *v = NULL;
	size_t n = 0, cap = 0;
	int rc, r, oom = 0;

	*out = NULL;
	*nr = 0;
	r = store_prepare(s,
			  "SELECT id, kind, host, path, format, kernel, content_sha256, size_bytes,"
			  " events, lines, unparsed_lines, lost_events, lost_unknown, first_ts_ns,"
			  " last_ts_ns, cpus, forks, started_wall_ns, completed_wall_ns"
			  " FROM source WHERE ?1 = 0 OR kind = 'live' OR completed_wall_ns IS NOT NULL"
			  " ORDER BY id",
			  &st, err, errlen);
	if (r)
		return r;
	sqlite3_bind_int(st, 1, complete_only);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct store_source *x;

		if (pt_grow_array((void **)&v, &cap, n + 1, sizeof(*v))) {
			oom = 1;
			break;
		}
		x = &v[n++];
		memset(x, 0, sizeof(*x));
		x->id = sqlite3_column_int64(st, 0);
		x->kind = strcmp((const char *)sqlite3_column_text(st, 1), "live") == 0
				  ? STORE_SOURCE_LIVE
				  : STORE_SOURCE_REPLAY;
		x->host = col_strdup(st, 2, &oom);
		x->path = col_strdup(st, 3, &oom);
		x->format = col_strdup(st, 4, &oom);
		x->kernel = col_strdup(st, 5, &oom);
		x->content_sha256 = col_strdup(st, 6, &oom);
		x->size_bytes = col_neg(st, 7);
		pt_input_stats_init(&x->stats);
		x->stats.events = (uint64_t)sqlite3_column_int64(st, 8);
		x->stats.lines = (uint64_t)sqlite3_column_int64(st, 9);
		x->stats.unparsed_lines = (uint64_t)sqlite3_column_int64(st, 10);
		x->stats.lost_events = (uint64_t)sqlite3_column_int64(st, 11);
		x->stats.lost_unknown = sqlite3_column_int(st, 12);
		x->stats.first_ts_ns = col_time(st, 13);
		x->stats.last_ts_ns = col_time(st, 14);
		x->stats.cpus = sqlite3_column_int(st, 15);
		x->forks = col_neg(st, 16);
		x->started_wall_ns = sqlite3_column_int64(st, 17);
		x->completed_wall_ns = sqlite3_column_int64(st, 18);
		if (oom)
			break;
	}
	sqlite3_finalize(st);
	if (oom) {
		store_sources_free(v, n);
		return store_fail(s, err, errlen, -ENOMEM, "out of memory");
	}
	if (rc != SQLITE_DONE) {
		store_sources_free(v, n);
		return qfail(s, err, errlen, rc, "listing sources");
	}
	*out = v;
	*nr = n;
	return 0;
}

/* ---- forks ---- */

#define FORK_COLUMNS                                                                               \
	"f.id, f.source_id, f.wall_ns, f.ts_ns, f.parent_pid, f.parent_comm, f.child_pid,"         \
	" f.child_comm, f.kernel_clone_ns, f.copy_process_ns, f.dup_mmap_ns,"                      \
	" f.copy_page_range_ns, f.vmas, f.pte_passes, f.lock_breaks, f.ptes,"                      \
	" f.max_lock_hold_ns, f.complete, f.flags, f.copy_resched, f.copy_offcpu_ns,"              \
	" f.mem_rss_anon_bytes, f.mem_rss_file_bytes, f.mem_rss_shmem_bytes, f.mem_pte_bytes,"     \
	" f.mem_map_count, f.mem_anon_huge_bytes, f.mem_child_exec, f.kind, f.clone_flags, f.cgroup"

static void read_fork_row(sqlite3_stmt *st, struct store_fork_row *row)
{
	struct pt_fork *f = &row->fork;

	memset(row, 0, sizeof(*row));
	row->id = sqlite3_column_int64(st, 0);
	row->source_id = sqlite3_column_int64(st, 1);
	row->wall_ns = sqlite3_column_int64(st, 2);
	f->ts_ns = col_time(st, 3);
	f->parent_pid = (int)col_neg(st, 4);
	col_comm(st, 5, f->parent_comm);
	f->child_pid = (int)col_neg(st, 6);
	col_comm(st, 7, f->child_comm);
	f->kernel_clone_ns = col_time(st, 8);
	f->copy_process_ns = col_time(st, 9);
	f->dup_mmap_ns = col_time(st, 10);
	f->copy_page_range_ns = col_time(st, 11);
	f->vmas = col_count(st, 12);
	f->pte_passes = col_count(st, 13);
	f->lock_breaks = col_count(st, 14);
	f->ptes = col_count(st, 15);
	f->copy_resched = col_count(st, 19);
	f->copy_offcpu_ns = col_time(st, 20);
	f->max_lock_hold_ns = col_time(st, 16);
	f->complete = sqlite3_column_int(st, 17);
	f->flags = (unsigned)sqlite3_column_int64(st, 18);
	for (int k = 0; k < PT_MEM_COUNT; k++) /* mem_* in enum pt_mem_field order */
		if (sqlite3_column_type(st, 21 + k) != SQLITE_NULL)
			pt_mem_set(&f->mem, (enum pt_mem_field)k, sqlite3_column_int64(st, 21 + k));
	if (sqlite3_column_type(st, 28) == SQLITE_TEXT) {
		int k = pt_kind_parse((const char *)sqlite3_column_text(st, 28));

		f->kind = k > 0 ? (enum pt_fork_kind)k : PT_KIND_UNKNOWN;
	}
	if (sqlite3_column_type(st, 29) != SQLITE_NULL) {
		f->has_clone_flags = true;
		f->clone_flags = (uint64_t)sqlite3_column_int64(st, 29);
	}
	if (sqlite3_column_type(st, 30) == SQLITE_TEXT)
		snprintf(f->cgroup, sizeof(f->cgroup), "%s",
			 (const char *)sqlite3_column_text(st, 30));
}

/*
 * The condition on f.kind of the kinds in @mask (bits 1 << enum pt_fork_kind;
 * 0: every kind) as a fixed SQL fragment in @buf: names from pt_kind_names,
 * never from input.
 */
static const char *kinds_sql(unsigned mask, char *buf, size_t len)
{
	size_t n = 0;

	buf[0] = '\0';
	if (!mask || (mask & PT_KINDS_ALL) == PT_KINDS_ALL)
		return buf;
	n += (size_t)snprintf(buf + n, len - n, " AND (f.kind IN (''");
	for (int k = PT_KIND_FORK; k < PT_KIND_COUNT && n < len; k++)
		if (mask & (1u << k)) {
			n += (size_t)snprintf(buf + n, len - n, ", '%s'", pt_kind_name(k));
		}
	if (n < len)
		snprintf(buf + n, len - n, ")%s)",
			 mask & (1u << PT_KIND_UNKNOWN) ? " OR f.kind IS NULL" : "");
	return buf;
}

void store_fork_rows_free(struct store_fork_row *rows, size_t nr)
{
	size_t i;

	if (!rows)
		return;
	for (i = 0; i < nr; i++)
		pt_fork_release(&rows[i].fork);
	free(rows);
}

static void bind_named(sqlite3_stmt *st, const char *name, int64_t v)
{
	int i = sqlite3_bind_parameter_index(st, name);

	if (i)
		sqlite3_bind_int64(st, i, v);
}

int store_query_forks(struct store *s, const struct store_fork_filter *flt,
		      struct store_fork_row **rows, size_t *nr, int64_t *next_cursor, char *err,
		      size_t errlen)
{
	char sql[1536], kinds[128];
	sqlite3_stmt *st = NULL;
	struct store_fork_row *v = NULL;
	size_t n = 0, cap = 0;
	int rc, r, idx;

	*rows = NULL;
	*nr = 0;
	if (next_cursor)
		*next_cursor = 0;
	/* Fixed fragments only; every value is bound. */
	snprintf(sql, sizeof(sql), "SELECT " FORK_COLUMNS " FROM fork f WHERE 1%s%s%s%s%s%s%s%s%s%s%s ORDER BY f.id %s%s",
		 kinds_sql(flt->kinds, kinds, sizeof(kinds)),
		 flt->comm ? " AND f.parent_comm = :comm" : "",
		 flt->pid >= 0 ? " AND f.parent_pid = :pid" : "",
		 flt->since_ts_ns ? " AND f.ts_ns >= :sts" : "",
		 flt->until_ts_ns ? " AND f.ts_ns < :uts" : "",
		 flt->since_wall_ns ? " AND f.wall_ns >= :sw" : "",
		 flt->until_wall_ns ? " AND f.wall_ns < :uw" : "",
		 flt->min_us > 0 ? " AND f.total_ns >= :minns"
				 : "",
		 flt->source_id ? " AND f.source_id = :src" : "",
		 flt->complete_sources ? " AND f.source_id IN (SELECT id FROM source WHERE"
					 " completed_wall_ns IS NOT NULL OR kind = 'live')"
				       : "",
		 flt->cursor ? (flt->oldest_first ? " AND f.id > :cur" : " AND f.id < :cur") : "",
		 flt->oldest_first ? "ASC" : "DESC", flt->limit ? " LIMIT :lim" : "");
	r = store_prepare(s, sql, &st, err, errlen);
	if (r)
		return r;
	idx = sqlite3_bind_parameter_index(st, ":comm");
	if (idx)
		sqlite3_bind_text(st, idx, flt->comm, -1, SQLITE_STATIC);
	bind_named(st, ":pid", flt->pid);
	bind_named(st, ":sts", (int64_t)flt->since_ts_ns);
	bind_named(st, ":uts", (int64_t)flt->until_ts_ns);
	bind_named(st, ":sw", flt->since_wall_ns);
	bind_named(st, ":uw", flt->until_wall_ns);
	bind_named(st, ":minns", flt->min_us * 1000);
	bind_named(st, ":src", flt->source_id);
	bind_named(st, ":cur", flt->cursor);
	/* One more than asked, to know whether there is a next page. */
	bind_named(st, ":lim", (int64_t)flt->limit + 1);

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (flt->limit && n == flt->limit) {
			if (next_cursor)
				*next_cursor = v[n - 1].id;
			break;
		}
		if (pt_grow_array_from((void **)&v, &cap, n + 1, sizeof(*v), 64)) {
			r = store_fail(s, err, errlen, -ENOMEM, "out of memory");
			break;
		}
		read_fork_row(st, &v[n++]);
	}
	if (!r && rc != SQLITE_ROW && rc != SQLITE_DONE)
		r = qfail(s, err, errlen, rc, "listing forks");
	sqlite3_finalize(st);
	if (r) {
		store_fork_rows_free(v, n);
		return r;
	}
	*rows = v;
	*nr = n;
	return 0;
}

/* The VMA copies of fork @id into @f. */
static int read_vmas(struct store *s, int64_t id, struct pt_fork *f, char *err, size_t errlen)
{
	return store_fork_vmas(s, id, &f->vma, &f->nr_vma, err, errlen);
}

/* The PTE passes of fork @id into @f. */
static int read_passes(struct store *s, int64_t id, struct pt_fork *f, char *err, size_t errlen)
{
	return store_fork_passes(s, id, &f->pass, &f->nr_pass, err, errlen);
}

int store_get_fork(struct store *s, int64_t id, struct store_fork_row *row, char *err,
		   size_t errlen)
{
	sqlite3_stmt *st = NULL;
	struct pt_fork *f = &row->fork;
	int rc, r;

	memset(row, 0, sizeof(*row));
	r = store_prepare(s, "SELECT " FORK_COLUMNS " FROM fork f WHERE f.id = ?1", &st, err,
			  errlen);
	if (r)
		return r;
	sqlite3_bind_int64(st, 1, id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		read_fork_row(st, row);
	sqlite3_finalize(st);
	if (rc == SQLITE_DONE)
		return store_fail(s, err, errlen, -ENOENT, "no fork %lld", (long long)id);
	if (rc != SQLITE_ROW)
		return qfail(s, err, errlen, rc, "reading a fork");
	r = read_vmas(s, id, f, err, errlen);
	if (!r)
		r = read_passes(s, id, f, err, errlen);
	if (r)
		pt_fork_release(f);
	return r;
}

/* ---- statistics from the rollups ---- */

#define MINUTE_NS 60000000000ll
#define OPEN_MINUTES (1ll << 40)

static int64_t floor_div(int64_t a, int64_t b)
{
	int64_t q = a / b;

	return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static int64_t ceil_div(int64_t a, int64_t b)
{
	return -floor_div(-a, b);
}

/* The rollup rows covering [since, until): (res, t0, t1) spans, at most seven. */
struct span {
	int res;
	int64_t t0, t1;
};

#define MAX_SPANS 8

/* Minutes [a, b): whole hours as hour rows, the rest as minute rows. */
static size_t minute_spans(int64_t a, int64_t b, struct span *sp)
{
	int64_t h0 = ceil_div(a, 60), h1 = floor_div(b, 60);
	size_t n = 0;

	if (a >= b)
		return 0;
	if (h0 >= h1) {
		sp[n++] = (struct span){0, a, b};
		return n;
	}
	if (a < h0 * 60)
		sp[n++] = (struct span){0, a, h0 * 60};
	sp[n++] = (struct span){1, h0, h1};
	if (h1 * 60 < b)
		sp[n++] = (struct span){0, h1 * 60, b};
	return n;
}

static size_t range_spans(const struct store_range *r, struct span sp[MAX_SPANS])
{
	int64_t m0 = r->since_wall_ns ? floor_div(r->since_wall_ns, MINUTE_NS) : -OPEN_MINUTES;
	int64_t m1 = r->until_wall_ns ? ceil_div(r->until_wall_ns, MINUTE_NS) : OPEN_MINUTES;
	int64_t d0 = ceil_div(m0, 1440), d1 = floor_div(m1, 1440);
	size_t n = 0;

	if (m0 >= m1)
		return 0;
	if (d0 >= d1)
		return minute_spans(m0, m1, sp);
	n += minute_spans(m0, d0 * 1440, sp + n);
	sp[n++] = (struct span){2, d0, d1};
	n += minute_spans(d1 * 1440, m1, sp + n);
	return n;
}

/*
 * Rollup group of r->comm: *grp = -2 for all groups, >= 0 a group, -1 when
 * the comm has no group of its own (never seen, or past the cap).
 */
static int range_group(struct store *s, const struct store_range *r, int64_t *grp, char *err,
		       size_t errlen)
{
	*grp = -2;
	if (!r->comm)
		return 0;
	return store_comm_group(s, r->comm, false, grp, err, errlen);
}

static int64_t u64_cmp_sort(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static int cmp_u64(const void *a, const void *b)
{
	return (int)u64_cmp_sort(a, b);
}

struct u64vec {
	uint64_t *v;
	size_t n, cap;
	uint64_t nulls;
};

static int vec_push(struct u64vec *x, int64_t v)
{
	if (v < 0) {
		x->nulls++;
		return 0;
	}
	if (pt_grow_array_from((void **)&x->v, &x->cap, x->n + 1, sizeof(*x->v), 1024))
		return -ENOMEM;
	x->v[x->n++] = (uint64_t)v;
	return 0;
}

static uint64_t exact_rank(const struct u64vec *x, double q)
{
	uint64_t rank = (uint64_t)(q * (double)x->n);

	if ((double)rank < q * (double)x->n)
		rank++;
	if (rank == 0)
		rank = 1;
	return x->v[rank - 1];
}

static void vecs_free(struct u64vec vec[STORE_M_COUNT])
{
	int m;

	for (m = 0; m < STORE_M_COUNT; m++) {
		free(vec[m].v);
		memset(&vec[m], 0, sizeof(vec[m]));
	}
}

/* The forks of a range read one by one: ?1 the comm (NULL: any), ?2 and ?3 the wall times. */
#define EXACT_WHERE "(?1 IS NULL OR f.parent_comm = ?1) AND f.wall_ns >= ?2 AND f.wall_ns < ?3"

/* The kinds a range is over: address-space copies unless it names others. */
static unsigned range_kinds(const struct store_range *r)
{
	return r->kinds ? r->kinds : PT_KINDS_FORK;
}

/* The hold times of the passes of @r's complete forks: packed (store_packed.c),
 * and in rows for forks stored before migration 0007. */
static int exact_holds(struct store *s, const struct store_range *r, struct u64vec *out, char *err,
		       size_t errlen)
{
	static const char *const sel[2] = {
	    "SELECT p.data FROM fork f JOIN fork_pass p ON p.fork_id = f.id",
	    "SELECT p.hold_ns FROM fork f JOIN pte_pass p ON p.fork_id = f.id"};
	int ret = 0, rc = SQLITE_DONE;
	char sql[512], kinds[128];

	for (int q = 0; q < 2 && !ret; q++) {
		sqlite3_stmt *st = NULL;

		snprintf(sql, sizeof(sql), "%s WHERE " EXACT_WHERE " AND f.complete%s", sel[q],
			 kinds_sql(range_kinds(r), kinds, sizeof(kinds)));
		if ((ret = store_prepare(s, sql, &st, err, errlen)))
			break;
		sqlite3_bind_text(st, 1, r->comm, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, r->since_wall_ns ? r->since_wall_ns : INT64_MIN);
		sqlite3_bind_int64(st, 3, r->until_wall_ns ? r->until_wall_ns : INT64_MAX);
		while (!ret && (rc = sqlite3_step(st)) == SQLITE_ROW) {
			struct pt_pte_pass *p;
			size_t n;

			if (q == 1) {
				ret = vec_push(out, col_neg(st, 0));
				continue;
			}
			ret = store_passes_unpack(sqlite3_column_blob(st, 0),
						  (size_t)sqlite3_column_bytes(st, 0), &p, &n);
			for (size_t i = 0; !ret && i < n; i++)
				ret = vec_push(out, p[i].hold_ns == PT_NO_TIME
							? -1
							: (int64_t)p[i].hold_ns);
			free(p);
		}
		if (!ret && rc != SQLITE_DONE)
			ret = qfail(s, err, errlen, rc, "reading passes for statistics");
		sqlite3_finalize(st);
	}
	if (ret == -EINVAL)
		ret = store_fail(s, err, errlen, ret, "stored passes are damaged");
	return ret;
}

/*
 * The values of every metric of the range's forks (of its comm, its kinds),
 * read from the forks themselves (comms past the group cap, kinds the
 * rollups do not hold), and their cost sums. Pass
 * hold times only when @passes. On failure the vectors are freed.
 */
static int exact_collect(struct store *s, const struct store_range *r, bool passes,
			 struct u64vec vec[STORE_M_COUNT], struct store_cost *cost, char *err,
			 size_t errlen)
{
	sqlite3_stmt *st = NULL;
	int rc = SQLITE_DONE, ret, m;
	char sql[512], kinds[128];

	memset(vec, 0, sizeof(*vec) * STORE_M_COUNT);
	memset(cost, 0, sizeof(*cost));
	cost->exact = true;
	snprintf(sql, sizeof(sql),
		 "SELECT f.kernel_clone_ns, f.copy_process_ns, f.dup_mmap_ns,"
		 " f.copy_page_range_ns, f.max_lock_hold_ns, f.ptes, f.complete, f.total_ns"
		 " FROM fork f WHERE " EXACT_WHERE "%s",
		 kinds_sql(range_kinds(r), kinds, sizeof(kinds)));
	ret = store_prepare(s, sql, &st, err, errlen);
	if (ret)
		return ret;
	sqlite3_bind_text(st, 1, r->comm, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, r->since_wall_ns ? r->since_wall_ns : INT64_MIN);
	sqlite3_bind_int64(st, 3, r->until_wall_ns ? r->until_wall_ns : INT64_MAX);
	while (!ret && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		int64_t ptes = col_neg(st, 5), cpr = col_neg(st, 3);
		/* as the rollups: an incomplete fork counts, its values do not */
		bool complete = sqlite3_column_int(st, 6) != 0;

		for (m = 0; m < 5 && !ret; m++)
			ret = vec_push(&vec[STORE_M_KERNEL_CLONE + m], complete ? col_neg(st, m) : -1);
		if (!ret)
			ret = vec_push(&vec[STORE_M_FORK], complete ? col_neg(st, 7) : -1);
		if (pt_counts_toward_cost(complete, cpr < 0 ? PT_NO_TIME : (uint64_t)cpr, ptes)) {
			cost->forks++;
			cost->ns += (uint64_t)col_neg(st, 3);
			cost->ptes += (uint64_t)ptes;
		}
	}
	if (!ret && rc != SQLITE_DONE)
		ret = qfail(s, err, errlen, rc, "reading forks for statistics");
	sqlite3_finalize(st);
	st = NULL;
	if (!ret && passes)
		ret = exact_holds(s, r, &vec[STORE_M_PASS_HOLD], err, errlen);
	if (ret == -ENOMEM)
		store_fail(s, err, errlen, ret, "out of memory");
	if (ret)
		vecs_free(vec);
	return ret;
}

/* Exact statistics of one comm from the forks themselves (comms past the group cap). */
static int stats_exact(struct store *s, const struct store_range *r,
		       struct store_stat out[STORE_M_COUNT], char *err, size_t errlen)
{
	struct u64vec vec[STORE_M_COUNT];
	struct store_cost cost;
	int ret, m;

	ret = exact_collect(s, r, true, vec, &cost, err, errlen);
	for (m = 0; m < STORE_M_COUNT; m++) {
		struct u64vec *x = &vec[m];

		memset(&out[m], 0, sizeof(out[m]));
		out[m].exact = true;
		if (ret)
			continue;
		out[m].count = x->n + x->nulls;
		out[m].nulls = x->nulls;
		if (x->n) {
			qsort(x->v, x->n, sizeof(*x->v), cmp_u64);
			out[m].p50_ns = exact_rank(x, 0.50);
			out[m].p90_ns = exact_rank(x, 0.90);
			out[m].p99_ns = exact_rank(x, 0.99);
			out[m].p999_ns = exact_rank(x, 0.999);
			out[m].max_ns = x->v[x->n - 1];
		}
	}
	if (!ret)
		vecs_free(vec);
	return ret;
}

/*
 * Reading a range from the rollups, shared by store_stats, store_histogram
 * and store_cost: the range's row spans (whole days, hours, minutes) and its
 * group, and one statement walking them for a metric.
 */
struct rollup_walk {
	struct span sp[MAX_SPANS];
	size_t nr_sp;
	int64_t grp; /* -2 all groups, >= 0 one; -1: the comm has no group (use the forks) */
	sqlite3_stmt *st;
};

/* What a walk adds up: the histogram (when @want_hist) and the cost sums. */
struct rollup_sum {
	bool want_hist;
	struct store_hist h;
	uint64_t cost_forks, cost_ns, cost_ptes;
};

static int walk_open(struct store *s, const struct store_range *r, struct rollup_walk *w,
		     char *err, size_t errlen)
{
	int ret;

	memset(w, 0, sizeof(*w));
	w->nr_sp = range_spans(r, w->sp);
	if (store_range_other_kinds(r)) {
		w->grp = -1; /* not in the rollups: from the forks */
		return 0;
	}
	ret = range_group(s, r, &w->grp, err, errlen);
	if (ret || w->grp == -1)
		return ret;
	return store_prepare(s,
			     "SELECT h, cost_forks, cost_ns, cost_ptes FROM rollup WHERE metric = ?1"
			     " AND res = ?2 AND t >= ?3 AND t < ?4 AND (?5 = -2 OR grp = ?5)",
			     &w->st, err, errlen);
}

static void walk_close(struct rollup_walk *w)
{
	sqlite3_finalize(w->st);
	w->st = NULL;
}

/* Adds the rollup rows of @metric over the walk's spans to @acc. */
static int walk_sum(struct store *s, struct rollup_walk *w, int metric, struct rollup_sum *acc,
		    char *err, size_t errlen)
{
	sqlite3_stmt *st = w->st;
	size_t i;
	int rc, r = 0;

	for (i = 0; i < w->nr_sp && !r; i++) {
		sqlite3_reset(st);
		sqlite3_bind_int(st, 1, metric);
		sqlite3_bind_int(st, 2, w->sp[i].res);
		sqlite3_bind_int64(st, 3, w->sp[i].t0);
		sqlite3_bind_int64(st, 4, w->sp[i].t1);
		sqlite3_bind_int64(st, 5, w->grp);
		while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
			acc->cost_forks += (uint64_t)sqlite3_column_int64(st, 1);
			acc->cost_ns += (uint64_t)sqlite3_column_int64(st, 2);
			acc->cost_ptes += (uint64_t)sqlite3_column_int64(st, 3);
			if (!acc->want_hist)
				continue;
			r = store_hist_add_blob(&acc->h, sqlite3_column_blob(st, 0),
						(size_t)sqlite3_column_bytes(st, 0));
			if (r) {
				r = store_fail(s, err, errlen, r,
					       r == -ENOMEM ? "out of memory"
							    : "a rollup histogram is corrupt");
				break;
			}
		}
		if (!r && rc != SQLITE_DONE)
			r = qfail(s, err, errlen, rc, "reading rollups");
	}
	sqlite3_reset(st);
	return r;
}

int store_stats(struct store *s, const struct store_range *r, struct store_stat out[STORE_M_COUNT],
		char *err, size_t errlen)
{
	struct rollup_walk w;
	int m, ret;

	memset(out, 0, sizeof(*out) * STORE_M_COUNT);
	ret = walk_open(s, r, &w, err, errlen);
	if (!ret && w.grp == -1)
		return stats_exact(s, r, out, err, errlen);
	for (m = 0; m < STORE_M_COUNT && !ret; m++) {
		struct rollup_sum acc = {.want_hist = true};

		ret = walk_sum(s, &w, m, &acc, err, errlen);
		if (!ret)
			store_hist_result(&acc.h, &out[m]);
		store_hist_free(&acc.h);
	}
	walk_close(&w);
	return ret;
}

void store_histogram_free(struct store_histogram *h)
{
	if (!h)
		return;
	free(h->bins);
	memset(h, 0, sizeof(*h));
}

/* The non-empty bins of @h as (upper bound, count), ascending. */
static int histogram_bins(struct store *s, const struct store_hist *h, struct store_histogram *out,
			  char *err, size_t errlen)
{
	size_t i, n = 0;

	out->count = h->count;
	out->nulls = h->cap ? h->n[0] : 0;
	for (i = 1; i < h->cap; i++)
		n += h->n[i] != 0;
	if (!n)
		return 0;
	out->bins = malloc(n * sizeof(*out->bins));
	if (!out->bins)
		return store_fail(s, err, errlen, -ENOMEM, "out of memory");
	for (i = 1; i < h->cap; i++)
		if (h->n[i])
			out->bins[out->nr_bins++] = (struct store_bin){
			    .le_ns = store_hist_upper((int)i - 1), .count = h->n[i]};
	return 0;
}

int store_histogram(struct store *s, const struct store_range *r, enum store_metric metric,
		    struct store_histogram *out, char *err, size_t errlen)
{
	struct rollup_sum acc = {.want_hist = true};
	struct rollup_walk w;
	int ret;

	memset(out, 0, sizeof(*out));
	if ((unsigned)metric >= STORE_M_COUNT)
		return store_fail(s, err, errlen, -EINVAL, "no such metric");
	ret = walk_open(s, r, &w, err, errlen);
	if (!ret && w.grp == -1) {
		struct u64vec vec[STORE_M_COUNT];
		struct store_cost cost;
		size_t i;

		out->exact = true;
		ret = exact_collect(s, r, metric == STORE_M_PASS_HOLD, vec, &cost, err, errlen);
		if (ret)
			return ret;
		if (vec[metric].nulls)
			ret = store_hist_add(&acc.h, STORE_HIST_NULL_BIN, vec[metric].nulls);
		for (i = 0; !ret && i < vec[metric].n; i++)
			ret = store_hist_add(&acc.h, store_hist_bin(vec[metric].v[i]), 1);
		vecs_free(vec);
		if (ret)
			ret = store_fail(s, err, errlen, ret, "out of memory");
	} else if (!ret) {
		ret = walk_sum(s, &w, metric, &acc, err, errlen);
	}
	walk_close(&w);
	if (!ret)
		ret = histogram_bins(s, &acc.h, out, err, errlen);
	store_hist_free(&acc.h);
	return ret;
}

int store_cost(struct store *s, const struct store_range *r, struct store_cost *out, char *err,
	       size_t errlen)
{
	struct rollup_sum acc = {.want_hist = false};
	struct rollup_walk w;
	int ret;

	memset(out, 0, sizeof(*out));
	ret = walk_open(s, r, &w, err, errlen);
	if (!ret && w.grp == -1) {
		struct u64vec vec[STORE_M_COUNT];

		ret = exact_collect(s, r, false, vec, out, err, errlen);
		if (!ret)
			vecs_free(vec);
		return ret;
	}
	if (!ret)
		ret = walk_sum(s, &w, STORE_M_COPY_PAGE_RANGE, &acc, err, errlen);
	walk_close(&w);
	if (!ret) {
		out->forks = acc.cost_forks;
		out->ns = acc.cost_ns;
		out->ptes = acc.cost_ptes;
	}
	return ret;
}

int store_kind_counts(struct store *s, const struct store_range *r,
		      uint64_t out[PT_KIND_COUNT], char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	int rc, ret;

	memset(out, 0, sizeof(uint64_t) * PT_KIND_COUNT);
	ret = store_prepare(s, "SELECT f.kind, count(*) FROM fork f WHERE " EXACT_WHERE
			       " GROUP BY f.kind",
			    &st, err, errlen);
	if (ret)
		return ret;
	sqlite3_bind_text(st, 1, r->comm, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, r->since_wall_ns ? r->since_wall_ns : INT64_MIN);
	sqlite3_bind_int64(st, 3, r->until_wall_ns ? r->until_wall_ns : INT64_MAX);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int k = sqlite3_column_type(st, 0) == SQLITE_TEXT
			    ? pt_kind_parse((const char *)sqlite3_column_text(st, 0))
			    : PT_KIND_UNKNOWN;

		out[k > 0 ? k : PT_KIND_UNKNOWN] += (uint64_t)sqlite3_column_int64(st, 1);
	}
	if (rc != SQLITE_DONE)
		ret = qfail(s, err, errlen, rc, "counting forks by kind");
	sqlite3_finalize(st);
	return ret;
}

/* A comm group's "fork" histogram over a range. */
struct grp_acc {
	int64_t grp;
	struct store_hist h;
};

struct grp_accs {
	struct grp_acc *v;
	size_t n, cap;
};

/* The accumulator of group @g, added when new. NULL on ENOMEM. */
static struct grp_acc *grp_acc_of(struct grp_accs *a, int64_t g)
{
	size_t j;

	for (j = 0; j < a->n && a->v[j].grp != g; j++)
		;
	if (j < a->n)
		return &a->v[j];
	if (pt_grow_array_from((void **)&a->v, &a->cap, a->n + 1, sizeof(*a->v), 32))
		return NULL;
	a->v[a->n] = (struct grp_acc){.grp = g};
	return &a->v[a->n++];
}

/* Sums the "fork" histograms of every comm group over @r into @a. */
static int top_comms_collect(struct store *s, const struct store_range *r, struct grp_accs *a,
			     char *err, size_t errlen)
{
	struct span sp[MAX_SPANS];
	size_t nr_sp = range_spans(r, sp);
	sqlite3_stmt *st = NULL;
	int rc = SQLITE_DONE, ret;

	ret = store_prepare(s,
			    "SELECT grp, h FROM rollup WHERE metric = 0 AND res = ?1 AND"
			    " t >= ?2 AND t < ?3",
			    &st, err, errlen);
	for (size_t i = 0; i < nr_sp && !ret; i++) {
		sqlite3_reset(st);
		sqlite3_bind_int(st, 1, sp[i].res);
		sqlite3_bind_int64(st, 2, sp[i].t0);
		sqlite3_bind_int64(st, 3, sp[i].t1);
		while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
			struct grp_acc *g = grp_acc_of(a, sqlite3_column_int64(st, 0));

			ret = g ? store_hist_add_blob(&g->h, sqlite3_column_blob(st, 1),
						      (size_t)sqlite3_column_bytes(st, 1))
				: -ENOMEM;
			if (ret)
				break;
		}
		if (ret)
			store_fail(s, err, errlen, ret,
				   ret == -ENOMEM ? "out of memory" : "a rollup histogram is corrupt");
		else if (rc != SQLITE_DONE)
			ret = qfail(s, err, errlen, rc, "reading rollups");
	}
	sqlite3_finalize(st);
	return ret;
}

int store_top_comms(struct store *s, const struct store_range *r, struct store_top_comm *out,
		    size_t max, size_t *nr, char *err, size_t errlen)
{
	struct grp_accs a = {0};
	sqlite3_stmt *st = NULL;
	size_t i, j;
	int ret;

	*nr = 0;
	if (store_range_other_kinds(r))
		return store_fail(s, err, errlen, -EINVAL,
				  "the top list holds address-space copies only (kind=fork)");
	ret = top_comms_collect(s, r, &a, err, errlen);
	/* Pick the @max largest (few groups: a selection sort is enough). */
	for (i = 0; !ret && i < max && i < a.n; i++) {
		size_t best = i;
		struct grp_acc tmp;
		struct store_stat stat;

		for (j = i + 1; j < a.n; j++)
			if (a.v[j].h.count > a.v[best].h.count)
				best = j;
		tmp = a.v[i], a.v[i] = a.v[best], a.v[best] = tmp;
		store_hist_result(&a.v[i].h, &stat);
		memset(&out[i], 0, sizeof(out[i]));
		out[i].forks = stat.count;
		out[i].p99_ns = stat.p99_ns;
		snprintf(out[i].name, sizeof(out[i].name), "(other)");
		if (a.v[i].grp > 0) {
			if (!st)
				ret = store_prepare(s, "SELECT name FROM comm_group WHERE id = ?1",
						    &st, err, errlen);
			if (ret)
				break;
			sqlite3_reset(st);
			sqlite3_bind_int64(st, 1, a.v[i].grp);
			if (sqlite3_step(st) == SQLITE_ROW)
				snprintf(out[i].name, sizeof(out[i].name), "%s",
					 (const char *)sqlite3_column_text(st, 0));
		}
		(*nr)++;
	}
	sqlite3_finalize(st);
	for (j = 0; j < a.n; j++)
		store_hist_free(&a.v[j].h);
	free(a.v);
	return ret;
}

int store_timeseries(struct store *s, const struct store_range *r, enum store_metric metric,
		     int step_s, struct store_ts_point *out, size_t max, size_t *nr, char *err,
		     size_t errlen)
{
	int res = step_s == 86400 ? 2 : step_s == 3600 ? 1 : 0;
	int64_t step_ns = store_res_ns[res], grp, cur = INT64_MIN;
	int64_t t0 = r->since_wall_ns ? floor_div(r->since_wall_ns, step_ns) : -OPEN_MINUTES;
	int64_t t1 = r->until_wall_ns ? ceil_div(r->until_wall_ns, step_ns) : OPEN_MINUTES;
	struct store_hist h = {0};
	sqlite3_stmt *st = NULL;
	int rc, ret;

	*nr = 0;
	if (step_s != 60 && step_s != 3600 && step_s != 86400)
		return store_fail(s, err, errlen, -EINVAL,
				  "time series step must be 60, 3600 or 86400 s");
	if ((unsigned)metric >= STORE_M_COUNT)
		return store_fail(s, err, errlen, -EINVAL, "no such metric");
	if (store_range_other_kinds(r))
		return store_fail(s, err, errlen, -EINVAL,
				  "time series hold address-space copies only (kind=fork)");
	ret = range_group(s, r, &grp, err, errlen);
	if (ret || grp == -1)
		return ret;
	ret = store_prepare(s,
			    "SELECT t, h FROM rollup WHERE metric = ?1 AND res = ?2 AND t >= ?3"
			    " AND t < ?4 AND (?5 = -2 OR grp = ?5) ORDER BY t",
			    &st, err, errlen);
	if (ret)
		return ret;
	sqlite3_bind_int(st, 1, metric);
	sqlite3_bind_int(st, 2, res);
	sqlite3_bind_int64(st, 3, t0);
	sqlite3_bind_int64(st, 4, t1);
	sqlite3_bind_int64(st, 5, grp);
	for (;;) {
		int64_t t = 0;

		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW)
			t = sqlite3_column_int64(st, 0);
		if (cur != INT64_MIN && (rc != SQLITE_ROW || t != cur)) {
			struct store_stat stat;

			store_hist_result(&h, &stat);
			if (*nr < max)
				out[(*nr)++] = (struct store_ts_point){.t_wall_ns = cur * step_ns,
								       .count = stat.count,
								       .p50_ns = stat.p50_ns,
								       .p99_ns = stat.p99_ns,
								       .max_ns = stat.max_ns};
			store_hist_free(&h);
			if (*nr == max)
				break;
		}
		if (rc != SQLITE_ROW)
			break;
		cur = t;
		ret = store_hist_add_blob(&h, sqlite3_column_blob(st, 1),
					  (size_t)sqlite3_column_bytes(st, 1));
		if (ret) {
			store_fail(s, err, errlen, ret,
				   ret == -ENOMEM ? "out of memory" : "a rollup histogram is corrupt");
			break;
		}
	}
	if (!ret && rc != SQLITE_DONE && rc != SQLITE_ROW)
		ret = qfail(s, err, errlen, rc, "reading rollups");
	store_hist_free(&h);
	sqlite3_finalize(st);
	return ret;
}
