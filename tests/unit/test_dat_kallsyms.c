/* SPDX-License-Identifier: MIT */
/*
 * dat_kallsyms.c against libtraceevent's own kallsyms parser: literal lines
 * (the shapes it takes and refuses, the symbols it skips), then the kallsyms
 * of each trace.dat given (read by dat_fly.c): for every symbol's address,
 * one below and one above, tep_find_function() must answer the same after
 * our registration as after tep_parse_kallsyms().
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dat_fly.h"
#include "dat_kallsyms.h"
#include "test.h"

static const char *find(struct tep_handle *tep, uint64_t addr)
{
	return tep_find_function(tep, addr);
}

static bool same(const char *a, const char *b)
{
	return (!a && !b) || (a && b && !strcmp(a, b));
}

static void test_literal(void)
{
	static const char good[] = "0000000000000000 A fixed_percpu_data\n"
				   "ffffffff81000000 T _text\n"
				   "\n"
				   "ffffffff81000100 t $x.1\n"
				   "ffffffff81000200 t copy_process\n"
				   "ffffffffc0000000 t mod_fn\t[some_mod]\n";
	struct tep_handle *tep = tep_alloc();

	CHECK_EQ(pt_dat_kallsyms_register(tep, good), 0);
	CHECK(same(find(tep, 0xffffffff81000000ull), "_text"));
	CHECK(same(find(tep, 0xffffffff81000150ull), "_text")); /* '$x.1' skipped */
	CHECK(same(find(tep, 0xffffffff81000204ull), "copy_process"));
	CHECK(same(find(tep, 0xffffffffc0000000ull), "mod_fn"));
	CHECK(same(find(tep, 0x10ull), NULL)); /* absolute symbols skipped */
	tep_free(tep);

	/* refused whole: nothing registered */
	static const char *bad[] = {
	    "ffffffff81000000 T _text\nffffffff8100 T short_address\n",
	    "ffffffff81000000 T _text\nffffffff81000100  T two_spaces\n",
	    "ffffffff81000000 T _text\nffffffff81000100 T name extra\n",
	    "ffffffff81000000 T _text\nffffffff81000100 t fn\t[no_bracket\n",
	    "ffffffff81000000 T _text\nffffffff81000100 t fn\t[]\n",
	    "ffffffff81000000 T _text\nffffffff81000100 T\n",
	    "ffffffff8100000g T bad_hex\n",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		tep = tep_alloc();
		CHECK_EQ(pt_dat_kallsyms_register(tep, bad[i]), 1);
		CHECK(same(find(tep, 0xffffffff81000000ull), NULL));
		tep_free(tep);
	}
}

/* Every symbol address of @text, and its neighbours, looked up both ways. */
static void compare(const char *path, const char *text)
{
	struct tep_handle *ours = tep_alloc(), *theirs = tep_alloc();
	size_t n = 0, diff = 0;

	CHECK_EQ(pt_dat_kallsyms_register(ours, text), 0);
	CHECK_EQ(tep_parse_kallsyms(theirs, text), 0);
	for (const char *p = text; *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : p + strlen(p)) {
		uint64_t addr = strtoull(p, NULL, 16);

		for (int d = -1; d <= 1; d++, n++)
			if (!same(find(ours, addr + (uint64_t)d), find(theirs, addr + (uint64_t)d)))
				diff++;
	}
	if (diff)
		fprintf(stderr, "%s: %zu of %zu lookups differ\n", path, diff, n);
	CHECK_EQ(diff, 0);
	CHECK(n > 3000);
	printf("%s: %zu lookups agree\n", path, n);
	tep_free(ours);
	tep_free(theirs);
}

int main(int argc, char **argv)
{
	test_literal();
	for (int i = 1; i < argc; i++) {
		struct pt_fly *f;
		const char *text = NULL;
		char why[128];
		int fd = -1;

		CHECK_EQ(pt_fly_open(argv[i], &f, why, sizeof(why)), 0);
		if (!f)
			continue;
		CHECK_EQ(pt_fly_meta(f, &fd, &text, why, sizeof(why)), 0);
		CHECK(text != NULL);
		if (text)
			compare(argv[i], text);
		if (fd >= 0)
			close(fd);
		pt_fly_free(f);
	}
	TEST_DONE();
}
