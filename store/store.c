/* SPDX-License-Identifier: MIT */
/*
 * The store's write side: opening (create, migrate, refuse what is not ours),
 * sources, batched fork inserts with their detail and rollups, purge of an
 * interrupted replay, and retention.
 *
 * Fed by the replay sink (store_cli.c) and the daemon's capture loop, one
 * fork at a time; feeds the database that store_query.c reads. Sized for
 * bursts of hundreds of thousands of forks: every row goes through a
 * statement prepared once, forks are grouped a few thousand to a transaction,
 * and the rollup deltas of a transaction are summed in memory and written
 * once per (metric, minute/hour, comm group, bin) at commit.
 *
 * Durability: WAL with synchronous=NORMAL (a commit survives the process
 * being killed; a power cut may lose the last ones) or FULL on request. A
 * replayed source is marked complete in the transaction holding its last
 * forks, so after a crash an incomplete source is recognised and redone.
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

#define PURGE_BATCH 2000
#define SIZE_BATCH 256
#define VACUUM_STEP_PAGES 256

int store_schema_version(void)
{
	return store_migrations[store_nr_migrations - 1].version;
}

int64_t store_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int store_errno(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_OK:
	case SQLITE_ROW:
	case SQLITE_DONE:
		return 0;
	case SQLITE_NOMEM:
		return -ENOMEM;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return -EBUSY;
	case SQLITE_READONLY:
		return -EROFS;
	case SQLITE_FULL:
		return -ENOSPC;
	case SQLITE_CORRUPT:
		return -EUCLEAN;
	case SQLITE_NOTADB:
		return -EINVAL;
	case SQLITE_CANTOPEN:
		return -ENOENT;
	case SQLITE_PERM:
	case SQLITE_AUTH:
		return -EACCES;
	case SQLITE_CONSTRAINT:
		return -EEXIST;
	case SQLITE_INTERRUPT:
		return -EINTR;
	case SQLITE_TOOBIG:
		return -E2BIG;
	case SQLITE_IOERR:
	default:
		return -EIO;
	}
}

int store_fail(struct store *s, char *err, size_t errlen, int rc, const char *fmt, ...)
{
	char buf[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (s)
		snprintf(s->errmsg, sizeof(s->errmsg), "%s", buf);
	if (err && errlen)
		snprintf(err, errlen, "%s", buf);
	return rc;
}

/* A failed SQLite call: message names the database and what SQLite said. */
static int sql_fail(struct store *s, char *err, size_t errlen, int rc, const char *what)
{
	const char *msg = s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc);

	if ((rc & 0xff) == SQLITE_FULL)
		return store_fail(s, err, errlen, -ENOSPC,
				  "%s: disk full while %s (%s); the database keeps its last "
				  "commit",
				  s->path, what, msg);
	if ((rc & 0xff) == SQLITE_CORRUPT || (rc & 0xff) == SQLITE_NOTADB)
		return store_fail(s, err, errlen, store_errno(rc),
				  "%s: database is corrupt or not a database (%s, while %s)",
				  s->path, msg, what);
	return store_fail(s, err, errlen, store_errno(rc), "%s: %s: %s", s->path, what, msg);
}

const char *store_errmsg(const struct store *s)
{
	return s ? s->errmsg : "no store";
}

int store_prepare(struct store *s, const char *sql, sqlite3_stmt **st, char *err, size_t errlen)
{
	int rc = sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL);

	if (rc != SQLITE_OK)
		return sql_fail(s, err, errlen, rc, "preparing a statement");
	return 0;
}

int store_exec(struct store *s, const char *sql, char *err, size_t errlen)
{
	int rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);

	if (rc != SQLITE_OK)
		return sql_fail(s, err, errlen, rc, sql);
	return 0;
}

/* Runs a statement returning one integer (PRAGMA x, SELECT count(*)). */
static int query_int(struct store *s, const char *sql, int64_t *v, char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);

	if (rc == SQLITE_OK) {
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW) {
			*v = sqlite3_column_int64(st, 0);
			rc = SQLITE_OK;
		} else if (rc == SQLITE_DONE) {
			*v = 0;
			rc = SQLITE_OK;
		}
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_OK)
		return sql_fail(s, err, errlen, rc, sql);
	return 0;
}

/* ---- binding: nulls of struct pt_fork become SQL NULL ---- */

static void bind_time(sqlite3_stmt *st, int i, uint64_t v)
{
	if (v == PT_NO_TIME || v > INT64_MAX)
		sqlite3_bind_null(st, i);
	else
		sqlite3_bind_int64(st, i, (int64_t)v);
}

static void bind_count(sqlite3_stmt *st, int i, int64_t v)
{
	if (v == PT_NULL)
		sqlite3_bind_null(st, i);
	else
		sqlite3_bind_int64(st, i, v);
}

static void bind_pid(sqlite3_stmt *st, int i, int64_t v)
{
	if (v < 0)
		sqlite3_bind_null(st, i);
	else
		sqlite3_bind_int64(st, i, v);
}

static void bind_comm(sqlite3_stmt *st, int i, const char comm[32])
{
	size_t n = strnlen(comm, 32);

	if (!n)
		sqlite3_bind_null(st, i);
	else
		sqlite3_bind_text(st, i, comm, (int)n, SQLITE_TRANSIENT);
}

static void bind_str(sqlite3_stmt *st, int i, const char *v)
{
	if (!v)
		sqlite3_bind_null(st, i);
	else
		sqlite3_bind_text(st, i, v, -1, SQLITE_TRANSIENT);
}

/* ---- open, check, migrate ---- */

static void finalize_all(struct store *s)
{
	sqlite3_stmt **all[] = {&s->ins_fork,	 &s->ins_vma,	 &s->ins_pass,
				&s->get_rollup, &s->put_rollup, &s->del_rollup, &s->find_group,
				&s->ins_group,	 &s->count_groups};
	size_t i;

	for (i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		sqlite3_finalize(*all[i]);
		*all[i] = NULL;
	}
}

static void store_free(struct store *s)
{
	if (!s)
		return;
	finalize_all(s);
	if (s->db)
		sqlite3_close_v2(s->db);
	free(s->agg);
	free(s->path);
	free(s);
}

static int run_pending_tasks(struct store *s, char *err, size_t errlen);

