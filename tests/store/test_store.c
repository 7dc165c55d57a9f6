/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the store (store/): SHA-256 against the FIPS vectors,
 * histogram bins against their error bound, round trips of forks with nulls
 * and detail, filters and paging against a naive scan, rollup statistics
 * against sorting every value, dedup and redo of interrupted sources,
 * refusal of foreign/newer/corrupt files (left byte-for-byte unchanged),
 * migration of an older file, retention by age and size, readers not
 * blocked by an open write transaction, and time parsing.
 *
 * Run with a scratch directory as argv[1]; every check prints what failed.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "store.h"
#include "store_internal.h"
#include "check_sql.h"
#include "synth.h"
#include "check.h"

static char dir[512];

static void path_of(char *out, size_t len, const char *name)
{
	snprintf(out, len, "%s/%s", dir, name);
	unlink(out);
	{
		char x[600];

		snprintf(x, sizeof(x), "%s-wal", out);
		unlink(x);
		snprintf(x, sizeof(x), "%s-shm", out);
		unlink(x);
	}
}

static void hex_of(const unsigned char *md, char *hex)
{
	int i;

	for (i = 0; i < 32; i++)
		sprintf(hex + 2 * i, "%02x", md[i]);
}

static void test_sha256(void)
{
	static const struct {
		const char *in;
		const char *out;
	} v[] = {
		{"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
		{"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
		{"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
		 "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
	};
	struct sha256_ctx c;
	unsigned char md[32];
	char hex[65], path[600], fhex[65];
	size_t i;
	int64_t size;
	FILE *f;

	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		sha256_init(&c);
		sha256_update(&c, v[i].in, strlen(v[i].in));
		sha256_final(&c, md);
		hex_of(md, hex);
		CHECKF(!strcmp(hex, v[i].out), "sha256(%s) = %s", v[i].in, hex);
	}
	/* One million 'a', fed in odd-sized pieces, and through store_hash_file. */
	path_of(path, sizeof(path), "million-a");
	f = fopen(path, "w");
	sha256_init(&c);
	for (i = 0; i < 1000000;) {
		char buf[997];
		size_t n = 1000000 - i < sizeof(buf) ? 1000000 - i : sizeof(buf);

		memset(buf, 'a', n);
		sha256_update(&c, buf, n);
		fwrite(buf, 1, n, f);
		i += n;
	}
	fclose(f);
	sha256_final(&c, md);
	hex_of(md, hex);
	CHECKF(!strcmp(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"),
	       "sha256(1M a) = %s", hex);
	CHECKF(store_hash_file(path, fhex, &size, NULL, 0) == 0 && !strcmp(fhex, hex) &&
		   size == 1000000,
	       "store_hash_file: %s %lld", fhex, (long long)size);
	CHECKF(store_hash_file("/nonexistent/x", fhex, NULL, NULL, 0) == -ENOENT, "missing file");
}

static void test_hist(void)
{
	uint64_t s = 1, v;
	int i, prev = -1;

	for (v = 0; v < 5000; v++) {
		int b = store_hist_bin(v);

		CHECKF(b >= prev, "bins not monotonic at %llu", (unsigned long long)v);
		prev = b;
		if (v < 128)
			CHECKF(store_hist_value(b) == v, "exact bin %llu", (unsigned long long)v);
	}
	for (i = 0; i < 200000; i++) {
		double err;

		v = synth_rand(&s) >> (synth_rand(&s) % 64);
		if (!v)
			continue;
		err = fabs((double)store_hist_value(store_hist_bin(v)) - (double)v) / (double)v;
		CHECKF(err < 0.01, "bin error %.4f at %llu", err, (unsigned long long)v);
		if (err >= 0.01)
			break;
	}
	CHECKF(store_hist_bin(UINT64_MAX) > 0 && store_hist_value(store_hist_bin(UINT64_MAX)) > 0,
	       "top bin");
}

static struct store *open_rw(const char *path, const struct store_opts *o)
{
	struct store *s = NULL;
	char err[256];
	int r = store_open(path, o, &s, err, sizeof(err));

	CHECKF(r == 0, "store_open(%s): %d %s", path, r, err);
	return s;
}

/* Binds @v to parameter @i of @st, or NULL when @null. */
static void bind_or_null(sqlite3_stmt *st, int i, int64_t v, bool null)
{
	if (null)
		sqlite3_bind_null(st, i);
	else
		sqlite3_bind_int64(st, i, v);
}

/*
 * Every row of a packed table (SELECT fork_id, data: @select_sql) as the rows
 * the schemas before its migration stored, through @insert_sql, in one
 * transaction: @put turns one fork's blob into its rows and returns how many
 * it wrote, -1 on error. Returns the rows written, -1 on error.
 */
static int64_t blobs_to_rows(sqlite3 *db, const char *select_sql, const char *insert_sql,
			     int64_t (*put)(sqlite3_stmt *ins, int64_t fork_id, const void *blob,
					    size_t len))
{
	sqlite3_stmt *sel = NULL, *ins = NULL;
	int64_t n = 0, k;

	if (sqlite3_prepare_v2(db, select_sql, -1, &sel, NULL) ||
	    sqlite3_prepare_v2(db, insert_sql, -1, &ins, NULL))
		n = -1;
	sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
	while (n >= 0 && sqlite3_step(sel) == SQLITE_ROW) {
		k = put(ins, sqlite3_column_int64(sel, 0), sqlite3_column_blob(sel, 1),
			(size_t)sqlite3_column_bytes(sel, 1));
		n = k < 0 ? -1 : n + k;
	}
	sqlite3_exec(db, n >= 0 ? "COMMIT" : "ROLLBACK", NULL, NULL, NULL);
	sqlite3_finalize(sel);
	sqlite3_finalize(ins);
	return n;
}

/* One fork's packed passes (0007) as pte_pass rows (blobs_to_rows). */
static int64_t pass_rows(sqlite3_stmt *ins, int64_t fork_id, const void *blob, size_t len)
{
	struct pt_pte_pass *p;
	size_t k, i;

	if (store_passes_unpack(blob, len, &p, &k))
		return -1;
	for (i = 0; i < k; i++) {
		sqlite3_reset(ins);
		sqlite3_bind_int64(ins, 1, fork_id);
		sqlite3_bind_int64(ins, 2, (int64_t)i);
		sqlite3_bind_int(ins, 3, p[i].vma);
		bind_or_null(ins, 4, p[i].ptes, p[i].ptes < 0);
		bind_or_null(ins, 5, (int64_t)p[i].start_ns, p[i].start_ns == PT_NO_TIME);
		bind_or_null(ins, 6, (int64_t)p[i].hold_ns, p[i].hold_ns == PT_NO_TIME);
		sqlite3_bind_int(ins, 7, p[i].new_pmd);
		sqlite3_bind_int(ins, 8, p[i].resumed);
		if (sqlite3_step(ins) != SQLITE_DONE)
			break;
	}
	free(p);
	return i == k ? (int64_t)k : -1;
}

/* One fork's packed VMAs (0009) as vma_copy rows (blobs_to_rows). */
static int64_t vma_rows(sqlite3_stmt *ins, int64_t fork_id, const void *blob, size_t len)
{
	struct pt_vma_copy *v;
	size_t k, i;

	if (store_vmas_unpack(blob, len, &v, &k))
		return -1;
	for (i = 0; i < k; i++) {
		sqlite3_reset(ins);
		sqlite3_bind_int64(ins, 1, fork_id);
		sqlite3_bind_int64(ins, 2, (int64_t)i);
		bind_or_null(ins, 3, (int64_t)v[i].start_ns, v[i].start_ns == PT_NO_TIME);
		bind_or_null(ins, 4, (int64_t)v[i].dur_ns, v[i].dur_ns == PT_NO_TIME);
		sqlite3_bind_int(ins, 5, v[i].passes);
		bind_or_null(ins, 6, v[i].ptes, v[i].ptes < 0);
		sqlite3_bind_int(ins, 7, v[i].huge);
		if (sqlite3_step(ins) != SQLITE_DONE)
			break;
	}
	free(v);
	return i == k ? (int64_t)k : -1;
}

/* Every fork_pass row (0007's packed passes) as pte_pass rows, as schema 1
 * to 6 stored them. Returns the passes written, -1 on error. */
static int64_t unpack_passes_to_rows(sqlite3 *db)
{
	return blobs_to_rows(db, "SELECT fork_id, data FROM fork_pass",
			     "INSERT INTO pte_pass(fork_id, idx, vma, ptes, start_ns, hold_ns,"
			     " new_pmd, resumed) VALUES (?1,?2,?3,?4,?5,?6,?7,?8)",
			     pass_rows);
}

/* Every fork_vma row (0009's packed VMAs) as vma_copy rows, as schema 1 to
 * 8 stored them. Returns the VMAs written, -1 on error. */
static int64_t unpack_vmas_to_rows(sqlite3 *db)
{
	return blobs_to_rows(db, "SELECT fork_id, data FROM fork_vma",
			     "INSERT INTO vma_copy(fork_id, idx, start_ns, dur_ns, passes, ptes,"
			     " huge) VALUES (?1,?2,?3,?4,?5,?6,?7)",
			     vma_rows);
}

/* Rollup rows whose cost sums differ from their forks' (CHECK_COST_MISMATCH_SQL); -1: error. */
static int64_t cost_mismatch(const char *path)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int64_t n = -1;

	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
	    sqlite3_prepare_v2(db, CHECK_COST_MISMATCH_SQL, -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return n;
}


static int64_t begin_src(struct store *s, const char *hash, bool *done)
{
	struct store_source_info info = {.kind = STORE_SOURCE_REPLAY,
					 .host = "testhost",
					 .path = "/x/trace.dat",
					 .format = "dat",
					 .content_sha256 = hash,
					 .size_bytes = 123,
					 .clock_offset_ns = INT64_MIN};
	int64_t id = 0;
	char err[256];
	int r = store_source_begin(s, &info, &id, done, err, sizeof(err));

	CHECKF(r == 0, "source_begin: %s", err);
	return id;
}

static bool same_fork(const struct pt_fork *a, const struct pt_fork *b, bool detail)
{
	size_t i;

	if (a->parent_pid != b->parent_pid || strcmp(a->parent_comm, b->parent_comm) ||
	    a->child_pid != b->child_pid || strcmp(a->child_comm, b->child_comm) ||
	    a->ts_ns != b->ts_ns || a->kernel_clone_ns != b->kernel_clone_ns ||
	    a->copy_process_ns != b->copy_process_ns || a->dup_mmap_ns != b->dup_mmap_ns ||
	    a->copy_page_range_ns != b->copy_page_range_ns || a->vmas != b->vmas ||
	    a->pte_passes != b->pte_passes || a->lock_breaks != b->lock_breaks ||
	    a->ptes != b->ptes || a->max_lock_hold_ns != b->max_lock_hold_ns ||
	    a->complete != b->complete || a->flags != b->flags || a->mem.have != b->mem.have ||
	    a->kind != b->kind || a->has_clone_flags != b->has_clone_flags ||
	    (a->has_clone_flags && a->clone_flags != b->clone_flags) || strcmp(a->cgroup, b->cgroup))
		return false;
	for (i = 0; i < PT_MEM_COUNT; i++)
		if (pt_mem_has(&a->mem, i) && a->mem.v[i] != b->mem.v[i])
			return false;
	if (!detail)
		return true;
	if (a->nr_vma != b->nr_vma || a->nr_pass != b->nr_pass)
		return false;
	for (i = 0; i < a->nr_vma; i++)
		if (a->vma[i].start_ns != b->vma[i].start_ns ||
		    a->vma[i].dur_ns != b->vma[i].dur_ns || a->vma[i].passes != b->vma[i].passes ||
		    a->vma[i].ptes != b->vma[i].ptes || a->vma[i].huge != b->vma[i].huge)
			return false;
	for (i = 0; i < a->nr_pass; i++)
		if (a->pass[i].vma != b->pass[i].vma || a->pass[i].ptes != b->pass[i].ptes ||
		    a->pass[i].start_ns != b->pass[i].start_ns ||
		    a->pass[i].hold_ns != b->pass[i].hold_ns ||
		    a->pass[i].new_pmd != b->pass[i].new_pmd ||
		    a->pass[i].resumed != b->pass[i].resumed)
			return false;
	return true;
}

static const char HASH_A[] = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
static const char HASH_B[] = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

#define NR 3000

static void test_roundtrip_and_queries(void)
{
	struct store_opts o = {.batch_forks = 500};
	struct store *s, *rd;
	struct store_fork_row *rows = NULL, one;
	struct pt_input_stats st;
	struct pt_fork f[NR];
	char path[600], err[256];
	size_t nr, i, seen;
	int64_t src, ids[NR], cursor;
	bool done;
	int r;

	path_of(path, sizeof(path), "rt.db");
	s = open_rw(path, &o);
	if (!s)
		return;
	src = begin_src(s, HASH_A, &done);
	CHECKF(!done, "fresh source marked done");
	for (i = 0; i < NR; i++) {
		synth_fork(&f[i], 7, i, 40);
		r = store_insert_fork(s, src, &f[i], &ids[i], err, sizeof(err));
		CHECKF(r == 0, "insert %zu: %s", i, err);
	}
	pt_input_stats_init(&st);
	st.events = 12345;
	st.lost_events = 7;
	st.cpus = 2;
	st.first_ts_ns = 5;
	r = store_source_end(s, src, &st, err, sizeof(err));
	CHECKF(r == 0, "source_end: %s", err);

	/* A reader handle sees everything, in order, nulls intact. */
	o.read_only = true;
	rd = open_rw(path, &o);
	if (!rd)
		goto out;
	{
		struct store_fork_filter flt = {.pid = -1, .oldest_first = true};

		r = store_query_forks(rd, &flt, &rows, &nr, NULL, err, sizeof(err));
		CHECKF(r == 0 && nr == NR, "query all: %d %zu %s", r, nr, err);
		for (i = 0; i < nr && i < NR; i++) {
			CHECKF(rows[i].id == ids[i] && same_fork(&rows[i].fork, &f[i], false),
			       "fork %zu differs", i);
			if (rows[i].id != ids[i] || !same_fork(&rows[i].fork, &f[i], false))
				break;
		}
		store_fork_rows_free(rows, nr);
	}
	/* Detail of a few forks. */
	for (i = 0; i < NR; i += 499) {
		r = store_get_fork(rd, ids[i], &one, err, sizeof(err));
		CHECKF(r == 0 && same_fork(&one.fork, &f[i], true), "get_fork %zu: %s", i, err);
		free(one.fork.vma);
		free(one.fork.pass);
	}
	CHECKF(store_get_fork(rd, 999999, &one, err, sizeof(err)) == -ENOENT, "missing fork");

	/* Filters against a naive scan; paging newest first covers each once. */
	{
		struct store_fork_filter flt = {.comm = "redis-server", .pid = -1, .min_us = 200,
						.limit = 37};
		size_t want = 0;

		for (i = 0; i < NR; i++) {
			uint64_t d = f[i].kernel_clone_ns != PT_NO_TIME ? f[i].kernel_clone_ns
									: f[i].copy_process_ns;

			want += !strcmp(f[i].parent_comm, "redis-server") && d >= 200000;
		}
		seen = 0;
		cursor = 0;
		do {
			int64_t last = INT64_MAX;

			flt.cursor = cursor;
			r = store_query_forks(rd, &flt, &rows, &nr, &cursor, err, sizeof(err));
			CHECKF(r == 0 && nr <= 37, "page: %s", err);
			for (i = 0; i < nr; i++) {
				CHECKF(rows[i].id < last, "page order");
				last = rows[i].id;
				CHECKF(!strcmp(rows[i].fork.parent_comm, "redis-server"),
				       "comm filter");
			}
			seen += nr;
			store_fork_rows_free(rows, nr);
		} while (!r && cursor);
		CHECKF(seen == want && want > 0, "paged %zu, want %zu", seen, want);
	}
	{
		struct store_fork_filter flt = {.pid = 120, .since_ts_ns = f[100].ts_ns,
						.until_ts_ns = f[2000].ts_ns};
		size_t want = 0;

		for (i = 100; i < 2000; i++)
			want += f[i].parent_pid == 120;
		r = store_query_forks(rd, &flt, &rows, &nr, NULL, err, sizeof(err));
		CHECKF(r == 0 && nr == want && want > 0, "pid+ts filter: %zu want %zu", nr, want);
		store_fork_rows_free(rows, nr);
	}
	/* Sources list carries the reader statistics. */
	{
		struct store_source *src_v;
		size_t n;

		r = store_list_sources(rd, true, &src_v, &n, err, sizeof(err));
		CHECKF(r == 0 && n == 1 && src_v[0].stats.events == 12345 &&
			   src_v[0].stats.lost_events == 7 && src_v[0].forks == NR &&
			   src_v[0].stats.first_ts_ns == 5 &&
			   src_v[0].stats.last_ts_ns == PT_NO_TIME && src_v[0].kernel == NULL &&
			   !strcmp(src_v[0].content_sha256, HASH_A),
		       "sources: %d %zu", r, n);
		store_sources_free(src_v, n);
	}
	/* Writing through a reader handle is refused. */
	{
		bool d2;
		int64_t id2;
		struct store_source_info info = {.content_sha256 = HASH_B,
						 .clock_offset_ns = INT64_MIN};

		CHECKF(store_source_begin(rd, &info, &id2, &d2, err, sizeof(err)) == -EROFS,
		       "reader wrote");
	}

	/* Same hash again: nothing to do. */
	src = begin_src(s, HASH_A, &done);
	CHECKF(done, "second replay of the same content not skipped");

	/* Rollup statistics against sorting every value. */
	{
		struct store_stat stat[STORE_M_COUNT];
		struct store_range rg = {0};
		uint64_t *v = malloc(NR * sizeof(*v));
		size_t n = 0, k;
		double q[4] = {0.5, 0.9, 0.99, 0.999};

		r = store_stats(rd, &rg, stat, err, sizeof(err));
		CHECKF(r == 0, "stats: %s", err);
		for (i = 0; i < NR; i++)
			if (f[i].kernel_clone_ns != PT_NO_TIME && f[i].complete)
				v[n++] = f[i].kernel_clone_ns;
		for (i = 1; i < n; i++) /* insertion sort is fine for 3000 */
			for (k = i; k > 0 && v[k - 1] > v[k]; k--) {
				uint64_t t = v[k];

				v[k] = v[k - 1];
				v[k - 1] = t;
			}
		CHECKF(stat[STORE_M_KERNEL_CLONE].count == NR &&
			   stat[STORE_M_KERNEL_CLONE].nulls == NR - n,
		       "kernel_clone count %llu nulls %llu",
		       (unsigned long long)stat[STORE_M_KERNEL_CLONE].count,
		       (unsigned long long)stat[STORE_M_KERNEL_CLONE].nulls);
		for (k = 0; k < 4; k++) {
			uint64_t rank = (uint64_t)ceil(q[k] * (double)n), exact = v[rank - 1];
			uint64_t got = (&stat[STORE_M_KERNEL_CLONE].p50_ns)[k];

			CHECKF(fabs((double)got - (double)exact) <= 0.01 * (double)exact,
			       "p%g: rollup %llu exact %llu", q[k] * 100, (unsigned long long)got,
			       (unsigned long long)exact);
		}
		CHECKF(fabs((double)stat[STORE_M_KERNEL_CLONE].max_ns - (double)v[n - 1]) <=
			   0.01 * (double)v[n - 1],
		       "max");
		/* Per comm: the rollup (group) path and the exact path agree within 1%. */
		rg.comm = "postgres";
		{
			struct store_stat ex[STORE_M_COUNT];

			r = store_stats(rd, &rg, stat, err, sizeof(err));
			CHECKF(r == 0 && !stat[0].exact, "comm stats");
			/* Force the exact path: an unknown comm of equal content is not
			 * possible, so compare against a cap-0 style computation. */
			rd->opts.max_comm_groups = 1;
			memset(rd->comm, 0, sizeof(rd->comm));
			rg.comm = "nosuchcomm";
			r = store_stats(rd, &rg, ex, err, sizeof(err));
			CHECKF(r == 0 && ex[0].exact && ex[0].count == 0, "unknown comm");
		}
		free(v);
	}
	/* Top comms and a time series exist and add up. */
	{
		struct store_top_comm top[16];
		struct store_ts_point pts[64];
		struct store_range rg = {0};
		size_t n, k;
		uint64_t sum = 0;

		r = store_top_comms(rd, &rg, top, 16, &n, err, sizeof(err));
		CHECKF(r == 0 && n == 9, "top comms: %d %zu %s", r, n, err);
		for (k = 0; k < n; k++) {
			sum += top[k].forks;
			if (k)
				CHECKF(top[k].forks <= top[k - 1].forks, "top order");
		}
		CHECKF(sum == NR, "top comms sum %llu", (unsigned long long)sum);
		r = store_timeseries(rd, &rg, STORE_M_FORK, 60, pts, 64, &n, err, sizeof(err));
		for (k = 0, sum = 0; k < n; k++)
			sum += pts[k].count;
		CHECKF(r == 0 && n >= 1 && sum == NR, "timeseries: %zu points %llu", n,
		       (unsigned long long)sum);
	}
	store_close(rd);
out:
	for (i = 0; i < NR; i++)
		synth_release(&f[i]);
	store_close(s);
}

/* A source left incomplete is redone without duplicates, rollups included. */
static void test_incomplete_redo(void)
{
	struct store_opts o = {.batch_forks = 100};
	struct store *s;
	struct store_stat stat[STORE_M_COUNT];
	struct store_range rg = {0};
	struct store_fork_row *rows;
	struct pt_fork f;
	char path[600], err[256];
	int64_t src, src2;
	size_t nr, i;
	bool done;

	path_of(path, sizeof(path), "redo.db");
	s = open_rw(path, &o);
	if (!s)
		return;
	src = begin_src(s, HASH_B, &done);
	for (i = 0; i < 450; i++) {
		synth_fork(&f, 3, i, 20);
		store_insert_fork(s, src, &f, NULL, err, sizeof(err));
		synth_release(&f);
	}
	store_flush(s, err, sizeof(err));
	/* Simulate the writer dying: drop the handle without store_source_end. */
	store_close(s);

	s = open_rw(path, &o);
	if (!s)
		return;
	src2 = begin_src(s, HASH_B, &done);
	CHECKF(!done, "incomplete source not redone (%lld %lld)", (long long)src, (long long)src2);
	{
		struct store_fork_filter flt = {.pid = -1};

		store_query_forks(s, &flt, &rows, &nr, NULL, err, sizeof(err));
		CHECKF(nr == 0, "old forks left: %zu", nr);
		store_fork_rows_free(rows, nr);
		store_stats(s, &rg, stat, err, sizeof(err));
		CHECKF(stat[STORE_M_FORK].count == 0 && stat[STORE_M_PASS_HOLD].count == 0,
		       "rollups not subtracted: %llu", (unsigned long long)stat[0].count);
		CHECKF(cost_mismatch(path) == 0, "cost sums not subtracted by the purge");
	}
	for (i = 0; i < 450; i++) {
		synth_fork(&f, 3, i, 20);
		store_insert_fork(s, src2, &f, NULL, err, sizeof(err));
		synth_release(&f);
	}
	CHECKF(store_source_end(s, src2, NULL, err, sizeof(err)) == 0, "end: %s", err);
	store_stats(s, &rg, stat, err, sizeof(err));
	CHECKF(stat[STORE_M_FORK].count == 450, "after redo: %llu",
	       (unsigned long long)stat[STORE_M_FORK].count);
	store_close(s);
}

static unsigned store_yields;

static void count_yield(void)
{
	store_yields++;
}

/* The writer's yield point is called during its statements (SQLite's progress handler). */
static void test_store_yield(void)
{
	struct store_source_info live = {
	    .kind = STORE_SOURCE_LIVE, .format = "live", .size_bytes = -1, .clock_offset_ns = 0};
	struct store_opts o = {.yield = count_yield};
	char path[600], err[256];
	struct store *s;
	struct pt_fork f;
	int64_t src = 0;
	bool done;

	path_of(path, sizeof(path), "yield.db");
	CHECKF(store_open(path, &o, &s, err, sizeof(err)) == 0, "open: %s", err);
	CHECKF(store_source_begin(s, &live, &src, &done, err, sizeof(err)) == 0, "begin: %s", err);
	for (unsigned i = 0; i < 200; i++) {
		synth_fork(&f, 11, i, 16);
		CHECKF(store_insert_fork(s, src, &f, NULL, err, sizeof(err)) == 0, "insert: %s", err);
		synth_release(&f);
	}
	CHECKF(store_flush(s, err, sizeof(err)) == 0, "flush: %s", err);
	store_close(s);
	CHECKF(store_yields > 0, "the yield point was never called in 200 forks' statements");
}

/* The forks of @source_id in @path, counted by SQL (-1: error). */
static int64_t forks_of(const char *path, int64_t source_id)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int64_t n = -1;

	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
	    sqlite3_prepare_v2(db, "SELECT count(*) FROM fork WHERE source_id = ?1", -1, &st,
			       NULL) == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, source_id);
		if (sqlite3_step(st) == SQLITE_ROW)
			n = sqlite3_column_int64(st, 0);
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
	return n;
}

/* Whether source @id is marked complete (-1: no such source). */
static int source_complete(const char *path, int64_t id)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int r = -1;

	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
	    sqlite3_prepare_v2(db, "SELECT completed_wall_ns IS NOT NULL FROM source WHERE id = ?1",
			       -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, id);
		if (sqlite3_step(st) == SQLITE_ROW)
			r = sqlite3_column_int(st, 0);
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
	return r;
}

