/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the HTTP layer's query-parameter parsers (http_internal.h) at
 * their edges, +-1: integers at every limit the endpoints use (and at the
 * ends of long long), times at the ends of int64 nanoseconds, relative times
 * back to 1970, trace-clock digits where only wall clock is taken.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>

#include "http_internal.h"
#include "util.h"
#include "check.h"

static int int_of(const char *s, long long min, long long max, long long want)
{
	long long v = -12345;
	int rc = pt_parse_int(s, min, max, &v);

	return rc ? rc : v == want ? 0 : -EFAULT;
}

static void test_int(void)
{
	static const struct {
		long long lo, hi;
		const char *below, *lo_s, *hi_s, *above;
	} lim[] = {
	    {1, 1000, "0", "1", "1000", "1001"},		 /* forks limit */
	    {0, INT_MAX, "-1", "0", "2147483647", "2147483648"}, /* pid */
	    {0, INT64_MAX / 1000, "-1", "0", "9223372036854775", "9223372036854776"}, /* min_us */
	    {0, INT64_MAX, "-1", "0", "9223372036854775807", "9223372036854775808"},  /* cursor */
	    {1, 100, "0", "1", "100", "101"},	       /* top limit */
	    {1, 10000, "0", "1", "10000", "10001"},    /* time series limit */
	    {60, 86400, "59", "60", "86400", "86401"}, /* step */
	};

	for (size_t i = 0; i < sizeof(lim) / sizeof(lim[0]); i++) {
		CHECK(int_of(lim[i].below, lim[i].lo, lim[i].hi, 0) == -EINVAL);
		CHECK(int_of(lim[i].lo_s, lim[i].lo, lim[i].hi, lim[i].lo) == 0);
		CHECK(int_of(lim[i].hi_s, lim[i].lo, lim[i].hi, lim[i].hi) == 0);
		CHECK(int_of(lim[i].above, lim[i].lo, lim[i].hi, 0) == -EINVAL);
	}
	CHECK(int_of("-9223372036854775808", LLONG_MIN, LLONG_MAX, LLONG_MIN) == 0);
	CHECK(int_of("-9223372036854775809", LLONG_MIN, LLONG_MAX, 0) == -EINVAL);
	CHECK(int_of("", 0, 10, 0) == -EINVAL);
	CHECK(int_of("5x", 0, 10, 0) == -EINVAL);
	CHECK(int_of("0x5", 0, 10, 0) == -EINVAL);
	CHECK(int_of("1e3", 0, 10000, 0) == -EINVAL);
}

static int time_of(const char *s, bool wall_only, int64_t *ns, bool *wall)
{
	int64_t now = 1700000000ll * 1000000000; /* 2023-11-14T22:13:20Z */

	return pd_http_parse_time(s, wall_only, now, ns, wall);
}

static void test_time(void)
{
	int64_t ns;
	bool wall;

	/* trace-clock digits: 0 .. INT64_MAX, refused where only wall clock is taken */
	CHECK(time_of("0", false, &ns, &wall) == 0 && ns == 0 && !wall);
	CHECK(time_of("9223372036854775807", false, &ns, &wall) == 0 && ns == INT64_MAX);
	CHECK(time_of("9223372036854775808", false, &ns, &wall) == -EINVAL);
	CHECK(time_of("123", true, &ns, &wall) == -EDOM);
	/* relative: back to 1970, not before (19675 days before the fixed now) */
	CHECK(time_of("-19675d", true, &ns, &wall) == 0 && wall && ns >= 0);
	CHECK(time_of("-19676d", true, &ns, &wall) == -EINVAL);
	CHECK(time_of("-1700000000s", true, &ns, &wall) == 0 && ns == 0);
	CHECK(time_of("-1700000001s", true, &ns, &wall) == -EINVAL);
	CHECK(time_of("-0s", true, &ns, &wall) == 0 && ns == 1700000000ll * 1000000000);
	/* RFC 3339 at the ends of int64 nanoseconds */
	CHECK(time_of("2262-04-11T23:47:16Z", true, &ns, &wall) == 0 && wall);
	CHECK(time_of("2262-04-11T23:47:17Z", true, &ns, &wall) == -ERANGE);
	CHECK(time_of("1677-09-21T00:12:44Z", true, &ns, &wall) == 0);
	CHECK(time_of("1677-09-21T00:12:43Z", true, &ns, &wall) == -ERANGE);
	CHECK(time_of("9999-12-31T23:59:59Z", false, &ns, &wall) == -ERANGE);
	CHECK(time_of("0000-01-01T00:00:00Z", false, &ns, &wall) == -ERANGE);
	CHECK(time_of("2024-02-30T00:00:00", true, &ns, &wall) == -EINVAL); /* no zone */
}

int main(void)
{
	test_int();
	test_time();
	TEST_DONE();
}
