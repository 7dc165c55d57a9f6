/* SPDX-License-Identifier: MIT */
/*
 * The store as a replay sink (analyzer/replay.h): one source per trace file,
 * content-hashed so that the same file is stored once, its forks, then its
 * reader statistics and the mark that it is complete -- or, when the read
 * failed half-way, nothing of it. Used by `ptescope replay --db` and the
 * daemon's replay worker; the daemon passes a lock hook because its store
 * writer is shared with live capture. Records the host's name with each
 * source. Prints nothing.
 */
#ifndef PTESCOPE_STORE_SINK_H
#define PTESCOPE_STORE_SINK_H

#include "replay.h"
#include "store.h"

struct store_sink;

struct store_sink_opts {
	/* Taken around every store call (NULL: the caller has the store to itself). */
	void (*lock)(void *ctx);
	void (*unlock)(void *ctx);
	void *lock_ctx;
};

/* A sink over @s (not owned; it must outlive the sink). Returns 0 or -ENOMEM. */
int store_sink_new(struct store *s, const struct store_sink_opts *o, struct store_sink **out);
/* Drops a source begun and not ended (its input failed). Accepts NULL. */
void store_sink_free(struct store_sink *k);
/* The sink's hooks, for pt_replay_opts.sink. Valid as long as @k. */
const struct pt_replay_sink *store_sink_replay(struct store_sink *k);

#endif
