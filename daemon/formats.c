/* SPDX-License-Identifier: MIT */
/*
 * Event formats from tracefs without the rest of libtracefs's local-events
 * loading (formats.h says why). Reads events/header_page and each named
 * event's format file whole, and hands them to libtraceevent's parsers.
 */
#include "formats.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <traceevent/event-parse.h>
#include <unistd.h>

#define MAX_FORMAT 65536

/* The whole of @path into a new buffer, its length in @len. -errno. */
static int slurp(const char *path, char **out, size_t *len)
{
	char *buf = malloc(MAX_FORMAT);
	size_t got = 0;
	int fd, ret = 0;

	if (!buf)
		return -ENOMEM;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		ret = -errno;
		free(buf);
		return ret;
	}
	while (got < MAX_FORMAT - 1) {
		ssize_t n = read(fd, buf + got, MAX_FORMAT - 1 - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			ret = -errno;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	if (!ret && got == MAX_FORMAT - 1)
		ret = -EFBIG;
	if (ret) {
		free(buf);
		return ret;
	}
	buf[got] = 0;
	*out = buf;
	*len = got;
	return 0;
}

static int load_header(struct tep_handle *tep, const char *dir, char *err, size_t errlen)
{
	char p[PATH_MAX], *buf;
	size_t len;
	int ret;

	snprintf(p, sizeof(p), "%s/events/header_page", dir);
	if ((ret = slurp(p, &buf, &len))) {
		snprintf(err, errlen, "cannot read %s: %s", p, strerror(-ret));
		return ret;
	}
	ret = tep_parse_header_page(tep, buf, (unsigned long)len, (int)sizeof(long)) ? -EINVAL : 0;
	if (ret)
		snprintf(err, errlen, "cannot parse %s", p);
	free(buf);
	return ret;
}

/* One "system/event" format. A missing event is not an error, nor is a print
 * format libtraceevent cannot parse: the event and its fields are added all
 * the same, and its fields are all we read (libtracefs tolerates it too). */
static int load_event(struct tep_handle *tep, const char *dir, const char *name, char *err,
		      size_t errlen)
{
	char p[PATH_MAX], sys[64], *buf;
	const char *slash = strchr(name, '/');
	size_t len;
	int ret;

	if (!slash || (size_t)(slash - name) >= sizeof(sys))
		return -EINVAL;
	snprintf(sys, sizeof(sys), "%.*s", (int)(slash - name), name);
	snprintf(p, sizeof(p), "%s/events/%s/format", dir, name);
	if ((ret = slurp(p, &buf, &len))) {
		if (ret == -ENOENT)
			return 0;
		snprintf(err, errlen, "cannot read %s: %s", p, strerror(-ret));
		return ret;
	}
	tep_parse_event(tep, buf, (unsigned long)len, sys);
	free(buf);
	return 0;
}

int pd_formats_load(const char *tracing_dir, const char *const *events, struct tep_handle **out,
		    char *err, size_t errlen)
{
	struct tep_handle *tep = tep_alloc();
	enum tep_endian e = tep_is_bigendian() ? TEP_BIG_ENDIAN : TEP_LITTLE_ENDIAN;
	int ret;

	if (!tep)
		return -ENOMEM;
	/* a live kernel's buffers are in this machine's byte order */
	tep_set_file_bigendian(tep, e);
	tep_set_local_bigendian(tep, e);
	tep_set_long_size(tep, (int)sizeof(long));
	tep_set_page_size(tep, (int)sysconf(_SC_PAGESIZE));
	ret = load_header(tep, tracing_dir, err, errlen);
	for (int i = 0; !ret && events[i]; i++)
		ret = load_event(tep, tracing_dir, events[i], err, errlen);
	if (ret) {
		tep_free(tep);
		return ret;
	}
	*out = tep;
	return 0;
}
