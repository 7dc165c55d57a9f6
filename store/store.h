/* SPDX-License-Identifier: MIT */
/*
 * The SQLite store: keeps fork records (fork.h) with their VMA and pass
 * detail, the sources they came from, and per-minute/per-hour histogram
 * rollups that keep statistics over months fast.
 *
 * Fed by `ptescope replay --db` (store_cli.c) and the daemon's live capture;
 * read by `ptescope report` and the daemon's HTTP API. One writer handle per
 * database; readers open their own read-only handles, so queries see the last
 * commit and never wait on ingest (WAL).
 *
 * Sized for millions of forks and tens of millions of passes: inserts are
 * batched into transactions (a few thousand forks each), and statistics read
 * the rollups, not the forks. See docs/store.md for the schema, durability
 * and retention.
 *
 * Every function returns 0 (or a documented positive value) or a negative
 * errno; functions taking @err write a one-line message there on failure.
 * Nothing here prints or exits.
 */
#ifndef PTESCOPE_STORE_H
#define PTESCOPE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fork.h"

struct store;

/* Schema version this build writes (the number of the last migration). */
int store_schema_version(void);

struct store_opts {
	bool read_only;		  /* a reader handle: never writes, never creates */
	bool sync_full;		  /* synchronous=FULL: also survive a power cut (slower);
				   * default NORMAL survives a process crash */
	int busy_timeout_ms;	  /* 0: 5000 */
	unsigned batch_forks;	  /* forks per transaction, 0: 2000 */
	unsigned batch_rows;	  /* rows (forks + VMAs + passes) per transaction, 0: 50000 */
	unsigned max_comm_groups; /* rollup groups before "other", 0: 256 */
	bool skip_check;	  /* writer: skip the PRAGMA quick_check at open (it reads
				   * the whole file once; on by default so that a damaged
				   * file is refused before anything is written to it) */
	/* Called every few thousand SQLite VM steps of a statement (the daemon's
	 * yield point, daemon/yield.h). May be NULL. */
	void (*yield)(void);
	/* Called after each commit that stored forks (tests, progress). May be NULL. */
	void (*on_commit)(void *ctx, int64_t source_id, uint64_t forks_in_source);
	void *on_commit_ctx;
};

/*
 * Opens the database at @path. A writer handle creates the file if it does
 * not exist (or is empty) and migrates an older schema in one transaction.
 * Refuses, without writing anything: a file that is not SQLite or not a
 * ptescope database (-EINVAL), a newer schema (-EPROTO), a corrupt file
 * (-EUCLEAN; writers run PRAGMA quick_check first, readers find out on the
 * query that reaches the damage). @opts may be NULL. On success *out is owned by the caller
 * (store_close).
 */
int store_open(const char *path, const struct store_opts *opts, struct store **out, char *err,
	       size_t errlen);

/* Commits anything pending and closes. Accepts NULL. Returns the commit's result. */
int store_close(struct store *s);

/* Commits the open transaction, if any (the daemon calls this on a timer). */
int store_flush(struct store *s, char *err, size_t errlen);

/* The last error message of the handle (static to the handle, never NULL). */
const char *store_errmsg(const struct store *s);

/*
 * A time budget for what the handle runs from now on: once CLOCK_MONOTONIC
 * passes @deadline_mono_ns, the statement running is interrupted and the
 * call fails with -ETIMEDOUT ("query over its time budget"). 0 lifts it.
 * Meant for readers serving requests (the daemon's HTTP API).
 */
void store_set_deadline(struct store *s, int64_t deadline_mono_ns);

/* Whether the writer's writes go through (a disk full, a read-only remount). */
struct store_write_health {
	bool failing;	   /* the last write failed and none has succeeded since */
	uint64_t failures; /* writes that failed, since the handle was opened */
	char last_error[256];
};
void store_write_health(const struct store *s, struct store_write_health *out);

/*
 * Tries one small write (the database header rewritten with the schema
 * version it holds) and commits it, so that a writer whose writes were
 * failing finds out they succeed again without waiting for data. 0 or -errno.
 */
int store_probe_write(struct store *s, char *err, size_t errlen);

enum store_source_kind {
	STORE_SOURCE_REPLAY,
	STORE_SOURCE_LIVE,
};

