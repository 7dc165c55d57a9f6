/* SPDX-License-Identifier: MIT */
/*
 * The parent's cgroup path and what it names (cgroup.h).
 */
#include "cgroup.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#define ID_LEN 64

/* The path of the line at @line (up to @end) if it belongs to hierarchy @want
 * ("" the unified one, "name=systemd"), NULL otherwise. */
static const char *line_path(const char *line, const char *end, const char *want, size_t *plen)
{
	const char *c1 = memchr(line, ':', (size_t)(end - line)), *c2;

	if (!c1 || !(c2 = memchr(c1 + 1, ':', (size_t)(end - c1 - 1))))
		return NULL;
	if (want && ((size_t)(c2 - c1 - 1) != strlen(want) || strncmp(c1 + 1, want, strlen(want))))
		return NULL;
	*plen = (size_t)(end - c2 - 1);
	return c2 + 1;
}

static const char *find_path(const char *text, const char *want, size_t *plen)
{
	for (const char *p = text; p && *p;) {
		const char *nl = strchr(p, '\n'), *end = nl ? nl : p + strlen(p);
		const char *path = line_path(p, end, want, plen);

		if (path && *plen && path[0] == '/')
			return path;
		p = nl ? nl + 1 : NULL;
	}
	return NULL;
}

int pt_cgroup_from_proc(const char *text, char *out, size_t len)
{
	const char *path;
	size_t n = 0;

	if (!len)
		return -EINVAL;
	out[0] = '\0';
	if (!text)
		return -ENOENT;
	if (!(path = find_path(text, "", &n)) && !(path = find_path(text, "name=systemd", &n)) &&
	    !(path = find_path(text, NULL, &n)))
		return -ENOENT;
	snprintf(out, len, "%.*s", (int)n, path);
	return 0;
}

/* Where the component of @path that ends at @end begins. */
static const char *comp_start(const char *path, const char *end)
{
	const char *s = end;

	while (s > path && s[-1] != '/')
		s--;
	return s;
}

static bool ends_with(const char *s, size_t n, const char *suffix)
{
	size_t k = strlen(suffix);

	return n > k && !memcmp(s + n - k, suffix, k);
}

bool pt_cgroup_unit(const char *path, char *out, size_t len)
{
	const char *end = path ? path + strlen(path) : NULL;

	if (len)
		out[0] = '\0';
	while (end && end > path) {
		const char *s = comp_start(path, end);
		size_t n = (size_t)(end - s);

		if (ends_with(s, n, ".service") || ends_with(s, n, ".scope")) {
			snprintf(out, len, "%.*s", (int)n, s);
			return true;
		}
		end = s > path ? s - 1 : path;
	}
	return false;
}

/* The first run of exactly ID_LEN hex digits in [s, s + n), or NULL. */
static const char *hex_id(const char *s, size_t n)
{
	size_t run = 0;

	for (size_t i = 0; i <= n; i++) {
		if (i < n && isxdigit((unsigned char)s[i])) {
			run++;
			continue;
		}
		if (run == ID_LEN)
			return s + i - ID_LEN;
		run = 0;
	}
	return NULL;
}

bool pt_cgroup_container(const char *path, char *out, size_t len)
{
	const char *end = path ? path + strlen(path) : NULL;

	if (len)
		out[0] = '\0';
	if (len <= ID_LEN)
		return false;
	while (end && end > path) {
		const char *s = comp_start(path, end), *id = hex_id(s, (size_t)(end - s));

		if (id) {
			for (int i = 0; i < ID_LEN; i++)
				out[i] = (char)tolower((unsigned char)id[i]);
			out[ID_LEN] = '\0';
			return true;
		}
		end = s > path ? s - 1 : path;
	}
	return false;
}
