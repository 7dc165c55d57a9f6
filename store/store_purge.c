/* SPDX-License-Identifier: MIT */
/*
 * Deleting forks: the purge of a source whose replay did not complete, and
 * retention by age and by size. Forks go in transactions of a few thousand,
 * subtracted from the rollups in the same transaction, so that the writer
 * never holds the lock for long; freed pages go back a few at a time.
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

/*
 * Deletes the forks @sel returns (columns: id, wall_ns, parent_comm,
 * kernel_clone_ns, copy_process_ns, dup_mmap_ns, copy_page_range_ns,
 * max_lock_hold_ns, ptes, complete, total_ns), with their detail, subtracting them from the
 * rollups, in one transaction. Sets *deleted. Used by purge and retention.
 */
static int delete_fork_batch(struct store *s, sqlite3_stmt *sel, uint64_t *deleted, char *err,
			     size_t errlen)
{
	sqlite3_stmt *del[STORE_FORK_DELETES] = {NULL};
	int rc = SQLITE_DONE, r, i;

	*deleted = 0;
	r = store_txn_begin(s, err, errlen);
	if (r)
		return r;
	for (i = 0; i < STORE_FORK_DELETES && !r; i++)
		r = store_prepare(s, store_fork_deletes[i], &del[i], err, errlen);
	while (!r && (rc = sqlite3_step(sel)) == SQLITE_ROW) {
		int64_t id = sqlite3_column_int64(sel, 0);

		r = store_rollup_fork_row(s, sel, -1, err, errlen);
		for (i = 0; i < STORE_FORK_DELETES && !r; i++) {
			sqlite3_reset(del[i]);
			sqlite3_bind_int64(del[i], 1, id);
			rc = sqlite3_step(del[i]);
			if (rc != SQLITE_DONE)
				r = store_sql_fail(s, err, errlen, rc, "deleting forks");
		}
		if (!r)
			(*deleted)++;
	}
	if (!r && rc != SQLITE_DONE)
		r = store_sql_fail(s, err, errlen, rc, "selecting forks to delete");
	sqlite3_reset(sel);
	for (i = 0; i < STORE_FORK_DELETES; i++)
		sqlite3_finalize(del[i]);
	if (r) {
		store_note_write_failed(s);
		store_txn_abort(s);
		return r;
	}
	return store_txn_commit(s, err, errlen);
}

/* Removes an incomplete source and its forks, a batch per transaction. */
int store_purge_source(struct store *s, int64_t id, char *err, size_t errlen)
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
		return store_sql_fail(s, err, errlen, rc, "deleting an incomplete source");
	return 0;
}

static int used_bytes(struct store *s, int64_t *used, int64_t *file, char *err, size_t errlen)
{
	int64_t pages, free_pages, page_size;
	int r;

	r = store_query_int(s, "PRAGMA page_count", &pages, err, errlen);
	if (!r)
		r = store_query_int(s, "PRAGMA freelist_count", &free_pages, err, errlen);
	if (!r)
		r = store_query_int(s, "PRAGMA page_size", &page_size, err, errlen);
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
		return store_sql_fail(s, err, errlen, rc, "deleting emptied sources");
	res->sources_deleted += (uint64_t)sqlite3_changes(s->db);
	return 0;
}

/* Deletes the forks stored more than @max_age_days ago. */
static int retain_by_age(struct store *s, int max_age_days, struct store_retention_result *res,
			 char *err, size_t errlen)
{
	int64_t cutoff = store_now_ns() - (int64_t)max_age_days * 86400 * 1000000000ll;
	sqlite3_stmt *sel = NULL;
	uint64_t n;
	int r = store_prepare(s,
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
	return r;
}

/* Deletes the oldest forks until the pages in use fit in @max_bytes. */
static int retain_by_size(struct store *s, int64_t max_bytes, struct store_retention_result *res,
			  char *err, size_t errlen)
{
	int64_t used = 0, file = 0;
	sqlite3_stmt *sel = NULL;
	uint64_t n;
	int r = used_bytes(s, &used, &file, err, errlen);

	if (r || max_bytes <= 0 || used <= max_bytes)
		return r;
	r = store_prepare(s, "SELECT " FORK_DELETE_COLUMNS " FROM fork ORDER BY wall_ns LIMIT ?1",
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
	return r;
}

/* Gives freed pages back to the file system, a few per transaction. */
static int give_back_pages(struct store *s, char *err, size_t errlen)
{
	int64_t free_pages, after;
	int r;

	for (;;) {
		r = store_query_int(s, "PRAGMA freelist_count", &free_pages, err, errlen);
		if (r || !free_pages)
			return r;
		r = store_exec(s, "PRAGMA incremental_vacuum(" STORE_STR(VACUUM_STEP_PAGES) ")",
			       err, errlen);
		if (!r)
			r = store_query_int(s, "PRAGMA freelist_count", &after, err, errlen);
		if (r || after >= free_pages)
			return r; /* auto_vacuum off (an old file): nothing to give back */
	}
}

int store_enforce_retention(struct store *s, int max_age_days, int64_t max_bytes,
			    struct store_retention_result *res, char *err, size_t errlen)
{
	struct store_retention_result local = {0};
	int64_t used = 0, file = 0;
	int r;

	if (!res)
		res = &local;
	memset(res, 0, sizeof(*res));
	if (max_age_days < 0 || max_bytes < 0)
		return store_fail(s, err, errlen, -EINVAL, "retention limits must not be negative");
	r = store_txn_commit(s, err, errlen);
	if (!r && max_age_days > 0)
		r = retain_by_age(s, max_age_days, res, err, errlen);
	if (!r)
		r = retain_by_size(s, max_bytes, res, err, errlen);
	if (!r)
		r = delete_emptied_sources(s, max_age_days, res, err, errlen);
	if (!r)
		r = give_back_pages(s, err, errlen);
	if (r)
		return r;
	sqlite3_wal_checkpoint_v2(s->db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
	r = used_bytes(s, &used, &file, err, errlen);
	res->used_bytes = used;
	res->file_bytes = file;
	return r;
}