struct store_source_info {
	enum store_source_kind kind;
	const char *host;	     /* NULL: unknown */
	const char *path;	     /* NULL: unknown */
	const char *format;	     /* pt_format_name() or "live"; NULL: unknown */
	const char *kernel;	     /* uname -r of the traced box; NULL: unknown */
	const char *content_sha256;  /* 64 hex chars; replays. NULL: no dedup */
	int64_t size_bytes;	     /* -1: unknown */
	int64_t clock_offset_ns;     /* wall = ts + offset; INT64_MIN: unknown, then the
				      * ingest time stands for the wall time */
};

/*
 * Starts storing one source. When @info has a content hash that a complete
 * source already has, sets *already_done (and *source_id to it) and stores
 * nothing: the caller skips the file. When a source with that hash was left
 * incomplete (the writer died), its forks are deleted first, in small
 * transactions, so a rerun completes the job without duplicates.
 */
int store_source_begin(struct store *s, const struct store_source_info *info,
		       int64_t *source_id, bool *already_done, char *err, size_t errlen);

/*
 * Adds one fork of @source_id (detail included). Batched: the fork is durable
 * after the next commit (batch full, store_flush, store_source_end). @f->input
 * is not stored (a source is one input). Sets *fork_id when not NULL.
 * Several sources may be written at once (live capture beside a replay): a
 * failed insert takes back its own fork only, and when a failure rolls the
 * whole transaction back, every source with forks in it is remembered as
 * having lost some (store_source_end).
 */
int store_insert_fork(struct store *s, int64_t source_id, const struct pt_fork *f,
		      int64_t *fork_id, char *err, size_t errlen);

/*
 * Records the source's reader statistics (@st may be NULL), marks it complete
 * and commits, in the transaction that holds its last forks. A replay that
 * lost forks to a failed write (its own or another source's, in a shared
 * transaction) is refused with -EIO and left incomplete: abort it and read
 * the file again. A live session ends all the same.
 */
int store_source_end(struct store *s, int64_t source_id, const struct pt_input_stats *st,
		     char *err, size_t errlen);

/*
 * Abandons a source that will not be completed (its input turned out
 * unreadable half-way): deletes it and its forks. Other sources' forks in
 * the open transaction are committed, not rolled back with it.
 */
int store_source_abort(struct store *s, int64_t source_id, char *err, size_t errlen);

/* ---- Queries (any handle; use a read-only handle in readers) ---- */

struct store_source {
	int64_t id;
	enum store_source_kind kind;
	char *host, *path, *format, *kernel, *content_sha256; /* NULL when unknown */
	int64_t size_bytes;				     /* -1 unknown */
	struct pt_input_stats stats;
	int64_t forks;		   /* -1 until complete */
	int64_t started_wall_ns;   /* ingest start */
	int64_t completed_wall_ns; /* 0 while incomplete */
};

/*
 * Lists sources in id order. With @complete_only, leaves out replays that are
 * still (or were left) incomplete; live sessions are always listed.
 * *out is owned by the caller: store_sources_free(*out, *nr).
 */
int store_list_sources(struct store *s, bool complete_only, struct store_source **out, size_t *nr,
		       char *err, size_t errlen);
void store_sources_free(struct store_source *v, size_t nr);

struct store_fork_filter {
	const char *comm;	/* parent comm; NULL: any */
	int pid;		/* parent pid; -1: any */
	uint64_t since_ts_ns;	/* trace clock, inclusive; 0: open */
	uint64_t until_ts_ns;	/* trace clock, exclusive; 0: open */
	int64_t since_wall_ns;	/* wall clock, inclusive; 0: open */
	int64_t until_wall_ns;	/* wall clock, exclusive; 0: open */
	int64_t min_us;		/* outermost known duration >= min_us; 0: any */
	int64_t source_id;	/* 0: any */
	unsigned kinds;		/* bits 1 << enum pt_fork_kind; 0: every kind */
	bool complete_sources;	/* only forks of complete replays and of live sessions */
	bool oldest_first;	/* id ascending (reports); default newest first (API) */
	int64_t cursor;		/* continue after this id (exclusive); 0: from the start */
	size_t limit;		/* 0: no limit (reports); the API should always bound it */
};

