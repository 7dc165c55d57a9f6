/* SPDX-License-Identifier: MIT */
/*
 * The store's side of the `ptescope` command line: the sink that
 * `ptescope replay --db FILE` feeds (one source per trace file, content-hashed
 * so the same file is stored once), and the whole `ptescope report`
 * subcommand, which prints a stored database through the same report writer
 * as replay (analyzer/report.h).
 *
 * Unlike the rest of schema/, report may print (it is a command); the sink
 * functions do not, they leave a one-line message in @err.
 */
#ifndef PTESCOPE_STORE_CLI_H
#define PTESCOPE_STORE_CLI_H

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

/*
 * `ptescope report` (argv[0] is "report"): parses its options, prints the
 * report, returns the exit status (0, 1 database/output error, 2 usage).
 */
int store_cli_report(int argc, char **argv);

#endif