static int migrate(struct store *s, int64_t from, char *err, size_t errlen)
{
	char sql[128];
	int64_t now_version;
	size_t i;
	int r;

	r = store_exec(s, "BEGIN IMMEDIATE", err, errlen);
	if (r)
		return r;
	/* Another writer may have migrated while we waited for the lock. */
	r = query_int(s, "PRAGMA user_version", &now_version, err, errlen);
	if (r)
		goto out;
	from = now_version;
	for (i = 0; i < store_nr_migrations; i++) {
		if (store_migrations[i].version <= from)
			continue;
		r = store_exec(s, store_migrations[i].sql, NULL, 0);
		if (r) {
			store_fail(s, err, errlen, r, "%s: migration %s failed: %s", s->path,
				   store_migrations[i].name, sqlite3_errmsg(s->db));
			goto out;
		}
	}
	snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", store_schema_version());
	r = store_exec(s, sql, err, errlen);
	if (r)
		goto out;
	snprintf(sql, sizeof(sql), "PRAGMA application_id = %d", STORE_APPLICATION_ID);
	r = store_exec(s, sql, err, errlen);
	if (r)
		goto out;
	r = store_exec(s, "COMMIT", err, errlen);
out:
	if (r)
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	(void)from;
	return r;
}

/*
 * Reads the header fields and decides: ours (maybe older), new, or foreign.
 * Only reads: a file that turns out not to be ours is left as it was.
 */
static int check_identity(struct store *s, int64_t *version, bool *fresh, char *err,
			  size_t errlen)
{
	int64_t app_id, objects;
	int r;

	r = query_int(s, "PRAGMA application_id", &app_id, NULL, 0);
	if (r == -EINVAL)
		return store_fail(s, err, errlen, -EINVAL,
				  "%s: not a ptescope database (not an SQLite file); left untouched",
				  s->path);
	if (r == -EUCLEAN)
		return store_fail(s, err, errlen, -EUCLEAN,
				  "%s: database is corrupt (%s); left untouched", s->path,
				  sqlite3_errmsg(s->db));
	if (r)
		return store_fail(s, err, errlen, r, "%s: cannot read the database: %s", s->path,
				  sqlite3_errmsg(s->db));
	r = query_int(s, "PRAGMA user_version", version, err, errlen);
	if (r)
		return r;
	r = query_int(s, "SELECT count(*) FROM sqlite_schema", &objects, NULL, 0);
	if (r)
		return store_fail(s, err, errlen, r,
				  "%s: database is corrupt (%s); left untouched", s->path,
				  sqlite3_errmsg(s->db));
	*fresh = false;
	if (app_id == 0 && *version == 0 && objects == 0) {
		*fresh = true;
		return 0;
	}
	if (app_id != STORE_APPLICATION_ID)
		return store_fail(s, err, errlen, -EINVAL,
				  "%s: an SQLite database but not a ptescope one (application_id "
				  "0x%llx, %lld schema objects); left untouched",
				  s->path, (unsigned long long)app_id, (long long)objects);
	if (*version > store_schema_version())
		return store_fail(s, err, errlen, -EPROTO,
				  "%s: written by a newer ptescope (schema %lld, this build knows up "
				  "to %d); refusing to open it, upgrade ptescope",
				  s->path, (long long)*version, store_schema_version());
	return 0;
}

/* Refuses to write into a damaged file (reads every page once). */
static int quick_check(struct store *s, char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(s->db, "PRAGMA quick_check(1)", -1, &st, NULL);
	int r = 0;

	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		const char *v = (const char *)sqlite3_column_text(st, 0);

		if (!v || strcmp(v, "ok")) {
			char first[160];

			/* quick_check answers in lines; the first names the damage */
			snprintf(first, sizeof(first), "%s", v ? v : "?");
			for (char *p = first; *p; p++)
				if (*p == '\n')
					*p = ' ';
			r = store_fail(s, err, errlen, -EUCLEAN,
				       "%s: database is corrupt (%s); left untouched", s->path,
				       first);
		}
	} else {
		r = store_fail(s, err, errlen, store_errno(rc) == -EUCLEAN ? -EUCLEAN : store_errno(rc),
			       "%s: database is corrupt (%s); left untouched", s->path,
			       sqlite3_errmsg(s->db));
	}
	sqlite3_finalize(st);
	return r;
}

static int prepare_writer(struct store *s, char *err, size_t errlen)
{
	int r;

	r = store_prepare(s,
			  "INSERT INTO fork(source_id, wall_ns, ts_ns, parent_pid, parent_comm,"
			  " child_pid, child_comm, kernel_clone_ns, copy_process_ns, dup_mmap_ns,"
			  " copy_page_range_ns, vmas, pte_passes, lock_breaks, ptes,"
			  " max_lock_hold_ns, complete, flags)"
			  " VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17,?18)",
			  &s->ins_fork, err, errlen);
	if (!r)
		r = store_prepare(s,
				  "INSERT INTO vma_copy(fork_id, idx, start_ns, dur_ns, passes,"
				  " ptes, huge) VALUES (?1,?2,?3,?4,?5,?6,?7)",
				  &s->ins_vma, err, errlen);
	if (!r)
		r = store_prepare(s,
				  "INSERT INTO pte_pass(fork_id, idx, vma, ptes, start_ns, hold_ns,"
				  " new_pmd, resumed) VALUES (?1,?2,?3,?4,?5,?6,?7,?8)",
				  &s->ins_pass, err, errlen);
	if (!r)
		r = store_prepare(s,
				  "SELECT h, cost_forks, cost_ns, cost_ptes FROM rollup"
				  " WHERE metric=?1 AND res=?2 AND t=?3 AND grp=?4",
				  &s->get_rollup, err, errlen);
	if (!r)
		r = store_prepare(s,
				  "INSERT OR REPLACE INTO rollup(metric, res, t, grp, n, h,"
				  " cost_forks, cost_ns, cost_ptes) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9)",
				  &s->put_rollup, err, errlen);
	if (!r)
		r = store_prepare(s,
				  "DELETE FROM rollup WHERE metric=?1 AND res=?2 AND t=?3 AND grp=?4",
				  &s->del_rollup, err, errlen);
	if (!r)
		r = store_prepare(s, "INSERT INTO comm_group(name) VALUES (?1)", &s->ins_group,
				  err, errlen);
	if (!r)
		r = store_prepare(s, "SELECT count(*) FROM comm_group", &s->count_groups, err,
				  errlen);
	return r;
}