/* The first synthetic fork of @seed from @i on that has passes. */
static uint64_t with_passes(uint64_t seed, uint64_t i)
{
	for (;; i++) {
		struct pt_fork f;
		size_t n;

		synth_fork(&f, seed, i, 4);
		n = f.nr_pass;
		synth_release(&f);
		if (n)
			return i;
	}
}

/* Detail rows (VMAs, passes) whose fork row is gone. */
static int64_t orphan_rows(const char *path)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int64_t n = -1;

	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
	    sqlite3_prepare_v2(db,
			       "SELECT (SELECT count(*) FROM vma_copy WHERE fork_id NOT IN"
			       " (SELECT id FROM fork)) + (SELECT count(*) FROM fork_vma WHERE"
			       " fork_id NOT IN (SELECT id FROM fork)) + (SELECT count(*) FROM fork_pass WHERE"
			       " fork_id NOT IN (SELECT id FROM fork)) + (SELECT count(*) FROM"
			       " pte_pass WHERE fork_id NOT IN (SELECT id FROM fork))",
			       -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return n;
}

static const char HASH_C[] = "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc";
static const char HASH_D[] = "dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd";
static const char HASH_E[] = "eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee";

/* Inserts synthetic fork @i of @seed into @src, with @parent_pid when >= 0. */
static int insert_one(struct store *s, int64_t src, uint64_t seed, uint64_t i, int parent_pid,
		      char *err, size_t errlen)
{
	struct pt_fork f;
	int r;

	synth_fork(&f, seed, i, 4);
	if (parent_pid >= 0)
		f.parent_pid = parent_pid;
	r = store_insert_fork(s, src, &f, NULL, err, errlen);
	synth_release(&f);
	return r;
}

