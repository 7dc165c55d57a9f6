/* SPDX-License-Identifier: MIT */
/*
 * The store's transactions: inserts are grouped a few thousand forks to a
 * transaction; at commit the rollup deltas summed in memory are written
 * (store_rollup.c), and a failed transaction drops them with its caches.
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

static void reset_caches(struct store *s)
{
	memset(s->comm, 0, sizeof(s->comm));
	s->nr_groups = -1;
	if (s->agg)
		memset(s->agg, 0, s->agg_cap * sizeof(*s->agg));
	s->agg_used = 0;
}

void store_txn_abort(struct store *s)
{
	if (s->in_txn && !sqlite3_get_autocommit(s->db))
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
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
	if (rc != SQLITE_OK)
		return store_sql_fail(s, err, errlen, rc, "starting a transaction");
	s->in_txn = true;
	s->txn_forks = s->txn_rows = 0;
	return 0;
}

int store_txn_commit(struct store *s, char *err, size_t errlen)
{
	int rc, r;

	if (!s->in_txn)
		return 0;
	r = store_rollup_flush(s, err, errlen);
	if (r) {
		store_txn_abort(s);
		return r;
	}
	rc = sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		r = store_sql_fail(s, err, errlen, rc, "committing");
		store_txn_abort(s);
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
	return store_txn_commit(s, err, errlen);
}
