/* SPDX-License-Identifier: MIT */
/*
 * Private to daemon/http*.c: the server's state, the per-request state and
 * what the files of the HTTP layer call in each other: http.c (the server's
 * start and stop), http_route.c (one request's way to its endpoint),
 * http_reply.c (replies), http_store.c (the read-only store pool),
 * http_token.c, http_upload.c, http_static.c, http_status.c,
 * http_metrics.c, http_api.c, http_inv.c (endpoints), http_conn.c
 * (connections), http_host.c (the Host check), http_pool.c (worker lanes).
 */
#ifndef PTESCOPED_HTTP_INTERNAL_H
#define PTESCOPED_HTTP_INTERNAL_H

#include <limits.h>
#include <pthread.h>
#include <sys/socket.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <microhttpd.h>

#include "api.h"
#include "store.h"

struct pd_conn;

#define PD_HTTP_MAX_POOL 64
#define PD_HTTP_MAX_URL 2048	 /* URL and query string, bytes (414 above) */
#define PD_HTTP_MAX_WORKERS 16	 /* threads of one worker lane */
#define PD_HTTP_QUERY_QUEUE 64	 /* queries waiting for a worker; more: 503 */
#define PD_HTTP_QUERY_BUDGET_MS 5000
#define PD_HTTP_DEFAULT_MAX_UPLOAD (512ull * 1024 * 1024)
#define PD_HTTP_MAX_SMALL_BODY 4096 /* JSON bodies of POST /api/v1/investigations */
#define PD_HTTP_BODY_MIN_BYTES 4096 /* a body brings this much per body_timeout_s */

/* The connections tracked from accept (http_conn.c), under lock. */
struct pd_http_conns {
	pthread_mutex_t lock;
	pthread_cond_t wake; /* the reaper's sleep */
	pthread_t reaper;
	bool reaper_started, stop;
	struct pd_conn *head, *tail; /* in accept order */
	unsigned open;		     /* listed and not cut */
	uint64_t evicted, refused, head_timeouts, body_timeouts, answer_timeouts;
};

/* The worker lanes (http_pool.c). */
enum pd_lane { PD_LANE_QUERY, PD_LANE_CONTROL, PD_LANE_COUNT };
struct pd_http_lane;

struct pd_http {
	struct MHD_Daemon *d;
	struct pd_http_config cfg; /* db_path owned; web_root, token_file not kept; spool not owned */
	struct pd_core core;
	struct pd_metrics *metrics;
	char listen[128];
	struct sockaddr_storage listen_addr; /* its address: an allowed Host (http_host.c) */
	char *allowed_hosts;		     /* the configured names, comma-separated; NULL: none */
	char token[4096];
	size_t token_len; /* 0: uploads off */
	int web_fd;	  /* web root directory, -1: none */
	pthread_mutex_t pool_lock;
	struct store *pool[PD_HTTP_MAX_POOL];
	size_t nr_pool;
	struct pd_http_conns conns;
	struct pd_http_lane *lanes[PD_LANE_COUNT];
};

/* An answer made on a worker thread, queued by the server thread after the resume. */
struct pd_answer {
	bool ready;
	unsigned status;
	char *text; /* the JSON body, malloc'ed */
	char allow[48];
};

/* One request (libmicrohttpd's con_cls): freed when the request completes. */
struct pd_req {
	bool done;   /* a response is queued (or the request was refused) */
	bool upload; /* POST /api/v1/replays accepted so far: body goes to fd */
	int fd;
	char path[PATH_MAX]; /* temporary upload file; "" once handed to the core */
	char name[256];
	uint64_t bytes;
	uint64_t reserved; /* room taken in the spool for it (spool.h) */
	unsigned upload_error; /* HTTP status to answer with at the end, 0: none */
	int upload_errno;
	char upload_msg[160]; /* why, when the spool refused more */
	bool small_body; /* a request whose small body is kept (investigations) */
	bool body_too_large;
	size_t body_len;
	char body[PD_HTTP_MAX_SMALL_BODY];
	struct pd_answer answer; /* a deferred request's (http_pool.c) */
};

/* An endpoint that may run on a worker thread, its connection suspended. */
typedef int (*pd_http_handler_fn)(struct pd_http *h, struct MHD_Connection *c, const char *url,
				  const char *method, struct pd_req *r);

/*
 * Hands the request to a worker lane (http_pool.c): the connection is
 * suspended, @fn runs on a worker with its replies captured into r->answer,
 * and the connection is resumed. 503 at once when the lane is full.
 */
int pd_http_defer(struct pd_http *h, struct MHD_Connection *c, struct pd_req *r,
		  enum pd_lane lane, pd_http_handler_fn fn, const char *url, const char *method);
int pd_http_lanes_start(struct pd_http *h);
/* Answers what waits (503) and joins the workers; every connection is resumed. */
void pd_http_lanes_stop(struct pd_http *h);
void pd_http_lanes_free(struct pd_http *h);
/* {"workers", "running", "queued", "max_queued", "budget_ms", "served", ...}: new reference. */
json_t *pd_http_lanes_status(struct pd_http *h);

/*
 * On this thread from now on (http_reply.c), replies go into @a instead of being queued
 * (NULL: queued again), and store handles taken from the pool get the
 * deadline @deadline_ns (CLOCK_MONOTONIC; 0: none).
 */
void pd_http_capture_answers(struct pd_answer *a, int64_t deadline_ns);
/* Sets @a to {"error": @msg} with @status. */
void pd_http_answer_error(struct pd_answer *a, unsigned status, const char *msg);

/*
 * Queues @body (reference stolen; NULL means out of memory) as JSON with
 * @status. Returns libmicrohttpd's MHD_YES/MHD_NO.
 */