/*
 * Two sources written through one handle at once (the daemon: live capture
 * and a replay): an aborted replay takes only its own forks with it, a failed
 * insert of one source drops no fork of the other, and a replay whose forks
 * were rolled back by someone else's failure is not marked complete.
 * Failures are injected with triggers: RAISE(ABORT) fails one statement,
 * RAISE(ROLLBACK) rolls the whole transaction back (as SQLITE_FULL can).
 */
static void test_sources_isolated(void)
{
	struct store_source_info live = {
	    .kind = STORE_SOURCE_LIVE, .format = "live", .size_bytes = -1, .clock_offset_ns = 0};
	struct store_opts o = {.batch_forks = 1000};
	char path[600], err[256];
	int64_t lsrc = 0, r1, r2, r3;
	sqlite3 *db = NULL;
	struct store *s;
	bool done;
	int r;

	path_of(path, sizeof(path), "isolated.db");
	s = open_rw(path, &o);
	if (!s)
		return;
	store_close(s);
	/* parent pid 4242 fails its insert; 4343 rolls the transaction back */
	CHECKF(
	    sqlite3_open(path, &db) == SQLITE_OK &&
		sqlite3_exec(db,
			     "CREATE TRIGGER fail_one BEFORE INSERT ON fork WHEN"
			     " NEW.parent_pid = 4242 BEGIN SELECT RAISE(ABORT, 'injected'); END;"
			     "CREATE TRIGGER fail_txn BEFORE INSERT ON fork WHEN"
			     " NEW.parent_pid = 4343 BEGIN SELECT RAISE(ROLLBACK, 'injected'); END;"
			     "CREATE TRIGGER fail_pass BEFORE INSERT ON fork_pass WHEN"
			     " (SELECT parent_pid FROM fork WHERE id = NEW.fork_id) = 4444"
			     " BEGIN SELECT RAISE(ABORT, 'injected'); END;",
			     NULL, NULL, NULL) == SQLITE_OK,
	    "triggers: %s", sqlite3_errmsg(db));
	sqlite3_close(db);
	s = open_rw(path, &o);
	if (!s)
		return;
	CHECKF(store_source_begin(s, &live, &lsrc, &done, err, sizeof(err)) == 0, "live: %s", err);

	/* 1. live forks around an aborted replay: all kept */
	r1 = begin_src(s, HASH_C, &done);
	CHECKF(insert_one(s, lsrc, 5, 0, -1, err, sizeof(err)) == 0, "live 0: %s", err);
	CHECKF(insert_one(s, r1, 6, 0, -1, err, sizeof(err)) == 0, "replay 0: %s", err);
	CHECKF(insert_one(s, lsrc, 5, 1, -1, err, sizeof(err)) == 0, "live 1: %s", err);
	CHECKF(insert_one(s, r1, 6, 1, -1, err, sizeof(err)) == 0, "replay 1: %s", err);
	CHECKF(store_source_abort(s, r1, err, sizeof(err)) == 0, "abort: %s", err);
	CHECKF(store_flush(s, err, sizeof(err)) == 0, "flush: %s", err);
	CHECKF(forks_of(path, lsrc) == 2, "live forks beside an aborted replay: %lld of 2",
	       (long long)forks_of(path, lsrc));
	CHECKF(forks_of(path, r1) == 0 && source_complete(path, r1) == -1,
	       "aborted replay left %lld forks", (long long)forks_of(path, r1));

	/* 2. a live insert fails: the replay's uncommitted forks stay */
	r2 = begin_src(s, HASH_D, &done);
	for (int i = 0; i < 3; i++)
		CHECKF(insert_one(s, r2, 7, (uint64_t)i, -1, err, sizeof(err)) == 0, "r2: %s", err);
	r = insert_one(s, lsrc, 5, 2, 4242, err, sizeof(err));
	CHECKF(r < 0, "the injected failure did not fail the insert");
	CHECKF(insert_one(s, lsrc, 5, 3, -1, err, sizeof(err)) == 0, "live after: %s", err);
	/* its passes fail after its row and VMAs went in: those are taken back */
	r = insert_one(s, lsrc, 5, with_passes(5, 5), 4444, err, sizeof(err));
	CHECKF(r < 0, "the injected failure did not fail the passes' insert");
	CHECKF(store_source_end(s, r2, NULL, err, sizeof(err)) == 0, "end r2: %s", err);
	CHECKF(forks_of(path, r2) == 3 && source_complete(path, r2) == 1,
	       "replay beside a failed live insert: %lld of 3 forks, complete %d",
	       (long long)forks_of(path, r2), source_complete(path, r2));
	CHECKF(forks_of(path, lsrc) == 3, "live forks: %lld of 3", (long long)forks_of(path, lsrc));

	/* 3. a failure rolls the whole transaction back: the replay is not complete */
	r3 = begin_src(s, HASH_E, &done);
	for (int i = 0; i < 3; i++)
		CHECKF(insert_one(s, r3, 8, (uint64_t)i, -1, err, sizeof(err)) == 0, "r3: %s", err);
	r = insert_one(s, lsrc, 5, 4, 4343, err, sizeof(err));
	CHECKF(r < 0, "the injected rollback did not fail the insert");
	r = store_source_end(s, r3, NULL, err, sizeof(err));
	CHECKF(r < 0 && source_complete(path, r3) != 1,
	       "a replay whose forks were rolled back was marked complete (%d, %lld forks)", r,
	       (long long)forks_of(path, r3));
	if (r < 0)
		printf("  refused to complete: %s\n", err);
	store_source_abort(s, r3, err, sizeof(err));
	/* the same file again is redone whole */
	r3 = begin_src(s, HASH_E, &done);
	CHECKF(!done, "a source never completed counted as stored");
	for (int i = 0; i < 3; i++)
		insert_one(s, r3, 8, (uint64_t)i, -1, err, sizeof(err));
	CHECKF(store_source_end(s, r3, NULL, err, sizeof(err)) == 0, "end r3: %s", err);
	CHECKF(forks_of(path, r3) == 3, "redone: %lld of 3", (long long)forks_of(path, r3));
	CHECKF(store_flush(s, err, sizeof(err)) == 0, "flush: %s", err);
	CHECKF(cost_mismatch(path) == 0, "rollups out of step with the forks");
	CHECKF(orphan_rows(path) == 0, "%lld detail rows of forks taken back",
	       (long long)orphan_rows(path));
	store_close(s);
}