int store_open(const char *path, const struct store_opts *opts, struct store **out, char *err,
	       size_t errlen)
{
	struct store *s;
	int64_t version = 0;
	bool fresh = false;
	struct stat sb;
	char sql[96];
	int flags, rc, r;

	*out = NULL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return store_fail(NULL, err, errlen, -ENOMEM, "out of memory");
	if (opts)
		s->opts = *opts;
	if (!s->opts.busy_timeout_ms)
		s->opts.busy_timeout_ms = 5000;
	if (!s->opts.batch_forks)
		s->opts.batch_forks = 2000;
	if (!s->opts.batch_rows)
		s->opts.batch_rows = 50000;
	if (!s->opts.max_comm_groups)
		s->opts.max_comm_groups = 256;
	s->nr_groups = -1;
	s->path = strdup(path);
	if (!s->path) {
		r = store_fail(s, err, errlen, -ENOMEM, "out of memory");
		goto out;
	}

	if (stat(path, &sb) == 0 && !S_ISREG(sb.st_mode)) {
		r = store_fail(s, err, errlen, -EINVAL, "%s: not a regular file", path);
		goto out;
	}
	if (s->opts.read_only && stat(path, &sb) != 0) {
		r = store_fail(s, err, errlen, -errno, "%s: %s", path, strerror(errno));
		goto out;
	}
	flags = SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE;
	flags |= s->opts.read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
	rc = sqlite3_open_v2(path, &s->db, flags, NULL);
	if (rc != SQLITE_OK) {
		r = store_fail(s, err, errlen, store_errno(rc), "%s: cannot open: %s", path,
			       s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
		goto out;
	}
	sqlite3_busy_timeout(s->db, s->opts.busy_timeout_ms);
	sqlite3_extended_result_codes(s->db, 1);

	r = check_identity(s, &version, &fresh, err, errlen);
	if (r)
		goto out;
	if (s->opts.read_only) {
		if (fresh) {
			r = store_fail(s, err, errlen, -ENOENT,
				       "%s: empty, nothing has been stored in it", path);
			goto out;
		}
		if (version < store_schema_version()) {
			r = store_fail(s, err, errlen, -EPROTO,
				       "%s: schema %lld is older than this build's %d; open it "
				       "once for writing (ptescope replay --db) to migrate it",
				       path, (long long)version, store_schema_version());
			goto out;
		}
		r = store_exec(s, "PRAGMA query_only = ON", err, errlen);
		goto out;
	}

	if (!fresh && !s->opts.skip_check) {
		r = quick_check(s, err, errlen);
		if (r)
			goto out;
	}
	/* From here on we write: the file is new, empty, or ours and sound. */
	if (fresh) {
		/* Must precede the first table: lets retention shrink the file. */
		r = store_exec(s, "PRAGMA auto_vacuum = INCREMENTAL", err, errlen);
		if (r)
			goto out;
	}
	r = store_exec(s, "PRAGMA journal_mode = WAL", err, errlen);
	if (!r)
		r = store_exec(s, s->opts.sync_full ? "PRAGMA synchronous = FULL"
						    : "PRAGMA synchronous = NORMAL",
			       err, errlen);
	/* Bounds the WAL left on disk after a checkpoint (64 MiB). */
	if (!r)
		r = store_exec(s, "PRAGMA journal_size_limit = 67108864", err, errlen);
	if (!r)
		r = store_exec(s, "PRAGMA cache_size = -16384", err, errlen);
	/* Checkpoint (and fsync) every 32 MiB of WAL rather than every 4 MiB. */
	if (!r)
		r = store_exec(s, "PRAGMA wal_autocheckpoint = 8192", err, errlen);
	if (r)
		goto out;
	if (version < store_schema_version()) {
		r = migrate(s, version, err, errlen);
		if (r)
			goto out;
	}
	snprintf(sql, sizeof(sql), "PRAGMA user_version");
	r = query_int(s, sql, &version, err, errlen);
	if (!r && version != store_schema_version())
		r = store_fail(s, err, errlen, -EPROTO, "%s: schema %lld after migration, want %d",
			       path, (long long)version, store_schema_version());
	if (!r)
		r = prepare_writer(s, err, errlen);
	if (!r)
		r = run_pending_tasks(s, err, errlen);
out:
	if (r) {
		store_free(s);
		return r;
	}
	*out = s;
	return 0;
}

/* ---- transactions ---- */

static void reset_caches(struct store *s)
{
	memset(s->comm, 0, sizeof(s->comm));
	s->nr_groups = -1;
	if (s->agg)
		memset(s->agg, 0, s->agg_cap * sizeof(*s->agg));
	s->agg_used = 0;
}

static void txn_abort(struct store *s)
{
	if (s->in_txn && !sqlite3_get_autocommit(s->db))
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	s->in_txn = false;
	s->txn_forks = s->txn_rows = 0;
	reset_caches(s);
}

static int txn_begin(struct store *s, char *err, size_t errlen)
{
	int rc;

	if (s->in_txn)
		return 0;
	if (s->opts.read_only)
		return store_fail(s, err, errlen, -EROFS, "%s: opened read-only", s->path);
	rc = sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		return sql_fail(s, err, errlen, rc, "starting a transaction");
	s->in_txn = true;
	s->txn_forks = s->txn_rows = 0;
	return 0;
}

static int txn_commit(struct store *s, char *err, size_t errlen)
{
	int rc, r;

	if (!s->in_txn)
		return 0;
	r = store_rollup_flush(s, err, errlen);
	if (r) {
		txn_abort(s);
		return r;
	}
	rc = sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		r = sql_fail(s, err, errlen, rc, "committing");
		txn_abort(s);
		return r;
	}
	s->in_txn = false;
	s->wrote = true;
	if (s->txn_forks && s->opts.on_commit)
		s->opts.on_commit(s->opts.on_commit_ctx, s->txn_source, s->cb_forks);
	s->txn_forks = s->txn_rows = 0;
	return 0;
}

int store_flush(struct store *s, char *err, size_t errlen)
{
	return txn_commit(s, err, errlen);
}

int store_close(struct store *s)
{
	int r = 0;

	if (!s)
		return 0;
	if (s->in_txn)
		r = txn_commit(s, NULL, 0);
	if (s->wrote) /* keeps the planner's statistics current; never on an untouched file */
		sqlite3_exec(s->db, "PRAGMA optimize", NULL, NULL, NULL);
	store_free(s);
	return r;
}

