/* SPDX-License-Identifier: MIT */
/*
 * POST /api/v1/replays: the upload checked (token, size, name) before its
 * body is read, streamed into a file in the spool within the room it has
 * reserved, synced, and handed to the core as a replay job (202).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <microhttpd.h>

#include "escape.h"
#include "spool.h"
#include "http_internal.h"

int pd_http_upload_begin(struct pd_http *h, struct pd_req *r, struct MHD_Connection *c)
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

int pd_http_upload_write(struct pd_http *h, struct pd_req *r, const char *data, size_t len)
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

int pd_http_upload_end(struct pd_http *h, struct pd_req *r, struct MHD_Connection *c)
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