static void file_bytes(const char *path, char **buf, size_t *len)
{
	FILE *f = fopen(path, "rb");

	*buf = NULL;
	*len = 0;
	if (!f)
		return;
	fseek(f, 0, SEEK_END);
	*len = (size_t)ftell(f);
	fseek(f, 0, SEEK_SET);
	*buf = malloc(*len + 1);
	if (fread(*buf, 1, *len, f) != *len)
		*len = 0;
	fclose(f);
}

/* Opening @path fails with @want and leaves the file byte-for-byte as it was. */
static void refused(const char *path, int want, const char *what)
{
	struct store *s = NULL;
	char *before, *after, err[256] = "", side[600];
	size_t lb, la;
	int r;

	file_bytes(path, &before, &lb);
	r = store_open(path, NULL, &s, err, sizeof(err));
	if (r == 0) {
		/* Header fine, damage deeper: the first query must fail cleanly. */
		struct store_fork_row *rows;
		struct store_fork_filter flt = {.pid = -1};
		size_t nr;

		r = store_query_forks(s, &flt, &rows, &nr, NULL, err, sizeof(err));
		if (!r)
			store_fork_rows_free(rows, nr);
		store_close(s);
	}
	file_bytes(path, &after, &la);
	CHECKF(r == want, "%s: got %d want %d (%s)", what, r, want, err);
	CHECKF(strlen(err) > 10 && strstr(err, path), "%s: message names the file: %s", what, err);
	CHECKF(lb == la && !memcmp(before, after, lb), "%s: file was modified", what);
	snprintf(side, sizeof(side), "%s-wal", path);
	if (want != -EUCLEAN)
		CHECKF(access(side, F_OK) != 0, "%s: a WAL was created", what);
	printf("  %s refused: %s\n", what, err);
	free(before);
	free(after);
}

static void test_refusals(void)
{
	char path[600], err[256];
	struct store *s;
	sqlite3 *db;
	FILE *f;

	/* Not SQLite. */
	path_of(path, sizeof(path), "notes.txt");
	f = fopen(path, "w");
	for (int i = 0; i < 300; i++)
		fprintf(f, "precious notes line %d\n", i);
	fclose(f);
	refused(path, -EINVAL, "text file");

	/* SQLite but someone else's. */
	path_of(path, sizeof(path), "other.db");
	sqlite3_open(path, &db);
	sqlite3_exec(db, "CREATE TABLE t(x); INSERT INTO t VALUES (1)", NULL, NULL, NULL);
	sqlite3_close(db);
	refused(path, -EINVAL, "foreign SQLite");

	/* Ours, but newer. */
	path_of(path, sizeof(path), "newer.db");
	s = open_rw(path, NULL);
	store_close(s);
	sqlite3_open(path, &db);
	sqlite3_exec(db, "PRAGMA user_version = 99; PRAGMA wal_checkpoint(TRUNCATE);"
			 " PRAGMA journal_mode = DELETE",
		     NULL, NULL, NULL);
	sqlite3_close(db);
	refused(path, -EPROTO, "newer schema");

	/* Ours, corrupt in the middle (header intact). */
	path_of(path, sizeof(path), "corrupt.db");
	s = open_rw(path, NULL);
	if (s) {
		bool done;
		int64_t src = begin_src(s, HASH_A, &done);
		struct pt_fork fk;

		for (int i = 0; i < 3000; i++) {
			synth_fork(&fk, 1, (uint64_t)i, 0);
			store_insert_fork(s, src, &fk, NULL, err, sizeof(err));
			synth_release(&fk);
		}
		store_source_end(s, src, NULL, err, sizeof(err));
		store_close(s);
	}
	sqlite3_open(path, &db);
	sqlite3_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL);
	sqlite3_close(db);
	{
		int fd = open(path, O_WRONLY);
		char junk[4096];
		struct stat sb;

		fstat(fd, &sb);
		memset(junk, 0xa5, sizeof(junk));
		for (off_t off = 4096 * 3; off < sb.st_size - 4096; off += 4096 * 2)
			pwrite(fd, junk, sizeof(junk), off);
		close(fd);
	}
	refused(path, -EUCLEAN, "corrupt database");

	/* An empty file is fine to initialise: nobody's data is in it. */
	path_of(path, sizeof(path), "empty.db");
	close(open(path, O_CREAT | O_WRONLY, 0644));
	s = open_rw(path, NULL);
	store_close(s);
}

