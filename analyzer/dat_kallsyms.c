/* SPDX-License-Identifier: MIT */
/*
 * kallsyms text to a sorted symbol index (dat_kallsyms.h): one pass that
 * parses every line (checking its shape) into addresses and name offsets,
 * a stable LSD radix sort of their order by address from libtraceevent's
 * list order (newest first), and glibc's bsearch() probes with
 * libtraceevent's comparison. Sized for the 100,000 to 150,000 lines of a
 * distribution kernel's kallsyms: a few ms, 20 bytes a line (3 MB) in one
 * huge-page buffer.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bigbuf.h"
#include "dat_kallsyms.h"

#define KSYM_MAX_NAME 512 /* the kernel's KSYM_NAME_LEN */

/* One parsed line: its address and where its name starts in the text. */
struct ksym {
	uint64_t addr;
	const char *func;
};

/*
 * libtraceevent's array of struct func_map (address, name, module), sorted,
 * as 20 bytes an entry in one buffer instead of its 24 and a copy to sort
 * them: the kept lines' addresses and names in text order, and their order
 * (by[]: line numbers) sorted stably by address from libtraceevent's list
 * order (newest, last, first). The module is never asked for.
 */
struct pt_ksyms {
	char *text;
	uint64_t *addr;	  /* n, in text order */
	uint32_t *name;	  /* n: offsets of the names in text */
	uint32_t *by;	  /* n: line numbers (in addr[] and name[]) in sorted order */
	uint32_t *tmp;	  /* n: the sort's other buffer */
	size_t n, cap;	  /* cap: lines the buffer has room for */
	size_t buf_bytes; /* the buffer at addr (bigbuf.h) */
};

/* Per byte: a hex digit's value + 1 (0: not a hex digit). */
static const uint8_t hex_plus1[256] = {
    ['0'] = 1,	['1'] = 2,  ['2'] = 3,	['3'] = 4,  ['4'] = 5,	['5'] = 6,  ['6'] = 7,	['7'] = 8,
    ['8'] = 9,	['9'] = 10, ['a'] = 11, ['b'] = 12, ['c'] = 13, ['d'] = 14, ['e'] = 15, ['f'] = 16,
    ['A'] = 11, ['B'] = 12, ['C'] = 13, ['D'] = 14, ['E'] = 15, ['F'] = 16,
};

/* Per byte: whether it ends a sscanf %s token (white space), or the text (NUL). */
static const bool token_end[256] = {
    ['\0'] = true, [' '] = true,  ['\t'] = true, ['\n'] = true,
    ['\v'] = true, ['\f'] = true, ['\r'] = true,
};

static inline bool ends(char c)
{
	return token_end[(uint8_t)c];
}

/* Eight bytes at a time (a line is 40 on average): the words below are
 * little-endian loads, the first byte the lowest. */
#define ONES 0x0101010101010101ull
#define HIGHS 0x8080808080808080ull

/* Per byte of @x (each below 0x80): its high bit set when it lies in [lo, hi]
 * (no carry crosses bytes: lo >= 0x30, hi >= 0x39). */
static inline uint64_t bytes_in(uint64_t x, uint8_t lo, uint8_t hi)
{
	return (x + ONES * (uint8_t)(0x80 - lo)) & ~(x + ONES * (uint8_t)(0x7f - hi)) & HIGHS;
}

/* The 8 hex digits at @p, the first the most significant, into *v; false
 * when any is not a hex digit. */
static inline bool hex8(const char *p, uint32_t *v)
{
	uint64_t x, d;

	memcpy(&x, p, 8);
	if ((x & HIGHS) || (bytes_in(x, '0', '9') | bytes_in(x | ONES * 0x20, 'a', 'f')) != HIGHS)
		return false;
	x = __builtin_bswap64(x);		       /* the first digit in the top byte */
	d = (x & ONES * 0x0f) + 9 * ((x >> 6) & ONES); /* letters have bit 6: + 9 */
	d = (d | d >> 4) & 0x00ff00ff00ff00ffull;
	d = (d | d >> 8) & 0x0000ffff0000ffffull;
	*v = (uint32_t)(d | d >> 16);
	return true;
}

/* The first byte at or after @p that ends a token (ends()); @end is the
 * text's end (its NUL). */
static inline char *token_stop(char *p, const char *end)
{
	while (end - p >= 8) {
		uint64_t x, t;

		memcpy(&x, p, 8);
		t = (x - ONES * 0x21) & ~x & HIGHS; /* bytes below 0x21: exact up to the first */
		if (!t) {
			p += 8;
			continue;
		}
		p += __builtin_ctzll(t) / 8;
		if (ends(*p))
			return p;
		p++; /* a control character: part of the token */
	}
	while (!ends(*p))
		p++;
	return p;
}

/*
 * The line at @p (up to '\n' or the text's end, @end) into @s, its name and
 * module terminated in place; @keep false for the symbols libtraceevent
 * skips. Returns the next line's start, NULL when the line is not in
 * /proc/kallsyms's shape.
 */
