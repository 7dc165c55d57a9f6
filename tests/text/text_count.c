/* SPDX-License-Identifier: MIT */
/*
 * Test tool: reads one text trace (a path, or "-" for stdin, so pipes are
 * exercised) through pt_text_read_fd and prints what it got as "key value"
 * lines: events by type, named exits, unparsed lines, invariant violations,
 * and per-function counts for the names given after the path. The ctest
 * scripts compare these with grep counts of the same file.
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "reader.h"
#include "text_collect.h"

struct count {
	struct collect c;
	int nfuncs;
	char **funcs;
	uint64_t leaf[16], entry[16], exit_named[16];
	uint64_t exit_named_all;
};

static int count_fn(const struct pt_event *ev, void *ctx)
{
	struct count *k = ctx;
	int i;

	if (ev->type == PT_EV_EXIT && ev->func)
		k->exit_named_all++;
	for (i = 0; ev->func && i < k->nfuncs; i++) {
		if (strcmp(ev->func, k->funcs[i]))
			continue;
		if (ev->type == PT_EV_LEAF)
			k->leaf[i]++;
		else if (ev->type == PT_EV_ENTRY)
			k->entry[i]++;
		else if (ev->type == PT_EV_EXIT)
			k->exit_named[i]++;
	}
	return collect_fn(ev, &k->c);
}

int main(int argc, char **argv)
{
	struct count k = {0};
	struct pt_input_stats st;
	char err[256] = "";
	int fd, ret, i;

	if (argc < 2 || argc > 18) {
		fprintf(stderr, "usage: text_count FILE|- [FUNC...]\n");
		return 2;
	}
	fd = strcmp(argv[1], "-") ? open(argv[1], O_RDONLY | O_CLOEXEC) : 0;
	if (fd < 0) {
		perror(argv[1]);
		return 2;
	}
	k.funcs = argv + 2;
	k.nfuncs = argc - 2;
	ret = pt_text_read_fd(fd, count_fn, &k, &st, NULL, err, sizeof(err));
	if (ret < 0) {
		fprintf(stderr, "text_count: %s: %s\n", argv[1], err);
		return 1;
	}
	printf("entry %llu\n", (unsigned long long)k.c.by_type[PT_EV_ENTRY]);
	printf("exit %llu\n", (unsigned long long)k.c.by_type[PT_EV_EXIT]);
	printf("exit_named %llu\n", (unsigned long long)k.exit_named_all);
	printf("leaf %llu\n", (unsigned long long)k.c.by_type[PT_EV_LEAF]);
	printf("fork %llu\n", (unsigned long long)k.c.by_type[PT_EV_FORK]);
	printf("lost %llu\n", (unsigned long long)k.c.by_type[PT_EV_LOST]);
	printf("unparsed %llu\n", (unsigned long long)st.unparsed_lines);
	printf("lines %llu\n", (unsigned long long)st.lines);
	printf("bad %d\n", k.c.bad);
	for (i = 0; i < k.nfuncs; i++) {
		printf("leaf:%s %llu\n", k.funcs[i], (unsigned long long)k.leaf[i]);
		printf("entry:%s %llu\n", k.funcs[i], (unsigned long long)k.entry[i]);
		printf("exit:%s %llu\n", k.funcs[i], (unsigned long long)k.exit_named[i]);
	}
	collect_reset(&k.c);
	return 0;
}
