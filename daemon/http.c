/* SPDX-License-Identifier: MIT */
/*
 * ptescoped's HTTP server: libmicrohttpd setup, limits, routing, JSON error
 * replies, the bearer token, uploads streamed to a temporary file, static
 * dashboard files, /healthz, /api/v1/status and /metrics. The store-backed
 * JSON endpoints are in http_api.c.
 *
 * Fed by requests from curl, the dashboard and Prometheus; feeds them the
 * core's status (struct pd_core), the metrics (metrics.c) and read-only
 * store queries; hands uploads to the core (pd_core.submit_replay).
 *
 * Sized for a handful of people and a fleet scraper per host, plus load
 * from careless clients: a fixed pool of threads each polling its share of
 * the connections (not the single-thread epoll mode, which stalls in
 * libmicrohttpd 0.9.75 once ~128 connections are open), bounded connections
 * globally and per IP, an inactivity timeout, bounded per-connection memory,
 * URL and header sizes, upload size and page sizes.
 *
 * The handler queues normal responses on its second call for a request
 * (the first call only allocates the request state): libmicrohttpd 0.9.75
 * answers "Connection: close" to a response queued on the first call, which
 * would cost a TCP handshake per request. Rejections of uploads are queued
 * on the first call on purpose: the body is then never read.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <microhttpd.h>

#include "escape.h"
#include "http_internal.h"

#define DEFAULT_LISTEN "127.0.0.1:9466"
#define MAX_URL_BYTES PD_HTTP_MAX_URL
#define MAX_HEADER_BYTES 8192
#define CONN_MEMORY_BYTES (64 * 1024)
#define MAX_TOKEN_BYTES 4096
/* libmicrohttpd's own connection limit is ours plus this, so that it keeps
 * accepting while http_conn.c evicts (its per-IP limit is not used). */
#define HARD_EXTRA 64

/* ---------------------------------------------------------------- replies */

/* On a worker thread: where its replies go, and its store deadline (http_pool.c). */
static __thread struct pd_answer *tl_answer;
static __thread int64_t tl_deadline_ns;

void pd_http_capture_answers(struct pd_answer *a, int64_t deadline_ns)
{
	tl_answer = a;
	tl_deadline_ns = deadline_ns;
}

static void answer_set(struct pd_answer *a, unsigned status, char *text, const char *allow)
{
	free(a->text);
	a->text = text;
	a->status = status;
	snprintf(a->allow, sizeof(a->allow), "%s", allow ? allow : "");
	a->ready = true;
}

void pd_http_answer_error(struct pd_answer *a, unsigned status, const char *msg)
{
	json_t *j = json_pack("{s:s}", "error", msg);
	char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;

	json_decref(j);
	answer_set(a, text ? status : 500, text, NULL);
}