struct store_fork_row {
	int64_t id;
	int64_t source_id;
	int64_t wall_ns;
	struct pt_fork fork; /* detail only from store_get_fork; input = 0 */
};

/*
 * Forks matching @flt, without detail, in id order. *next_cursor (when not
 * NULL) is the id to pass as the next cursor, or 0 when there are no more.
 * *rows is owned by the caller: store_fork_rows_free(*rows, *nr).
 */
int store_query_forks(struct store *s, const struct store_fork_filter *flt,
		      struct store_fork_row **rows, size_t *nr, int64_t *next_cursor, char *err,
		      size_t errlen);
void store_fork_rows_free(struct store_fork_row *rows, size_t nr);

/*
 * One fork by id, with its VMA and pass detail. Returns -ENOENT when there is
 * no such fork. Release with pt_fork_release(&row->fork) -- or
 * store_fork_rows_free(row, 1) for a heap row.
 */
int store_get_fork(struct store *s, int64_t id, struct store_fork_row *row, char *err,
		   size_t errlen);

/* Histogram metrics of the rollups. */
enum store_metric {
	STORE_M_FORK = 0,	     /* outermost known duration; counts every fork */
	STORE_M_KERNEL_CLONE,
	STORE_M_COPY_PROCESS,
	STORE_M_DUP_MMAP,
	STORE_M_COPY_PAGE_RANGE,
	STORE_M_MAX_LOCK_HOLD,
	STORE_M_PASS_HOLD,	     /* per PTE pass, not per fork */
	STORE_M_COUNT
};

/* "fork", "kernel_clone", ... Static string. */
const char *store_metric_name(enum store_metric m);

struct store_stat {
	uint64_t count;	     /* values seen (for STORE_M_FORK: forks, nulls included) */
	uint64_t nulls;	     /* of which the trace did not carry the value */
	uint64_t p50_ns, p90_ns, p99_ns, p999_ns, max_ns; /* 0 when no values */
	bool exact;	     /* computed from the forks rather than the rollups */
};

struct store_range {
	int64_t since_wall_ns; /* inclusive; 0: open */
	int64_t until_wall_ns; /* exclusive; 0: open */
	const char *comm;      /* parent comm; NULL: all */
	/* bits 1 << enum pt_fork_kind. 0 or PT_KINDS_FORK: address-space copies,
	 * which the rollups hold; any other set is computed from the forks,
	 * exact (store_stat.exact), and has no time series nor top list */
	unsigned kinds;
};

/* Whether @r asks for other kinds than the rollups hold. */
static inline bool store_range_other_kinds(const struct store_range *r)
{
	return r->kinds && r->kinds != PT_KINDS_FORK;
}

/*
 * Clones of each kind in the range (and comm), counted from the forks
 * (fork_by_wall): out[enum pt_fork_kind]. 0 or -errno.
 */
int store_kind_counts(struct store *s, const struct store_range *r,
		      uint64_t out[PT_KIND_COUNT], char *err, size_t errlen);

/*
 * Count and percentiles per metric over a wall-time range, from the rollups:
 * minute resolution (the range is widened to whole minutes; whole days and
 * hours inside it are read from day and hour rows), values within 1% (the
 * midpoint of a bin 1/64 of a power of two wide). For a comm that has no
 * rollup group of its own (past the group cap) the figures are computed from
 * the forks and exact (out[m].exact).
 */
int store_stats(struct store *s, const struct store_range *r, struct store_stat out[STORE_M_COUNT],
		char *err, size_t errlen);

struct store_bin {
	uint64_t le_ns; /* the largest value in the bin */
	uint64_t count;
};

struct store_histogram {
	uint64_t count;		/* values seen, nulls included (as store_stat) */
	uint64_t nulls;		/* of which the trace did not carry the value */
	struct store_bin *bins; /* the non-empty bins, le_ns ascending */
	size_t nr_bins;
	bool exact;		/* computed from the forks rather than the rollups */
};

/*
 * Histogram of @metric over a range, from the same rollup rows as
 * store_stats (and from the forks for a comm without a group of its own):
 * the rollups' bins, exact below 128 ns and then 64 per power of two, so
 * each bin lies entirely inside one bin of a coarser log scale with 2, 4, 8, 16, 32
 * or 64 bins per power of two and can be regrouped exactly. Counts are
 * exact. Release with store_histogram_free.
 */
