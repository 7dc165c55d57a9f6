/* SPDX-License-Identifier: MIT */
/*
 * Sources and fork inserts: a source per replayed file (content-hashed, so
 * the same file is stored once; an interrupted copy is purged and redone) or
 * live session, and each fork with its VMA and pass detail and its rollups,
 * through statements prepared once; a failed insert takes back its own rows
 * only (undo_fork). A replayed source is marked
 * complete in the transaction holding its last forks, and only when none of
 * its forks was lost to a failed write, so after a crash or a failure an
 * incomplete source is recognised and redone.
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

/* Finds the clock offset of @source_id (cached for the source being written). */
static int source_offset(struct store *s, int64_t source_id, char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	int rc, r = 0;

	if (s->off_source == source_id)
		return 0;
	r = store_prepare(s, "SELECT clock_offset_ns FROM source WHERE id = ?1", &st, err, errlen);
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
		r = store_sql_fail(s, err, errlen, rc, "looking up a source");
	}
	sqlite3_finalize(st);
	return r;
}

int store_source_begin(struct store *s, const struct store_source_info *info, int64_t *source_id,
		       bool *already_done, char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	int rc, r;

	*already_done = false;
	*source_id = 0;
	if (s->opts.read_only)
		return store_fail(s, err, errlen, -EROFS, "%s: opened read-only", s->path);
	if (info->content_sha256 && strlen(info->content_sha256) != 64)
		return store_fail(s, err, errlen, -EINVAL, "content hash must be 64 hex chars");
	r = store_txn_commit(s, err, errlen);
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
			r = store_sql_fail(s, err, errlen, rc, "looking up the source");
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
			r = store_purge_source(s, found, err, errlen);
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
	if (rc != SQLITE_DONE) {
		r = store_sql_fail(s, err, errlen, rc, "adding a source");
		store_note_write_failed(s);
		return r;
	}
	store_note_write_ok(s);
	*source_id = sqlite3_last_insert_rowid(s->db);
	s->cb_source = *source_id;
	s->cb_forks = 0;
	return 0;
}

int store_source_abort(struct store *s, int64_t source_id, char *err, size_t errlen)
{
	int r = 0;

	/*
	 * The open transaction may hold other sources' forks (live capture
	 * beside a replay): those are committed, and this source's forks go
	 * with the rest of it in the purge. Only a transaction of this source
	 * alone is rolled back.
	 */
	if (s->in_txn && (s->nr_txn_src > 1 || (s->nr_txn_src == 1 && s->txn_src[0] != source_id)))
		r = store_txn_commit(s, err, errlen);
	else
		store_txn_abort(s);
	if (!r)
		r = store_purge_source(s, source_id, err, errlen);
	store_source_forget_lost(s, source_id);
	s->off_source = 0;
	return r;
}

/* The fork row. Sets *id. */
static int insert_fork_row(struct store *s, int64_t source_id, int64_t wall,
			   const struct pt_fork *f, int64_t *id, char *err, size_t errlen)
{
	sqlite3_stmt *st = s->ins_fork;
	int rc;

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
	bind_time(st, 19, pt_fork_total_ns(f));
	bind_count(st, 20, f->copy_resched);
	bind_time(st, 21, f->copy_offcpu_ns);
	/* columns 22.. are mem_* in enum pt_mem_field order (store.c prepare_writer) */
	for (int k = 0; k < PT_MEM_COUNT; k++)
		bind_count(st, 22 + k, pt_mem_has(&f->mem, k) ? f->mem.v[k] : PT_NULL);
	bind_str(st, 29, f->kind > PT_KIND_UNKNOWN && f->kind < PT_KIND_COUNT ? pt_kind_name(f->kind)
									       : NULL);
	/* the flags fit in 63 bits (the highest is CLONE_INTO_CGROUP, 1 << 33) */
	bind_count(st, 30, f->has_clone_flags ? (int64_t)(f->clone_flags & INT64_MAX) : PT_NULL);
	bind_str(st, 31, f->cgroup[0] ? f->cgroup : NULL);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return store_sql_fail(s, err, errlen, rc, "storing a fork");
	*id = sqlite3_last_insert_rowid(s->db);
	return 0;
}

/* The detail rows and the rollups of fork @id. */
static int insert_detail(struct store *s, int64_t id, int64_t wall, const struct pt_fork *f,
			 char *err, size_t errlen)
{
	int64_t vals[STORE_M_COUNT - 1];
	uint64_t hold_small[64], *hold = hold_small;
	int r = store_insert_vmas(s, id, f, err, errlen);

	if (!r && f->nr_pass > sizeof(hold_small) / sizeof(hold_small[0])) {
		hold = malloc(f->nr_pass * sizeof(*hold));
		if (!hold)
			return store_fail(s, err, errlen, -ENOMEM, "out of memory");
	}
	if (!r)
		r = store_insert_passes(s, id, f, err, errlen);
	for (size_t i = 0; !r && i < f->nr_pass; i++)
		hold[i] = f->pass[i].hold_ns;
	if (!r && f->kind == PT_KIND_FORK) { /* the rollups hold address-space copies */
		store_fork_metric_values(f, vals);
		r = store_rollup_fork(s, wall, f->parent_comm, vals, f->complete, f->ptes, hold,
				      f->nr_pass, 1, err, errlen);
	}
	if (hold != hold_small)
		free(hold);
	return r;
}