/* Queues @text (taken; NULL: out of memory) as JSON with @status and @allow. */
static int queue_json_text(struct MHD_Connection *c, unsigned status, char *text, const char *allow)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;

	if (!text)
		return MHD_NO;
	resp = MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
	if (!resp) {
		free(text);
		return MHD_NO;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	if (allow && allow[0])
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow);
	if (status == MHD_HTTP_UNAUTHORIZED)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
					"Bearer realm=\"ptescoped\"");
	ret = MHD_queue_response(c, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

/* Queues @body (taken) as JSON with @status (on a worker: keeps it in its answer). */
static int reply_json(struct MHD_Connection *c, unsigned status, json_t *body, const char *allow)
{
	char *text;

	if (!body)
		return pd_http_reply_error(c, 500, "out of memory");
	text = json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(body);
	if (tl_answer) {
		answer_set(tl_answer, text ? status : 500, text, allow);
		return text ? MHD_YES : MHD_NO;
	}
	return queue_json_text(c, status, text, allow);
}

/* Queues the answer a worker made for the request (the handler's call after the resume). */
static int queue_answer(struct MHD_Connection *c, struct pd_answer *a)
{
	char *text = a->text;

	a->text = NULL;
	a->ready = false;
	return queue_json_text(c, a->status, text, a->allow);
}

int pd_http_reply_json(struct MHD_Connection *c, unsigned status, json_t *body)
{
	return reply_json(c, status, body, NULL);
}

int pd_http_reply_error(struct MHD_Connection *c, unsigned status, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	json_t *text;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* a message quoting client bytes that are not UTF-8 is written escaped (escape.h) */
	text = json_string(msg);
	if (!text)
		text = pt_json_text(msg);
	return pd_http_reply_json(c, status, text ? json_pack("{s:o}", "error", text) : NULL);
}

int pd_http_reply_method_not_allowed(struct MHD_Connection *c, const char *allow)
{
	return reply_json(c, MHD_HTTP_METHOD_NOT_ALLOWED,
			  json_pack("{s:s}", "error", "method not allowed"), allow);
}

/* ------------------------------------------------------------ store pool */

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
	store_set_deadline(s, tl_deadline_ns); /* a worker's query budget */
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

/* ---------------------------------------------------------------- uploads */

/* Constant-time comparison: the time taken does not depend on where they differ. */
static bool token_equal(const char *a, size_t alen, const char *b, size_t blen)
{
	volatile unsigned char diff = (unsigned char)(alen != blen);
	size_t i, n = alen > blen ? alen : blen;

	for (i = 0; i < n; i++) {
		unsigned char x = i < alen ? (unsigned char)a[i] : 0;
		unsigned char y = i < blen ? (unsigned char)b[i] : 0;

		diff |= x ^ y;
	}
	return diff == 0;
}

bool pd_http_authorized(struct pd_http *h, struct MHD_Connection *c)
{
	const char *v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");

	if (!v || strncasecmp(v, "Bearer ", 7))
		return false;
	v += 7;
	while (*v == ' ')
		v++;
	return token_equal(v, strnlen(v, MAX_TOKEN_BYTES + 1), h->token, h->token_len);
}

static int upload_begin(struct pd_http *h, struct pd_req *r, struct MHD_Connection *c)
{
	const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
	const char *name = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "name");
	const char *dir = getenv("TMPDIR");
	unsigned long long announced = 0;

	if (!h->token_len)
		return pd_http_reply_error(c, MHD_HTTP_FORBIDDEN,
					   "uploads are disabled (no token file configured)");
	if (!pd_http_authorized(h, c))
		return pd_http_reply_error(c, MHD_HTTP_UNAUTHORIZED,
					   "missing or wrong bearer token");
	if (cl) {
		char *end;
		unsigned long long n;

		errno = 0;
		n = strtoull(cl, &end, 10);
		if (errno || end == cl || *end || cl[0] == '-')
			return pd_http_reply_error(c, MHD_HTTP_BAD_REQUEST,
						   "Content-Length: not a number");
		if (n > h->cfg.max_upload_bytes)
			return pd_http_reply_error(
			    c, MHD_HTTP_CONTENT_TOO_LARGE,
			    "upload of %llu bytes is over the limit of %zu bytes", n,
			    h->cfg.max_upload_bytes);
		announced = n;
	}
	if (name && (strlen(name) > 255 || strchr(name, '/')))
		return pd_http_reply_error(c, MHD_HTTP_BAD_REQUEST,
					   "name: at most 255 characters, no '/'");
	snprintf(r->name, sizeof(r->name), "%s", name && name[0] ? name : "upload");
	if (!dir || !dir[0])
		dir = "/var/tmp";
	if (h->cfg.spool)
		dir = pd_spool_dir(h->cfg.spool);
	if (snprintf(r->path, sizeof(r->path), "%s/%s", dir,
		     h->cfg.spool ? ".partial-XXXXXX" : "ptescoped-upload-XXXXXX") >=
	    (int)sizeof(r->path)) {
		r->path[0] = 0;
		return pd_http_reply_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, "TMPDIR too long");
	}
	/* room in the spool, for what Content-Length announces (the rest as it comes) */
	if (h->cfg.spool &&
	    pd_spool_reserve(h->cfg.spool, announced, r->upload_msg, sizeof(r->upload_msg))) {
		r->path[0] = 0;
		return pd_http_reply_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, "%s", r->upload_msg);
	}
	r->reserved = announced;
	r->fd = mkostemp(r->path, O_CLOEXEC);
	if (r->fd < 0) {
		int e = errno;

		r->path[0] = 0;
		if (h->cfg.spool)
			pd_spool_release(h->cfg.spool, r->reserved);
		return pd_http_reply_error(c, MHD_HTTP_SERVICE_UNAVAILABLE,
					   "cannot create a temporary file in %s: %s", dir,
					   strerror(e));
	}
	r->upload = true;
	return MHD_YES;
}

