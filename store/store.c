/* SPDX-License-Identifier: MIT */
/*
 * The store's connection: opening (create, migrate, refuse what is not ours,
 * run a pending task such as the rollup rebuild), the SQLite error boundary
 * (store_errno: SQLite codes become negative errno here, once), and closing.
 *
 * The other jobs of the write side have files of their own: transactions
 * (store_txn.c), comm groups and rollups (store_rollup.c), sources and fork
 * inserts (store_write.c), purge and retention (store_purge.c); the read
 * side is store_query.c. Durability: WAL with synchronous=NORMAL (a commit
 * survives the process being killed; a power cut may lose the last ones) or
 * FULL on request.
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

/* SQLite's progress handler: non-zero interrupts the statement. */
static int past_deadline(void *ctx)
{
	const struct store *s = ctx;

	return s->deadline_ns && (int64_t)pt_mono_ns() >= s->deadline_ns;
}

void store_set_deadline(struct store *s, int64_t deadline_mono_ns)
{
	s->deadline_ns = deadline_mono_ns;
	/* every 1000 virtual machine steps: a few microseconds apart */
	sqlite3_progress_handler(s->db, deadline_mono_ns ? 1000 : 0,
				 deadline_mono_ns ? past_deadline : NULL, s);
}

int store_sql_fail(struct store *s, char *err, size_t errlen, int rc, const char *what)
{
	const char *msg = s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc);

	if ((rc & 0xff) == SQLITE_INTERRUPT && s->deadline_ns &&
	    (int64_t)pt_mono_ns() >= s->deadline_ns)
		return store_fail(s, err, errlen, -ETIMEDOUT,
				  "query over its time budget (while %s); narrow the range", what);

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
		return store_sql_fail(s, err, errlen, rc, "preparing a statement");
	return 0;
}

int store_exec(struct store *s, const char *sql, char *err, size_t errlen)
{
	int rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);

	if (rc != SQLITE_OK)
		return store_sql_fail(s, err, errlen, rc, sql);
	return 0;
}

/* Runs a statement returning one integer (PRAGMA x, SELECT count(*)). */
int store_query_int(struct store *s, const char *sql, int64_t *v, char *err, size_t errlen)
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
		return store_sql_fail(s, err, errlen, rc, sql);
	return 0;
}

/* The progress handler: the caller's yield point; never interrupts. */
static int call_yield(void *ctx)
{
	((struct store *)ctx)->opts.yield();
	return 0;
}

static void finalize_all(struct store *s)
{
	sqlite3_stmt **all[] = {&s->ins_fork,	&s->ins_vma,	&s->ins_pass,
				&s->get_rollup, &s->put_rollup, &s->del_rollup,
				&s->find_group, &s->ins_group,	&s->count_groups,
				&s->get_pass_blob, &s->get_pass_rows, &s->get_vma_blob,
				&s->get_vma_rows};
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
	free(s->agg_list);
	free(s->path);
	free(s);
}

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
	r = store_query_int(s, "PRAGMA user_version", &now_version, err, errlen);
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
static int check_identity(struct store *s, int64_t *version, bool *fresh, char *err, size_t errlen)
{
	int64_t app_id, objects;
	int r;

	r = store_query_int(s, "PRAGMA application_id", &app_id, NULL, 0);
	if (r == -EINVAL)
		return store_fail(
		    s, err, errlen, -EINVAL,
		    "%s: not a ptescope database (not an SQLite file); left untouched", s->path);
	if (r == -EUCLEAN)
		return store_fail(s, err, errlen, -EUCLEAN,
				  "%s: database is corrupt (%s); left untouched", s->path,
				  sqlite3_errmsg(s->db));
	if (r)
		return store_fail(s, err, errlen, r, "%s: cannot read the database: %s", s->path,
				  sqlite3_errmsg(s->db));
	r = store_query_int(s, "PRAGMA user_version", version, err, errlen);
	if (r)
		return r;
	r = store_query_int(s, "SELECT count(*) FROM sqlite_schema", &objects, NULL, 0);
	if (r)
		return store_fail(s, err, errlen, r, "%s: database is corrupt (%s); left untouched",
				  s->path, sqlite3_errmsg(s->db));
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
		return store_fail(
		    s, err, errlen, -EPROTO,
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
		r = store_fail(
		    s, err, errlen, store_errno(rc) == -EUCLEAN ? -EUCLEAN : store_errno(rc),
		    "%s: database is corrupt (%s); left untouched", s->path, sqlite3_errmsg(s->db));
	}
	sqlite3_finalize(st);
	return r;
}

