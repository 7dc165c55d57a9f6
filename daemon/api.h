/* SPDX-License-Identifier: MIT */
/*
 * The seam between ptescoped's core (daemon/ptescoped*.c, capture, ingest:
 * issue "live capture") and its HTTP API, metrics and dashboard serving
 * (daemon/http*.c, daemon/metrics.c: issue "HTTP API and metrics").
 *
 * The core owns the store's single writer and the capture; it feeds every
 * stored fork to the metrics and answers status questions. The HTTP layer
 * runs in libmicrohttpd's own threads, opens its own read-only store
 * connections (store/store.h, store_opts.read_only), and never writes the
 * store itself: an uploaded replay is handed to the core through
 * `submit_replay`, which goes down the very same path as `--replay FILE`.
 */
#ifndef PTESCOPED_API_H
#define PTESCOPED_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "config.h"
#include "fork.h"
#include "spool.h"

/* ---------------------------------------------------------------- metrics */

struct pd_metrics;

/* The opt-in label of where forks came from (metrics-cgroup-label). */
enum pd_metrics_cgroup_label {
	PD_CG_LABEL_NONE,
	PD_CG_LABEL_UNIT,	/* systemd_unit="redis-server.service" */
	PD_CG_LABEL_CONTAINER, /* container_id="0123...cdef" */
};

struct pd_metrics_opts {
	/* comm label values allowed on metrics; anything else is "other". No
	 * "other", no name twice: pd_metrics_new refuses them (-EINVAL) */
	const char *const *comm_allow;
	size_t nr_comm_allow;
	enum pd_metrics_cgroup_label cgroup_label;
	size_t cgroup_max; /* label values before "other"; 0: 20 */
};

/* Returns 0, -EINVAL (an allow-list that would make duplicate series) or
 * -ENOMEM. Thread-safe after creation. */
int pd_metrics_new(const struct pd_metrics_opts *opts, struct pd_metrics **out);
void pd_metrics_free(struct pd_metrics *m);

/*
 * A live fork was stored as @fork_id (0: unknown): updates counters and
 * histograms, address-space copies in the fork families, other kinds in
 * ptescope_clones_total. Replays and uploads never come here: the host's
 * live metrics are this host's live forks.
 */
void pd_metrics_observe_fork(struct pd_metrics *m, const struct pt_fork *f, int64_t fork_id);

/* Capture-side counters: events read and lost so far, by source ("live", "replay"). */
void pd_metrics_add_events(struct pd_metrics *m, const char *source, uint64_t read, uint64_t lost);

/* Capture mode and health, exported as gauges: mode is "graph", "syscall",
 * "off"; healthy false when capture failed or stopped unexpectedly. */
void pd_metrics_set_capture(struct pd_metrics *m, const char *mode, bool healthy);

/* The store writer's health (ingest.h): healthy false from a failed write
 * until one succeeds; failures and live forks lost so far. */
void pd_metrics_set_store(struct pd_metrics *m, bool healthy, uint64_t write_failures,
			  uint64_t live_forks_lost);

/* Investigation counters (investigate.h), exported as ptescope_investigation*. */
struct pd_inv_counters;
void pd_metrics_set_investigations(struct pd_metrics *m, const struct pd_inv_counters *c);

/*
 * The exposition of @m (metrics_render.c): Prometheus text 0.0.4, or
 * OpenMetrics 1.0.0 (with exemplars naming fork ids on the latency
 * buckets). @status is the core's status object (what /api/v1/status shows;
 * NULL: none): the capture's mode, detail and hooks decide which families
 * carry figures (the others, always zero, are left out), and it gives the
 * capture info, replays and database figures. On success *buf is a
 * malloc'ed string of *len bytes (plus a NUL) owned by the caller. Returns 0
 * or -ENOMEM.
 */
int pd_metrics_render(struct pd_metrics *m, const json_t *status, bool openmetrics, char **buf,
		      size_t *len);

