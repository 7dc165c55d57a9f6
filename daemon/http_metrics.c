/* SPDX-License-Identifier: MIT */
/*
 * GET /metrics: which exposition the scraper asked for (Accept: OpenMetrics
 * 1.0.0 when it names application/openmetrics-text, else the Prometheus
 * text format 0.0.4, also for any format we do not speak) and whether to
 * gzip it (Accept-Encoding: gzip); the body from metrics_render.c with the
 * core's status.
 *
 * Fed by the router (http_route.c); answers on the threads that answer /healthz, never
 * on a query worker. An exposition is tens to hundreds of KiB (docs/fleet.md
 * has the sizes): compressed in one deflate call.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

#include "http_internal.h"

#define CT_TEXT "text/plain; version=0.0.4; charset=utf-8"
#define CT_OPENMETRICS "application/openmetrics-text; version=1.0.0; charset=utf-8"

/* Whether header value @v lists media type or coding @what with a q above 0. */
static bool accepts(const char *v, const char *what)
{
	size_t n = strlen(what);

	for (const char *p = v; p && *p;) {
		const char *end = strchr(p, ','), *q;
		size_t len = end ? (size_t)(end - p) : strlen(p);

		while (len && (*p == ' ' || *p == '\t'))
			p++, len--;
		if (len >= n && !strncasecmp(p, what, n) &&
		    (len == n || p[n] == ';' || p[n] == ' ')) {
			q = strstr(p, "q=");
			if (!q || q >= p + len || strtod(q + 2, NULL) > 0)
				return true;
		}
		p = end ? end + 1 : NULL;
	}
	return false;
}

/* @in gzipped into a new buffer in *out (*out_len bytes). 0 or -1. */
static int gzip(const char *in, size_t len, char **out, size_t *out_len)
{
	z_stream z = {0};
	uLong cap = compressBound((uLong)len) + 32;
	char *buf = malloc(cap);
	int ret;

	if (!buf || deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
		free(buf);
		return -1;
	}
	z.next_in = (Bytef *)in;
	z.avail_in = (uInt)len;
	z.next_out = (Bytef *)buf;
	z.avail_out = (uInt)cap;
	ret = deflate(&z, Z_FINISH);
	*out_len = z.total_out;
	deflateEnd(&z);
	if (ret != Z_STREAM_END) {
		free(buf);
		return -1;
	}
	*out = buf;
	return 0;
}

int pd_http_metrics(struct pd_http *h, struct MHD_Connection *c)
{
	const char *acc = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Accept");
	const char *enc = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Accept-Encoding");
	bool om = acc && accepts(acc, "application/openmetrics-text");
	struct MHD_Response *resp;
	json_t *st = json_object();
	enum MHD_Result ret;
	char *buf, *z;
	size_t len, zlen;
	int r;

	if (!h->metrics)
		return pd_http_reply_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, "no metrics");
	if (st && h->core.status)
		h->core.status(h->core.ctx, st);
	r = pd_metrics_render(h->metrics, st, om, &buf, &len);
	json_decref(st);
	if (r)
		return pd_http_reply_error(c, 500, "out of memory");
	if (enc && accepts(enc, "gzip") && !gzip(buf, len, &z, &zlen)) {
		free(buf);
		buf = z;
		len = zlen;
	} else {
		enc = NULL;
	}
	resp = MHD_create_response_from_buffer(len, buf, MHD_RESPMEM_MUST_FREE);
	if (!resp) {
		free(buf);
		return MHD_NO;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, om ? CT_OPENMETRICS : CT_TEXT);
	if (enc)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_ENCODING, "gzip");
	MHD_add_response_header(resp, MHD_HTTP_HEADER_VARY, "Accept, Accept-Encoding");
	ret = MHD_queue_response(c, MHD_HTTP_OK, resp);
	MHD_destroy_response(resp);
	return ret;
}
