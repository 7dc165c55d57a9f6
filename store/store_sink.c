/* SPDX-License-Identifier: MIT */
/*
 * The replay sink (store_sink.h): one content-hashed source per trace file,
 * fed by `ptescope replay --db`. Prints nothing: failures come back as a
 * negative errno and a message.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store.h"
#include "store_sink.h"

struct store_sink {
	struct store *store;
	struct store_sink_opts opts;
	int64_t source_id;
	bool active;
	char host[256];
	char errmsg[512];
};

static int parse_int(const char *v, long long min, long long max, long long *out)
{
	char *end;
	long long x;

	errno = 0;
	x = strtoll(v, &end, 10);
	if (errno || end == v || *end || x < min || x > max)
		return -EINVAL;
	*out = x;
	return 0;
}

int store_sink_parse_option(struct store_sink_opts *o, const char *name, const char *value,
			    char *err, size_t errlen)
{
	long long x;

	if (!strcmp(name, "retention-days")) {
		if (parse_int(value, 0, 100000, &x)) {
			snprintf(err, errlen, "--retention-days wants days from 0 to 100000, not '%s'",
				 value);
			return -EINVAL;
		}
		o->retention_days = (int)x;
		return 0;
	}
	if (!strcmp(name, "max-db-mb")) {
		if (parse_int(value, 0, 1LL << 30, &x)) {
			snprintf(err, errlen, "--max-db-mb wants MiB from 0 to 2^30, not '%s'", value);
			return -EINVAL;
		}
		o->max_db_bytes = (int64_t)x * 1048576;
		return 0;
	}
	if (!strcmp(name, "db-sync")) {
		if (strcmp(value, "normal") && strcmp(value, "full")) {
			snprintf(err, errlen, "--db-sync wants normal or full, not '%s'", value);
			return -EINVAL;
		}
		o->sync_full = !strcmp(value, "full");
		return 0;
	}
	return -ENOENT;
}

int store_sink_open_opts(const char *db_path, const struct store_sink_opts *opts,
			 struct store_sink **out, char *err, size_t errlen)
{
	struct store_sink *k;
	struct store_opts so = {0};
	int r;

	*out = NULL;
	k = calloc(1, sizeof(*k));
	if (!k) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	if (opts)
		k->opts = *opts;
	so.sync_full = k->opts.sync_full;
	r = store_open(db_path, &so, &k->store, err, errlen);
	if (r) {
		size_t n = strlen(db_path);

		/* the caller names the database; drop the store's "PATH: " */
		if (!strncmp(err, db_path, n) && !strncmp(err + n, ": ", 2))
			memmove(err, err + n + 2, strlen(err + n + 2) + 1);
		free(k);
		return r;
	}
	if (gethostname(k->host, sizeof(k->host) - 1))
		k->host[0] = 0;
	*out = k;
	return 0;
}

int store_sink_open(const char *db_path, struct store_sink **out, char *err, size_t errlen)
{
	return store_sink_open_opts(db_path, NULL, out, err, errlen);
}

int store_sink_source_begin(struct store_sink *k, const char *path, int fd, enum pt_format fmt,
			    bool *already_done, char *err, size_t errlen)
{
	struct store_source_info info = {.kind = STORE_SOURCE_REPLAY,
					 .host = k->host[0] ? k->host : NULL,
					 .path = path,
					 .format = pt_format_name(fmt),
					 .clock_offset_ns = INT64_MIN};
	char hex[65];
	int64_t size;
	int r;

	*already_done = false;
	k->errmsg[0] = 0;
	if (k->active) {
		snprintf(err, errlen, "internal: a source is already open");
		return -EBUSY;
	}
	r = store_hash_fd(fd, hex, &size, err, errlen);
	if (r)
		return r;
	info.content_sha256 = hex;
	info.size_bytes = size;
	r = store_source_begin(k->store, &info, &k->source_id, already_done, err, errlen);
	if (r)
		return r;
	k->active = !*already_done;
	return 0;
}

int store_sink_fork(struct store_sink *k, const struct pt_fork *f)
{
	if (!k->active)
		return 0;
	return store_insert_fork(k->store, k->source_id, f, NULL, k->errmsg, sizeof(k->errmsg));
}

const char *store_sink_errmsg(const struct store_sink *k)
{
	return k ? k->errmsg : "";
}

int store_sink_source_end(struct store_sink *k, const struct pt_input_stats *st, char *err,
			  size_t errlen)
{
	int r;

	if (!k->active)
		return 0;
	r = store_source_end(k->store, k->source_id, st, err, errlen);
	if (!r)
		k->active = false;
	return r;
}

int store_sink_close(struct store_sink *k, char *err, size_t errlen)
{
	int r = 0, r2;

	if (!k)
		return 0;
	if (k->active) /* its input failed half-way: do not keep half a file */
		r = store_source_abort(k->store, k->source_id, err, errlen);
	if (!r && (k->opts.retention_days || k->opts.max_db_bytes))
		r = store_enforce_retention(k->store, k->opts.retention_days, k->opts.max_db_bytes,
					    NULL, err, errlen);
	r2 = store_close(k->store);
	if (!r && r2) {
		snprintf(err, errlen, "closing the database failed: %s", strerror(-r2));
		r = r2;
	}
	free(k);
	return r;
}