static int prepare_writer(struct store *s, char *err, size_t errlen)
{
	int r;

	r = store_prepare(
	    s,
	    "INSERT INTO fork(source_id, wall_ns, ts_ns, parent_pid, parent_comm,"
	    " child_pid, child_comm, kernel_clone_ns, copy_process_ns, dup_mmap_ns,"
	    " copy_page_range_ns, vmas, pte_passes, lock_breaks, ptes,"
	    " max_lock_hold_ns, complete, flags, total_ns, copy_resched, copy_offcpu_ns,"
	    " mem_rss_anon_bytes, mem_rss_file_bytes, mem_rss_shmem_bytes, mem_pte_bytes,"
	    " mem_map_count, mem_anon_huge_bytes, mem_child_exec, kind, clone_flags, cgroup)"
	    " VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17,?18,?19,?20,"
	    "?21,?22,?23,?24,?25,?26,?27,?28,?29,?30,?31)",
	    &s->ins_fork, err, errlen);
	if (!r)
		r = store_prepare(s,
				  "INSERT INTO fork_vma(fork_id, data) VALUES (?1, ?2)",
				  &s->ins_vma, err, errlen);
	if (!r)
		r = store_prepare(s,
				  "INSERT INTO fork_pass(fork_id, data) VALUES (?1, ?2)",
				  &s->ins_pass, err, errlen);
	if (!r)
		r = store_prepare(s,
				  "SELECT h, cost_forks, cost_ns, cost_ptes FROM rollup"
				  " WHERE metric=?1 AND res=?2 AND t=?3 AND grp=?4",
				  &s->get_rollup, err, errlen);
	if (!r)
		r = store_prepare(
		    s,
		    "INSERT OR REPLACE INTO rollup(metric, res, t, grp, n, h,"
		    " cost_forks, cost_ns, cost_ptes) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9)",
		    &s->put_rollup, err, errlen);
	if (!r)
		r = store_prepare(
		    s, "DELETE FROM rollup WHERE metric=?1 AND res=?2 AND t=?3 AND grp=?4",
		    &s->del_rollup, err, errlen);
	if (!r)
		r = store_prepare(s, "INSERT INTO comm_group(name) VALUES (?1)", &s->ins_group, err,
				  errlen);
	if (!r)
		r = store_prepare(s, "SELECT count(*) FROM comm_group", &s->count_groups, err,
				  errlen);
	return r;
}

/* A handle with @opts (NULL: defaults) filled in, not yet connected; *@out NULL on failure. */
static int store_new(const char *path, const struct store_opts *opts, struct store **out, char *err,
		     size_t errlen)
{
	struct store *s = calloc(1, sizeof(*s));

	*out = NULL;
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
		store_free(s);
		return store_fail(NULL, err, errlen, -ENOMEM, "out of memory");
	}
	*out = s;
	return 0;
}

