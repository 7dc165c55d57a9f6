/* SPDX-License-Identifier: MIT */
/*
 * Asks daemon/btf.c about a BTF file from the command line, for the
 * cross-check against pahole (test_btf_vmlinux.py) and by hand:
 *   btf_query FILE member TYPE PATH    prints "OFFSET SIZE"
 *   btf_query FILE param FUNC NAME     prints the 1-based index
 *   btf_query FILE time TYPE PATH      prints the load's and the member lookup's time in
 *                                      ms (a missing TYPE times a scan of every type)
 * Exit 0 on an answer, 2 on an error (message on stderr), 77 when FILE is absent.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "btf.h"

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int query(const struct pd_btf *b, const char *what, const char *a, const char *c)
{
	char err[256];
	uint32_t off, size;
	int idx, rc;

	if (strcmp(what, "param") == 0) {
		rc = pd_btf_param(b, a, c, &idx, err, sizeof(err));
		if (rc == 0)
			printf("%d\n", idx);
	} else {
		rc = pd_btf_member(b, a, c, &off, &size, err, sizeof(err));
		if (rc == 0 && strcmp(what, "member") == 0)
			printf("%u %u\n", off, size);
	}
	if (rc < 0 && strcmp(what, "time") == 0)
		return 0;
	if (rc < 0)
		fprintf(stderr, "btf_query: %s (%s)\n", err, strerror(-rc));
	return rc < 0 ? 2 : 0;
}

int main(int argc, char **argv)
{
	struct pd_btf *b;
	char err[256];
	double t0, t1, t2;
	int rc;

	if (argc != 5) {
		fprintf(stderr, "usage: btf_query FILE member|param|time A B\n");
		return 2;
	}
	t0 = now_ms();
	rc = pd_btf_load(argv[1], &b, err, sizeof(err));
	if (rc == -ENOENT)
		return 77;
	if (rc < 0) {
		fprintf(stderr, "btf_query: %s\n", err);
		return 2;
	}
	t1 = now_ms();
	rc = query(b, argv[2], argv[3], argv[4]);
	t2 = now_ms();
	if (rc == 0 && strcmp(argv[2], "time") == 0)
		printf("types %u load %.1f ms lookup %.2f ms\n", pd_btf_count(b), t1 - t0, t2 - t1);
	pd_btf_free(b);
	return rc;
}
