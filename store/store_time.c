/* SPDX-License-Identifier: MIT */
/*
 * Reads the times the front ends take (store_parse_time): trace-clock
 * nanoseconds, a time back from now (-30m, -7d) or RFC 3339, into int64
 * nanoseconds. Fed by the CLI's options and the HTTP API's parameters;
 * pure (the caller passes "now"), a few strings per request.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store.h"

static int parse_digits(const char **p, int n, int *out)
{
	int v = 0, i;

	for (i = 0; i < n; i++) {
		if ((*p)[i] < '0' || (*p)[i] > '9')
			return -EINVAL;
		v = v * 10 + ((*p)[i] - '0');
	}
	*p += n;
	*out = v;
	return 0;
}

static int parse_rfc3339(const char *p, int64_t *ns)
{
	struct tm tm = {0};
	int y, mo, d, h, mi, sec, oh, om;
	int64_t frac = 0, scale = 100000000, off = 0, secs;
	time_t t;

	if (parse_digits(&p, 4, &y) || *p++ != '-' || parse_digits(&p, 2, &mo) || *p++ != '-' ||
	    parse_digits(&p, 2, &d) || (*p != 'T' && *p != 't' && *p != ' '))
		return -EINVAL;
	p++;
	if (parse_digits(&p, 2, &h) || *p++ != ':' || parse_digits(&p, 2, &mi) || *p++ != ':' ||
	    parse_digits(&p, 2, &sec))
		return -EINVAL;
	if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
		return -EINVAL;
	if (*p == '.') {
		p++;
		if (*p < '0' || *p > '9')
			return -EINVAL;
		for (; *p >= '0' && *p <= '9'; p++) {
			frac += (*p - '0') * scale;
			scale /= 10;
		}
	}
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		int sign = *p++ == '-' ? -1 : 1;

		if (parse_digits(&p, 2, &oh) || *p++ != ':' || parse_digits(&p, 2, &om) ||
		    oh > 23 || om > 59)
			return -EINVAL;
		off = sign * (oh * 3600 + om * 60);
	} else {
		return -EINVAL;
	}
	if (*p)
		return -EINVAL;
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	t = timegm(&tm);
	if (t == (time_t)-1 && y != 1969)
		return -EINVAL;
	/* Outside what int64 nanoseconds hold (1677-09-21 to 2262-04-11): -ERANGE. */
	if (__builtin_sub_overflow((int64_t)t, off, &secs) ||
	    __builtin_mul_overflow(secs, (int64_t)1000000000, &secs) ||
	    __builtin_add_overflow(secs, frac, ns))
		return -ERANGE;
	return 0;
}

int store_parse_time(const char *s, int64_t now_wall_ns, int64_t *ns, bool *is_wall)
{
	char *end;
	unsigned long long v;
	int r;

	if (!s || !*s)
		return -EINVAL;
	if (*s >= '0' && *s <= '9' && strspn(s, "0123456789") == strlen(s)) {
		errno = 0;
		v = strtoull(s, &end, 10);
		if (errno || v > INT64_MAX)
			return -EINVAL;
		*ns = (int64_t)v;
		*is_wall = false;
		return 0;
	}
	if (*s == '-' && s[1] >= '0' && s[1] <= '9') {
		int64_t unit;

		errno = 0;
		v = strtoull(s + 1, &end, 10);
		if (errno || end[0] == 0 || end[1] != 0)
			return -EINVAL;
		switch (*end) {
		case 's':
			unit = 1000000000ll;
			break;
		case 'm':
			unit = 60 * 1000000000ll;
			break;
		case 'h':
			unit = 3600 * 1000000000ll;
			break;
		case 'd':
			unit = 86400 * 1000000000ll;
			break;
		default:
			return -EINVAL;
		}
		if (v > (unsigned long long)(now_wall_ns / unit))
			return -EINVAL;
		*ns = now_wall_ns - (int64_t)v * unit;
		*is_wall = true;
		return 0;
	}
	r = parse_rfc3339(s, ns);
	if (r)
		return r;
	*is_wall = true;
	return 0;
}