/* ---- comm groups and rollups ---- */

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
		return sql_fail(s, err, errlen, rc, "looking up a comm group");
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
				return sql_fail(s, err, errlen, rc, "counting comm groups");
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
				return sql_fail(s, err, errlen, rc, "adding a comm group");
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

static int agg_add(struct store *s, int metric, int res, int64_t t, int64_t grp, int bin,
		   int64_t n)
{
	size_t i, mask;

	if (s->agg_used * 2 >= s->agg_cap) {
		size_t cap = s->agg_cap ? s->agg_cap * 2 : 4096, j;
		struct store_agg_slot *na = calloc(cap, sizeof(*na));

		if (!na)
			return -ENOMEM;
		for (j = 0; j < s->agg_cap; j++) {
			struct store_agg_slot *o = &s->agg[j];

			if (!o->used)
				continue;
			i = agg_hash(o->metric, o->res, o->t, o->grp, o->bin) & (cap - 1);
			while (na[i].used)
				i = (i + 1) & (cap - 1);
			na[i] = *o;
		}
		free(s->agg);
		s->agg = na;
		s->agg_cap = cap;
	}
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
			s->agg_used++;
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

int store_rollup_fork(struct store *s, int64_t wall_ns, const char *comm,
		      const int64_t vals_in[STORE_M_COUNT - 1], bool complete, int64_t cost_ptes,
		      const uint64_t *pass_hold, size_t nr_pass, int64_t sign, char *err,
		      size_t errlen)
{
	int64_t grp, vals[STORE_M_COUNT - 1];
	size_t i;
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
	for (m = 0; m < STORE_M_COUNT - 1; m++) {
		r = agg_value(s, m, wall_ns, grp, vals[m], sign);
		if (r)
			return store_fail(s, err, errlen, r, "out of memory");
	}
	if (cost_ptes > 0 && vals[STORE_M_COPY_PAGE_RANGE] >= 0) {
		r = agg_cost(s, wall_ns, grp, vals[STORE_M_COPY_PAGE_RANGE], cost_ptes, sign);
		if (r)
			return store_fail(s, err, errlen, r, "out of memory");
	}
	for (i = 0; i < nr_pass; i++) {
		int64_t v = pass_hold[i] == PT_NO_TIME ? -1 : (int64_t)pass_hold[i];

		r = agg_value(s, STORE_M_PASS_HOLD, wall_ns, grp, v, sign);
		if (r)
			return store_fail(s, err, errlen, r, "out of memory");
	}
	return 0;
}

static int slot_cmp(const void *x, const void *y)
{
	const struct store_agg_slot *a = x, *b = y;

	if (a->metric != b->metric)
		return a->metric - b->metric;
	if (a->res != b->res)
		return a->res - b->res;
	if (a->t != b->t)
		return a->t < b->t ? -1 : 1;
	if (a->grp != b->grp)
		return a->grp < b->grp ? -1 : 1;
	return a->bin - b->bin;
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
	if (m->len + 20 > m->cap) {
		size_t cap = m->cap ? m->cap * 2 : 1024;
		unsigned char *np = realloc(m->p, cap);

		if (!np)
			return -ENOMEM;
		m->p = np;
		m->cap = cap;
	}
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
	int rc, r = 0;

	if (!s->agg_used)
		return 0;
	v = malloc(s->agg_used * sizeof(*v));
	if (!v)
		return store_fail(s, err, errlen, -ENOMEM, "out of memory");
	for (i = 0; i < s->agg_cap; i++)
		if (s->agg[i].used && s->agg[i].n)
			v[n++] = s->agg[i];
	qsort(v, n, sizeof(*v), slot_cmp);
	for (i = 0; i < n && !r; i = j) {
		sqlite3_stmt *st = s->get_rollup;
		int64_t cost[3] = {0, 0, 0}; /* forks, ns, ptes */

		for (j = i + 1; j < n && v[j].metric == v[i].metric && v[j].res == v[i].res &&
				v[j].t == v[i].t && v[j].grp == v[i].grp;
		     j++)
			;
		m.len = 0;
		m.prev = INT32_MIN;
		m.total = 0;
		m.d = &v[i];
		m.dend = &v[j];
		for (; m.d < m.dend && m.d->bin < STORE_HIST_NULL_BIN; m.d++)
			cost[m.d->bin == STORE_AGG_COST_FORKS ? 0
			     : m.d->bin == STORE_AGG_COST_NS  ? 1
							      : 2] += m.d->n;
		sqlite3_reset(st);
		sqlite3_bind_int(st, 1, v[i].metric);
		sqlite3_bind_int(st, 2, v[i].res);
		sqlite3_bind_int64(st, 3, v[i].t);
		sqlite3_bind_int64(st, 4, v[i].grp);
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW) {
			cost[0] += sqlite3_column_int64(st, 1);
			cost[1] += sqlite3_column_int64(st, 2);
			cost[2] += sqlite3_column_int64(st, 3);
			r = store_hist_decode(sqlite3_column_blob(st, 0),
					      (size_t)sqlite3_column_bytes(st, 0), merge_stored, &m);
			if (r == -EINVAL)
				r = store_fail(s, err, errlen, -EUCLEAN,
					       "%s: a rollup histogram is corrupt", s->path);
			else if (r)
				r = store_fail(s, err, errlen, r, "out of memory");
		} else if (rc != SQLITE_DONE) {
			r = sql_fail(s, err, errlen, rc, "reading rollups");
		}
		sqlite3_reset(st);
		for (; !r && m.d < m.dend; m.d++)
			r = merge_put(&m, m.d->bin, m.d->n);
		if (r)
			break;
		st = m.total > 0 ? s->put_rollup : s->del_rollup;
		sqlite3_reset(st);
		sqlite3_bind_int(st, 1, v[i].metric);
		sqlite3_bind_int(st, 2, v[i].res);
		sqlite3_bind_int64(st, 3, v[i].t);
		sqlite3_bind_int64(st, 4, v[i].grp);
		if (m.total > 0) {
			sqlite3_bind_int64(st, 5, m.total);
			sqlite3_bind_blob(st, 6, m.p, (int)m.len, SQLITE_STATIC);
			sqlite3_bind_int64(st, 7, cost[0]);
			sqlite3_bind_int64(st, 8, cost[1]);
			sqlite3_bind_int64(st, 9, cost[2]);
		}
		rc = sqlite3_step(st);
		sqlite3_reset(st);
		if (rc != SQLITE_DONE)
			r = sql_fail(s, err, errlen, rc, "updating rollups");
	}
	free(m.p);
	free(v);
	if (!r) {
		memset(s->agg, 0, s->agg_cap * sizeof(*s->agg));
		s->agg_used = 0;
	}
	return r;
}