static char *parse_line(char *p, const char *end, struct ksym *s, bool *keep)
{
	char *name, *mod, type;
	uint32_t hi, lo;

	s->addr = 0;
	if (end - p >= 16) {
		if (!hex8(p, &hi) || !hex8(p + 8, &lo))
			return NULL;
		s->addr = (uint64_t)hi << 32 | lo;
	} else {
		for (int i = 0; i < 16; i++) {
			unsigned v = hex_plus1[(uint8_t)p[i]];

			if (!v)
				return NULL;
			s->addr = s->addr << 4 | (v - 1);
		}
	}
	p += 16;
	if (p[0] != ' ' || ends(p[1]) || p[2] != ' ')
		return NULL;
	type = p[1];
	name = p += 3;
	p = token_stop(p, end);
	if (p == name || p - name >= KSYM_MAX_NAME)
		return NULL;
	if (p[0] == '\t' && p[1] == '[') {
		*p = '\0';
		mod = p += 2;
		p = token_stop(p, end);
		if (p - mod < 2 || p - mod > KSYM_MAX_NAME || p[-1] != ']')
			return NULL;
		p[-1] = '\0'; /* the ']' */
	}
	if (*p && *p != '\n')
		return NULL;
	s->func = name;
	*keep = name[0] != '$' && type != 'A' && type != 'a';
	if (!*p)
		return p;
	*p = '\0';
	return p + 1;
}

/* Sorts k->by (line numbers, in list order) by address, keeping the order
 * of equal ones: a byte at a time, least significant first, skipping the
 * bytes every address shares. */
static void sort_stable(struct pt_ksyms *k)
{
	const uint64_t *addr = k->addr;
	uint64_t all_or = 0, all_and = ~(uint64_t)0;
	uint32_t *a = k->by, *b = k->tmp;
	size_t n = k->n;

	for (size_t i = 0; i < n; i++) {
		all_or |= addr[i];
		all_and &= addr[i];
	}
	for (int shift = 0; shift < 64; shift += 8) {
		size_t count[257] = {0};
		uint32_t *t;

		if ((((all_or ^ all_and) >> shift) & 0xff) == 0)
			continue; /* every address has this byte */
		for (size_t i = 0; i < n; i++)
			count[((addr[a[i]] >> shift) & 0xff) + 1]++;
		for (int c = 0; c < 256; c++)
			count[c + 1] += count[c];
		for (size_t i = 0; i < n; i++)
			b[count[(addr[a[i]] >> shift) & 0xff]++] = a[i];
		t = a;
		a = b;
		b = t;
	}
	if (a != k->by)
		memcpy(k->by, a, n * sizeof(*a));
}

/* The lines of @text: an upper bound on its symbols. */
static size_t count_lines(const char *text)
{
	size_t n = 1;

	for (const char *p = text; (p = strchr(p, '\n')); p++)
		n++;
	return n;
}

/* The kept lines of @k->text (k has room for every line), then their list
 * order: newest (last) first, as libtraceevent's list holds them. 0, 1 (a
 * line not in shape). */
static int parse_all(struct pt_ksyms *k, const char *end)
{
	char *p = k->text;

	while (*p) {
		struct ksym s;
		bool keep;

		if (*p == '\n') { /* empty lines are skipped (strtok_r() does) */
			p++;
			continue;
		}
		if (!(p = parse_line(p, end, &s, &keep)))
			return 1;
		if (keep) {
			k->addr[k->n] = s.addr;
			k->name[k->n] = (uint32_t)(s.func - k->text);
			k->n++;
		}
	}
	for (size_t i = 0; i < k->n; i++)
		k->by[i] = (uint32_t)(k->n - 1 - i);
	return 0;
}

int pt_ksyms_new(char *text, struct pt_ksyms **out)
{
	struct pt_ksyms *k = calloc(1, sizeof(*k));
	size_t len = strlen(text);
	int ret;

	*out = NULL;
	if (!k)
		return -ENOMEM;
	k->text = text;
	k->cap = count_lines(text);
	if (len > UINT32_MAX || k->cap > UINT32_MAX) {
		free(k);
		return 1; /* offsets and line numbers are 32 bits: libtraceevent's way */
	}
	k->buf_bytes = k->cap * (sizeof(*k->addr) + 3 * sizeof(uint32_t));
	if (!(k->addr = pt_bigbuf_alloc(k->buf_bytes))) {
		free(k);
		return -ENOMEM;
	}
	k->name = (uint32_t *)(k->addr + k->cap);
	k->by = k->name + k->cap;
	k->tmp = k->by + k->cap;
	ret = parse_all(k, text + len);
	if (ret) {
		pt_ksyms_free(k);
		return ret;
	}
	sort_stable(k);
	*out = k;
	return 0;
}

void pt_ksyms_free(struct pt_ksyms *k)
{
	if (!k)
		return;
	pt_bigbuf_free(k->addr, k->buf_bytes);
	free(k);
}

/* The address of sorted entry @i; entry n is libtraceevent's end record,
 * address 0. */
static inline uint64_t addr_at(const struct pt_ksyms *k, size_t i)
{
	return i < k->n ? k->addr[k->by[i]] : 0;
}

/*
 * glibc's bsearch() (bits/stdlib-bsearch.h: the same probes) with
 * libtraceevent's func_bcmp(): entry i matches when @addr is its address or
 * lies between it and the next entry's.
 */
const char *pt_ksyms_find(const struct pt_ksyms *k, uint64_t addr)
{
	size_t l = 0, u = k->n;

	while (l < u) {
		size_t i = (l + u) / 2;
		uint64_t at = addr_at(k, i);

		if (addr == at || (addr > at && addr < addr_at(k, i + 1)))
			return k->text + k->name[k->by[i]];
		if (addr < at)
			u = i;
		else
			l = i + 1;
	}
	return NULL;
}
