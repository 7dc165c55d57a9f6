/* SPDX-License-Identifier: MIT */
/*
 * The upload spool: where an accepted upload lives until it is replayed into
 * the store, so that a 202 means durable. A directory next to the database
 * (DB-uploads/, mode 0700), holding:
 *
 *   .partial-XXXXXX        an upload being received (not acknowledged yet)
 *   job-NS-N.trace         an accepted upload, fsynced, renamed into place
 *   job-NS-N.trace.name    its display name (written and fsynced first)
 *
 * At start the daemon removes partial files and, from earlier versions that
 * spooled to TMPDIR, its orphaned ptescoped-upload-* files, then queues every
 * job again (oldest first). A job's files are removed once its replay ends,
 * whatever the outcome, except when the daemon stops during it: then it is
 * replayed at the next start (a half-stored source is redone by the store).
 */
#ifndef PTESCOPED_SPOOL_H
#define PTESCOPED_SPOOL_H

#include <stddef.h>

/* Creates @dir if needed and removes leftovers (logged). 0 or -errno with @err. */
int pd_spool_init(const char *dir, char *err, size_t errlen);

/*
 * Makes the received upload @partial (closed, fsynced) a job named @name:
 * the name file first, then the rename, then the directory, all synced. The
 * job's path goes to @out. 0 or -errno with @err (the partial file is left).
 */
int pd_spool_commit(const char *dir, const char *partial, const char *name, char *out,
		    size_t outlen, char *err, size_t errlen);

/* Calls @fn on every job in @dir, oldest first, with its name. Returns the count or -errno. */
int pd_spool_each(const char *dir, int (*fn)(const char *path, const char *name, void *ctx),
		  void *ctx);

/* Removes a job's files (the trace and its .name). */
void pd_spool_remove(const char *path);

#endif
