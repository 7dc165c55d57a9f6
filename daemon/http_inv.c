/* SPDX-License-Identifier: MIT */
/*
 * The investigation endpoints of ptescoped's HTTP API:
 *
 *   POST   /api/v1/investigations          start one (bearer token)
 *   GET    /api/v1/investigations          the active one and the last few
 *   DELETE /api/v1/investigations/current  end the active one (bearer token)
 *
 * Fed the request (query parameters or a small JSON body, checked strictly:
 * an unknown or malformed parameter is a 400 naming it); feeds the core's
 * investigate / end_investigation callbacks, which hand the request to the
 * daemon's main loop and block until it has restarted the capture. This file
 * never touches the capture itself. Bodies are at most PD_HTTP_MAX_SMALL_BODY
 * bytes.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <microhttpd.h>

#include "http_internal.h"
#include "util.h"

#define DURATION_MAX_S 86400

struct inv_params {
	const char *detail, *duration_s, *comm, *pid;
	const char *bad; /* first unknown parameter */
};

static enum MHD_Result take_param(void *cls, enum MHD_ValueKind kind, const char *key,
				  const char *value)
{
	struct inv_params *p = cls;

	if (!strcmp(key, "detail"))
		p->detail = value ? value : "";
	else if (!strcmp(key, "duration_s"))
		p->duration_s = value ? value : "";
	else if (!strcmp(key, "comm"))
		p->comm = value ? value : "";
	else if (!strcmp(key, "pid"))
		p->pid = value ? value : "";
	else if (!p->bad)
		p->bad = key;
	return MHD_YES;
}

/*
 * The JSON body's members into @p as strings (kept in @store, owned by the
 * caller). Numbers may be JSON integers or strings. 0, or -EINVAL with @err.
 */
static int body_params(const char *body, size_t len, struct inv_params *p, char (*store)[32],
		       char *err, size_t errlen)
{
	json_error_t je;
	json_t *j = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je), *v;
	static const char *const keys[] = {"detail", "duration_s", "comm", "pid"};
	const char **slots[] = {&p->detail, &p->duration_s, &p->comm, &p->pid};
	const char *k;

	if (!j || !json_is_object(j)) {
		snprintf(err, errlen, "body: expected a JSON object (%s)",
			 j ? "not an object" : je.text);
		json_decref(j);
		return -EINVAL;
	}
	json_object_foreach(j, k, v)
	{
		size_t i;

		for (i = 0; i < 4 && strcmp(k, keys[i]); i++)
			;
		if (i == 4) {
			snprintf(err, errlen, "unknown parameter '%.64s'", k);
			goto bad;
		}
		if (json_is_integer(v))
			snprintf(store[i], 32, "%lld", (long long)json_integer_value(v));
		else if (json_is_string(v) && json_string_length(v) < 32)
			snprintf(store[i], 32, "%s", json_string_value(v));
		else {
			snprintf(err, errlen, "%s: expected a string or an integer", keys[i]);
			goto bad;
		}
		*slots[i] = store[i];
	}
	json_decref(j);
	return 0;
bad:
	json_decref(j);
	return -EINVAL;
}

/* Checks the parameters into @req: 0, or a 400 already queued (returns 1). */
static int check_request(struct MHD_Connection *c, const struct inv_params *p,
			 struct pd_inv_request *req, int *ret)
{
	long long v;

	req->pid = -1;
	req->detail = PD_DETAIL_SECTION;
	if (p->detail && !strcmp(p->detail, "pte"))
		req->detail = PD_DETAIL_PTE;
	else if (p->detail && strcmp(p->detail, "section")) {
		*ret = pd_http_reply_error(c, MHD_HTTP_BAD_REQUEST, "detail: section or pte");
		return 1;
	}
	if (p->duration_s) {
		if (pt_parse_int(p->duration_s, 1, DURATION_MAX_S, &v)) {
			*ret = pd_http_reply_error(c, MHD_HTTP_BAD_REQUEST,
						   "duration_s: expected seconds from 1 to %d",
						   DURATION_MAX_S);
			return 1;
		}
		req->duration_s = (unsigned)v;
	}
	if (p->comm) {
		if (!p->comm[0] || strlen(p->comm) >= sizeof(req->comm)) {
			*ret =
			    pd_http_reply_error(c, MHD_HTTP_BAD_REQUEST,
						"comm: 1 to %zu characters", sizeof(req->comm) - 1);
			return 1;
		}
		snprintf(req->comm, sizeof(req->comm), "%s", p->comm);
	}
	if (p->pid) {
		if (pt_parse_int(p->pid, 1, INT_MAX, &v)) {
			*ret =
			    pd_http_reply_error(c, MHD_HTTP_BAD_REQUEST,
						"pid: expected a process id from 1 to %d", INT_MAX);
			return 1;
		}
		req->pid = (int)v;
	}
	return 0;
}

