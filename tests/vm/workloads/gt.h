/*
 * Ground-truth output shared by the VM workloads.
 *
 * Every workload prints what it did as JSON lines that start with "GT " on stdout, flushed at
 * once, so the harness can pick them out of a console or a log mixed with other output. The
 * harness (tests/vm/vmlib.py) turns them into the ground truth of tests/fixtures/vm/manifest.json.
 * Sized for tens of lines per run (a fork storm prints one line per child: thousands at most).
 */
#ifndef PTESCOPE_VM_GT_H
#define PTESCOPE_VM_GT_H

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Prints one ground-truth line: fmt is the inside of a JSON object, without braces. */
static inline void gt_print(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline void gt_print(const char *fmt, ...)
{
	va_list ap;

	fputs("GT {", stdout);
	va_start(ap, fmt);
	vfprintf(stdout, fmt, ap);
	va_end(ap);
	fputs("}\n", stdout);
	fflush(stdout);
}

/* Dies with one line naming what failed; workloads are test programs, exiting is fine here. */
static inline void gt_die(const char *what)
{
	fprintf(stderr, "%s: %s\n", what, strerror(errno));
	exit(1);
}

/* Parses a non-negative long in [min, max] or dies naming the option. */
static inline long gt_parse_long(const char *opt, const char *s, long min, long max)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max) {
		fprintf(stderr, "%s: bad value '%s' (want %ld..%ld)\n", opt, s, min, max);
		exit(2);
	}
	return v;
}

/* Reads one "Key:  N kB" field of /proc/self/smaps_rollup; returns -1 when absent. */
static inline long gt_smaps_kb(const char *key)
{
	char line[256];
	size_t klen = strlen(key);
	long kb = -1;
	FILE *f = fopen("/proc/self/smaps_rollup", "re");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, key, klen) == 0 && line[klen] == ':') {
			kb = strtol(line + klen + 1, NULL, 10);
			break;
		}
	}
	fclose(f);
	return kb;
}

#endif
