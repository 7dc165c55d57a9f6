/* SPDX-License-Identifier: MIT */
/*
 * What an HTTP handler answers with: JSON bodies and {"error": ...}
 * replies queued on the connection, or, on a query worker (http_pool.c),
 * kept in the request's answer until the server thread queues it; and that
 * worker's store deadline. Every endpoint replies through here.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <microhttpd.h>

#include "escape.h"
#include "http_internal.h"

/* On a worker thread: where its replies go, and its store deadline (http_pool.c). */
static __thread struct pd_answer *tl_answer;
static __thread int64_t tl_deadline_ns;

void pd_http_capture_answers(struct pd_answer *a, int64_t deadline_ns)
{
	tl_answer = a;
	tl_deadline_ns = deadline_ns;
}
/* The deadline of the store queries of this thread (0: none), for the store pool. */
int64_t pd_http_deadline_ns(void)
{
	return tl_deadline_ns;
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
int pd_http_queue_answer(struct MHD_Connection *c, struct pd_answer *a)
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