int pd_http_reply_json(struct MHD_Connection *c, unsigned status, json_t *body);
/* Queues {"error": message} with @status. */
__attribute__((format(printf, 3, 4))) int
pd_http_reply_error(struct MHD_Connection *c, unsigned status, const char *fmt, ...);

/* Queues a JSON 405 with an Allow header listing @allow. */
int pd_http_reply_method_not_allowed(struct MHD_Connection *c, const char *allow);

/*
 * Whether the request's Host header names this server (http_host.c): a
 * loopback name or address, the listen address (any address when it listens
 * on all), a configured name, or no Host (HTTP/1.0). A refusal is answered 421.
 */
bool pd_http_host_allowed(const struct pd_http *h, struct MHD_Connection *c, char *host,
			  size_t hostlen);
/* Whether the request carries the bearer token (http_token.c; constant-time comparison). */
bool pd_http_authorized(struct pd_http *h, struct MHD_Connection *c);

/* /api/v1/investigations and .../current (http_inv.c): a pd_http_handler_fn;
 * the server runs GETs itself, POST and DELETE on the control lane. */
int pd_http_investigations(struct pd_http *h, struct MHD_Connection *c, const char *url,
			   const char *method, struct pd_req *r);

/*
 * The time parser of http_api.c's query parameters, pure for the unit tests
 * (its integers: pt_parse_int, util.h): a time as store_parse_time() reads
 * it (0, -EINVAL also for negative trace-clock digits, -ERANGE outside int64
 * nanoseconds, -EDOM for trace-clock digits where @wall_only).
 */
int pd_http_parse_time(const char *s, bool wall_only, int64_t now_wall_ns, int64_t *ns,
		       bool *is_wall);

/* The store-backed endpoints under /api/ (http_api.c); 404 for unknown paths.
 * Unknown paths and methods are answered at once, queries go to the query lane. */
int pd_http_api(struct pd_http *h, struct MHD_Connection *c, const char *url, const char *method,
		struct pd_req *r);

/*
 * A read-only store handle for one request (http_store.c; opened on first use), and its
 * return; @broken closes it instead of keeping it (after an error that may
 * have left it unusable).
 */
int pd_http_store_get(struct pd_http *h, struct store **out, char *err, size_t errlen);
void pd_http_store_put(struct pd_http *h, struct store *s, bool broken);

/*
 * Connection admission and deadlines (http_conn.c). pd_http_conn_notify is
 * libmicrohttpd's MHD_OPTION_NOTIFY_CONNECTION callback (cls: the pd_http).
 * The request handler reports each connection's phase: head complete
 * (pd_http_conn_head; true: answer 503, the server is full of connections
 * that cannot be evicted), body bytes, answering, and the request done.
 */
int pd_http_conn_init(struct pd_http *h);
void pd_http_conn_stop_reaper(struct pd_http *h);
void pd_http_conn_destroy(struct pd_http *h);
void pd_http_conn_notify(void *cls, struct MHD_Connection *c, void **socket_context,
			 enum MHD_ConnectionNotificationCode code);
bool pd_http_conn_head(struct pd_http *h, struct MHD_Connection *c);
void pd_http_conn_body(struct pd_http *h, struct MHD_Connection *c, size_t n);
void pd_http_conn_busy(struct pd_http *h, struct MHD_Connection *c);
void pd_http_conn_idle(struct pd_http *h, struct MHD_Connection *c);
/* Its request waits for a worker (http_pool.c): no deadline until its answer. */
void pd_http_conn_work(struct pd_http *h, struct MHD_Connection *c);
/* {"open", "max", "max_per_ip", "head_timeout_s", "evicted", "refused", ...}: new reference. */
json_t *pd_http_conn_status(struct pd_http *h);

/* GET /metrics (http_metrics.c): the format asked for, gzipped when asked. */
int pd_http_metrics(struct pd_http *h, struct MHD_Connection *c);

/* libmicrohttpd's request handler and completion callback (http_route.c; cls: the pd_http). */
enum MHD_Result pd_http_on_request(void *cls, struct MHD_Connection *c, const char *url,
				   const char *method, const char *version, const char *upload_data,
				   size_t *upload_data_size, void **con_cls);
void pd_http_on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
			  enum MHD_RequestTerminationCode toe);

/* Queues the answer a worker made for the request (http_reply.c; the handler's
 * call after the resume). */
int pd_http_queue_answer(struct MHD_Connection *c, struct pd_answer *a);
/* The store deadline of this thread's queries (http_reply.c; 0: none). */
int64_t pd_http_deadline_ns(void);

/* GET /healthz and GET /api/v1/status (http_status.c). */
int pd_http_healthz(struct pd_http *h, struct MHD_Connection *c);
int pd_http_status(struct pd_http *h, struct MHD_Connection *c);

/* A file beneath the web root, or its 404 (http_static.c). */
int pd_http_serve_static(struct pd_http *h, struct MHD_Connection *c, const char *url);

/*
 * POST /api/v1/replays (http_upload.c): begin on the request's head (refusals
 * answered at once, else r->upload set), write for each piece of the body,
 * end once it is all in (the 202 or the error).
 */
int pd_http_upload_begin(struct pd_http *h, struct pd_req *r, struct MHD_Connection *c);
int pd_http_upload_write(struct pd_http *h, struct pd_req *r, const char *data, size_t len);
int pd_http_upload_end(struct pd_http *h, struct pd_req *r, struct MHD_Connection *c);

/* The token file's one line into @tok (http_token.c): 0, or -errno with @err
 * (unreadable, not private to root or us, too long, too short). */
int pd_http_read_token(const char *path, char *tok, size_t toklen, size_t *len, char *err,
		       size_t errlen);

#endif