const char *const store_fork_deletes[STORE_FORK_DELETES] = {
    "DELETE FROM fork_pass WHERE fork_id = ?1", "DELETE FROM pte_pass WHERE fork_id = ?1",
    "DELETE FROM fork_vma WHERE fork_id = ?1", "DELETE FROM vma_copy WHERE fork_id = ?1",
    "DELETE FROM fork WHERE id = ?1"};

/* Deletes the rows of fork @id inserted so far (its detail first). 0 or -errno. */
static int delete_partial_fork(struct store *s, int64_t id)
{
	for (size_t i = 0; i < STORE_FORK_DELETES; i++) {
		sqlite3_stmt *st = NULL;
		int rc = sqlite3_prepare_v2(s->db, store_fork_deletes[i], -1, &st, NULL);

		if (rc == SQLITE_OK) {
			sqlite3_bind_int64(st, 1, id);
			rc = sqlite3_step(st);
		}
		sqlite3_finalize(st);
		if (rc != SQLITE_DONE && rc != SQLITE_OK)
			return store_errno(rc) ? store_errno(rc) : -EIO;
	}
	return 0;
}

/*
 * Takes back a fork whose insert failed half-way (@id: its row, 0 when that
 * failed already): its rows are deleted and the transaction goes on with the
 * other forks. (Each INSERT is atomic on its own, and the fork's rollup
 * deltas are added last, whole or not at all: nothing else of it is left.
 * A savepoint per fork would do the same and halved insert throughput.)
 * When SQLite rolled the whole transaction back by itself (SQLITE_FULL, an
 * I/O error), or the rows cannot be deleted, every source with forks in it
 * lost them.
 */
static void undo_fork(struct store *s, int64_t source_id, int64_t id)
{
	store_note_write_failed(s);
	store_source_mark_lost(s, source_id);
	if (!s->in_txn)
		return;
	if (sqlite3_get_autocommit(s->db) || (id && delete_partial_fork(s, id)))
		store_txn_abort(s);
}

int store_insert_fork(struct store *s, int64_t source_id, const struct pt_fork *f, int64_t *fork_id,
		      char *err, size_t errlen)
{
	int64_t id = 0, wall;
	int r;

	r = source_offset(s, source_id, err, errlen);
	if (!r)
		r = store_txn_begin(s, err, errlen);
	if (!r)
		r = store_txn_add_source(s, source_id, err, errlen);
	if (r)
		return r;
	if (s->off_known && f->ts_ns != PT_NO_TIME && f->ts_ns <= INT64_MAX)
		wall = (int64_t)f->ts_ns + s->off_ns;
	else
		wall = store_now_ns();
	r = insert_fork_row(s, source_id, wall, f, &id, err, errlen);
	if (!r)
		r = insert_detail(s, id, wall, f, err, errlen);
	if (r) {
		undo_fork(s, source_id, id);
		return r;
	}
	if (fork_id)
		*fork_id = id;
	s->txn_source = source_id;
	if (source_id == s->cb_source)
		s->cb_forks++;
	s->txn_forks++;
	s->txn_rows += 1 + (unsigned)f->nr_vma + (unsigned)f->nr_pass;
	if (s->txn_forks >= s->opts.batch_forks || s->txn_rows >= s->opts.batch_rows)
		return store_txn_commit(s, err, errlen);
	return 0;
}

/*
 * A source that lost forks to a failed write: a replay is refused completion
 * (-EIO: the caller aborts it and the file is done again); a live session is
 * a record of what was seen, and ends as usual. 0 or -errno.
 */
static int refuse_lost(struct store *s, int64_t source_id, char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	bool live = false;
	int r =
	    store_prepare(s, "SELECT kind = 'live' FROM source WHERE id = ?1", &st, err, errlen);

	if (r)
		return r;
	sqlite3_bind_int64(st, 1, source_id);
	if (sqlite3_step(st) == SQLITE_ROW)
		live = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	if (live) {
		store_source_forget_lost(s, source_id);
		return 0;
	}
	return store_fail(
	    s, err, errlen, -EIO,
	    "%s: forks of source %lld were lost by a failed write; not marked complete", s->path,
	    (long long)source_id);
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
	if (store_source_lost(s, source_id)) {
		r = refuse_lost(s, source_id, err, errlen);
		if (r)
			return r;
	}
	r = store_txn_begin(s, err, errlen);
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
		r = store_sql_fail(s, err, errlen, rc, "completing a source");
		store_note_write_failed(s);
		goto fail;
	}
	if (sqlite3_changes(s->db) != 1) {
		r = store_fail(s, err, errlen, -ENOENT, "%s: no source %lld", s->path,
			       (long long)source_id);
		goto fail;
	}
	s->txn_forks++; /* report the final count through on_commit */
	s->txn_source = source_id;
	r = store_txn_commit(s, err, errlen);
	if (!r)
		store_source_forget_lost(s, source_id);
	return r;
fail:
	store_txn_abort(s);
	return r;
}
