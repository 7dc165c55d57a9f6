/* SPDX-License-Identifier: MIT */
/*
 * The dashboard's static files: opened beneath the web root only
 * (openat2 RESOLVE_BENEATH), regular files and a directory's index.html,
 * served with their type.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <microhttpd.h>

#include "http_internal.h"

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

int pd_http_serve_static(struct pd_http *h, struct MHD_Connection *c, const char *url)
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