static int upload_write(struct pd_http *h, struct pd_req *r, const char *data, size_t len)
{
	if (r->upload_error)
		return 0; /* discarding the rest of a refused body */
	if (len > h->cfg.max_upload_bytes - r->bytes) {
		r->upload_error = MHD_HTTP_CONTENT_TOO_LARGE;
		return 0;
	}
	if (h->cfg.spool && r->bytes + len > r->reserved) {
		if (pd_spool_grow(h->cfg.spool, r->bytes + len - r->reserved, r->upload_msg,
				  sizeof(r->upload_msg))) {
			r->upload_error = MHD_HTTP_SERVICE_UNAVAILABLE;
			return 0;
		}
		r->reserved = r->bytes + len;
	}
	while (len) {
		ssize_t n = write(r->fd, data, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			r->upload_error = MHD_HTTP_SERVICE_UNAVAILABLE;
			r->upload_errno = n < 0 ? errno : ENOSPC;
			return 0;
		}
		data += n;
		len -= (size_t)n;
		r->bytes += (uint64_t)n;
	}
	return 0;
}

static int upload_end(struct pd_http *h, struct pd_req *r, struct MHD_Connection *c)
{
	char err[256] = "";
	int64_t job = 0;
	int ret, e;

	if (r->upload_error == MHD_HTTP_CONTENT_TOO_LARGE)
		return pd_http_reply_error(c, MHD_HTTP_CONTENT_TOO_LARGE,
					   "upload is over the limit of %zu bytes",
					   h->cfg.max_upload_bytes);
	if (r->upload_error && r->upload_msg[0])
		return pd_http_reply_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, "%s", r->upload_msg);
	if (r->upload_error)
		return pd_http_reply_error(c, MHD_HTTP_SERVICE_UNAVAILABLE,
					   "cannot store the upload: %s",
					   strerror(r->upload_errno));
	if (!r->bytes)
		return pd_http_reply_error(c, MHD_HTTP_BAD_REQUEST, "empty upload");
	/* on disk before the 202: the core spools it (spool.h) */
	e = fsync(r->fd) ? errno : 0;
	if (close(r->fd) && !e)
		e = errno;
	r->fd = -1;
	if (e)
		return pd_http_reply_error(c, MHD_HTTP_SERVICE_UNAVAILABLE,
					   "cannot store the upload: %s", strerror(e));
	if (!h->core.submit_replay)
		return pd_http_reply_error(c, MHD_HTTP_SERVICE_UNAVAILABLE,
					   "replays are not accepted by this daemon");
	if (h->cfg.spool && r->reserved > r->bytes) { /* a shorter body than announced */
		pd_spool_trim(h->cfg.spool, r->reserved - r->bytes);
		r->reserved = r->bytes;
	}
	ret = h->core.submit_replay(h->core.ctx, r->path, r->name, &job, err, sizeof(err));
	if (ret < 0)
		return pd_http_reply_error(
		    c, ret == -EINVAL ? MHD_HTTP_BAD_REQUEST : MHD_HTTP_SERVICE_UNAVAILABLE, "%s",
		    err[0] ? err : strerror(-ret));
	r->path[0] = 0; /* the core owns the file now, and its room in the spool */
	return pd_http_reply_json(c, MHD_HTTP_ACCEPTED,
				  json_pack("{s:I,s:o,s:I}", "job_id", (json_int_t)job, "name",
					    pt_json_text(r->name), "bytes", (json_int_t)r->bytes));
}

/* ----------------------------------------------------------- static files */

static const char *mime_of(const char *path)
{
	static const struct {
		const char *ext, *type;
	} types[] = {
	    {".html", "text/html; charset=utf-8"},
	    {".js", "text/javascript; charset=utf-8"},
	    {".mjs", "text/javascript; charset=utf-8"},
	    {".css", "text/css; charset=utf-8"},
	    {".json", "application/json"},
	    {".svg", "image/svg+xml"},
	    {".png", "image/png"},
	    {".ico", "image/x-icon"},
	    {".map", "application/json"},
	    {".txt", "text/plain; charset=utf-8"},
	    {".woff2", "font/woff2"},
	};
	const char *dot = strrchr(path, '.');

	for (size_t i = 0; dot && i < sizeof(types) / sizeof(types[0]); i++)
		if (!strcmp(dot, types[i].ext))
			return types[i].type;
	return "application/octet-stream";
}

