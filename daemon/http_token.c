/* SPDX-License-Identifier: MIT */
/*
 * The bearer token of uploads and investigations: read at start from a
 * file only root or we may read, and compared with a request's
 * Authorization header in constant time.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <microhttpd.h>

#include "http_internal.h"

#define MAX_TOKEN_BYTES 4096

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

int pd_http_read_token(const char *path, char *tok, size_t toklen, size_t *len, char *err,
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
