/* SPDX-License-Identifier: MIT */
/*
 * The replay sink: what `ptescope replay --db FILE` feeds, one source per
 * trace file, content-hashed so that the same file is stored once. A pure
 * library piece: it prints nothing and leaves a one-line message in @err.
 */
#ifndef PTESCOPE_STORE_SINK_H
#define PTESCOPE_STORE_SINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fork.h"
#include "reader.h"

struct store_sink;

struct store_sink_opts {
	int retention_days;   /* 0: keep forever */
	int64_t max_db_bytes; /* 0: no size limit */
	bool sync_full;	      /* synchronous=FULL (survive power loss) */
};

/*
 * Parses one of the replay options the sink understands into @o: name is
 * "retention-days", "max-db-mb" or "db-sync" (value "normal" or "full").
 * Returns 0, -ENOENT for a name it does not know, -EINVAL with a message.
 */
int store_sink_parse_option(struct store_sink_opts *o, const char *name, const char *value,
			    char *err, size_t errlen);

/* Opens (creating or migrating) the database. *out is freed by store_sink_close. */
int store_sink_open(const char *db_path, struct store_sink **out, char *err, size_t errlen);
int store_sink_open_opts(const char *db_path, const struct store_sink_opts *opts,
			 struct store_sink **out, char *err, size_t errlen);

/*
 * Starts one trace file: hashes its content through @fd (the fd's offset is
 * left alone). Sets *already_done when that content is stored completely
 * already; the caller then skips the file. A copy interrupted earlier is
 * removed first and stored again.
 */
int store_sink_source_begin(struct store_sink *sink, const char *path, int fd, enum pt_format fmt,
			    bool *already_done, char *err, size_t errlen);

/* Stores one fork of the current file. Negative errno on failure; message: store_sink_errmsg. */
int store_sink_fork(struct store_sink *sink, const struct pt_fork *f);

/* The last failure of store_sink_fork, "" if none. Owned by the sink. */
const char *store_sink_errmsg(const struct store_sink *sink);

/* Records the file's reader statistics and marks it complete (one commit). */
int store_sink_source_end(struct store_sink *sink, const struct pt_input_stats *st, char *err,
			  size_t errlen);

/*
 * Ends the sink: a file begun but not ended is removed again (its input
 * failed), retention is enforced, the database closed. Accepts NULL.
 */
int store_sink_close(struct store_sink *sink, char *err, size_t errlen);

#endif