/* The per-fork metric values (-1 for null), in enum store_metric order. */
static void fork_metric_values(const struct pt_fork *f, int64_t vals[STORE_M_COUNT - 1])
{
	const uint64_t phases[4] = {f->kernel_clone_ns, f->copy_process_ns, f->dup_mmap_ns,
				    f->copy_page_range_ns};
	int i;

	vals[STORE_M_FORK] = -1;
	for (i = 0; i < 4; i++) {
		int64_t v = phases[i] == PT_NO_TIME || phases[i] > INT64_MAX ? -1
									    : (int64_t)phases[i];

		vals[STORE_M_KERNEL_CLONE + i] = v;
		if (vals[STORE_M_FORK] < 0)
			vals[STORE_M_FORK] = v;
	}
	vals[STORE_M_MAX_LOCK_HOLD] = f->max_lock_hold_ns == PT_NO_TIME ||
						      f->max_lock_hold_ns > INT64_MAX
					      ? -1
					      : (int64_t)f->max_lock_hold_ns;
}

/* ---- sources ---- */

/* Finds the clock offset of @source_id (cached for the source being written). */
static int source_offset(struct store *s, int64_t source_id, char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	int rc, r = 0;

	if (s->off_source == source_id)
		return 0;
	r = store_prepare(s, "SELECT clock_offset_ns FROM source WHERE id = ?1", &st, err,
			  errlen);
	if (r)
		return r;
	sqlite3_bind_int64(st, 1, source_id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		s->off_known = sqlite3_column_type(st, 0) != SQLITE_NULL;
		s->off_ns = sqlite3_column_int64(st, 0);
		s->off_source = source_id;
	} else if (rc == SQLITE_DONE) {
		r = store_fail(s, err, errlen, -ENOENT, "%s: no source %lld", s->path,
			       (long long)source_id);
	} else {
		r = sql_fail(s, err, errlen, rc, "looking up a source");
	}
	sqlite3_finalize(st);
	return r;
}

/*
 * Adds (@sign 1) or subtracts (-1) the fork in the current row of @sel
 * (FORK_DELETE_COLUMNS) to or from the rollups; @holds selects its passes' hold
 * times (bound to the fork id here). *@hold is a buffer grown as needed.
 */
static int rollup_fork_row(struct store *s, sqlite3_stmt *sel, sqlite3_stmt *holds, int64_t sign,
			   uint64_t **hold, size_t *hold_cap, char *err, size_t errlen)
{
	int64_t id = sqlite3_column_int64(sel, 0), wall = sqlite3_column_int64(sel, 1);
	const char *comm = (const char *)sqlite3_column_text(sel, 2);
	int64_t vals[STORE_M_COUNT - 1], ptes = 0;
	bool complete = sqlite3_column_int(sel, 9) != 0;
	size_t nr_hold = 0;
	int m, rc;

	vals[STORE_M_FORK] = -1;
	for (m = 0; m < 5; m++) {
		int col = 3 + m;

		vals[STORE_M_KERNEL_CLONE + m] = sqlite3_column_type(sel, col) == SQLITE_NULL
							 ? -1
							 : sqlite3_column_int64(sel, col);
		if (m < 4 && vals[STORE_M_FORK] < 0)
			vals[STORE_M_FORK] = vals[STORE_M_KERNEL_CLONE + m];
	}
	sqlite3_reset(holds);
	sqlite3_bind_int64(holds, 1, id);
	while ((rc = sqlite3_step(holds)) == SQLITE_ROW) {
		if (nr_hold == *hold_cap) {
			size_t cap = *hold_cap ? *hold_cap * 2 : 256;
			uint64_t *nh = realloc(*hold, cap * sizeof(*nh));

			if (!nh)
				return store_fail(s, err, errlen, -ENOMEM, "out of memory");
			*hold = nh;
			*hold_cap = cap;
		}
		(*hold)[nr_hold++] = sqlite3_column_type(holds, 0) == SQLITE_NULL
					     ? PT_NO_TIME
					     : (uint64_t)sqlite3_column_int64(holds, 0);
	}
	if (rc != SQLITE_DONE)
		return sql_fail(s, err, errlen, rc, "reading a fork's passes");
	if (sqlite3_column_type(sel, 8) != SQLITE_NULL)
		ptes = sqlite3_column_int64(sel, 8);
	return store_rollup_fork(s, wall, comm ? comm : "", vals, complete, ptes, *hold, nr_hold,
				 sign, err, errlen);
}

/*
 * Deletes the forks @sel returns (columns: id, wall_ns, parent_comm,
 * kernel_clone_ns, copy_process_ns, dup_mmap_ns, copy_page_range_ns,
 * max_lock_hold_ns, ptes, complete), with their detail, subtracting them from the rollups, in
 * one transaction. Sets *deleted. Used by purge and retention.
 */
static int delete_fork_batch(struct store *s, sqlite3_stmt *sel, uint64_t *deleted, char *err,
			     size_t errlen)
{
	static const char *const dels[] = {"DELETE FROM pte_pass WHERE fork_id = ?1",
					   "DELETE FROM vma_copy WHERE fork_id = ?1",
					   "DELETE FROM fork WHERE id = ?1"};
	sqlite3_stmt *del[3] = {NULL, NULL, NULL}, *holds = NULL;
	uint64_t *hold = NULL;
	size_t hold_cap = 0;
	int rc = SQLITE_DONE, r, i;

	*deleted = 0;
	r = txn_begin(s, err, errlen);
	if (r)
		return r;
	for (i = 0; i < 3 && !r; i++)
		r = store_prepare(s, dels[i], &del[i], err, errlen);
	if (!r)
		r = store_prepare(s, "SELECT hold_ns FROM pte_pass WHERE fork_id = ?1", &holds,
				  err, errlen);
	while (!r && (rc = sqlite3_step(sel)) == SQLITE_ROW) {
		int64_t id = sqlite3_column_int64(sel, 0);

		r = rollup_fork_row(s, sel, holds, -1, &hold, &hold_cap, err, errlen);
		for (i = 0; i < 3 && !r; i++) {
			sqlite3_reset(del[i]);
			sqlite3_bind_int64(del[i], 1, id);
			rc = sqlite3_step(del[i]);
			if (rc != SQLITE_DONE)
				r = sql_fail(s, err, errlen, rc, "deleting forks");
		}
		if (!r)
			(*deleted)++;
	}
	if (!r && rc != SQLITE_DONE)
		r = sql_fail(s, err, errlen, rc, "selecting forks to delete");
	sqlite3_reset(sel);
	for (i = 0; i < 3; i++)
		sqlite3_finalize(del[i]);
	sqlite3_finalize(holds);
	free(hold);
	if (r) {
		txn_abort(s);
		return r;
	}
	return txn_commit(s, err, errlen);
}

