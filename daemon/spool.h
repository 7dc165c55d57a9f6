/* SPDX-License-Identifier: MIT */
/*
 * The upload spool: where an accepted upload lives until it is replayed into
 * the store, so that a 202 means durable. A directory next to the database
 * (DB-uploads/, mode 0700, ours), holding:
 *
 *   .partial-XXXXXX        an upload being received (not acknowledged yet)
 *   job-NS-N.trace         an accepted upload, fsynced, renamed into place
 *   job-NS-N.trace.name    its display name (written and fsynced first)
 *
 * At start the daemon refuses a spool directory that is not its own (a
 * symlink, another owner, group or other access: someone else could plant a
 * job that root then replays), removes partial files and, from earlier
 * versions that spooled to TMPDIR, its orphaned ptescoped-upload-* files,
 * then queues every job again (oldest first; a job file that is not a
 * regular file of ours is skipped). A job's files are removed once its
 * replay is done or the file turned out not to be a trace we read; on any
 * other failure (the database, the daemon stopping) it stays, to be tried
 * again (ingest.c) and at the next start.
 *
 * Bounded: the jobs and the uploads being received count against
 * max_files and max_bytes (the bytes an upload announced in Content-Length,
 * or has written so far); an upload that would pass either is refused. The
 * HTTP threads reserve and the replay worker releases, under the spool's
 * lock.
 */
#ifndef PTESCOPED_SPOOL_H
#define PTESCOPED_SPOOL_H

#include <stddef.h>
#include <stdint.h>

struct pd_spool;

struct pd_spool_limits {
	uint64_t max_bytes; /* 0: 1 GiB */
	unsigned max_files; /* 0: 64 */
};

/*
 * Opens @dir (created mode 0700 if missing; an existing one must be a real
 * directory owned by us with no group or other access), removes leftovers
 * (logged) and counts the jobs in it. 0 or -errno with @err. Free with
 * pd_spool_free (accepts NULL).
 */
int pd_spool_open(const char *dir, const struct pd_spool_limits *lim, struct pd_spool **out,
		  char *err, size_t errlen);
void pd_spool_free(struct pd_spool *sp);
const char *pd_spool_dir(const struct pd_spool *sp);

/*
 * Room for one more upload of @bytes (0: not known yet). 0, or -ENOSPC with
 * a message when the spool would pass its file count or its bytes.
 */
int pd_spool_reserve(struct pd_spool *sp, uint64_t bytes, char *err, size_t errlen);
/* @more bytes for an upload already reserved, as it streams in. 0 or -ENOSPC. */
int pd_spool_grow(struct pd_spool *sp, uint64_t more, char *err, size_t errlen);
/* An upload's reservation of @bytes given back (it failed, or its job is gone).
 * Accepts NULL. */
void pd_spool_release(struct pd_spool *sp, uint64_t bytes);
/* @bytes of an upload's reservation it did not use (a shorter body than announced). */
void pd_spool_trim(struct pd_spool *sp, uint64_t bytes);

/*
 * Makes the received upload @partial (closed, fsynced) a job named @name:
 * the name file first, then the rename, then the directory, all synced. The
 * job's path goes to @out. 0 or -errno with @err (the partial file is left).
 */
int pd_spool_commit(struct pd_spool *sp, const char *partial, const char *name, char *out,
		    size_t outlen, char *err, size_t errlen);

/* Calls @fn on every job, oldest first, with its name. Returns the count or -errno. */
int pd_spool_each(struct pd_spool *sp, int (*fn)(const char *path, const char *name, void *ctx),
		  void *ctx);

/* Removes a job's files (the trace and its .name) and gives its room back (@sp
 * may be NULL: no room to give back). */
void pd_spool_remove(struct pd_spool *sp, const char *path);

/* What the spool holds (jobs and uploads being received) and its limits. */
void pd_spool_usage(struct pd_spool *sp, unsigned *files, uint64_t *bytes, unsigned *max_files,
		    uint64_t *max_bytes);

#endif
