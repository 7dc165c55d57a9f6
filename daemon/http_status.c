/* SPDX-License-Identifier: MIT */
/*
 * GET /healthz and GET /api/v1/status: the core's answers (pd_core), with
 * the HTTP layer's own figures (connections, query lanes, upload spool)
 * added to the status.
 */
#include <stdbool.h>

#include <microhttpd.h>

#include "spool.h"
#include "http_internal.h"

int pd_http_healthz(struct pd_http *h, struct MHD_Connection *c)
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

int pd_http_status(struct pd_http *h, struct MHD_Connection *c)
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
