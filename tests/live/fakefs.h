/* SPDX-License-Identifier: MIT */
/*
 * Plain files laid out like tracefs (or /proc) for the daemon's unit tests:
 * write a file, read one back (into a static buffer, valid until the next
 * call), make a directory. Paths are DIR/REL.
 */
#ifndef PTESCOPE_TEST_FAKEFS_H
#define PTESCOPE_TEST_FAKEFS_H

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

/* The most get() returns, its terminating 0 included. */
#define FAKEFS_READ_MAX 4096

/* DIR/REL into @p; a path that does not fit ends the test (never a cut path). */
static inline void fake_path(char p[PATH_MAX], const char *dir, const char *rel)
{
	if ((size_t)snprintf(p, PATH_MAX, "%s/%s", dir, rel) >= PATH_MAX) {
		fprintf(stderr, "fakefs: path too long: %s/%s\n", dir, rel);
		exit(1);
	}
}

static inline void put(const char *dir, const char *rel, const char *v)
{
	char p[PATH_MAX];
	FILE *f;

	fake_path(p, dir, rel);
	f = fopen(p, "w");
	if (!f) {
		perror(p);
		exit(1);
	}
	fputs(v, f);
	fclose(f);
}

static inline char *get(const char *dir, const char *rel)
{
	static char buf[FAKEFS_READ_MAX];
	char p[PATH_MAX];
	FILE *f;
	size_t n;

	fake_path(p, dir, rel);
	if (!(f = fopen(p, "r")))
		return NULL;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = 0;
	fclose(f);
	return buf;
}

static inline void mk(const char *dir, const char *rel)
{
	char p[PATH_MAX];

	fake_path(p, dir, rel);
	mkdir(p, 0700);
}

#endif