/* ------------------------------------------------------------------- core */

/* An investigation asked for over HTTP, checked for syntax by the HTTP layer. */
struct pd_inv_request {
	enum pd_detail detail; /* section or pte */
	unsigned duration_s;   /* 0: the configured cap */
	char comm[16];	       /* "": any */
	int pid;	       /* -1: none */
};

/* What the HTTP layer may ask of the core; every callback is thread-safe. */
struct pd_core {
	void *ctx;
	/* Fills @status (a JSON object) with what /api/v1/status shows: version,
	 * capture mode and why, tracefs instance, kernel, events read/lost, forks
	 * stored, database path and size, uptime. */
	void (*status)(void *ctx, json_t *status);
	/* Queues the trace file at @path (the HTTP layer's upload, received and
	 * fsynced in the spool or TMPDIR; ownership passes to the core, which
	 * spools it durably and deletes it when done) for replay into the
	 * store. Returns 0 and a job id, or -errno with @err set. */
	int (*submit_replay)(void *ctx, const char *path, const char *name, int64_t *job_id,
			     char *err, size_t errlen);
	/* Whether the core is up (capture, store and listener ready): /healthz. */
	bool (*healthy)(void *ctx);
	/*
	 * Investigations (NULL: not offered, 503). The HTTP thread never touches
	 * the capture: start and end are handed to the daemon's main loop, which
	 * answers once the capture is restarted. Each returns the HTTP status
	 * (202/200, 400, 404, 409, 503) with *body (new reference: the
	 * investigation) or a message in @err.
	 */
	unsigned (*investigate)(void *ctx, const struct pd_inv_request *req, json_t **body,
				char *err, size_t errlen);
	unsigned (*end_investigation)(void *ctx, json_t **body, char *err, size_t errlen);
	/* {"active", "recent", "budget", "max_s"}: new reference. */
	json_t *(*investigations)(void *ctx);
};

/* ------------------------------------------------------------------- http */

struct pd_http;

struct pd_http_config {
	const char *listen;	/* "ADDR:PORT", default "127.0.0.1:9466" */
	const char *db_path;	/* for read-only connections */
	const char *web_root;	/* static dashboard files, NULL: none */
	const char *token_file; /* bearer token for uploads and investigations, NULL: off */
	struct pd_spool *spool; /* uploads are received here (spool.h), within its bounds;
				 * NULL: in TMPDIR, unbounded but for max_upload_bytes */
	const char *allowed_hosts; /* Host names served besides loopback and the listen
				    * address, comma-separated (http_host.c); NULL: none */
	size_t max_upload_bytes;
	unsigned max_connections, max_per_ip, timeout_s, threads;
	/* a request head within head_timeout_s of the accept or of the previous
	 * answer; a body making progress every body_timeout_s (0: defaults) */
	unsigned head_timeout_s, body_timeout_s;
	/* an answer must be taken by the client (acknowledged bytes growing) at
	 * least every answer_timeout_s (0: 10) */
	unsigned answer_timeout_s;
	/* store-backed queries run on query_threads workers (0: one per online
	 * CPU, 2..8), at most query_queue waiting (0: 64), each within
	 * query_budget_ms (0: 5000) from its arrival */
	unsigned query_threads, query_queue, query_budget_ms;
};

/*
 * Starts listening (in libmicrohttpd's threads). Returns 0, or -errno with a
 * one-line message in @err (e.g. the address is in use). The core calls
 * this before it tells systemd READY=1.
 */
int pd_http_start(const struct pd_http_config *cfg, const struct pd_core *core,
		  struct pd_metrics *metrics, struct pd_http **out, char *err, size_t errlen);
/* Stops accepting, finishes or drops requests in flight, frees. Accepts NULL. */
void pd_http_stop(struct pd_http *h);
/* The port the listener is bound to (the configured one, or the kernel's pick
 * for port 0); -1 when not known. */
int pd_http_port(const struct pd_http *h);

#endif