/*
 * A database the OS only lets us read (0444, not root): refused as a writer
 * with -EROFS, not opened read-only to fail at every write. As root (whom
 * 0444 does not stop) the check runs in a child that became nobody.
 */
static void test_read_only_file(void)
{
	char path[600], err[256] = "";
	struct store *s;
	pid_t pid;
	int status = 0;

	path_of(path, sizeof(path), "readonly.db");
	s = open_rw(path, NULL);
	store_close(s);
	chmod(dir, 0777);
	chmod(path, 0444);
	bool as_root = geteuid() == 0;

	pid = as_root ? fork() : 0;
	if (pid == 0) {
		int r = -1;

		if (!as_root || (!setgid(65534) && !setuid(65534)))
			r = store_open(path, NULL, &s, err, sizeof(err));
		if (!r)
			store_close(s);
		if (as_root)
			_exit(r == -EROFS && strstr(err, "cannot be written") ? 0 : 1);
		CHECKF(r == -EROFS && strstr(err, "cannot be written"), "read-only file: %d %s", r,
		       err);
	} else {
		waitpid(pid, &status, 0);
		CHECKF(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		       "read-only file opened for writing as nobody (status %d)", status);
	}
	chmod(path, 0644);
	chmod(dir, 0755);
}

/* A file at schema 0 with our application_id (what a build before 0001 would leave). */
static void test_migrate_older(void)
{
	char path[600], err[256];
	struct store *s = NULL;
	sqlite3 *db;
	sqlite3_stmt *st;
	int v = -1;

	path_of(path, sizeof(path), "older.db");
	sqlite3_open(path, &db);
	{
		char sql[128];

		snprintf(sql, sizeof(sql), "PRAGMA application_id = %d; PRAGMA user_version = 0",
			 STORE_APPLICATION_ID);
		sqlite3_exec(db, sql, NULL, NULL, NULL);
	}
	sqlite3_close(db);
	/* Readers do not migrate. */
	{
		struct store_opts o = {.read_only = true};

		CHECKF(store_open(path, &o, &s, err, sizeof(err)) == -EPROTO, "reader migrated");
	}
	s = open_rw(path, NULL);
	store_close(s);
	sqlite3_open(path, &db);
	sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL);
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	CHECKF(v == store_schema_version(), "migrated to %d", v);
}

static void test_retention(void)
{
	struct store_opts o = {0};
	struct store_retention_result res;
	struct store_stat stat[STORE_M_COUNT];
	struct store_range rg = {0};
	struct store_source_info info = {.kind = STORE_SOURCE_LIVE, .format = "live"};
	struct store *s;
	struct pt_fork f;
	char path[600], err[256];
	int64_t src, now = store_now_ns();
	bool done;
	int i, r;

	path_of(path, sizeof(path), "ret.db");
	s = open_rw(path, &o);
	if (!s)
		return;
	/* 2000 forks 40 days old, 2000 from now. */
	info.clock_offset_ns = now - 40ll * 86400 * 1000000000 - 1000000000;
	store_source_begin(s, &info, &src, &done, err, sizeof(err));
	for (i = 0; i < 2000; i++) {
		synth_fork(&f, 5, (uint64_t)i, 30);
		store_insert_fork(s, src, &f, NULL, err, sizeof(err));
		synth_release(&f);
	}
	store_source_end(s, src, NULL, err, sizeof(err));
	info.clock_offset_ns = INT64_MIN;
	store_source_begin(s, &info, &src, &done, err, sizeof(err));
	for (i = 0; i < 2000; i++) {
		synth_fork(&f, 6, (uint64_t)i, 30);
		store_insert_fork(s, src, &f, NULL, err, sizeof(err));
		synth_release(&f);
	}
	store_source_end(s, src, NULL, err, sizeof(err));

	r = store_enforce_retention(s, 30, 0, &res, err, sizeof(err));
	CHECKF(r == 0 && res.forks_deleted == 2000 && res.sources_deleted == 1,
	       "age retention: %d deleted %llu sources %llu %s", r,
	       (unsigned long long)res.forks_deleted, (unsigned long long)res.sources_deleted, err);
	store_stats(s, &rg, stat, err, sizeof(err));
	CHECKF(stat[STORE_M_FORK].count == 2000, "rollups after age retention: %llu",
	       (unsigned long long)stat[STORE_M_FORK].count);
	CHECKF(cost_mismatch(path) == 0, "cost sums out of step after age retention");

	{
		int64_t before = res.file_bytes;

		printf("  before size retention: used %lld bytes\n", (long long)res.used_bytes);
		r = store_enforce_retention(s, 0, 1024 * 1024, &res, err, sizeof(err));
		CHECKF(r == 0 && res.used_bytes <= 1024 * 1024 && res.forks_deleted > 0 &&
			   res.forks_deleted < 2000,
		       "size retention: %d used %lld deleted %llu", r, (long long)res.used_bytes,
		       (unsigned long long)res.forks_deleted);
		CHECKF(res.file_bytes < before, "file did not shrink: %lld -> %lld",
		       (long long)before, (long long)res.file_bytes);
		store_stats(s, &rg, stat, err, sizeof(err));
		CHECKF(stat[STORE_M_FORK].count == 2000 - res.forks_deleted,
		       "rollups after size retention");
		CHECKF(cost_mismatch(path) == 0, "cost sums out of step after size retention");
	}
	/* integrity */
	{
		sqlite3 *db;
		sqlite3_stmt *st;

		store_close(s);
		sqlite3_open(path, &db);
		sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL);
		CHECKF(sqlite3_step(st) == SQLITE_ROW &&
			   !strcmp((const char *)sqlite3_column_text(st, 0), "ok"),
		       "integrity after retention");
		sqlite3_finalize(st);
		sqlite3_close(db);
	}
}

/* What the tests keep of each fork they store, to recompute from. */
struct plain_fork {
	int64_t wall;
	char comm[32];
	int64_t v[STORE_M_PASS_HOLD]; /* per-fork metrics, -1: null */
	int64_t ptes;
	bool complete;
};

static void plain_of(const struct pt_fork *f, int64_t wall, struct plain_fork *p)
{
	const uint64_t ph[4] = {f->kernel_clone_ns, f->copy_process_ns, f->dup_mmap_ns,
				f->copy_page_range_ns};
	int k;

	p->wall = wall;
	snprintf(p->comm, sizeof(p->comm), "%s", f->parent_comm);
	p->v[STORE_M_FORK] = -1;
	for (k = 0; k < 4; k++) {
		p->v[STORE_M_KERNEL_CLONE + k] = ph[k] == PT_NO_TIME ? -1 : (int64_t)ph[k];
		if (p->v[STORE_M_FORK] < 0)
			p->v[STORE_M_FORK] = p->v[STORE_M_KERNEL_CLONE + k];
	}
	p->v[STORE_M_MAX_LOCK_HOLD] =
	    f->max_lock_hold_ns == PT_NO_TIME ? -1 : (int64_t)f->max_lock_hold_ns;
	p->ptes = f->ptes;
	p->complete = f->complete;
	/* statistics are over complete forks: an incomplete one counts as a null */
	if (!f->complete)
		for (k = 0; k < STORE_M_PASS_HOLD; k++)
			p->v[k] = -1;
}

static bool plain_in(const struct plain_fork *p, const struct store_range *rg)
{
	return (!rg->since_wall_ns || p->wall >= rg->since_wall_ns) &&
	       (!rg->until_wall_ns || p->wall < rg->until_wall_ns) &&
	       (!rg->comm || !strcmp(rg->comm, p->comm));
}

/*
 * store_cost and store_histogram over @rg against a plain computation over
 * @pf (ranges minute-aligned: the rollups widen to whole minutes). Returns
 * whether the figures came from the forks (exact path).
 */
