/* SPDX-License-Identifier: MIT */
/*
 * dat_kallsyms.c against libtraceevent's own kallsyms parser: literal lines
 * (the shapes it takes and refuses, the symbols it skips, duplicate and
 * unsorted addresses), then the kallsyms of each trace.dat given (read by
 * dat_fly.c): for every symbol's address, one below and one above,
 * pt_ksyms_find() must answer what tep_find_function() answers after
 * tep_parse_kallsyms().
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <traceevent/event-parse.h>

#include "dat_fly.h"
#include "dat_kallsyms.h"
#include "check.h"

static bool same(const char *a, const char *b)
{
	return (!a && !b) || (a && b && !strcmp(a, b));
}

/* @text indexed in a copy (*copy, free it after the index): NULL when refused. */
static struct pt_ksyms *index_of(const char *text, int expect, char **copy)
{
	struct pt_ksyms *k = NULL;

	*copy = strdup(text);
	CHECK_EQ(pt_ksyms_new(*copy, &k), expect);
	return k;
}

static void test_literal(void)
{
	static const char good[] = "0000000000000000 A fixed_percpu_data\n"
				   "ffffffff81000000 T _text\n"
				   "\n"
				   "ffffffff81000100 t $x.1\n"
				   "ffffffff81000200 t copy_process\n"
				   "ffffffff81000200 t copy_process_alias\n"
				   "ffffffffc0000000 t mod_fn\t[some_mod]";
	static const char *bad[] = {
	    "ffffffff81000000 T _text\nffffffff8100 T short_address\n",
	    "ffffffff81000000 T _text\nffffffff81000100  T two_spaces\n",
	    "ffffffff81000000 T _text\nffffffff81000100 T name extra\n",
	    "ffffffff81000000 T _text\nffffffff81000100 t fn\t[no_bracket\n",
	    "ffffffff81000000 T _text\nffffffff81000100 t fn\t[]\n",
	    "ffffffff81000000 T _text\nffffffff81000100 T\n",
	    "ffffffff8100000g T bad_hex\n",
	    /* the characters next to the hex digits' ranges, in either half of
	     * an address (dat_kallsyms.c reads 8 digits at a time) */
	    "/fffffff81000000 T slash\n",
	    "ffffffff8100000: T colon\n",
	    "ffffffff@1000000 T at\n",
	    "fffffffG81000000 T upper_g\n",
	    "ffffffff`1000000 T backtick\n",
	    ("ffffffff\xc1" /* split: \xc1 then the digit 1 */
	     "1000000 T high_byte\n"),
	    "ffffffff81000000 T _text\nffff",
	};
	char *copy;
	struct pt_ksyms *k = index_of(good, 0, &copy);

	if (k) {
		CHECK(same(pt_ksyms_find(k, 0xffffffff81000000ull), "_text"));
		/* '$x.1' skipped */
		CHECK(same(pt_ksyms_find(k, 0xffffffff81000150ull), "_text"));
		CHECK(same(pt_ksyms_find(k, 0xffffffffc0000000ull), "mod_fn"));
		CHECK(same(pt_ksyms_find(k, 0xffffffffc0000001ull), NULL)); /* past the last */
		CHECK(same(pt_ksyms_find(k, 0x10ull), NULL)); /* absolute symbols skipped */
		pt_ksyms_free(k);
	}
	free(copy);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CHECK(index_of(bad[i], 1, &copy) == NULL);
		free(copy);
	}
}

/* Every symbol address of @text, and its neighbours, looked up both ways;
 * also the literal text of test_literal(), duplicates included. */
static void compare(const char *path, const char *text)
{
	struct tep_handle *tep = tep_alloc();
	char *copy;
	struct pt_ksyms *k = index_of(text, 0, &copy);
	size_t n = 0, diff = 0;

	CHECK_EQ(tep_parse_kallsyms(tep, text), 0);
	for (const char *p = text; k && *p;
	     p = strchr(p, '\n') ? strchr(p, '\n') + 1 : p + strlen(p)) {
		uint64_t addr = strtoull(p, NULL, 16);

		for (int d = -1; d <= 1; d++, n++)
			if (!same(pt_ksyms_find(k, addr + (uint64_t)d),
				  tep_find_function(tep, addr + (uint64_t)d)))
				diff++;
	}
	if (diff)
		fprintf(stderr, "%s: %zu of %zu lookups differ\n", path, diff, n);
	CHECK_EQ(diff, 0);
	CHECK(n >= 24);
	printf("%s: %zu lookups agree\n", path, n);
	pt_ksyms_free(k);
	free(copy);
	tep_free(tep);
}

int main(int argc, char **argv)
{
	test_literal();
	compare("literal",
		"0000000000000000 A fixed_percpu_data\nffffffff81000000 T _text\n"
		"ffffffff81000200 t copy_process\nffffffff81000200 t copy_process_alias\n"
		"ffffffff81000100 t out_of_order\nffffffff81000200 W third_of_three\n"
		"ffffffffc0000000 t mod_fn\t[some_mod]\nffffffff81000300 T after_mod\n"
		/* upper-case digits; a name with a control character and one with
		 * bytes above 0x7f (both part of a %s token) */
		"FFFFFFFF81000400 t upper_hex\nffffffff81000500 t ctl\001inside_a_long_name\n"
		"ffffffff81000600 t caf\xc3\xa9\nffffffff81000700 t plain\n");
	for (int i = 1; i < argc; i++) {
		struct pt_fly *f;
		char *text = NULL, why[128];
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