/*
 * Opens @rel beneath the web root: the kernel refuses any resolution
 * (.., absolute symlinks, magic links) that would leave it (RESOLVE_BENEATH).
 * ".." segments are refused up front as well, so the answer is a plain 404.
 * Only directories and regular files are opened: the type is checked on an
 * O_PATH handle first, and the file is then opened O_NONBLOCK, so a FIFO or
 * a device is never opened for reading nor waited on (-ENOENT: a 404).
 */
static int open_beneath(int dirfd, const char *rel)
{
	struct open_how how = {
	    .flags = O_PATH | O_CLOEXEC,
	    .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
	};
	const char *p = rel;
	struct stat st;
	long fd;

	for (;;) {
		size_t n = strcspn(p, "/");

		if (n == 2 && p[0] == '.' && p[1] == '.')
			return -EACCES;
		if (!p[n])
			break;
		p += n + 1;
	}
	fd = syscall(SYS_openat2, dirfd, rel, &how, sizeof(how));
	if (fd < 0)
		return -errno;
	if (fstat((int)fd, &st) || (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode))) {
		close((int)fd);
		return -ENOENT;
	}
	if (S_ISDIR(st.st_mode))
		return (int)fd; /* a directory: only used to open its index.html */
	close((int)fd);
	how.flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
	fd = syscall(SYS_openat2, dirfd, rel, &how, sizeof(how));
	return fd < 0 ? -errno : (int)fd;
}

static int serve_static(struct pd_http *h, struct MHD_Connection *c, const char *url)
{
	char rel[PATH_MAX];
	struct MHD_Response *resp;
	struct stat st;
	enum MHD_Result ret;
	int fd;

	if (h->web_fd < 0)
		return pd_http_reply_error(c, MHD_HTTP_NOT_FOUND, "no such page: %s", url);
	while (*url == '/')
		url++;
	if (snprintf(rel, sizeof(rel), "%s", url[0] ? url : "index.html") >= (int)sizeof(rel))
		return pd_http_reply_error(c, MHD_HTTP_NOT_FOUND, "no such page");
	fd = open_beneath(h->web_fd, rel);
	if (fd >= 0 && fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
		int dfd = fd;

		fd = open_beneath(dfd, "index.html");
		close(dfd);
	}
	if (fd < 0 || fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		if (fd >= 0)
			close(fd);
		return pd_http_reply_error(c, MHD_HTTP_NOT_FOUND, "no such page: /%s", url);
	}
	resp = MHD_create_response_from_fd((uint64_t)st.st_size, fd);
	if (!resp) {
		close(fd);
		return MHD_NO;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, mime_of(rel));
	MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
	ret = MHD_queue_response(c, MHD_HTTP_OK, resp);
	MHD_destroy_response(resp);
	return ret;
}

/* -------------------------------------------------------- simple endpoints */

static int get_healthz(struct pd_http *h, struct MHD_Connection *c)
{
	bool ok = !h->core.healthy || h->core.healthy(h->core.ctx);

	if (!ok)
		return pd_http_reply_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, "not healthy");
	return pd_http_reply_json(c, MHD_HTTP_OK, json_pack("{s:s}", "status", "ok"));
}

/* The upload spool's use and bounds (null without a spool). New reference. */
static json_t *spool_status(struct pd_http *h)
{
	unsigned files, max_files;
	uint64_t bytes, max_bytes;

	if (!h->cfg.spool)
		return json_null();
	pd_spool_usage(h->cfg.spool, &files, &bytes, &max_files, &max_bytes);
	return json_pack("{s:I,s:I,s:I,s:I}", "files", (json_int_t)files, "bytes",
			 (json_int_t)bytes, "max_files", (json_int_t)max_files, "max_bytes",
			 (json_int_t)max_bytes);
}