static bool check_range(struct store *s, const struct plain_fork *pf, size_t nr,
			const struct store_range *rg, const char *what)
{
	static const enum store_metric ms[] = {STORE_M_FORK, STORE_M_COPY_PAGE_RANGE,
					       STORE_M_MAX_LOCK_HOLD, STORE_M_KERNEL_CLONE};
	struct store_cost c, want = {0};
	char err[256];
	size_t i, k, m;
	int r;

	for (i = 0; i < nr; i++) {
		const struct plain_fork *p = &pf[i];

		if (plain_in(p, rg) && p->complete && p->v[STORE_M_COPY_PAGE_RANGE] >= 0 &&
		    p->ptes > 0) {
			want.forks++;
			want.ns += (uint64_t)p->v[STORE_M_COPY_PAGE_RANGE];
			want.ptes += (uint64_t)p->ptes;
		}
	}
	r = store_cost(s, rg, &c, err, sizeof(err));
	CHECKF(r == 0 && c.forks == want.forks && c.ns == want.ns && c.ptes == want.ptes,
	       "%s: cost %d %s: forks %llu/%llu ns %llu/%llu ptes %llu/%llu", what, r, err,
	       (unsigned long long)c.forks, (unsigned long long)want.forks,
	       (unsigned long long)c.ns, (unsigned long long)want.ns, (unsigned long long)c.ptes,
	       (unsigned long long)want.ptes);
	for (m = 0; m < sizeof(ms) / sizeof(ms[0]); m++) {
		struct store_histogram h;
		uint64_t count = 0, nulls = 0, cum = 0, total = 0;
		bool ok = true;

		r = store_histogram(s, rg, ms[m], &h, err, sizeof(err));
		CHECKF(r == 0 && h.exact == c.exact, "%s: histogram %d %s", what, r, err);
		if (r)
			continue;
		for (i = 0; i < nr; i++) {
			if (!plain_in(&pf[i], rg))
				continue;
			count++;
			nulls += pf[i].v[ms[m]] < 0;
		}
		CHECKF(h.count == count && h.nulls == nulls,
		       "%s %s: count %llu/%llu nulls %llu/%llu", what, store_metric_name(ms[m]),
		       (unsigned long long)h.count, (unsigned long long)count,
		       (unsigned long long)h.nulls, (unsigned long long)nulls);
		/* At every bin's upper bound, as many values at or below it as the bins say. */
		for (k = 0; ok && k < h.nr_bins; k++) {
			uint64_t below = 0;

			cum += h.bins[k].count;
			ok = !k || h.bins[k].le_ns > h.bins[k - 1].le_ns;
			for (i = 0; i < nr; i++)
				below += plain_in(&pf[i], rg) && pf[i].v[ms[m]] >= 0 &&
					 (uint64_t)pf[i].v[ms[m]] <= h.bins[k].le_ns;
			ok = ok && below == cum;
		}
		/* Every value's bin is at most 1/64 wider than the value. */
		for (i = 0; ok && i < nr; i++) {
			uint64_t v;

			if (!plain_in(&pf[i], rg) || pf[i].v[ms[m]] < 0)
				continue;
			v = (uint64_t)pf[i].v[ms[m]];
			total++;
			for (k = 0; k < h.nr_bins && h.bins[k].le_ns < v; k++)
				;
			ok = k < h.nr_bins && h.bins[k].le_ns - v <= v / 64;
		}
		CHECKF(ok && cum == total && total == count - nulls,
		       "%s %s: bins do not match the values (%zu bins, %llu/%llu)", what,
		       store_metric_name(ms[m]), h.nr_bins, (unsigned long long)cum,
		       (unsigned long long)total);
		store_histogram_free(&h);
	}
	return c.exact;
}

#define DAY_NS (86400ll * 1000000000)
#define MIN_NS (60ll * 1000000000)

/*
 * Forks over three days, a group cap of 4 (so some comms have no group and
 * are computed from the forks); fills @pf and returns the count. Walls start
 * at *@base (day-aligned, ten days ago).
 */
static size_t fill_spread(struct store *s, struct plain_fork *pf, size_t nr, int64_t *base)
{
	struct store_source_info info = {.kind = STORE_SOURCE_LIVE, .format = "live"};
	struct pt_fork f;
	char err[256];
	int64_t src;
	bool done;
	size_t i;

	*base = (store_now_ns() / DAY_NS - 10) * DAY_NS;
	info.clock_offset_ns = *base;
	CHECKF(store_source_begin(s, &info, &src, &done, err, sizeof(err)) == 0, "begin: %s", err);
	for (i = 0; i < nr; i++) {
		synth_fork(&f, 11, i, 3);
		f.ts_ns = i * 87000000000ull + i % 1000;
		if (i % 29 == 0)
			f.ptes = PT_NULL;
		if (i % 31 == 0)
			f.ptes = 0;
		if (i % 37 == 0)
			f.copy_page_range_ns = PT_NO_TIME;
		plain_of(&f, *base + (int64_t)f.ts_ns, &pf[i]);
		CHECKF(store_insert_fork(s, src, &f, NULL, err, sizeof(err)) == 0, "insert: %s",
		       err);
		synth_release(&f);
	}
	CHECKF(store_source_end(s, src, NULL, err, sizeof(err)) == 0, "end: %s", err);
	return nr;
}

static void check_ranges(struct store *s, const struct plain_fork *pf, size_t nr, int64_t base,
			 const char *when)
{
	const int64_t rs[][2] = {
	    {0, 0},
	    {base + DAY_NS, base + 2 * DAY_NS},			   /* one whole day */
	    {base + 37 * MIN_NS, base + 2 * DAY_NS + 311 * MIN_NS}, /* minutes, hours, days */
	    {base + DAY_NS + 5 * MIN_NS, base + DAY_NS + 200 * MIN_NS}, /* within a day */
	    {base + 59 * MIN_NS, base + 61 * MIN_NS},		   /* minutes only */
	    {base + 3 * DAY_NS - 7 * MIN_NS, 0},			   /* open end */
	};
	size_t i, k;
	int exact = 0, rolled = 0;
	char what[128];

	for (i = 0; i < sizeof(rs) / sizeof(rs[0]); i++) {
		for (k = 0; k <= sizeof(synth_comms) / sizeof(synth_comms[0]); k++) {
			struct store_range rg = {.since_wall_ns = rs[i][0],
						 .until_wall_ns = rs[i][1],
						 .comm = k ? synth_comms[k - 1] : NULL};

			snprintf(what, sizeof(what), "%s range %zu comm %s", when, i,
				 rg.comm ? rg.comm : "(all)");
			if (check_range(s, pf, nr, &rg, what))
				exact++;
			else
				rolled++;
		}
	}
	CHECKF(exact > 0 && rolled > 0, "%s: both paths taken (%d exact, %d rollups)", when, exact,
	       rolled);
}

/* Histogram and cost per range against the forks; after retention too. */
static void test_cost_histogram(void)
{
	struct store_opts o = {.max_comm_groups = 4};
	struct store_retention_result res;
	struct plain_fork *pf;
	struct store *s;
	char path[600], err[256];
	int64_t base, oldest = INT64_MAX;
	size_t nr, i, keep = 0;
	sqlite3 *db;
	sqlite3_stmt *st;

	path_of(path, sizeof(path), "cost.db");
	s = open_rw(path, &o);
	pf = calloc(3000, sizeof(*pf));
	if (!s || !pf)
		return;
	nr = fill_spread(s, pf, 3000, &base);
	check_ranges(s, pf, nr, base, "stored");
	CHECKF(cost_mismatch(path) == 0, "cost sums out of step after inserts");

	/* Age retention: the oldest forks go; the sums follow. */
	CHECKF(store_enforce_retention(s, 8, 0, &res, err, sizeof(err)) == 0 &&
		   res.forks_deleted > 0 && res.forks_deleted < nr,
	       "retention: %s %llu", err, (unsigned long long)res.forks_deleted);
	sqlite3_open(path, &db);
	sqlite3_prepare_v2(db, "SELECT min(wall_ns) FROM fork", -1, &st, NULL);
	if (sqlite3_step(st) == SQLITE_ROW)
		oldest = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	for (i = 0; i < nr; i++)
		if (pf[i].wall >= oldest)
			pf[keep++] = pf[i];
	CHECKF(keep == nr - res.forks_deleted, "kept %zu", keep);
	check_ranges(s, pf, keep, base, "after retention");
	CHECKF(cost_mismatch(path) == 0, "cost sums out of step after retention");
	store_close(s);
	free(pf);
}

static void copy_file(const char *from, const char *to)
{
	char buf[65536];
	FILE *a = fopen(from, "rb"), *b = fopen(to, "wb");
	size_t n;

	CHECKF(a && b, "copy %s", from);
	while (a && b && (n = fread(buf, 1, sizeof(buf), a)) > 0)
		fwrite(buf, 1, n, b);
	if (a)
		fclose(a);
	if (b)
		fclose(b);
}

static int64_t db_int(const char *path, const char *sql)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int64_t v = -1;

	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
	    sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return v;
}

/* Runs @sql on the file at @path; 0, or the SQLite error code. */
static int db_exec(const char *path, const char *sql)
{
	sqlite3 *db = NULL;
	int rc = sqlite3_open(path, &db);

	if (rc == SQLITE_OK)
		rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
	sqlite3_close(db);
	return rc;
}

/*
 * Schema 1 -> 2: the cost sums are backfilled from the forks, nothing else
 * changes. Once on a file written by the schema-1 build (fixtures/), once on
 * a file of this build taken back to schema 1 (spread over days, groups past
 * the cap, forks without ptes or copy time).
 */
