/* SPDX-License-Identifier: MIT */
/*
 * The read-only store handles of the HTTP layer, pooled: taken by a thread
 * for one request's queries and put back after, opened lazily, each
 * carrying its worker's query deadline while it is out. Closed at stop
 * (http.c).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>

#include "http_internal.h"

/*
 * Read-only store handles, one per thread that runs queries at most (the
 * query workers, http_pool.c): a thread serves one request at a time, so a
 * request never waits for a handle. Handles are opened lazily (the core may
 * create the database after we start). A worker's handle carries its query's
 * deadline while it is out (store_set_deadline).
 */
int pd_http_store_get(struct pd_http *h, struct store **out, char *err, size_t errlen)
{
	struct store_opts o = {.read_only = true, .busy_timeout_ms = 2000};
	struct store *s = NULL;

	pthread_mutex_lock(&h->pool_lock);
	if (h->nr_pool)
		s = h->pool[--h->nr_pool];
	pthread_mutex_unlock(&h->pool_lock);
	if (!s && !h->cfg.db_path) {
		snprintf(err, errlen, "no database configured");
		return -ENOENT;
	}
	if (!s) {
		int ret = store_open(h->cfg.db_path, &o, &s, err, errlen);

		if (ret)
			return ret;
	}
	store_set_deadline(s, pd_http_deadline_ns()); /* a worker's query budget */
	*out = s;
	return 0;
}

void pd_http_store_put(struct pd_http *h, struct store *s, bool broken)
{
	if (!s)
		return;
	store_set_deadline(s, 0);
	pthread_mutex_lock(&h->pool_lock);
	if (!broken && h->nr_pool < PD_HTTP_MAX_POOL) {
		h->pool[h->nr_pool++] = s;
		s = NULL;
	}
	pthread_mutex_unlock(&h->pool_lock);
	store_close(s);
}
