/* SPDX-License-Identifier: MIT */
/*
 * Plain files laid out like tracefs (or /proc) for the daemon's unit tests:
 * write a file, read one back (into a static buffer, valid until the next
 * call), make a directory. Paths are DIR/REL.
 */
#ifndef PTESCOPE_TEST_FAKEFS_H
#define PTESCOPE_TEST_FAKEFS_H

#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

static inline void put(const char *dir, const char *rel, const char *v)
{
	char p[1024];
	FILE *f;

	snprintf(p, sizeof(p), "%s/%s", dir, rel);
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
	static char buf[4096];
	char p[1024];
	FILE *f;
	size_t n;

	snprintf(p, sizeof(p), "%s/%s", dir, rel);
	if (!(f = fopen(p, "r")))
		return NULL;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = 0;
	fclose(f);
	return buf;
}

static inline void mk(const char *dir, const char *rel)
{
	char p[1024];

	snprintf(p, sizeof(p), "%s/%s", dir, rel);
	mkdir(p, 0700);
}

#endif