static void test_migrate_cost(void)
{
	static const char *const plain_sql[] = {
	    "SELECT count(*) FROM fork WHERE complete AND copy_page_range_ns IS NOT NULL AND"
	    " ptes > 0",
	    "SELECT sum(copy_page_range_ns) FROM fork WHERE complete AND copy_page_range_ns IS"
	    " NOT NULL AND ptes > 0",
	    "SELECT sum(ptes) FROM fork WHERE complete AND copy_page_range_ns IS NOT NULL AND"
	    " ptes > 0",
	};
	struct store_opts o = {.max_comm_groups = 4};
	struct store_stat after[STORE_M_COUNT];
	struct store_range all = {0};
	struct store_cost c;
	struct plain_fork *pf;
	struct store *s;
	char path[600], err[256];
	int64_t base = 0, forks, want[3];
	size_t nr = 0, i;
	sqlite3 *db;
	int pass;

	for (pass = 0; pass < 2; pass++) {
		path_of(path, sizeof(path), pass ? "mig-down.db" : "mig-fixture.db");
		pf = NULL;
		if (!pass) {
			copy_file(STORE_FIXTURES "/schema1.db", path);
		} else {
			s = open_rw(path, &o);
			pf = calloc(3000, sizeof(*pf));
			if (!s || !pf)
				return;
			nr = fill_spread(s, pf, 3000, &base);
			store_close(s);
			sqlite3_open(path, &db);
			/* schema 1 kept a row per pass and per VMA: the packed ones back into rows */
			CHECKF(unpack_passes_to_rows(db) > 0, "no packed passes to turn into rows");
			CHECKF(unpack_vmas_to_rows(db) > 0, "no packed VMAs to turn into rows");
			CHECKF(sqlite3_exec(db,
					    "ALTER TABLE rollup DROP COLUMN cost_forks;"
					    " ALTER TABLE rollup DROP COLUMN cost_ns;"
					    " ALTER TABLE rollup DROP COLUMN cost_ptes;"
					    " ALTER TABLE fork DROP COLUMN copy_resched;"
					    " ALTER TABLE fork DROP COLUMN copy_offcpu_ns;"
					    " ALTER TABLE fork DROP COLUMN total_ns;"
					    " ALTER TABLE fork DROP COLUMN mem_rss_anon_bytes;"
					    " ALTER TABLE fork DROP COLUMN mem_rss_file_bytes;"
					    " ALTER TABLE fork DROP COLUMN mem_rss_shmem_bytes;"
					    " ALTER TABLE fork DROP COLUMN mem_pte_bytes;"
					    " ALTER TABLE fork DROP COLUMN mem_map_count;"
					    " ALTER TABLE fork DROP COLUMN mem_anon_huge_bytes;"
					    " ALTER TABLE fork DROP COLUMN mem_child_exec;"
					    " ALTER TABLE fork DROP COLUMN kind;"
					    " ALTER TABLE fork DROP COLUMN clone_flags;"
					    " ALTER TABLE fork DROP COLUMN cgroup;"
					    " DROP TABLE fork_pass;"
					    " DROP TABLE fork_vma;"
					    " PRAGMA user_version = 1",
					    NULL, NULL, NULL) == SQLITE_OK,
			       "back to schema 1: %s", sqlite3_errmsg(db));
			sqlite3_close(db);
		}
		CHECKF(db_int(path, "PRAGMA user_version") == 1, "pass %d: not schema 1", pass);
		forks = db_int(path, "SELECT count(*) FROM fork");
		for (i = 0; i < 3; i++)
			want[i] = db_int(path, plain_sql[i]);
		CHECKF(forks > 0 && want[0] > 0, "pass %d: %lld forks", pass, (long long)forks);
		/* A reader does not migrate; its statistics before, from the 0001 rows. */
		{
			struct store_opts ro = {.read_only = true};

			CHECKF(store_open(path, &ro, &s, err, sizeof(err)) == -EPROTO,
			       "reader opened schema 1");
		}
		s = open_rw(path, &o);
		if (!s)
			return;
		CHECKF(db_int(path, "PRAGMA user_version") == store_schema_version(),
		       "pass %d: not migrated", pass);
		CHECKF(db_int(path, "SELECT count(*) FROM fork") == forks, "pass %d: forks lost",
		       pass);
		CHECKF(db_int(path, "SELECT count(*) FROM pending_task") == 0,
		       "pass %d: the rollup rebuild is still pending", pass);
		CHECKF(cost_mismatch(path) == 0, "pass %d: backfilled sums differ from the forks'",
		       pass);
		CHECKF(store_cost(s, &all, &c, err, sizeof(err)) == 0 &&
			   (int64_t)c.forks == want[0] && (int64_t)c.ns == want[1] &&
			   (int64_t)c.ptes == want[2],
		       "pass %d: cost after migration %llu %llu %llu", pass,
		       (unsigned long long)c.forks, (unsigned long long)c.ns,
		       (unsigned long long)c.ptes);
		CHECKF(store_stats(s, &all, after, err, sizeof(err)) == 0 &&
			   after[STORE_M_FORK].count == (uint64_t)forks,
		       "pass %d: stats after migration", pass);
		/* the VMAs of forks stored before 0009 are read from their rows */
		{
			int64_t id = db_int(path, "SELECT fork_id FROM vma_copy GROUP BY fork_id"
						  " ORDER BY count(*) DESC, fork_id LIMIT 1");
			char q[128];
			struct store_fork_row row = {0};

			snprintf(q, sizeof(q), "SELECT count(*) FROM vma_copy WHERE fork_id = %lld",
				 (long long)id);
			CHECKF(id > 0 && store_get_fork(s, id, &row, err, sizeof(err)) == 0 &&
				   row.fork.nr_vma == (size_t)db_int(path, q) && row.fork.nr_vma > 1,
			       "pass %d: fork %lld's VMA rows not read back (%s)", pass,
			       (long long)id, err);
			pt_fork_release(&row.fork);
		}
		if (pass) {
			check_ranges(s, pf, nr, base, "migrated");
			/* New forks and deletes keep the backfilled sums in step. */
			CHECKF(store_enforce_retention(s, 8, 0, NULL, err, sizeof(err)) == 0,
			       "retention: %s", err);
			CHECKF(cost_mismatch(path) == 0, "migrated then retention: out of step");
			CHECKF(orphan_rows(path) == 0, "migrated then retention: %lld detail rows left",
			       (long long)orphan_rows(path));
		}
		store_close(s);
		free(pf);
	}
}

/*
 * A fork's packed VMAs and passes (0009, 0007) that were damaged on disk are
 * refused with a message naming the fork, never read half: a length that is
 * not whole items, a padding word that is not zero, a count below -1.
 */
static void test_packed_damaged(void)
{
	static const char *const damage[] = {
	    "UPDATE fork_vma SET data = data || x'00'",
	    "UPDATE fork_vma SET data = substr(data, 1, 28) || x'01000000' || substr(data, 33)",
	    "UPDATE fork_vma SET data = substr(data, 1, 16) || x'feffffff' || substr(data, 21)",
	    "UPDATE fork_pass SET data = substr(data, 1, 40)",
	};
	struct store_opts o = {.batch_forks = 1};
	struct store_fork_row row;
	struct pt_fork f;
	char path[600], err[256], sql[256];
	int64_t src, id;
	struct store *s;
	bool done;

	for (size_t d = 0; d < sizeof(damage) / sizeof(damage[0]); d++) {
		path_of(path, sizeof(path), "damaged.db");
		unlink(path);
		s = open_rw(path, &o);
		if (!s)
			return;
		src = begin_src(s, HASH_A, &done);
		synth_fork(&f, 11, 1, 8);
		CHECKF(store_insert_fork(s, src, &f, &id, err, sizeof(err)) == 0, "insert: %s", err);
		CHECKF(store_flush(s, err, sizeof(err)) == 0, "flush: %s", err);
		CHECKF(store_get_fork(s, id, &row, err, sizeof(err)) == 0 &&
			   row.fork.nr_vma == f.nr_vma && row.fork.nr_pass == f.nr_pass &&
			   f.nr_vma > 3 && f.nr_pass > 1,
		       "undamaged: %s", err);
		pt_fork_release(&row.fork);
		store_close(s);
		snprintf(sql, sizeof(sql), "%s WHERE fork_id = %lld", damage[d], (long long)id);
		CHECKF(db_exec(path, sql) == 0, "damage %zu", d);
		s = open_rw(path, &o);
		if (!s)
			return;
		err[0] = '\0';
		CHECKF(store_get_fork(s, id, &row, err, sizeof(err)) == -EINVAL &&
			   strstr(err, "damaged") && row.fork.nr_vma == 0 && row.fork.nr_pass == 0,
		       "damage %zu read: %s", d, err);
		store_close(s);
		synth_release(&f);
	}
}

/* One fork of kind @k at wall offset @i: a copy carries copy_page_range, the others not. */
static void kind_fork(struct pt_fork *f, enum pt_fork_kind k, uint64_t i)
{
	synth_fork(f, 21, i, 0);
	f->complete = true;
	f->flags = 0;
	f->kind = k;
	snprintf(f->parent_comm, sizeof(f->parent_comm), "java");
	if (k == PT_KIND_FORK)
		return;
	f->dup_mmap_ns = f->copy_page_range_ns = PT_NO_TIME;
	f->vmas = PT_NULL;
	f->kernel_clone_ns = k == PT_KIND_SPAWN ? 300000000 : 40000; /* a spawn waits for exec */
}

/*
 * Kinds (schema 8): the rollups hold address-space copies, so statistics are
 * fork latency by default; other kinds come from the forks, exact; counts by
 * kind and the forks filter; no time series for them; a file of schema 7 gets
 * 'fork' where its forks carry a copy and its rollups rebuilt.
 */