#define FORK_DELETE_COLUMNS                                                                      \
	"id, wall_ns, parent_comm, kernel_clone_ns, copy_process_ns, dup_mmap_ns,"                \
	" copy_page_range_ns, max_lock_hold_ns, ptes, complete"

/*
 * Rebuilds every rollup row from the forks (schema 3 made them count complete
 * forks' values only), in one transaction with the clearing of the task, so
 * that a crash leaves the task pending, never the rollups half built. About
 * 5 s per million forks.
 */
static int rollup_rebuild(struct store *s, char *err, size_t errlen)
{
	sqlite3_stmt *sel = NULL, *holds = NULL;
	uint64_t *hold = NULL;
	size_t hold_cap = 0;
	int rc = SQLITE_DONE, r;

	r = txn_begin(s, err, errlen);
	if (r)
		return r;
	r = store_exec(s, "DELETE FROM rollup", err, errlen);
	if (!r)
		r = store_prepare(s, "SELECT " FORK_DELETE_COLUMNS " FROM fork ORDER BY id", &sel,
				  err, errlen);
	if (!r)
		r = store_prepare(s, "SELECT hold_ns FROM pte_pass WHERE fork_id = ?1", &holds,
				  err, errlen);
	while (!r && (rc = sqlite3_step(sel)) == SQLITE_ROW)
		r = rollup_fork_row(s, sel, holds, 1, &hold, &hold_cap, err, errlen);
	if (!r && rc != SQLITE_DONE)
		r = sql_fail(s, err, errlen, rc, "reading forks to rebuild the rollups");
	if (!r)
		r = store_exec(s, "DELETE FROM pending_task WHERE name = 'rebuild_rollups'", err,
			       errlen);
	sqlite3_finalize(sel);
	sqlite3_finalize(holds);
	free(hold);
	if (r) {
		txn_abort(s);
		return r;
	}
	return txn_commit(s, err, errlen);
}

/* Runs what a migration left for a writer to do (only a writer gets here). */
static int run_pending_tasks(struct store *s, char *err, size_t errlen)
{
	int64_t n = 0;
	int r = query_int(s, "SELECT count(*) FROM pending_task WHERE name = 'rebuild_rollups'", &n,
			  err, errlen);

	if (r || !n)
		return r;
	return rollup_rebuild(s, err, errlen);
}

/* Removes an incomplete source and its forks, a batch per transaction. */
static int purge_source(struct store *s, int64_t id, char *err, size_t errlen)
{
	sqlite3_stmt *sel = NULL, *del = NULL;
	uint64_t n;
	int r, rc;

	r = store_prepare(s,
			  "SELECT " FORK_DELETE_COLUMNS " FROM fork WHERE source_id = ?1"
			  " ORDER BY id LIMIT ?2",
			  &sel, err, errlen);
	if (r)
		return r;
	sqlite3_bind_int64(sel, 1, id);
	sqlite3_bind_int(sel, 2, PURGE_BATCH);
	do {
		r = delete_fork_batch(s, sel, &n, err, errlen);
	} while (!r && n);
	sqlite3_finalize(sel);
	if (r)
		return r;
	r = store_prepare(s, "DELETE FROM source WHERE id = ?1", &del, err, errlen);
	if (r)
		return r;
	sqlite3_bind_int64(del, 1, id);
	rc = sqlite3_step(del);
	sqlite3_finalize(del);
	if (rc != SQLITE_DONE)
		return sql_fail(s, err, errlen, rc, "deleting an incomplete source");
	return 0;
}

int store_source_begin(struct store *s, const struct store_source_info *info,
		       int64_t *source_id, bool *already_done, char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	int rc, r;

	*already_done = false;
	*source_id = 0;
	if (s->opts.read_only)
		return store_fail(s, err, errlen, -EROFS, "%s: opened read-only", s->path);
	if (info->content_sha256 && strlen(info->content_sha256) != 64)
		return store_fail(s, err, errlen, -EINVAL, "content hash must be 64 hex chars");
	r = txn_commit(s, err, errlen);
	if (r)
		return r;

	if (info->content_sha256) {
		int64_t found = 0;
		bool complete = false;

		r = store_prepare(s,
				  "SELECT id, completed_wall_ns IS NOT NULL FROM source"
				  " WHERE content_sha256 = ?1",
				  &st, err, errlen);
		if (r)
			return r;
		sqlite3_bind_text(st, 1, info->content_sha256, -1, SQLITE_STATIC);
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW) {
			found = sqlite3_column_int64(st, 0);
			complete = sqlite3_column_int(st, 1);
		} else if (rc != SQLITE_DONE) {
			r = sql_fail(s, err, errlen, rc, "looking up the source");
		}
		sqlite3_finalize(st);
		st = NULL;
		if (r)
			return r;
		if (found && complete) {
			*already_done = true;
			*source_id = found;
			return 0;
		}
		if (found) {
			/* Left incomplete by a writer that died: start it over. */
			r = purge_source(s, found, err, errlen);
			if (r)
				return r;
		}
	}

	r = store_prepare(s,
			  "INSERT INTO source(kind, host, path, format, kernel, content_sha256,"
			  " size_bytes, clock_offset_ns, started_wall_ns)"
			  " VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9)",
			  &st, err, errlen);
	if (r)
		return r;
	sqlite3_bind_text(st, 1, info->kind == STORE_SOURCE_LIVE ? "live" : "replay", -1,
			  SQLITE_STATIC);
	bind_str(st, 2, info->host);
	bind_str(st, 3, info->path);
	bind_str(st, 4, info->format);
	bind_str(st, 5, info->kernel);
	bind_str(st, 6, info->content_sha256);
	bind_pid(st, 7, info->size_bytes);
	if (info->clock_offset_ns == INT64_MIN)
		sqlite3_bind_null(st, 8);
	else
		sqlite3_bind_int64(st, 8, info->clock_offset_ns);
	sqlite3_bind_int64(st, 9, store_now_ns());
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return sql_fail(s, err, errlen, rc, "adding a source");
	*source_id = sqlite3_last_insert_rowid(s->db);
	s->cb_source = *source_id;
	s->cb_forks = 0;
	return 0;
}

