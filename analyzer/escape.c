/* SPDX-License-Identifier: MIT */
/*
 * The escape of outside strings for display (escape.h): UTF-8 validation
 * (strict: no overlong forms, no surrogates, nothing past U+10FFFF, as
 * jansson requires) and the "\\" / "\xHH" form, both ways.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "escape.h"

/* The length of the valid UTF-8 sequence at @p (@n bytes left), 0 if none. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
	unsigned c = p[0];
	size_t len, i;
	unsigned cp;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		len = 2, cp = c & 0x1f;
	else if (c >= 0xe0 && c <= 0xef)
		len = 3, cp = c & 0x0f;
	else if (c >= 0xf0 && c <= 0xf4)
		len = 4, cp = c & 0x07;
	else
		return 0;
	if (len > n)
		return 0;
	for (i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3f);
	}
	if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return len;
}

static bool is_control(const unsigned char *p, size_t len)
{
	return (len == 1 && (p[0] < 0x20 || p[0] == 0x7f)) ||
	       (len == 2 && p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f);
}

int pt_escape(const char *s, unsigned flags, char *out, size_t outlen)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)s;
	size_t n = strlen(s), o = 0;

	if (!outlen)
		return -ENOSPC;
	while (n) {
		size_t len = utf8_len(p, n), esc = len ? len : 1;
		bool as_hex = !len || ((flags & PT_ESC_CONTROL) && is_control(p, len));
		size_t need = as_hex ? 4 * esc : *p == '\\' ? 2 : len;

		if (o + need >= outlen) {
			out[o] = 0;
			return -ENOSPC;
		}
		for (size_t i = 0; as_hex && i < esc; i++) {
			out[o++] = '\\';
			out[o++] = 'x';
			out[o++] = hex[p[i] >> 4];
			out[o++] = hex[p[i] & 15];
		}
		if (!as_hex && *p == '\\') {
			out[o++] = '\\';
			out[o++] = '\\';
		} else if (!as_hex) {
			memcpy(out + o, p, len);
			o += len;
		}
		p += esc;
		n -= esc;
	}
	out[o] = 0;
	return 0;
}

json_t *pt_json_text(const char *s)
{
	size_t size = PT_ESC_SIZE(strlen(s));
	char *buf = malloc(size);
	json_t *j;

	if (!buf)
		return NULL;
	pt_escape(s, 0, buf, size);
	j = json_string(buf);
	free(buf);
	return j;
}

static int hex_val(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int pt_unescape(const char *s, char *out, size_t outlen)
{
	size_t o = 0;

	while (*s) {
		char c = *s++;

		if (c == '\\' && *s == '\\') {
			s++;
		} else if (c == '\\' && *s == 'x') {
			int hi = hex_val(s[1]), lo = hi < 0 ? -1 : hex_val(s[2]);

			if (lo < 0 || (hi | lo) == 0)
				return -EINVAL;
			c = (char)(hi << 4 | lo);
			s += 3;
		} else if (c == '\\') {
			return -EINVAL;
		}
		if (o + 1 >= outlen)
			return -ENAMETOOLONG;
		out[o++] = c;
	}
	if (!outlen)
		return -ENAMETOOLONG;
	out[o] = 0;
	return 0;
}
