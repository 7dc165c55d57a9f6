/* SPDX-License-Identifier: MIT */
/*
 * Test driver of the store: ingests "trace files" the way `replay --db`
 * does (content hash, source begin, forks, source end) but with synthetic
 * forks derived from each file's hash, so the durability tests need no
 * analyzer. Prints one line per commit ("commit FILE N": N forks of FILE are
 * durable) so a test that kills it knows what must have survived.
 *
 *   store_driver ingest DB [-n FORKS] [-p MAXPASS] [-b BATCH] FILE...
 *   store_driver check DB [-n FORKS] FILE...
 *
 * check: integrity_check passes; each FILE is absent, incomplete, or
 * complete with exactly FORKS forks; no fork stored twice; the rollups count
 * exactly the forks stored and their cost sums equal the forks' sums, row by
 * row. Prints "FILE complete|incomplete|absent COUNT". A file the store
 * would take as new (missing, or a writer was killed while creating it) is
 * first opened once for writing, as the next writer would, then checked.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "store.h"
#include "check_sql.h"
#include "synth.h"

static const char *cur_file;

static void on_commit(void *ctx, int64_t source_id, uint64_t forks)
{
	printf("commit %s %llu\n", cur_file, (unsigned long long)forks);
	fflush(stdout);
}

static uint64_t seed_of(const char *hex)
{
	return strtoull((char[17]){hex[0], hex[1], hex[2], hex[3], hex[4], hex[5], hex[6], hex[7],
				   hex[8], hex[9], hex[10], hex[11], hex[12], hex[13], hex[14],
				   hex[15], 0},
			NULL, 16);
}

static int ingest(const char *db, unsigned forks, unsigned max_pass, unsigned batch, char **files,
		  int nfiles)
{
	struct store_opts o = {.batch_forks = batch, .on_commit = on_commit};
	struct store *s;
	char err[512], hex[65];
	int i, r;

	r = store_open(db, &o, &s, err, sizeof(err));
	if (r) {
		fprintf(stderr, "store_driver: %s\n", err);
		return 2;
	}
	for (i = 0; i < nfiles; i++) {
		struct store_source_info info = {.kind = STORE_SOURCE_REPLAY,
						 .path = files[i],
						 .format = "text",
						 .content_sha256 = hex,
						 .clock_offset_ns = INT64_MIN};
		int64_t src, size;
		bool done;
		uint64_t seed;
		unsigned k;

		cur_file = files[i];
		r = store_hash_file(files[i], hex, &size, err, sizeof(err));
		if (r)
			goto fail;
		info.size_bytes = size;
		r = store_source_begin(s, &info, &src, &done, err, sizeof(err));
		if (r)
			goto fail;
		if (done) {
			printf("skip %s\n", files[i]);
			continue;
		}
		seed = seed_of(hex);
		for (k = 0; k < forks; k++) {
			struct pt_fork f;

			synth_fork(&f, seed, k, max_pass);
			r = store_insert_fork(s, src, &f, NULL, err, sizeof(err));
			synth_release(&f);
			if (r)
				goto fail;
		}
		r = store_source_end(s, src, NULL, err, sizeof(err));
		if (r)
			goto fail;
		printf("done %s %u\n", files[i], forks);
		fflush(stdout);
	}
	r = store_close(s);
	return r ? 2 : 0;
fail:
	fprintf(stderr, "store_driver: %s\n", err);
	store_close(s);
	return r == -ENOSPC ? 3 : 2;
}

static int64_t one_int(sqlite3 *db, const char *sql, const char *text)
{
	sqlite3_stmt *st;
	int64_t v = -1;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		return -2;
	if (text)
		sqlite3_bind_text(st, 1, text, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_type(st, 0) == SQLITE_NULL ? -1 : sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

/*
 * Schema objects in the file, read directly (not through the store). The
 * connection may write, like any writer's: a hot journal left by the kill
 * (the first page, written before the switch to WAL) is rolled back.
 */
static int64_t schema_objects(const char *path)
{
	sqlite3 *db;
	int64_t n = -1;

	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK)
		n = one_int(db, "SELECT count(*) FROM sqlite_schema", NULL);
	sqlite3_close(db);
	return n;
}

/*
 * A writer killed while creating the database leaves no file, an empty one,
 * or one with a header (maybe a hot journal) and no tables; store_open takes
 * all of these as new and creates the schema. The check does the same, so
 * that it judges what the product would work with: a file without tables
 * that the store's read-only open calls empty is opened once for writing,
 * then checked. A database with tables is checked as the kill left it.
 */
static int open_as_store_would(const char *path)
{
	struct store_opts ro = {.read_only = true};
	struct store *s = NULL;
	struct stat sb;
	char err[512];
	int r;

	if (stat(path, &sb) == 0) {
		if (schema_objects(path) != 0)
			return 0; /* data, or unreadable: the checks below judge it */
		r = store_open(path, &ro, &s, err, sizeof(err));
		store_close(s);
		if (r != -ENOENT) {
			fprintf(stderr,
				"check: no tables, and the store does not call it empty: %s\n",
				r ? err : "opened");
			return -EPROTO;
		}
	}
	fprintf(stderr,
		"check: %s: nothing stored yet (writer killed while creating it);"
		" opening it as the next writer would\n",
		path);
	r = store_open(path, NULL, &s, err, sizeof(err));
	if (r) {
		fprintf(stderr, "check: %s\n", err);
		return r;
	}
	return store_close(s);
}