int store_source_abort(struct store *s, int64_t source_id, char *err, size_t errlen)
{
	int r;

	txn_abort(s);
	r = purge_source(s, source_id, err, errlen);
	s->off_source = 0;
	return r;
}

int store_insert_fork(struct store *s, int64_t source_id, const struct pt_fork *f,
		      int64_t *fork_id, char *err, size_t errlen)
{
	int64_t vals[STORE_M_COUNT - 1], id, wall;
	uint64_t hold_small[64], *hold = hold_small;
	sqlite3_stmt *st;
	size_t i;
	int rc, r;

	r = source_offset(s, source_id, err, errlen);
	if (r)
		return r;
	r = txn_begin(s, err, errlen);
	if (r)
		return r;
	if (s->off_known && f->ts_ns != PT_NO_TIME && f->ts_ns <= INT64_MAX)
		wall = (int64_t)f->ts_ns + s->off_ns;
	else
		wall = store_now_ns();

	st = s->ins_fork;
	sqlite3_reset(st);
	sqlite3_bind_int64(st, 1, source_id);
	sqlite3_bind_int64(st, 2, wall);
	bind_time(st, 3, f->ts_ns);
	bind_pid(st, 4, f->parent_pid);
	bind_comm(st, 5, f->parent_comm);
	bind_pid(st, 6, f->child_pid);
	bind_comm(st, 7, f->child_comm);
	bind_time(st, 8, f->kernel_clone_ns);
	bind_time(st, 9, f->copy_process_ns);
	bind_time(st, 10, f->dup_mmap_ns);
	bind_time(st, 11, f->copy_page_range_ns);
	bind_count(st, 12, f->vmas);
	bind_count(st, 13, f->pte_passes);
	bind_count(st, 14, f->lock_breaks);
	bind_count(st, 15, f->ptes);
	bind_time(st, 16, f->max_lock_hold_ns);
	sqlite3_bind_int(st, 17, f->complete);
	sqlite3_bind_int64(st, 18, f->flags);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		r = sql_fail(s, err, errlen, rc, "storing a fork");
		goto fail;
	}
	id = sqlite3_last_insert_rowid(s->db);

	st = s->ins_vma;
	for (i = 0; i < f->nr_vma; i++) {
		const struct pt_vma_copy *v = &f->vma[i];

		sqlite3_reset(st);
		sqlite3_bind_int64(st, 1, id);
		sqlite3_bind_int64(st, 2, (int64_t)i);
		bind_time(st, 3, v->start_ns);
		bind_time(st, 4, v->dur_ns);
		bind_pid(st, 5, v->passes);
		bind_pid(st, 6, v->ptes);
		sqlite3_bind_int(st, 7, v->huge);
		rc = sqlite3_step(st);
		if (rc != SQLITE_DONE) {
			sqlite3_reset(st);
			r = sql_fail(s, err, errlen, rc, "storing a VMA copy");
			goto fail;
		}
	}
	sqlite3_reset(st);
	if (f->nr_pass > sizeof(hold_small) / sizeof(hold_small[0])) {
		hold = malloc(f->nr_pass * sizeof(*hold));
		if (!hold) {
			r = store_fail(s, err, errlen, -ENOMEM, "out of memory");
			goto fail;
		}
	}
	st = s->ins_pass;
	for (i = 0; i < f->nr_pass; i++) {
		const struct pt_pte_pass *p = &f->pass[i];

		sqlite3_reset(st);
		sqlite3_bind_int64(st, 1, id);
		sqlite3_bind_int64(st, 2, (int64_t)i);
		sqlite3_bind_int(st, 3, p->vma);
		bind_pid(st, 4, p->ptes);
		bind_time(st, 5, p->start_ns);
		bind_time(st, 6, p->hold_ns);
		sqlite3_bind_int(st, 7, p->new_pmd);
		sqlite3_bind_int(st, 8, p->resumed);
		rc = sqlite3_step(st);
		if (rc != SQLITE_DONE) {
			sqlite3_reset(st);
			r = sql_fail(s, err, errlen, rc, "storing a PTE pass");
			goto fail;
		}
		hold[i] = p->hold_ns;
	}
	sqlite3_reset(st);

	fork_metric_values(f, vals);
	r = store_rollup_fork(s, wall, f->parent_comm, vals, f->complete, f->ptes, hold,
			      f->nr_pass, 1, err, errlen);
	if (hold != hold_small)
		free(hold);
	if (r)
		goto fail;
	if (fork_id)
		*fork_id = id;
	s->txn_source = source_id;
	if (source_id == s->cb_source)
		s->cb_forks++;
	s->txn_forks++;
	s->txn_rows += 1 + (unsigned)f->nr_vma + (unsigned)f->nr_pass;
	if (s->txn_forks >= s->opts.batch_forks || s->txn_rows >= s->opts.batch_rows)
		return txn_commit(s, err, errlen);
	return 0;
fail:
	txn_abort(s);
	return r;
}

