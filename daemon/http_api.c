/* SPDX-License-Identifier: MIT */
/*
 * The store-backed JSON endpoints of ptescoped under /api/v1/: forks (paged),
 * one fork with its detail, stats, histogram, top comms, time series.
 */
#include <microhttpd.h>

#include "http_internal.h"

int pd_http_api(struct pd_http *h, struct MHD_Connection *c, const char *url, const char *method)
{
	return pd_http_reply_error(c, MHD_HTTP_NOT_FOUND, "no such endpoint: %s", url);
}