/* Opens the SQLite connection (a reader only to a file that exists). */
static int connect_db(struct store *s, char *err, size_t errlen)
{
	const char *path = s->path;
	struct stat sb;
	int flags, rc;

	if (stat(path, &sb) == 0 && !S_ISREG(sb.st_mode))
		return store_fail(s, err, errlen, -EINVAL, "%s: not a regular file", path);
	if (s->opts.read_only && stat(path, &sb) != 0)
		return store_fail(s, err, errlen, -errno, "%s: %s", path, strerror(errno));
	flags = SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE;
	flags |=
	    s->opts.read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
	rc = sqlite3_open_v2(path, &s->db, flags, NULL);
	if (rc != SQLITE_OK)
		return store_fail(s, err, errlen, store_errno(rc), "%s: cannot open: %s", path,
				  s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
	sqlite3_busy_timeout(s->db, s->opts.busy_timeout_ms);
	if (s->opts.yield)
		sqlite3_progress_handler(s->db, 2000, call_yield, s);
	sqlite3_extended_result_codes(s->db, 1);
	return 0;
}

/* A reader: refuses an empty file or an older schema, then never writes. */
static int open_reader(struct store *s, int64_t version, bool fresh, char *err, size_t errlen)
{
	if (fresh)
		return store_fail(s, err, errlen, -ENOENT,
				  "%s: empty, nothing has been stored in it", s->path);
	if (version < store_schema_version())
		return store_fail(s, err, errlen, -EPROTO,
				  "%s: schema %lld is older than this build's %d; open it "
				  "once for writing (ptescope replay --db) to migrate it",
				  s->path, (long long)version, store_schema_version());
	return store_exec(s, "PRAGMA query_only = ON", err, errlen);
}

/* The writer's settings: WAL, durability, cache and checkpoint sizes. */
static int writer_pragmas(struct store *s, bool fresh, char *err, size_t errlen)
{
	int r = 0;

	/* Must precede the first table: lets retention shrink the file. */
	if (fresh)
		r = store_exec(s, "PRAGMA auto_vacuum = INCREMENTAL", err, errlen);
	if (!r)
		r = store_exec(s, "PRAGMA journal_mode = WAL", err, errlen);
	if (!r)
		r = store_exec(s,
			       s->opts.sync_full ? "PRAGMA synchronous = FULL"
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
	return r;
}

/* A writer: checks the file, migrates it, prepares the inserts, runs what
 * a migration left pending. */
static int open_writer(struct store *s, int64_t version, bool fresh, char *err, size_t errlen)
{
	int r = 0;

	/* SQLite opens a file the OS only lets us read read-only, without a word:
	 * every write would fail later. */
	if (sqlite3_db_readonly(s->db, "main") == 1)
		return store_fail(s, err, errlen, -EROFS,
				  "%s: cannot be written (read-only file or file system; the "
				  "writer needs write access to it and its directory)",
				  s->path);
	if (!fresh && !s->opts.skip_check)
		r = quick_check(s, err, errlen);
	/* From here on we write: the file is new, empty, or ours and sound. */
	if (!r)
		r = writer_pragmas(s, fresh, err, errlen);
	if (!r && version < store_schema_version())
		r = migrate(s, version, err, errlen);
	if (!r)
		r = store_query_int(s, "PRAGMA user_version", &version, err, errlen);
	if (!r && version != store_schema_version())
		r = store_fail(s, err, errlen, -EPROTO, "%s: schema %lld after migration, want %d",
			       s->path, (long long)version, store_schema_version());
	if (!r)
		r = prepare_writer(s, err, errlen);
	if (!r)
		r = store_run_pending_tasks(s, err, errlen);
	return r;
}

int store_open(const char *path, const struct store_opts *opts, struct store **out, char *err,
	       size_t errlen)
{
	struct store *s;
	int64_t version = 0;
	bool fresh = false;
	int r;

	*out = NULL;
	r = store_new(path, opts, &s, err, errlen);
	if (r)
		return r;
	r = connect_db(s, err, errlen);
	if (!r)
		r = check_identity(s, &version, &fresh, err, errlen);
	if (!r)
		r = s->opts.read_only ? open_reader(s, version, fresh, err, errlen)
				      : open_writer(s, version, fresh, err, errlen);
	if (r) {
		store_free(s);
		return r;
	}
	*out = s;
	return 0;
}

int store_close(struct store *s)
{
	int r = 0;

	if (!s)
		return 0;
	if (s->in_txn)
		r = store_txn_commit(s, NULL, 0);
	if (s->wrote) /* keeps the planner's statistics current; never on an untouched file */
		sqlite3_exec(s->db, "PRAGMA optimize", NULL, NULL, NULL);
	store_free(s);
	return r;
}