static int get_status(struct pd_http *h, struct MHD_Connection *c)
{
	json_t *st = json_object();

	if (st && h->core.status)
		h->core.status(h->core.ctx, st);
	if (st)
		json_object_set_new(st, "http",
				    json_pack("{s:s,s:b,s:I}", "listen", h->listen, "uploads",
					      h->token_len > 0, "max_upload_bytes",
					      (json_int_t)h->cfg.max_upload_bytes));
	if (st) {
		json_object_set_new(json_object_get(st, "http"), "connections",
				    pd_http_conn_status(h));
		json_object_set_new(json_object_get(st, "http"), "queries",
				    pd_http_lanes_status(h));
		json_object_set_new(json_object_get(st, "http"), "spool", spool_status(h));
	}
	return pd_http_reply_json(c, MHD_HTTP_OK, st);
}

/* ---------------------------------------------------------------- routing */

static enum MHD_Result sum_header(void *cls, enum MHD_ValueKind kind, const char *key,
				  const char *value)
{
	size_t *n = cls;

	*n += strlen(key) + (value ? strlen(value) : 0) + 4;
	return MHD_YES;
}

static bool is_get(const char *m)
{
	return !strcmp(m, MHD_HTTP_METHOD_GET) || !strcmp(m, MHD_HTTP_METHOD_HEAD);
}

static int route(struct pd_http *h, struct MHD_Connection *c, const char *url, const char *method,
		 struct pd_req *r)
{
	bool get = is_get(method);

	if (!strcmp(url, "/healthz"))
		return get ? get_healthz(h, c) : pd_http_reply_method_not_allowed(c, "GET, HEAD");
	if (!strcmp(url, "/metrics"))
		return get ? pd_http_metrics(h, c) : pd_http_reply_method_not_allowed(c, "GET, HEAD");
	if (!strcmp(url, "/api/v1/status"))
		return get ? get_status(h, c) : pd_http_reply_method_not_allowed(c, "GET, HEAD");
	if (!strcmp(url, "/api/v1/replays"))
		return pd_http_reply_method_not_allowed(c, "POST");
	if (!strncmp(url, "/api/v1/investigations", 22) && (!url[22] || url[22] == '/')) {
		/* starting or ending one waits for the capture's restart: not on this thread */
		if (!strcmp(method, MHD_HTTP_METHOD_POST) ||
		    !strcmp(method, MHD_HTTP_METHOD_DELETE))
			return pd_http_defer(h, c, r, PD_LANE_CONTROL, pd_http_investigations, url,
					     method);
		return pd_http_investigations(h, c, url, method, r);
	}
	if (!strncmp(url, "/api/", 5))
		return pd_http_api(h, c, url, method, r);
	if (!get)
		return pd_http_reply_method_not_allowed(c, "GET, HEAD");
	return serve_static(h, c, url);
}

/*
 * The handler's first call for a request (its head is in): the checks that
 * need no body, answered at once (the connection limit, the Host, sizes),
 * and the refusals of uploads, whose body is then never read.
 */