int store_source_end(struct store *s, int64_t source_id, const struct pt_input_stats *st_in,
		     char *err, size_t errlen)
{
	struct pt_input_stats none;
	const struct pt_input_stats *in = st_in;
	sqlite3_stmt *st = NULL;
	int rc, r;

	if (!in) {
		pt_input_stats_init(&none);
		in = &none;
	}
	r = txn_begin(s, err, errlen);
	if (r)
		return r;
	r = store_prepare(s,
			  "UPDATE source SET events=?2, lines=?3, unparsed_lines=?4,"
			  " lost_events=?5, lost_unknown=?6, first_ts_ns=?7, last_ts_ns=?8,"
			  " cpus=?9, completed_wall_ns=?10,"
			  " forks=(SELECT count(*) FROM fork WHERE source_id = ?1)"
			  " WHERE id = ?1",
			  &st, err, errlen);
	if (r)
		goto fail;
	sqlite3_bind_int64(st, 1, source_id);
	sqlite3_bind_int64(st, 2, (int64_t)in->events);
	sqlite3_bind_int64(st, 3, (int64_t)in->lines);
	sqlite3_bind_int64(st, 4, (int64_t)in->unparsed_lines);
	sqlite3_bind_int64(st, 5, (int64_t)in->lost_events);
	sqlite3_bind_int(st, 6, in->lost_unknown);
	bind_time(st, 7, in->first_ts_ns);
	bind_time(st, 8, in->last_ts_ns);
	sqlite3_bind_int(st, 9, in->cpus);
	sqlite3_bind_int64(st, 10, store_now_ns());
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		r = sql_fail(s, err, errlen, rc, "completing a source");
		goto fail;
	}
	if (sqlite3_changes(s->db) != 1) {
		r = store_fail(s, err, errlen, -ENOENT, "%s: no source %lld", s->path,
			       (long long)source_id);
		goto fail;
	}
	s->txn_forks++; /* report the final count through on_commit */
	s->txn_source = source_id;
	return txn_commit(s, err, errlen);
fail:
	txn_abort(s);
	return r;
}

/* ---- retention ---- */

static int used_bytes(struct store *s, int64_t *used, int64_t *file, char *err, size_t errlen)
{
	int64_t pages, free_pages, page_size;
	int r;

	r = query_int(s, "PRAGMA page_count", &pages, err, errlen);
	if (!r)
		r = query_int(s, "PRAGMA freelist_count", &free_pages, err, errlen);
	if (!r)
		r = query_int(s, "PRAGMA page_size", &page_size, err, errlen);
	if (r)
		return r;
	*used = (pages - free_pages) * page_size;
	*file = pages * page_size;
	return 0;
}

/*
 * Sources retention has emptied (they had forks, none is left), and complete
 * sources without forks older than the age limit. Live sessions in progress
 * are kept.
 */
static int delete_emptied_sources(struct store *s, int max_age_days,
				  struct store_retention_result *res, char *err, size_t errlen)
{
	sqlite3_stmt *del = NULL;
	int64_t cutoff = max_age_days > 0
				 ? store_now_ns() - (int64_t)max_age_days * 86400 * 1000000000ll
				 : INT64_MIN;
	int rc, r;

	r = store_prepare(s,
			  "DELETE FROM source WHERE completed_wall_ns IS NOT NULL"
			  " AND (forks > 0 OR completed_wall_ns < ?1)"
			  " AND NOT EXISTS (SELECT 1 FROM fork WHERE source_id = source.id)",
			  &del, err, errlen);
	if (r)
		return r;
	sqlite3_bind_int64(del, 1, cutoff);
	rc = sqlite3_step(del);
	sqlite3_finalize(del);
	if (rc != SQLITE_DONE)
		return sql_fail(s, err, errlen, rc, "deleting emptied sources");
	res->sources_deleted += (uint64_t)sqlite3_changes(s->db);
	return 0;
}

int store_enforce_retention(struct store *s, int max_age_days, int64_t max_bytes,
			    struct store_retention_result *res, char *err, size_t errlen)
{
	struct store_retention_result local = {0};
	sqlite3_stmt *sel = NULL;
	int64_t used = 0, file = 0, free_pages;
	uint64_t n;
	int r;

	if (!res)
		res = &local;
	memset(res, 0, sizeof(*res));
	if (max_age_days < 0 || max_bytes < 0)
		return store_fail(s, err, errlen, -EINVAL, "retention limits must not be negative");
	r = txn_commit(s, err, errlen);
	if (r)
		return r;

	if (max_age_days > 0) {
		int64_t cutoff = store_now_ns() - (int64_t)max_age_days * 86400 * 1000000000ll;

		r = store_prepare(s,
				  "SELECT " FORK_DELETE_COLUMNS " FROM fork WHERE wall_ns < ?1"
				  " ORDER BY wall_ns LIMIT ?2",
				  &sel, err, errlen);
		if (r)
			return r;
		sqlite3_bind_int64(sel, 1, cutoff);
		sqlite3_bind_int(sel, 2, PURGE_BATCH);
		do {
			r = delete_fork_batch(s, sel, &n, err, errlen);
			res->forks_deleted += n;
		} while (!r && n);
		sqlite3_finalize(sel);
		sel = NULL;
		if (r)
			return r;
	}

	r = used_bytes(s, &used, &file, err, errlen);
	if (r)
		return r;
	if (max_bytes > 0 && used > max_bytes) {
		r = store_prepare(s,
				  "SELECT " FORK_DELETE_COLUMNS " FROM fork ORDER BY wall_ns"
				  " LIMIT ?1",
				  &sel, err, errlen);
		if (r)
			return r;
		sqlite3_bind_int(sel, 1, SIZE_BATCH);
		while (used > max_bytes) {
			r = delete_fork_batch(s, sel, &n, err, errlen);
			if (r || !n)
				break;
			res->forks_deleted += n;
			r = used_bytes(s, &used, &file, err, errlen);
			if (r)
				break;
		}
		sqlite3_finalize(sel);
		if (r)
			return r;
	}
	r = delete_emptied_sources(s, max_age_days, res, err, errlen);
	if (r)
		return r;

	/* Give freed pages back, a few per transaction. */
	for (;;) {
		r = query_int(s, "PRAGMA freelist_count", &free_pages, err, errlen);
		if (r || !free_pages)
			break;
		r = store_exec(s, "PRAGMA incremental_vacuum(" STORE_STR(VACUUM_STEP_PAGES) ")",
			       err, errlen);
		if (r)
			break;
		{
			int64_t after;

			r = query_int(s, "PRAGMA freelist_count", &after, err, errlen);
			if (r || after >= free_pages)
				break; /* auto_vacuum off (an old file): nothing to give back */
		}
	}
	if (r)
		return r;
	sqlite3_wal_checkpoint_v2(s->db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
	r = used_bytes(s, &used, &file, err, errlen);
	res->used_bytes = used;
	res->file_bytes = file;
	return r;
}
