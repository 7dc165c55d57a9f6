/* SPDX-License-Identifier: MIT */
/*
 * The store as a replay sink (store_sink.h): begin hashes the file and opens
 * its source (or says it is stored already), each fork is inserted, end
 * records the reader statistics and commits, abort removes the source again.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "store_sink.h"

struct store_sink {
	struct store *store;
	struct store_sink_opts opts;
	struct pt_replay_sink hooks;
	int64_t source_id;
	bool active;
	char host[256];
};

static void lock(struct store_sink *k)
{
	if (k->opts.lock)
		k->opts.lock(k->opts.lock_ctx);
}

static void unlock(struct store_sink *k)
{
	if (k->opts.unlock)
		k->opts.unlock(k->opts.lock_ctx);
}

static int sink_begin(void *ctx, const char *name, int fd, const char *format, bool *skip,
		      char *err, size_t errlen)
{
	struct store_sink *k = ctx;
	struct store_source_info info = {.kind = STORE_SOURCE_REPLAY,
					 .host = k->host[0] ? k->host : NULL,
					 .path = name,
					 .format = format,
					 .clock_offset_ns = INT64_MIN};
	char hex[65];
	int r;

	*skip = false;
	if (k->active) {
		snprintf(err, errlen, "internal: a source is already open");
		return -EBUSY;
	}
	r = store_hash_fd(fd, hex, &info.size_bytes, err, errlen);
	if (r)
		return r;
	info.content_sha256 = hex;
	lock(k);
	r = store_source_begin(k->store, &info, &k->source_id, skip, err, errlen);
	unlock(k);
	k->active = !r && !*skip;
	return r;
}

static int sink_fork(const struct pt_fork *f, void *ctx, char *err, size_t errlen)
{
	struct store_sink *k = ctx;
	int r;

	if (!k->active)
		return 0;
	lock(k);
	r = store_insert_fork(k->store, k->source_id, f, NULL, err, errlen);
	unlock(k);
	return r;
}

static int sink_end(void *ctx, const struct pt_input_stats *st, char *err, size_t errlen)
{
	struct store_sink *k = ctx;
	int r;

	if (!k->active)
		return 0;
	lock(k);
	r = store_source_end(k->store, k->source_id, st, err, errlen);
	unlock(k);
	if (!r)
		k->active = false;
	return r;
}

static void sink_abort(void *ctx)
{
	struct store_sink *k = ctx;
	char err[256];

	if (!k->active)
		return;
	lock(k);
	store_source_abort(k->store, k->source_id, err, sizeof(err));
	unlock(k);
	k->active = false;
}

int store_sink_new(struct store *s, const struct store_sink_opts *o, struct store_sink **out)
{
	struct store_sink *k = calloc(1, sizeof(*k));

	if (!k)
		return -ENOMEM;
	k->store = s;
	if (o)
		k->opts = *o;
	k->hooks = (struct pt_replay_sink){
	    .begin = sink_begin, .fork = sink_fork, .end = sink_end, .abort = sink_abort, .ctx = k};
	if (gethostname(k->host, sizeof(k->host) - 1))
		k->host[0] = 0;
	*out = k;
	return 0;
}

void store_sink_free(struct store_sink *k)
{
	if (!k)
		return;
	sink_abort(k);
	free(k);
}

const struct pt_replay_sink *store_sink_replay(struct store_sink *k)
{
	return &k->hooks;
}
