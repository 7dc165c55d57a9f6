/* SPDX-License-Identifier: MIT */
/*
 * Small helpers shared by the analyzer, the store and the front ends.
 * Header-only, so that store/ keeps depending on analyzer headers alone.
 */
#ifndef PTESCOPE_UTIL_H
#define PTESCOPE_UTIL_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

/*
 * Makes *@arr (of *@cap elements of @elem bytes) hold at least @need
 * elements, doubling from @first (> 0). Returns 0 or -ENOMEM (then *@arr
 * and *@cap are unchanged).
 */
static inline int pt_grow_array_from(void **arr, size_t *cap, size_t need, size_t elem,
				     size_t first)
{
	size_t cap2;
	void *p;

	if (need <= *cap)
		return 0;
	cap2 = *cap ? *cap * 2 : first;
	while (cap2 < need)
		cap2 *= 2;
	if (elem && cap2 > SIZE_MAX / elem)
		return -ENOMEM;
	p = realloc(*arr, cap2 * elem);
	if (!p)
		return -ENOMEM;
	*arr = p;
	*cap = cap2;
	return 0;
}

/* pt_grow_array_from() doubling from 16. */
static inline int pt_grow_array(void **arr, size_t *cap, size_t need, size_t elem)
{
	return pt_grow_array_from(arr, cap, need, elem, 16);
}

/* CLOCK_MONOTONIC now, in ns: the daemon's deadlines, budgets and timings. */
static inline uint64_t pt_mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/*
 * A whole string as a base-10 integer in [@min, @max] (strtoll: leading
 * blanks and a sign taken, nothing after the digits). Returns 0 and sets
 * *@out, or -EINVAL (NULL, empty, not a number, out of range; *@out unchanged).
 */
static inline int pt_parse_int(const char *s, long long min, long long max, long long *out)
{
	char *end;
	long long x;

	if (!s)
		return -EINVAL;
	errno = 0;
	x = strtoll(s, &end, 10);
	if (errno || end == s || *end || x < min || x > max)
		return -EINVAL;
	*out = x;
	return 0;
}

#endif