static enum MHD_Result begin_request(struct pd_http *h, struct MHD_Connection *c, const char *url,
				     const char *method, struct pd_req *r)
{
	size_t hdr_bytes = 0, url_bytes = 0;
	char host[72];

	if (pd_http_conn_head(h, c)) {
		r->done = true;
		return pd_http_reply_error(c, MHD_HTTP_SERVICE_UNAVAILABLE,
					   "too many connections; try again");
	}
	if (!pd_http_host_allowed(h, c, host, sizeof(host))) {
		/* another name pointed at us (DNS rebinding): nothing is served to it */
		r->done = true;
		return pd_http_reply_error(c, MHD_HTTP_MISDIRECTED_REQUEST,
					   "host '%.64s' is not this server's (allowed-hosts "
					   "lists the names it answers to)",
					   host);
	}
	/* @url comes without its query string: count the arguments too. */
	MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, sum_header, &url_bytes);
	if (url_bytes + strlen(url) > MAX_URL_BYTES) {
		r->done = true;
		return pd_http_reply_error(c, MHD_HTTP_URI_TOO_LONG, "URL longer than %d bytes",
					   MAX_URL_BYTES);
	}
	MHD_get_connection_values(c, MHD_HEADER_KIND, sum_header, &hdr_bytes);
	if (hdr_bytes > MAX_HEADER_BYTES) {
		r->done = true;
		return pd_http_reply_error(c, MHD_HTTP_REQUEST_HEADER_FIELDS_TOO_LARGE,
					   "request headers over %d bytes", MAX_HEADER_BYTES);
	}
	if (!strcmp(method, MHD_HTTP_METHOD_POST) && !strcmp(url, "/api/v1/replays")) {
		int ret = upload_begin(h, r, c);

		if (!r->upload)
			r->done = true;
		return ret;
	}
	r->small_body =
	    !strcmp(method, MHD_HTTP_METHOD_POST) && !strcmp(url, "/api/v1/investigations");
	return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
				  const char *method, const char *version, const char *upload_data,
				  size_t *upload_data_size, void **con_cls)
{
	struct pd_http *h = cls;
	struct pd_req *r = *con_cls;

	if (!r) {
		r = calloc(1, sizeof(*r));
		if (!r)
			return MHD_NO;
		r->fd = -1;
		*con_cls = r;
		return begin_request(h, c, url, method, r);
	}
	if (r->answer.ready) { /* a worker answered it (http_pool.c); the connection is back */
		pd_http_conn_busy(h, c);
		return queue_answer(c, &r->answer);
	}
	if (r->done) {
		*upload_data_size = 0; /* a refused request's body is dropped */
		return MHD_YES;
	}
	if (*upload_data_size)
		pd_http_conn_body(h, c, *upload_data_size);
	if (r->upload) {
		if (*upload_data_size) {
			upload_write(h, r, upload_data, *upload_data_size);
			*upload_data_size = 0;
			return MHD_YES;
		}
		r->done = true;
		pd_http_conn_busy(h, c);
		return upload_end(h, r, c);
	}
	if (*upload_data_size) {
		/* small bodies are kept (bounded); those of other requests are ignored */
		if (r->small_body && *upload_data_size <= sizeof(r->body) - r->body_len) {
			memcpy(r->body + r->body_len, upload_data, *upload_data_size);
			r->body_len += *upload_data_size;
		} else if (r->small_body) {
			r->body_too_large = true;
		}
		*upload_data_size = 0;
		return MHD_YES;
	}
	r->done = true;
	pd_http_conn_busy(h, c);
	return route(h, c, url, method, r);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct pd_http *h = cls;
	struct pd_req *r = *con_cls;

	pd_http_conn_idle(h, c); /* kept alive: waits for the next head from now */
	if (!r)
		return;
	if (r->fd >= 0)
		close(r->fd);
	/* an upload that did not become a job: its room back (unless the core took
	 * the file and gave the room back itself, pd_spool_remove) */
	if (r->path[0] && !unlink(r->path) && h->cfg.spool && r->upload)
		pd_spool_release(h->cfg.spool, r->reserved);
	free(r->answer.text);
	free(r);
	*con_cls = NULL;
}

/* -------------------------------------------------------------- lifecycle */

