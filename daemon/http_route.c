/* SPDX-License-Identifier: MIT */
/*
 * One request's way through the server (libmicrohttpd's handler and
 * completion callbacks): the checks on its head answered at once, its body
 * kept, streamed or dropped, then the endpoint it goes to, run here or
 * deferred to a worker lane; its state freed at the end.
 *
 * The handler queues normal responses on its second call for a request
 * (the first call only allocates the request state): libmicrohttpd 0.9.75
 * answers "Connection: close" to a response queued on the first call, which
 * would cost a TCP handshake per request. Rejections of uploads are queued
 * on the first call on purpose: the body is then never read.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <microhttpd.h>

#include "spool.h"
#include "http_internal.h"

#define MAX_URL_BYTES PD_HTTP_MAX_URL
#define MAX_HEADER_BYTES 8192

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
		return get ? pd_http_healthz(h, c) : pd_http_reply_method_not_allowed(c, "GET, HEAD");
	if (!strcmp(url, "/metrics"))
		return get ? pd_http_metrics(h, c) : pd_http_reply_method_not_allowed(c, "GET, HEAD");
	if (!strcmp(url, "/api/v1/status"))
		return get ? pd_http_status(h, c) : pd_http_reply_method_not_allowed(c, "GET, HEAD");
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
	return pd_http_serve_static(h, c, url);
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
		int ret = pd_http_upload_begin(h, r, c);

		if (!r->upload)
			r->done = true;
		return ret;
	}
	r->small_body =
	    !strcmp(method, MHD_HTTP_METHOD_POST) && !strcmp(url, "/api/v1/investigations");
	return MHD_YES;
}

enum MHD_Result pd_http_on_request(void *cls, struct MHD_Connection *c, const char *url,
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
		return pd_http_queue_answer(c, &r->answer);
	}
	if (r->done) {
		*upload_data_size = 0; /* a refused request's body is dropped */
		return MHD_YES;
	}
	if (*upload_data_size)
		pd_http_conn_body(h, c, *upload_data_size);
	if (r->upload) {
		if (*upload_data_size) {
			pd_http_upload_write(h, r, upload_data, *upload_data_size);
			*upload_data_size = 0;
			return MHD_YES;
		}
		r->done = true;
		pd_http_conn_busy(h, c);
		return pd_http_upload_end(h, r, c);
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

void pd_http_on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
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
