/* SPDX-License-Identifier: MIT */
/*
 * What the store's own files share: the handle, the embedded migrations,
 * the histogram binning, SHA-256, and small SQLite helpers. Not installed,
 * not for callers of store.h.
 */
#ifndef PTESCOPE_STORE_INTERNAL_H
#define PTESCOPE_STORE_INTERNAL_H

#include <sqlite3.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

/* 'PtSc': marks a ptescope database (PRAGMA application_id). */
#define STORE_APPLICATION_ID 0x50745363

struct store_migration {
	int version;
	const char *name;
	const char *sql;
};

/* Generated from schema/migrations/ by embed.cmake. */
extern const struct store_migration store_migrations[];
extern const size_t store_nr_migrations;

/* ---- histogram bins (store_hist.c) ---- */

#define STORE_HIST_SUB_BITS 6
#define STORE_HIST_NULL_BIN (-1)

/* Bin of @v: exact below 128, then 64 bins per power of two. */
int store_hist_bin(uint64_t v);
/* The value a bin stands for (its midpoint; exact bins: the value). */
uint64_t store_hist_value(int bin);
/* The largest value in a bin (exact bins: the value). */
uint64_t store_hist_upper(int bin);

#define STORE_RES_COUNT 3 /* minute, hour, day */
extern const int64_t store_res_ns[STORE_RES_COUNT];

/*
 * Packed histogram of a rollup row: (bin, count) pairs, bins ascending.
 * store_hist_decode calls @fn for each pair; returns 0 or -EINVAL on a
 * malformed blob. store_hist_encode writes at most 20 bytes per pair.
 */
int store_hist_decode(const unsigned char *p, size_t len, int (*fn)(int bin, int64_t n, void *ctx),
		      void *ctx);
size_t store_hist_encode_pair(unsigned char *out, int prev_bin, int bin, int64_t n);

/* Accumulates (bin -> count) and reads percentiles from it. */
struct store_hist {
	uint64_t *n; /* indexed by bin + 1 (bin -1 = nulls) */
	size_t cap;
	uint64_t count;
};
int store_hist_add(struct store_hist *h, int bin, uint64_t n);
/* Fills count/nulls/percentiles/max of @out. */
void store_hist_result(const struct store_hist *h, struct store_stat *out);
void store_hist_free(struct store_hist *h);
/* Adds a packed histogram (rollup.h) to @h. */
int store_hist_add_blob(struct store_hist *h, const void *blob, size_t len);

/* ---- SHA-256 (sha256.c) ---- */

struct sha256_ctx {
	uint32_t h[8];
	uint64_t len;
	unsigned char buf[64];
	size_t fill;
};
void sha256_init(struct sha256_ctx *c);
void sha256_update(struct sha256_ctx *c, const void *data, size_t len);
void sha256_final(struct sha256_ctx *c, unsigned char out[32]);

/* ---- the handle ---- */

/*
 * A pending rollup delta (metric, res, t, grp, bin) += n. Deltas of the
 * cost sums of a copy_page_range row (migration 0002) use the pseudo-bins
 * below: less than any histogram bin, so they sort first in their row.
 */
#define STORE_AGG_COST_NS (-4)
#define STORE_AGG_COST_PTES (-3)
#define STORE_AGG_COST_FORKS (-2)

struct store_agg_slot {
	int64_t t;
	int32_t grp, bin;
	int8_t metric, res, used;
	int64_t n;
};

struct store_comm_cache {
	char name[32];
	int64_t grp;
	int used;
};

#define STORE_COMM_CACHE 512
/* Sources with forks in one transaction at most (a 9th commits it first). */
#define STORE_TXN_SOURCES 8
/* Sources with lost forks remembered until they end or are aborted. */
#define STORE_LOST_SOURCES 16

struct store {
	sqlite3 *db;
	char *path;
	struct store_opts opts;
	char errmsg[256];

	bool in_txn;
	bool wrote; /* committed something through this handle */
	struct store_write_health health;
	int64_t deadline_ns; /* store_set_deadline; 0: none */
	unsigned txn_forks, txn_rows;
	int64_t txn_source; /* source of the last fork inserted in this txn */
	/* the sources with forks in the open transaction: a rollback loses their forks */
	int64_t txn_src[STORE_TXN_SOURCES];
	unsigned nr_txn_src;
	/*
	 * Sources that lost forks to a failed write (a rolled-back transaction,
	 * a failed insert): a replay among them is never marked complete, so
	 * that it is redone rather than kept with forks missing. Past
	 * STORE_LOST_SOURCES at once, lost_overflow stands for all of them.
	 */
	int64_t lost_src[STORE_LOST_SOURCES];
	unsigned nr_lost_src;
	bool lost_overflow;

