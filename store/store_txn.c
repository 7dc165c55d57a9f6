/* SPDX-License-Identifier: MIT */
/*
 * The store's transactions: inserts are grouped a few thousand forks to a
 * transaction; at commit the rollup deltas summed in memory are written
 * (store_rollup.c), and a failed transaction drops them with its caches.
 *
 * One transaction may hold the forks of several sources (the daemon's live
 * capture and a replay share the writer). So that one source's failure or
 * abort never costs another its forks silently, the transaction knows whose
 * forks it holds, and a rollback marks each of those sources as having lost
 * forks: a replay so marked is refused completion (store_source_end) and
 * done again, never kept with forks missing.
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

void store_comm_cache_drop(struct store *s)
{
	memset(s->comm, 0, sizeof(s->comm));
	s->nr_groups = -1;
}

static void reset_caches(struct store *s)
{
	store_comm_cache_drop(s);
	if (s->agg)
		store_rollup_clear(s);
	s->agg_used = 0;
}

void store_note_write_failed(struct store *s)
{
	s->health.failing = true;
	s->health.failures++;
	snprintf(s->health.last_error, sizeof(s->health.last_error), "%s", s->errmsg);
}

void store_note_write_ok(struct store *s)
{
	s->health.failing = false;
}

void store_write_health(const struct store *s, struct store_write_health *out)
{
	*out = s->health;
}

bool store_source_lost(const struct store *s, int64_t source_id)
{
	if (s->lost_overflow)
		return true;
	for (unsigned i = 0; i < s->nr_lost_src; i++)
		if (s->lost_src[i] == source_id)
			return true;
	return false;
}

void store_source_mark_lost(struct store *s, int64_t source_id)
{
	for (unsigned i = 0; i < s->nr_lost_src; i++)
		if (s->lost_src[i] == source_id)
			return;
	if (s->nr_lost_src == STORE_LOST_SOURCES)
		s->lost_overflow = true;
	else
		s->lost_src[s->nr_lost_src++] = source_id;
}

void store_source_forget_lost(struct store *s, int64_t source_id)
{
	for (unsigned i = 0; i < s->nr_lost_src; i++)
		if (s->lost_src[i] == source_id) {
			s->lost_src[i] = s->lost_src[--s->nr_lost_src];
			break;
		}
	if (!s->nr_lost_src)
		s->lost_overflow = false;
}

bool store_txn_has_source(const struct store *s, int64_t source_id)
{
	for (unsigned i = 0; i < s->nr_txn_src; i++)
		if (s->txn_src[i] == source_id)
			return true;
	return false;
}

int store_txn_add_source(struct store *s, int64_t source_id, char *err, size_t errlen)
{
	int r;

	if (store_txn_has_source(s, source_id))
		return 0;
	if (s->nr_txn_src == STORE_TXN_SOURCES) {
		r = store_txn_commit(s, err, errlen);
		if (r)
			return r;
		r = store_txn_begin(s, err, errlen);
		if (r)
			return r;
	}
	s->txn_src[s->nr_txn_src++] = source_id;
	return 0;
}

void store_txn_abort(struct store *s)
{
	if (s->in_txn && !sqlite3_get_autocommit(s->db))
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	for (unsigned i = 0; i < s->nr_txn_src; i++)
		store_source_mark_lost(s, s->txn_src[i]);
	s->nr_txn_src = 0;
	s->in_txn = false;
	s->txn_forks = s->txn_rows = 0;
	reset_caches(s);
}

int store_txn_begin(struct store *s, char *err, size_t errlen)
{
	int rc;

	if (s->in_txn)
		return 0;
	if (s->opts.read_only)
		return store_fail(s, err, errlen, -EROFS, "%s: opened read-only", s->path);
	rc = sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		int r = store_sql_fail(s, err, errlen, rc, "starting a transaction");

		store_note_write_failed(s);
		return r;
	}
	s->in_txn = true;
	s->txn_forks = s->txn_rows = 0;
	s->nr_txn_src = 0;
	return 0;
}

int store_txn_commit(struct store *s, char *err, size_t errlen)
{
	int rc, r;

	if (!s->in_txn)
		return 0;
	r = store_rollup_flush(s, err, errlen);
	if (r) {
		store_note_write_failed(s);
		store_txn_abort(s);
		return r;
	}
	rc = sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		r = store_sql_fail(s, err, errlen, rc, "committing");
		store_note_write_failed(s);
		store_txn_abort(s);
		return r;
	}
	store_note_write_ok(s);
	s->in_txn = false;
	s->wrote = true;
	s->nr_txn_src = 0;
	if (s->txn_forks && s->opts.on_commit)
		s->opts.on_commit(s->opts.on_commit_ctx, s->txn_source, s->cb_forks);
	s->txn_forks = s->txn_rows = 0;
	return 0;
}

int store_flush(struct store *s, char *err, size_t errlen)
{
	return store_txn_commit(s, err, errlen);
}

int store_probe_write(struct store *s, char *err, size_t errlen)
{
	char sql[64];
	int r = store_txn_begin(s, err, errlen);

	/* the header page rewritten with the value it holds: a write in every database */
	snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", store_schema_version());
	if (!r)
		r = store_exec(s, sql, err, errlen);
	if (r) {
		store_note_write_failed(s);
		store_txn_abort(s);
		return r;
	}
	return store_txn_commit(s, err, errlen);
}
