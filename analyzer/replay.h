/* SPDX-License-Identifier: MIT */
/*
 * Replaying one trace file: open, check it is a regular file, detect the
 * format, let the sink decide whether to read it (the store skips content it
 * holds already), read it through recon, then end or abort the sink. The one
 * path of `ptescope replay` (cli/replay.c) and the daemon's replays
 * (daemon/ingest.c); what differs between them are hooks.
 *
 * The sink is an interface so that the analyzer does not depend on the
 * store: store/store_sink.h implements it over SQLite (with a lock hook for
 * the daemon, whose store writer is shared between threads).
 */
#ifndef PTESCOPE_REPLAY_H
#define PTESCOPE_REPLAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "reader.h"
#include "recon.h"

/* Where a replay's forks are kept. Every hook returns 0 or a negative errno
 * with a one-line message in @err. */
struct pt_replay_sink {
	/* Before reading: @fd is the open file (offset left alone), @name the
	 * name to record, @format pt_format_name(). *skip: stored already. */
	int (*begin)(void *ctx, const char *name, int fd, const char *format, bool *skip, char *err,
		     size_t errlen);
	pt_fork_msg_fn fork; /* each fork, before the caller's on_fork */
	int (*end)(void *ctx, const struct pt_input_stats *st, char *err, size_t errlen);
	void (*abort)(void *ctx); /* the read failed after begin: drop what was kept */
	void *ctx;
};

struct pt_replay_opts {
	int input;			   /* stored in each fork's `input` */
	const char *name;		   /* the name the sink records; NULL: the path */
	const struct pt_replay_sink *sink; /* NULL: forks only go to on_fork */
	pt_fork_msg_fn on_fork;		   /* may be NULL; after the sink kept the fork */
	void *ctx;
	pt_progress_fn progress; /* may be NULL */
	void *progress_ctx;
	/* text traces are parsed in the trace.dat reader's helper process too
	 * (pt_text_read_helper), not here: the daemon, whose uploads are anyone's */
	bool sandbox_text;
};

struct pt_replay_result {
	enum pt_format format;
	struct pt_input_stats stats;
	uint64_t forks;
	bool skipped; /* the sink had it already: not read */
	/* on failure: the input itself was refused (not a regular file, not a
	 * trace we read, corrupt), as opposed to a failure of the sink, the
	 * caller, memory or I/O, after which reading the same file again may work */
	bool bad_input;
};

/*
 * Replays @path. Returns 0 or a negative errno with one message in @err
 * (the words of whoever stopped the read: the reader, the sink or on_fork),
 * without the "PATH: " prefix: the caller names the file. @res is filled
 * either way.
 */
int pt_replay_file(const char *path, const struct pt_replay_opts *o, struct pt_replay_result *res,
		   char *err, size_t errlen);

#endif