static int parse_listen(const char *s, struct sockaddr_storage *ss, char *err, size_t errlen)
{
	char host[128];
	const char *colon, *hs = s;
	size_t hl;
	char *end;
	long port;

	memset(ss, 0, sizeof(*ss));
	if (s[0] == '[') {
		const char *rb = strchr(s, ']');

		if (!rb || rb[1] != ':')
			goto bad;
		hs = s + 1;
		hl = (size_t)(rb - hs);
		colon = rb + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon)
			goto bad;
		hl = (size_t)(colon - s);
	}
	if (hl == 0 || hl >= sizeof(host))
		goto bad;
	memcpy(host, hs, hl);
	host[hl] = 0;
	errno = 0;
	port = strtol(colon + 1, &end, 10);
	if (errno || end == colon + 1 || *end || port < 0 || port > 65535)
		goto bad;
	if (inet_pton(AF_INET, host, &((struct sockaddr_in *)ss)->sin_addr) == 1) {
		((struct sockaddr_in *)ss)->sin_family = AF_INET;
		((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
		return 0;
	}
	if (inet_pton(AF_INET6, host, &((struct sockaddr_in6 *)ss)->sin6_addr) == 1) {
		((struct sockaddr_in6 *)ss)->sin6_family = AF_INET6;
		((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
		return 0;
	}
bad:
	snprintf(err, errlen, "listen address '%s': expected IPv4:PORT or [IPv6]:PORT", s);
	return -EINVAL;
}

/*
 * Whether the open token file @fd is fit to hold a secret: a regular file
 * owned by root or by us, which neither group nor others may read or write
 * (else whoever can read it uploads and investigates as root, and whoever
 * can write it chooses the token). 0 or -EPERM with @err.
 */
static int token_file_private(int fd, const char *path, char *err, size_t errlen)
{
	struct stat st;

	if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "token file %s: not a regular file", path);
		return -EINVAL;
	}
	if (st.st_uid != 0 && st.st_uid != geteuid()) {
		snprintf(err, errlen,
			 "token file %s: owned by uid %u, not by root or by us (uid %u)", path,
			 (unsigned)st.st_uid, (unsigned)geteuid());
		return -EPERM;
	}
	if (st.st_mode & 0077) {
		snprintf(err, errlen,
			 "token file %s: mode %04o lets group or others at it; make it 0600 "
			 "(chmod 600 %s)",
			 path, (unsigned)(st.st_mode & 07777), path);
		return -EPERM;
	}
	return 0;
}

static int read_token(const char *path, char *tok, size_t toklen, size_t *len, char *err,
		      size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK), ret;
	ssize_t n;

	if (fd < 0) {
		snprintf(err, errlen, "token file %s: %s", path, strerror(errno));
		return -errno;
	}
	ret = token_file_private(fd, path, err, errlen);
	if (ret) {
		close(fd);
		return ret;
	}
	n = read(fd, tok, toklen - 1);
	close(fd);
	if (n < 0) {
		snprintf(err, errlen, "token file %s: %s", path, strerror(errno));
		return -EIO;
	}
	if ((size_t)n == toklen - 1) {
		snprintf(err, errlen, "token file %s: longer than %zu bytes", path, toklen - 2);
		return -EINVAL;
	}
	while (n > 0 && (tok[n - 1] == '\n' || tok[n - 1] == '\r' || tok[n - 1] == ' ' ||
			 tok[n - 1] == '\t'))
		n--;
	tok[n] = 0;
	if (n < 16 || strlen(tok) != (size_t)n || strpbrk(tok, " \t\r\n")) {
		snprintf(err, errlen,
			 "token file %s: the token must be one line of at least 16 characters",
			 path);
		return -EINVAL;
	}
	*len = (size_t)n;
	return 0;
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	/* libmicrohttpd's own messages (accept failures, limits) are debug-level
	 * noise for us: requests that matter get a JSON error instead. */
}

/* The limits left 0 in @c get their defaults. */
static void config_defaults(struct pd_http_config *c)
{
	if (!c->max_upload_bytes)
		c->max_upload_bytes = PD_HTTP_DEFAULT_MAX_UPLOAD;
	if (!c->max_connections)
		c->max_connections = 512;
	if (!c->max_per_ip)
		c->max_per_ip = 128;
	if (!c->timeout_s)
		c->timeout_s = 30;
	if (!c->head_timeout_s)
		c->head_timeout_s = 10;
	if (!c->body_timeout_s)
		c->body_timeout_s = 10;
	if (!c->answer_timeout_s)
		c->answer_timeout_s = 10;
	if (!c->threads)
		c->threads = 4;
	if (c->threads > PD_HTTP_MAX_POOL)
		c->threads = PD_HTTP_MAX_POOL;
	if (c->max_connections < c->threads)
		c->max_connections = c->threads;
	if (!c->query_queue)
		c->query_queue = PD_HTTP_QUERY_QUEUE;
	if (!c->query_budget_ms)
		c->query_budget_ms = PD_HTTP_QUERY_BUDGET_MS;
}

/*
 * @cfg into @h: the limits with their defaults, the strings it keeps, the
 * listen address into @ss, the token read, the web root opened. 0 or -errno
 * with @err.
 */
static int take_config(struct pd_http *h, const struct pd_http_config *cfg,
		       struct sockaddr_storage *ss, char *err, size_t errlen)
{
	int ret;