	/* For on_commit: forks stored so far in the source begun last. */
	int64_t cb_source;
	uint64_t cb_forks;

	/* Clock offset of the source last written to (wall = ts + offset). */
	int64_t off_source, off_ns;
	bool off_known;

	/* Prepared once, reused for every row. */
	sqlite3_stmt *ins_fork, *ins_vma, *ins_pass, *get_rollup, *put_rollup, *del_rollup;
	sqlite3_stmt *find_group, *ins_group, *count_groups;
	/* a fork's passes and VMAs (store_packed.c), prepared at their first use */
	sqlite3_stmt *get_pass_blob, *get_pass_rows, *get_vma_blob, *get_vma_rows;

	/* Rollup deltas of the open transaction, flushed before COMMIT. */
	struct store_agg_slot *agg;
	size_t agg_cap, agg_used;
	uint32_t *agg_list; /* the agg_used slots in use, by index: a flush or an
			     * abort visits and clears those, not the whole table */

	struct store_comm_cache comm[STORE_COMM_CACHE];
	int64_t nr_groups; /* -1: not loaded */
};

#define STORE_STR_(x) #x
#define STORE_STR(x) STORE_STR_(x)

/* Sets @err (and the handle's message) from @fmt; returns @rc. */
int store_fail(struct store *s, char *err, size_t errlen, int rc, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* SQLite result code -> negative errno. */
int store_errno(int sqlite_rc);
/* Prepares @sql or fails with a message. */
int store_prepare(struct store *s, const char *sql, sqlite3_stmt **st, char *err, size_t errlen);
/* Runs @sql (no parameters, no rows wanted). */
int store_exec(struct store *s, const char *sql, char *err, size_t errlen);

/*
 * Rollup bookkeeping shared by insert, purge, retention and the schema-3 rebuild
 * (store.c). @cost_ptes > 0 when the fork counts toward the cost sums (complete,
 * copy_page_range known, ptes > 0): its ptes. An incomplete fork (@complete false:
 * flagged lost_events/partial/boundary_inferred, its durations are lower bounds)
 * is counted with null values and no pass holds, so statistics are over complete
 * forks only, as the analyzer's own.
 */
int store_rollup_fork(struct store *s, int64_t wall_ns, const char *comm,
		      const int64_t vals[STORE_M_COUNT - 1], bool complete, int64_t cost_ptes,
		      const uint64_t *pass_hold, size_t nr_pass, int64_t sign, char *err,
		      size_t errlen);
int store_rollup_flush(struct store *s, char *err, size_t errlen);
/* Empties the delta table (a flush done, a transaction rolled back). */
void store_rollup_clear(struct store *s);
/* Rollup group of @comm; 0 ("other") past the cap. Reads only when @create is false. */
int store_comm_group(struct store *s, const char *comm, bool create, int64_t *grp, char *err,
		     size_t errlen);

/* ---- shared by the write side's files (store.c, store_txn.c, store_rollup.c,
 * store_write.c, store_purge.c) ---- */

/* Sets @err from the SQLite error of @rc while doing @what; returns the errno. */
int store_sql_fail(struct store *s, char *err, size_t errlen, int rc, const char *what);
/* The one integer @sql returns. */
int store_query_int(struct store *s, const char *sql, int64_t *v, char *err, size_t errlen);
/*
 * The write transaction: begun on demand, committed with the rollup deltas.
 * Its forks may come from several sources (the daemon: live capture and a
 * replay); a rollback, wanted or not, marks every one of them as having lost
 * forks (store_source_lost).
 */
void store_txn_abort(struct store *s);
int store_txn_begin(struct store *s, char *err, size_t errlen);
int store_txn_commit(struct store *s, char *err, size_t errlen);
/* Whether @source_id has forks in the open transaction. */
bool store_txn_has_source(const struct store *s, int64_t source_id);
/* Notes a fork of @source_id in the open transaction; commits first when the
 * transaction holds STORE_TXN_SOURCES other sources. 0 or -errno. */
int store_txn_add_source(struct store *s, int64_t source_id, char *err, size_t errlen);
/* The lost-forks bookkeeping above: mark, ask, forget (at its end or abort). */
void store_source_mark_lost(struct store *s, int64_t source_id);
bool store_source_lost(const struct store *s, int64_t source_id);
void store_source_forget_lost(struct store *s, int64_t source_id);
/* A write failed (the handle's last message says why), or one went through. */
void store_note_write_failed(struct store *s);
void store_note_write_ok(struct store *s);
/* Forgets cached comm groups (a rollback may have taken new ones). */
void store_comm_cache_drop(struct store *s);
/* Room for @n more rollup deltas, so that adding them cannot fail half-way. */
int store_rollup_reserve(struct store *s, size_t n);
/* A fork's rollup metric values (-1 for null), in enum store_metric order. */
void store_fork_metric_values(const struct pt_fork *f, int64_t vals[STORE_M_COUNT - 1]);
/* What deleting fork ?1 takes, in order: its detail (packed and, stored
 * before 0007/0009, in rows), then the fork row. store_write.c. */
#define STORE_FORK_DELETES 5
extern const char *const store_fork_deletes[STORE_FORK_DELETES];

/* Column @i of the current row: a time, PT_NO_TIME for NULL */
static inline uint64_t col_time(sqlite3_stmt *st, int i)
{
	return sqlite3_column_type(st, i) == SQLITE_NULL ? PT_NO_TIME
							 : (uint64_t)sqlite3_column_int64(st, i);
}

/* ... a number, -1 for NULL */
static inline int64_t col_neg(sqlite3_stmt *st, int i)
{
	return sqlite3_column_type(st, i) == SQLITE_NULL ? -1 : sqlite3_column_int64(st, i);
}

/* ---- a fork's passes and VMAs, packed (store_packed.c) ---- */

/* @n passes packed into a new buffer in *@out (NULL when none; free() it). 0 or -ENOMEM. */
int store_passes_pack(const struct pt_pte_pass *pass, size_t n, unsigned char **out, size_t *len);
/* A packed blob back into passes (a new array in *@out). 0, -EINVAL (damaged), -ENOMEM. */
int store_passes_unpack(const void *blob, size_t len, struct pt_pte_pass **out, size_t *n);
/* Stores @f's passes as fork @fork_id's (one row; none when it has none). */
int store_insert_passes(struct store *s, int64_t fork_id, const struct pt_fork *f, char *err,
			size_t errlen);
/* The passes of fork @fork_id, packed or (stored before 0007) in rows: a new
 * array in *@out, *@n of them. 0 or -errno with @err. */
int store_fork_passes(struct store *s, int64_t fork_id, struct pt_pte_pass **out, size_t *n,
		      char *err, size_t errlen);
/* ... and its VMA copies, the same way (packed since 0009, rows before) */
int store_vmas_pack(const struct pt_vma_copy *vma, size_t n, unsigned char **out, size_t *len);
int store_vmas_unpack(const void *blob, size_t len, struct pt_vma_copy **out, size_t *n);
int store_insert_vmas(struct store *s, int64_t fork_id, const struct pt_fork *f, char *err,
		      size_t errlen);
int store_fork_vmas(struct store *s, int64_t fork_id, struct pt_vma_copy **out, size_t *n,
		    char *err, size_t errlen);

/*
 * Adds (@sign 1) or subtracts (-1) the fork in the current row of @sel
 * (FORK_DELETE_COLUMNS) to or from the rollups, with its passes' hold times.
 */
int store_rollup_fork_row(struct store *s, sqlite3_stmt *sel, int64_t sign, char *err,
			  size_t errlen);
/* Runs what a migration left to do (the rollup rebuild), at a writer's open. */
int store_run_pending_tasks(struct store *s, char *err, size_t errlen);
/* Deletes an incomplete source with its forks (a replay that did not finish). */
int store_purge_source(struct store *s, int64_t id, char *err, size_t errlen);

/* The columns store_rollup_fork_row reads, in order. */
#define FORK_DELETE_COLUMNS                                                                        \
	"id, wall_ns, parent_comm, kernel_clone_ns, copy_process_ns, dup_mmap_ns,"                 \
	" copy_page_range_ns, max_lock_hold_ns, ptes, complete, total_ns, kind"

#endif