int store_histogram(struct store *s, const struct store_range *r, enum store_metric metric,
		    struct store_histogram *out, char *err, size_t errlen);
void store_histogram_free(struct store_histogram *h);

struct store_cost {
	uint64_t forks; /* complete forks with a copy_page_range time and ptes > 0 */
	uint64_t ns;	/* the sum of their copy_page_range times */
	uint64_t ptes;	/* the sum of their PTEs */
	bool exact;	/* computed from the forks (comm without a group) */
};

/*
 * Cost sums over a range, exact: kept per rollup row (schema 2), so a range
 * reads the same few rows as store_stats (widened to whole minutes); cost per
 * PTE is ns / ptes.
 */
int store_cost(struct store *s, const struct store_range *r, struct store_cost *out, char *err,
	       size_t errlen);

struct store_top_comm {
	char name[32];
	uint64_t forks;
	uint64_t p99_ns; /* of STORE_M_FORK, within 1% */
};

/* Parent comms with the most forks in the range (r->comm ignored), most first. */
int store_top_comms(struct store *s, const struct store_range *r, struct store_top_comm *out,
		    size_t max, size_t *nr, char *err, size_t errlen);

struct store_ts_point {
	int64_t t_wall_ns; /* start of the step */
	uint64_t count;
	uint64_t p50_ns, p99_ns, max_ns;
};

/*
 * Time series of @metric at one-minute (@step_s 60), one-hour (3600) or
 * one-day (86400) steps;
 * steps without values are left out. At most @max points (the first ones).
 */
int store_timeseries(struct store *s, const struct store_range *r, enum store_metric metric,
		     int step_s, struct store_ts_point *out, size_t max, size_t *nr, char *err,
		     size_t errlen);

/* ---- Retention ---- */

/*
 * The ranges of the retention settings, for every front end (`ptescope
 * replay --retention-days/--max-db-mb` and the daemon's configuration):
 * days 0 (keep forever) to 100 years, MiB 0 (no limit) to 2^30.
 */
#define STORE_RETENTION_DAYS_MAX 36500
#define STORE_MAX_DB_MB_MAX (1LL << 30)

struct store_retention_result {
	uint64_t forks_deleted;
	uint64_t sources_deleted;
	int64_t used_bytes;	/* pages in use after, in bytes */
	int64_t file_bytes;	/* database file size after */
};

/*
 * Deletes the oldest forks (by wall time) older than @max_age_days (0: no
 * age limit) and then until the pages in use fit in @max_bytes (0: no size
 * limit), in transactions of a few thousand forks each so that the writer
 * never holds the lock for long, subtracting them from the rollups; then
 * gives freed pages back to the file system a few at a time. @res may be NULL.
 */
int store_enforce_retention(struct store *s, int max_age_days, int64_t max_bytes,
			    struct store_retention_result *res, char *err, size_t errlen);

/* ---- Helpers: the content hash (sha256.c), the clock (store.c), times (store_time.c) ---- */

/*
 * SHA-256 of the file at @path as 64 lowercase hex chars + NUL in @hex, and
 * its size in *size_bytes (may be NULL).
 */
int store_hash_file(const char *path, char hex[65], int64_t *size_bytes, char *err,
		    size_t errlen);

/* Wall clock (CLOCK_REALTIME), ns. */
int64_t store_now_ns(void);

/* The same over an open file, read with pread from offset 0 (the fd's offset is kept). */
int store_hash_fd(int fd, char hex[65], int64_t *size_bytes, char *err, size_t errlen);

/*
 * Parses a time for --since/--until: digits are trace-clock nanoseconds
 * (*is_wall = false); "-90s", "-15m", "-1h", "-7d" (before @now_wall_ns) and
 * RFC 3339 ("2024-05-01T12:00:00Z", "...+02:00", fractions allowed) are wall
 * clock (*is_wall = true). Returns 0, -EINVAL, or -ERANGE for an RFC 3339
 * time outside what int64 nanoseconds since 1970 hold (STORE_TIME_RANGE).
 */
#define STORE_TIME_RANGE "1677-09-21T00:12:44Z to 2262-04-11T23:47:16Z"
int store_parse_time(const char *s, int64_t now_wall_ns, int64_t *ns, bool *is_wall);

#endif
