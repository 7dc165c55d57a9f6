/* SPDX-License-Identifier: MIT */
/*
 * The escape of outside strings (analyzer/escape.h): valid UTF-8 unchanged,
 * other bytes as \xHH, backslashes doubled, control characters only for logs,
 * the cut at a whole escape, and the way back (filters).
 */
#include <errno.h>
#include <string.h>

#include "escape.h"
#include "check.h"

static const char *esc(const char *s, unsigned flags)
{
	static char buf[256];

	CHECK(pt_escape(s, flags, buf, sizeof(buf)) == 0);
	return buf;
}

static void test_escape(void)
{
	char small[8];
	json_t *j;

	CHECK(!strcmp(esc("redis-server", 0), "redis-server"));
	CHECK(!strcmp(esc("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 0),
		      "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"));
	CHECK(!strcmp(esc("\xff\xfe"
			  "bad",
			  0),
		      "\\xff\\xfebad"));
	CHECK(!strcmp(esc("a\\b", 0), "a\\\\b"));
	/* overlong, surrogate, past U+10FFFF, cut sequences */
	CHECK(!strcmp(esc("\xc0\xaf", 0), "\\xc0\\xaf"));
	CHECK(!strcmp(esc("\xed\xa0\x80", 0), "\\xed\\xa0\\x80"));
	CHECK(!strcmp(esc("\xf4\x90\x80\x80", 0), "\\xf4\\x90\\x80\\x80"));
	CHECK(!strcmp(esc("\xe2\x82", 0), "\\xe2\\x82"));
	/* control characters: kept for JSON (it escapes them), escaped for logs */
	CHECK(!strcmp(esc("a\nb\x1b[2J", 0), "a\nb\x1b[2J"));
	CHECK(!strcmp(esc("a\nb\x1b[2J\x7f\xc2\x9b", PT_ESC_CONTROL),
		      "a\\x0ab\\x1b[2J\\x7f\\xc2\\x9b"));
	/* cut at a whole escape, always terminated */
	CHECK(pt_escape("abcd\xff", 0, small, sizeof(small)) == -ENOSPC && !strcmp(small, "abcd"));
	CHECK(pt_escape("abc\xff", 0, small, sizeof(small)) == 0 && !strcmp(small, "abc\\xff"));
	CHECK(pt_escape("abcdefg", 0, small, sizeof(small)) == 0 && !strcmp(small, "abcdefg"));
	CHECK(pt_escape("abcdefgh", 0, small, sizeof(small)) == -ENOSPC);
	j = pt_json_text("\xff\xfe"
			 "bad");
	CHECK(j && !strcmp(json_string_value(j), "\\xff\\xfebad"));
	json_decref(j);
}

static void test_unescape(void)
{
	char out[32];

	CHECK(pt_unescape("\\xff\\xfebad\\\\x", out, sizeof(out)) == 0 && !strcmp(out, "\xff\xfe"
										       "bad\\x"));
	CHECK(pt_unescape("\\xFF", out, sizeof(out)) == 0 && !strcmp(out, "\xff"));
	CHECK(pt_unescape("\xff\xfe", out, sizeof(out)) == 0 && !strcmp(out, "\xff\xfe"));
	CHECK(pt_unescape("\\x00", out, sizeof(out)) == -EINVAL);
	CHECK(pt_unescape("\\x0", out, sizeof(out)) == -EINVAL);
	CHECK(pt_unescape("\\q", out, sizeof(out)) == -EINVAL);
	CHECK(pt_unescape("a\\", out, sizeof(out)) == -EINVAL);
	/* the length limit, +-1 */
	CHECK(pt_unescape("1234567", out, 8) == 0);
	CHECK(pt_unescape("12345678", out, 8) == -ENAMETOOLONG);
	CHECK(pt_unescape("123456\\xff", out, 8) == 0);
	CHECK(pt_unescape("1234567\\xff", out, 8) == -ENAMETOOLONG);
	/* round trip of every byte */
	for (int b = 1; b < 256; b++) {
		char in[2] = {(char)b, 0}, e[8];

		CHECK(pt_escape(in, PT_ESC_CONTROL, e, sizeof(e)) == 0);
		CHECK(pt_unescape(e, out, sizeof(out)) == 0 && !strcmp(out, in));
	}
}

int main(void)
{
	test_escape();
	test_unescape();
	TEST_DONE();
}