/* The token check shared by POST and DELETE: 0, or the refusal queued (returns 1). */
static int token_or_refuse(struct pd_http *h, struct MHD_Connection *c, int *ret)
{
	if (!h->token_len) {
		*ret =
		    pd_http_reply_error(c, MHD_HTTP_FORBIDDEN,
					"investigations are disabled (no token file configured)");
		return 1;
	}
	if (!pd_http_authorized(h, c)) {
		*ret =
		    pd_http_reply_error(c, MHD_HTTP_UNAUTHORIZED, "missing or wrong bearer token");
		return 1;
	}
	return 0;
}

/* Queues the core's answer: @body (stolen) with @status, or {"error"} from @err. */
static int reply_core(struct MHD_Connection *c, unsigned status, json_t *body, const char *err)
{
	if (status < 300 && body)
		return pd_http_reply_json(c, status, body);
	json_decref(body);
	if (status < 300)
		status = 500;
	return pd_http_reply_error(c, status, "%s", err[0] ? err : "failed");
}

static int post_investigation(struct pd_http *h, struct MHD_Connection *c, struct pd_req *r)
{
	struct inv_params p = {0};
	struct pd_inv_request req = {0};
	char store[4][32], err[512] = "";
	json_t *body = NULL;
	unsigned status;
	int ret;

	if (token_or_refuse(h, c, &ret))
		return ret;
	if (r->body_too_large)
		return pd_http_reply_error(c, MHD_HTTP_CONTENT_TOO_LARGE, "body over %d bytes",
					   PD_HTTP_MAX_SMALL_BODY);
	MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, take_param, &p);
	if (p.bad)
		return pd_http_reply_error(c, MHD_HTTP_BAD_REQUEST, "unknown parameter '%.64s'",
					   p.bad);
	if (r->body_len && body_params(r->body, r->body_len, &p, store, err, sizeof(err)))
		return pd_http_reply_error(c, MHD_HTTP_BAD_REQUEST, "%s", err);
	if (check_request(c, &p, &req, &ret))
		return ret;
	if (!h->core.investigate)
		return pd_http_reply_error(c, MHD_HTTP_SERVICE_UNAVAILABLE,
					   "investigations are not offered by this server");
	status = h->core.investigate(h->core.ctx, &req, &body, err, sizeof(err));
	return reply_core(c, status, body, err);
}

static int delete_investigation(struct pd_http *h, struct MHD_Connection *c)
{
	char err[512] = "";
	json_t *body = NULL;
	unsigned status;
	int ret;

	if (token_or_refuse(h, c, &ret))
		return ret;
	if (!h->core.end_investigation)
		return pd_http_reply_error(c, MHD_HTTP_SERVICE_UNAVAILABLE,
					   "investigations are not offered by this server");
	status = h->core.end_investigation(h->core.ctx, &body, err, sizeof(err));
	return reply_core(c, status, body, err);
}

static int get_investigations(struct pd_http *h, struct MHD_Connection *c)
{
	struct inv_params p = {0};

	MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, take_param, &p);
	if (p.bad || p.detail || p.duration_s || p.comm || p.pid)
		return pd_http_reply_error(c, MHD_HTTP_BAD_REQUEST, "unknown parameter '%.64s'",
					   p.bad ? p.bad : "detail/duration_s/comm/pid");
	if (!h->core.investigations)
		return pd_http_reply_error(c, MHD_HTTP_SERVICE_UNAVAILABLE,
					   "investigations are not offered by this server");
	return pd_http_reply_json(c, MHD_HTTP_OK, h->core.investigations(h->core.ctx));
}

int pd_http_investigations(struct pd_http *h, struct MHD_Connection *c, const char *url,
			   const char *method, struct pd_req *r)
{
	bool get = !strcmp(method, MHD_HTTP_METHOD_GET) || !strcmp(method, MHD_HTTP_METHOD_HEAD);

	if (!strcmp(url, "/api/v1/investigations")) {
		if (get)
			return get_investigations(h, c);
		if (!strcmp(method, MHD_HTTP_METHOD_POST))
			return post_investigation(h, c, r);
		return pd_http_reply_method_not_allowed(c, "GET, HEAD, POST");
	}
	if (!strcmp(url, "/api/v1/investigations/current")) {
		if (!strcmp(method, MHD_HTTP_METHOD_DELETE))
			return delete_investigation(h, c);
		return pd_http_reply_method_not_allowed(c, "DELETE");
	}
	return pd_http_reply_error(c, MHD_HTTP_NOT_FOUND, "no such endpoint: %.128s", url);
}