	h->cfg = *cfg;
	snprintf(h->listen, sizeof(h->listen), "%s", cfg->listen ? cfg->listen : DEFAULT_LISTEN);
	config_defaults(&h->cfg);
	h->cfg.db_path = cfg->db_path ? strdup(cfg->db_path) : NULL;
	h->cfg.web_root = NULL;
	h->cfg.token_file = NULL;
	h->cfg.allowed_hosts = NULL; /* kept as h->allowed_hosts */
	h->cfg.listen = h->listen;
	if ((cfg->db_path && !h->cfg.db_path) ||
	    (cfg->allowed_hosts && !(h->allowed_hosts = strdup(cfg->allowed_hosts)))) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	ret = parse_listen(h->listen, ss, err, errlen);
	if (ret)
		return ret;
	h->listen_addr = *ss;
	if (cfg->token_file) {
		ret = read_token(cfg->token_file, h->token, sizeof(h->token), &h->token_len, err,
				 errlen);
		if (ret)
			return ret;
	}
	if (cfg->web_root) {
		h->web_fd = open(cfg->web_root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (h->web_fd < 0) {
			ret = -errno;
			snprintf(err, errlen, "web root %s: %s", cfg->web_root, strerror(errno));
			return ret;
		}
	}
	return 0;
}

int pd_http_start(const struct pd_http_config *cfg, const struct pd_core *core,
		  struct pd_metrics *metrics, struct pd_http **out, char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	struct pd_http *h;
	unsigned flags =
	    MHD_USE_POLL_INTERNAL_THREAD | MHD_USE_ERROR_LOG | MHD_ALLOW_SUSPEND_RESUME;
	int ret;

	*out = NULL;
	h = calloc(1, sizeof(*h));
	if (!h) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	pthread_mutex_init(&h->pool_lock, NULL);
	h->web_fd = -1;
	ret = pd_http_conn_init(h);
	if (ret) {
		snprintf(err, errlen, "cannot start a thread: %s", strerror(-ret));
		goto fail;
	}
	h->core = *core;
	h->metrics = metrics;
	ret = take_config(h, cfg, &ss, err, errlen);
	if (ret)
		goto fail;
	ret = pd_http_lanes_start(h);
	if (ret) {
		snprintf(err, errlen, "cannot start the query workers: %s", strerror(-ret));
		goto fail;
	}
	if (ss.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	h->d = MHD_start_daemon(
	    flags, 0, NULL, NULL, on_request, h, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
	    MHD_OPTION_THREAD_POOL_SIZE, (unsigned)h->cfg.threads, MHD_OPTION_CONNECTION_LIMIT,
	    (unsigned)(h->cfg.max_connections + HARD_EXTRA), MHD_OPTION_NOTIFY_CONNECTION,
	    pd_http_conn_notify, h, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)h->cfg.timeout_s,
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONN_MEMORY_BYTES,
	    MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u, MHD_OPTION_NOTIFY_COMPLETED, on_completed, h,
	    MHD_OPTION_EXTERNAL_LOGGER, mhd_log, h, MHD_OPTION_END);
	if (!h->d) {
		ret = -EADDRINUSE;
		snprintf(err, errlen, "cannot listen on %s (address in use or not available)",
			 h->listen);
		goto fail;
	}
	*out = h;
	return 0;
fail:
	pd_http_stop(h);
	return ret;
}

int pd_http_port(const struct pd_http *h)
{
	const union MHD_DaemonInfo *i = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);

	return i ? (int)i->port : -1;
}

void pd_http_stop(struct pd_http *h)
{
	if (!h)
		return;
	pd_http_conn_stop_reaper(h);
	/* every suspended connection resumed first: libmicrohttpd must not stop with one */
	pd_http_lanes_stop(h);
	if (h->d)
		MHD_stop_daemon(h->d);
	pd_http_lanes_free(h);
	while (h->nr_pool)
		store_close(h->pool[--h->nr_pool]);
	if (h->web_fd >= 0)
		close(h->web_fd);
	pthread_mutex_destroy(&h->pool_lock);
	pd_http_conn_destroy(h);
	free((char *)h->cfg.db_path);
	free(h->allowed_hosts);
	explicit_bzero(h->token, sizeof(h->token));
	free(h);
}