static int check(const char *path, unsigned forks, char **files, int nfiles)
{
	sqlite3 *db;
	sqlite3_stmt *st;
	char err[512], hex[65];
	int i, bad = 0;
	int64_t n, total;

	if (open_as_store_would(path))
		return 2;
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
		fprintf(stderr, "check: cannot open %s\n", path);
		return 2;
	}
	sqlite3_busy_timeout(db, 5000);
	sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL);
	if (sqlite3_step(st) != SQLITE_ROW ||
	    strcmp((const char *)sqlite3_column_text(st, 0), "ok")) {
		fprintf(stderr, "check: integrity_check: %s\n",
			sqlite3_column_text(st, 0) ? (const char *)sqlite3_column_text(st, 0)
						   : sqlite3_errmsg(db));
		bad = 1;
	}
	sqlite3_finalize(st);
	for (i = 0; i < nfiles; i++) {
		int64_t done;

		if (store_hash_file(files[i], hex, NULL, err, sizeof(err))) {
			fprintf(stderr, "check: %s\n", err);
			return 2;
		}
		done = one_int(db,
			       "SELECT completed_wall_ns IS NOT NULL FROM source"
			       " WHERE content_sha256 = ?1",
			       hex);
		n = one_int(db,
			    "SELECT count(*) FROM fork WHERE source_id ="
			    " (SELECT id FROM source WHERE content_sha256 = ?1)",
			    hex);
		printf("%s %s %lld\n", files[i],
		       done == 1   ? "complete"
		       : done == 0 ? "incomplete"
				   : "absent",
		       (long long)n);
		if (done == 1 && n != forks) {
			fprintf(stderr, "check: %s complete with %lld forks, want %u\n", files[i],
				(long long)n, forks);
			bad = 1;
		}
	}
	n = one_int(db,
		    "SELECT count(*) FROM (SELECT source_id, ts_ns, child_pid FROM fork"
		    " GROUP BY 1, 2, 3 HAVING count(*) > 1)",
		    NULL);
	if (n != 0) {
		fprintf(stderr, "check: %lld duplicated forks\n", (long long)n);
		bad = 1;
	}
	total = one_int(db, "SELECT count(*) FROM fork", NULL);
	for (i = 0; i < 2; i++) {
		n = one_int(
		    db,
		    i ? "SELECT coalesce(sum(n), 0) FROM rollup WHERE metric = 0 AND res = 1"
		      : "SELECT coalesce(sum(n), 0) FROM rollup WHERE metric = 0 AND res = 0",
		    NULL);
		if (n < 0 || n != total) {
			fprintf(stderr, "check: rollups count %lld forks, table has %lld\n",
				(long long)n, (long long)total);
			bad = 1;
		}
	}
	n = one_int(db, CHECK_COST_MISMATCH_SQL, NULL);
	if (n != 0) {
		fprintf(stderr, "check: %lld rollup rows' cost sums differ from their forks'\n",
			(long long)n);
		bad = 1;
	}
	n = one_int(db,
		    "SELECT (SELECT count(*) FROM pte_pass) +"
		    " (SELECT coalesce(sum(length(data) / 32), 0) FROM fork_pass) -"
		    " (SELECT coalesce(sum(pte_passes), 0) FROM fork)",
		    NULL);
	if (n != 0) {
		fprintf(stderr, "check: pass rows do not match the forks' pass counts (%lld)\n",
			(long long)n);
		bad = 1;
	}
	sqlite3_close(db);
	return bad;
}

/* Opens @db for writing once: an older schema is migrated (a committed fixture brought up to date). */
static int migrate(const char *db)
{
	struct store *s = NULL;
	char err[512];
	int r = store_open(db, NULL, &s, err, sizeof(err));

	if (r) {
		fprintf(stderr, "store_driver: %s\n", err);
		return 2;
	}
	return store_close(s) ? 2 : 0;
}

int main(int argc, char **argv)
{
	unsigned forks = 20000, max_pass = 8, batch = 500;
	const char *cmd, *db;
	int opt;

	if (argc < 3) {
		fprintf(stderr,
			"usage: store_driver ingest|check DB [-n N] [-p P] [-b B] FILE...\n"
			"       store_driver migrate DB\n");
		return 2;
	}
	cmd = argv[1];
	db = argv[2];
	optind = 3;
	while ((opt = getopt(argc, argv, "n:p:b:")) != -1) {
		switch (opt) {
		case 'n':
			forks = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'p':
			max_pass = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'b':
			batch = (unsigned)strtoul(optarg, NULL, 10);
			break;
		default:
			return 2;
		}
	}
	if (!strcmp(cmd, "ingest"))
		return ingest(db, forks, max_pass, batch, argv + optind, argc - optind);
	if (!strcmp(cmd, "migrate"))
		return migrate(db);
	if (!strcmp(cmd, "check"))
		return check(db, forks, argv + optind, argc - optind);
	fprintf(stderr, "store_driver: unknown command %s\n", cmd);
	return 2;
}
