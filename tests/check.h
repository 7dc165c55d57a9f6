/* SPDX-License-Identifier: MIT */
/*
 * The C tests' check macros, one home for all tiers: each counts a failure in
 * test_failures and names the line. CHECK(cond); CHECKF(cond, fmt, ...) adds
 * a message; CHECK_EQ(a, b) prints both values; TEST_DONE() ends main.
 */
#ifndef PTESCOPE_TESTS_CHECK_H
#define PTESCOPE_TESTS_CHECK_H

#include <stdio.h>

static int test_failures;

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);   \
			test_failures++;                                                           \
		}                                                                                  \
	} while (0)

#define CHECKF(cond, ...)                                                                          \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "%s:%d: FAIL %s: ", __FILE__, __LINE__, #cond);            \
			fprintf(stderr, __VA_ARGS__);                                              \
			fputc('\n', stderr);                                                       \
			test_failures++;                                                           \
		}                                                                                  \
	} while (0)

#define CHECK_EQ(a, b)                                                                             \
	do {                                                                                       \
		long long a_ = (long long)(a), b_ = (long long)(b);                                \
		if (a_ != b_) {                                                                    \
			fprintf(stderr, "%s:%d: %s == %lld, expected %s == %lld\n", __FILE__,      \
				__LINE__, #a, a_, #b, b_);                                         \
			test_failures++;                                                           \
		}                                                                                  \
	} while (0)

#define TEST_DONE()                                                                                \
	do {                                                                                       \
		if (test_failures)                                                                 \
			fprintf(stderr, "%d check(s) failed\n", test_failures);                    \
		else                                                                               \
			printf("all checks passed\n");                                             \
		return test_failures ? 1 : 0;                                                      \
	} while (0)

#endif