static void test_kinds(void)
{
	static const enum pt_fork_kind plan[] = {PT_KIND_FORK, PT_KIND_FORK, PT_KIND_THREAD,
						 PT_KIND_FORK, PT_KIND_SPAWN, PT_KIND_THREAD,
						 PT_KIND_UNKNOWN};
	struct store_stat st[STORE_M_COUNT];
	struct store_range rg = {0};
	struct store_fork_filter flt = {.pid = -1};
	struct store_fork_row *rows = NULL;
	struct store_ts_point pt[4];
	uint64_t counts[PT_KIND_COUNT];
	struct store *s;
	struct pt_fork f;
	char path[600], err[256];
	size_t nr = 0, i;
	bool done;
	int64_t src;

	path_of(path, sizeof(path), "kinds.db");
	if (!(s = open_rw(path, NULL)))
		return;
	src = begin_src(s, HASH_A, &done);
	for (i = 0; i < 70; i++) { /* 30 forks, 20 threads, 10 spawns, 10 unknown */
		kind_fork(&f, plan[i % 7], i);
		CHECKF(store_insert_fork(s, src, &f, NULL, err, sizeof(err)) == 0, "insert: %s",
		       err);
		synth_release(&f);
	}
	CHECKF(store_source_end(s, src, NULL, err, sizeof(err)) == 0, "end: %s", err);
	CHECKF(store_stats(s, &rg, st, err, sizeof(err)) == 0 && st[STORE_M_FORK].count == 30 &&
		   !st[STORE_M_FORK].exact && st[STORE_M_FORK].max_ns < 200000000,
	       "default stats are not the copies': %llu", (unsigned long long)st[0].count);
	rg.kinds = 1u << PT_KIND_THREAD;
	CHECKF(store_stats(s, &rg, st, err, sizeof(err)) == 0 && st[STORE_M_FORK].count == 20 &&
		   st[STORE_M_FORK].exact && st[STORE_M_FORK].max_ns == 40000,
	       "thread stats: %llu", (unsigned long long)st[0].count);
	rg.kinds = PT_KINDS_ALL;
	CHECKF(store_stats(s, &rg, st, err, sizeof(err)) == 0 && st[STORE_M_FORK].count == 70 &&
		   st[STORE_M_FORK].max_ns == 300000000,
	       "all kinds: %llu", (unsigned long long)st[0].count);
	CHECKF(store_timeseries(s, &rg, STORE_M_FORK, 60, pt, 4, &nr, err, sizeof(err)) == -EINVAL,
	       "a time series of threads from the rollups");
	rg.kinds = 0;
	CHECKF(store_kind_counts(s, &rg, counts, err, sizeof(err)) == 0 &&
		   counts[PT_KIND_FORK] == 30 && counts[PT_KIND_THREAD] == 20 &&
		   counts[PT_KIND_SPAWN] == 10 && counts[PT_KIND_UNKNOWN] == 10,
	       "kind counts %llu %llu %llu %llu", (unsigned long long)counts[1],
	       (unsigned long long)counts[2], (unsigned long long)counts[3],
	       (unsigned long long)counts[0]);
	flt.kinds = 1u << PT_KIND_SPAWN | 1u << PT_KIND_UNKNOWN;
	CHECKF(store_query_forks(s, &flt, &rows, &nr, NULL, err, sizeof(err)) == 0 && nr == 20,
	       "spawns and unknown: %zu", nr);
	for (i = 0; i < nr; i++)
		CHECKF(rows[i].fork.kind == PT_KIND_SPAWN || rows[i].fork.kind == PT_KIND_UNKNOWN,
		       "row of kind %d", rows[i].fork.kind);
	store_fork_rows_free(rows, nr);
	store_close(s);

	/* back to schema 7: kinds from the evidence, the rollups rebuilt */
	{
		sqlite3 *db;

		sqlite3_open(path, &db);
		CHECKF(unpack_vmas_to_rows(db) > 0, "no packed VMAs to turn into rows");
		CHECKF(
		    sqlite3_exec(db,
				 "ALTER TABLE fork DROP COLUMN kind; ALTER TABLE fork DROP COLUMN"
				 " clone_flags; ALTER TABLE fork DROP COLUMN cgroup;"
				 " DROP TABLE fork_vma; PRAGMA user_version = 7",
				 NULL, NULL, NULL) == SQLITE_OK,
		    "back to schema 7: %s", sqlite3_errmsg(db));
		sqlite3_close(db);
	}
	if (!(s = open_rw(path, NULL)))
		return;
	CHECKF(db_int(path, "SELECT count(*) FROM fork WHERE kind = 'fork'") == 30 &&
		   db_int(path, "SELECT count(*) FROM fork WHERE kind IS NULL") == 40 &&
		   db_int(path, "SELECT count(*) FROM pending_task") == 0,
	       "0008 on schema 7: kinds from the evidence, rollups rebuilt");
	CHECKF(store_stats(s, &rg, st, err, sizeof(err)) == 0 && st[STORE_M_FORK].count == 30,
	       "migrated stats: %llu", (unsigned long long)st[0].count);
	store_close(s);
}

/* A reader is not blocked by a writer holding an open transaction. */
static void test_reader_not_blocked(void)
{
	struct store_opts o = {.batch_forks = 100000, .busy_timeout_ms = 3000};
	struct store *w, *rd;
	struct store_stat stat[STORE_M_COUNT];
	struct store_range rg = {0};
	struct pt_fork f;
	struct timespec a, b;
	char path[600], err[256];
	int64_t src;
	bool done;
	int i, r;

	path_of(path, sizeof(path), "conc.db");
	w = open_rw(path, &o);
	if (!w)
		return;
	src = begin_src(w, HASH_A, &done);
	for (i = 0; i < 100; i++) {
		synth_fork(&f, 9, (uint64_t)i, 5);
		store_insert_fork(w, src, &f, NULL, err, sizeof(err));
		synth_release(&f);
	}
	store_flush(w, err, sizeof(err));
	for (i = 100; i < 200; i++) { /* left uncommitted */
		synth_fork(&f, 9, (uint64_t)i, 5);
		store_insert_fork(w, src, &f, NULL, err, sizeof(err));
		synth_release(&f);
	}
	o.read_only = true;
	rd = open_rw(path, &o);
	clock_gettime(CLOCK_MONOTONIC, &a);
	r = store_stats(rd, &rg, stat, err, sizeof(err));
	clock_gettime(CLOCK_MONOTONIC, &b);
	CHECKF(r == 0 && stat[0].count == 100, "reader during write: %d %llu %s", r,
	       (unsigned long long)stat[0].count, err);
	CHECKF((b.tv_sec - a.tv_sec) < 1, "reader waited for the writer");
	store_close(rd);
	store_close(w);
}

static void test_parse_time(void)
{
	int64_t ns, now = 1700000000ll * 1000000000;
	bool wall;

	CHECKF(store_parse_time("123456789", now, &ns, &wall) == 0 && ns == 123456789 && !wall,
	       "ns");
	CHECKF(store_parse_time("-1h", now, &ns, &wall) == 0 && ns == now - 3600000000000ll && wall,
	       "-1h");
	CHECKF(store_parse_time("-30m", now, &ns, &wall) == 0 && ns == now - 1800000000000ll,
	       "-30m");
	CHECKF(store_parse_time("-7d", now, &ns, &wall) == 0, "-7d");
	CHECKF(store_parse_time("2023-11-14T22:13:20Z", now, &ns, &wall) == 0 && ns == now && wall,
	       "rfc3339 Z: %lld", (long long)ns);
	CHECKF(store_parse_time("2023-11-15T00:13:20.5+02:00", now, &ns, &wall) == 0 &&
		   ns == now + 500000000,
	       "rfc3339 offset: %lld", (long long)ns);
	CHECKF(store_parse_time("yesterday", now, &ns, &wall) == -EINVAL, "garbage");
	CHECKF(store_parse_time("-1w", now, &ns, &wall) == -EINVAL, "bad unit");
	CHECKF(store_parse_time("12x", now, &ns, &wall) == -EINVAL, "trailing");
	CHECKF(store_parse_time("99999999999999999999", now, &ns, &wall) == -EINVAL, "overflow");
	CHECKF(store_parse_time("2023-13-01T00:00:00Z", now, &ns, &wall) == -EINVAL, "month");
	/* The edges of int64 nanoseconds, +-1 s (issue 12: a signed overflow before). */
	CHECKF(store_parse_time("2262-04-11T23:47:16Z", now, &ns, &wall) == 0 &&
		   ns == 9223372036000000000ll,
	       "last second: %lld", (long long)ns);
	CHECKF(store_parse_time("2262-04-11T23:47:16.854775807Z", now, &ns, &wall) == 0 &&
		   ns == INT64_MAX,
	       "last ns");
	CHECKF(store_parse_time("2262-04-11T23:47:16.854775808Z", now, &ns, &wall) == -ERANGE,
	       "last ns + 1");
	CHECKF(store_parse_time("2262-04-11T23:47:17Z", now, &ns, &wall) == -ERANGE, "+1 s");
	CHECKF(store_parse_time("2262-04-11T22:47:17-01:00", now, &ns, &wall) == -ERANGE,
	       "+1 s by offset");
	CHECKF(store_parse_time("9999-01-01T00:00:00Z", now, &ns, &wall) == -ERANGE, "9999");
	CHECKF(store_parse_time("1677-09-21T00:12:44Z", now, &ns, &wall) == 0 &&
		   ns == -9223372036000000000ll,
	       "first second");
	CHECKF(store_parse_time("1677-09-21T00:12:43Z", now, &ns, &wall) == -ERANGE, "-1 s");
	CHECKF(store_parse_time("0000-01-01T00:00:00Z", now, &ns, &wall) == -ERANGE, "year 0");
}

int main(int argc, char **argv)
{
	snprintf(dir, sizeof(dir), "%s", argc > 1 ? argv[1] : "/tmp");
	mkdir(dir, 0755);
	test_sha256();
	test_hist();
	test_roundtrip_and_queries();
	test_incomplete_redo();
	test_sources_isolated();
	test_store_yield();
	test_refusals();
	test_read_only_file();
	test_migrate_older();
	test_retention();
	test_cost_histogram();
	test_migrate_cost();
	test_packed_damaged();
	test_kinds();
	test_reader_not_blocked();
	test_parse_time();
	if (test_failures) {
		fprintf(stderr, "%d check(s) failed\n", test_failures);
		return 1;
	}
	printf("store unit tests: all passed\n");
	return 0;
}
