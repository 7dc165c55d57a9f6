/* SPDX-License-Identifier: MIT */
/*
 * kallsyms text to a sorted symbol array (dat_kallsyms.h): one pass that
 * parses every line (checking its shape) into entries newest first, as
 * libtraceevent's list holds them, a stable LSD radix sort by address over
 * the bytes that differ, and bsearch() with libtraceevent's comparison.
 * Sized for the 100,000 to 150,000 lines of a distribution kernel's
 * kallsyms: a few ms.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bigbuf.h"
#include "dat_kallsyms.h"

#define KSYM_MAX_NAME 512 /* the kernel's KSYM_NAME_LEN */

/* libtraceevent's struct func_map: address, name, module */
struct ksym {
	uint64_t addr;
	const char *func, *mod;
};

struct pt_ksyms {
	struct ksym *sym; /* n entries, then one with address 0 (bsearch's end) */
	size_t n, cap;	  /* cap: entries sym has room for (bigbuf.h) */
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

/*
 * The line at @p (up to '\n' or the text's end) into @s, its name and
 * module terminated in place; @keep false for the symbols libtraceevent
 * skips. Returns the next line's start, NULL when the line is not in
 * /proc/kallsyms's shape.
 */
static char *parse_line(char *p, struct ksym *s, bool *keep)
{
	char *name, *mod = NULL, type;

	s->addr = 0;
	for (int i = 0; i < 16; i++) {
		unsigned v = hex_plus1[(uint8_t)p[i]];

		if (!v)
			return NULL;
		s->addr = s->addr << 4 | (v - 1);
	}
	p += 16;
	if (p[0] != ' ' || ends(p[1]) || p[2] != ' ')
		return NULL;
	type = p[1];
	name = p += 3;
	while (!ends(*p))
		p++;
	if (p == name || p - name >= KSYM_MAX_NAME)
		return NULL;
	if (p[0] == '\t' && p[1] == '[') {
		*p = '\0';
		mod = p += 2;
		while (!ends(*p))
			p++;
		if (p - mod < 2 || p - mod > KSYM_MAX_NAME || p[-1] != ']')
			return NULL;
		p[-1] = '\0'; /* the ']' */
	}
	if (*p && *p != '\n')
		return NULL;
	s->func = name;
	s->mod = mod;
	*keep = name[0] != '$' && type != 'A' && type != 'a';
	if (!*p)
		return p;
	*p = '\0';
	return p + 1;
}

/* Sorts @a (@n entries) by address, keeping the order of equal ones, with
 * @tmp of the same size: a byte at a time, least significant first,
 * skipping the bytes every address shares. */
static void sort_stable(struct ksym *a, struct ksym *tmp, size_t n)
{
	uint64_t all_or = 0, all_and = ~(uint64_t)0;

	for (size_t i = 0; i < n; i++) {
		all_or |= a[i].addr;
		all_and &= a[i].addr;
	}
	for (int shift = 0; shift < 64; shift += 8) {
		size_t count[257] = {0};

		if ((((all_or ^ all_and) >> shift) & 0xff) == 0)
			continue; /* every address has this byte */
		for (size_t i = 0; i < n; i++)
			count[((a[i].addr >> shift) & 0xff) + 1]++;
		for (int b = 0; b < 256; b++)
			count[b + 1] += count[b];
		for (size_t i = 0; i < n; i++)
			tmp[count[(a[i].addr >> shift) & 0xff]++] = a[i];
		memcpy(a, tmp, n * sizeof(*a));
	}
}

/* The lines of @text: an upper bound on its symbols. */
static size_t count_lines(const char *text)
{
	size_t n = 1;

	for (const char *p = text; (p = strchr(p, '\n')); p++)
		n++;
	return n;
}

/* The kept lines of @text (k->sym has room for every line and the end
 * record), newest (last) first: libtraceevent's list order. 0, 1 (a line
 * not in shape). */
static int parse_all(char *text, struct pt_ksyms *k)
{
	char *p = text;

	while (*p) {
		struct ksym s;
		bool keep;

		if (*p == '\n') { /* empty lines are skipped (strtok_r() does) */
			p++;
			continue;
		}
		if (!(p = parse_line(p, &s, &keep)))
			return 1;
		if (keep)
			k->sym[k->n++] = s;
	}
	for (size_t i = 0, j = k->n ? k->n - 1 : 0; i < j; i++, j--) {
		struct ksym t = k->sym[i];

		k->sym[i] = k->sym[j];
		k->sym[j] = t;
	}
	return 0;
}

int pt_ksyms_new(char *text, struct pt_ksyms **out)
{
	struct pt_ksyms *k = calloc(1, sizeof(*k));
	struct ksym *tmp;
	int ret;

	*out = NULL;
	if (!k)
		return -ENOMEM;
	k->cap = count_lines(text) + 1;
	if (!(k->sym = pt_bigbuf_alloc(k->cap * sizeof(*k->sym)))) {
		pt_ksyms_free(k);
		return -ENOMEM;
	}
	ret = parse_all(text, k);
	if (!ret) {
		tmp = pt_bigbuf_alloc(k->cap * sizeof(*tmp));
		if (!tmp)
			ret = -ENOMEM;
		else
			sort_stable(k->sym, tmp, k->n);
		pt_bigbuf_free(tmp, k->cap * sizeof(*tmp));
	}
	if (ret) {
		pt_ksyms_free(k);
		return ret;
	}
	k->sym[k->n] = (struct ksym){0, NULL, NULL}; /* libtraceevent's end record */
	*out = k;
	return 0;
}

void pt_ksyms_free(struct pt_ksyms *k)
{
	if (!k)
		return;
	pt_bigbuf_free(k->sym, k->cap * sizeof(*k->sym));
	free(k);
}

/* libtraceevent's func_bcmp(): @b matches when @a's address is @b's or lies
 * between @b's and the next entry's. */
static int ksym_bcmp(const void *a, const void *b)
{
	const struct ksym *x = a, *y = b;

	if (x->addr == y->addr || (x->addr > y->addr && x->addr < (y + 1)->addr))
		return 0;
	return x->addr < y->addr ? -1 : 1;
}

const char *pt_ksyms_find(const struct pt_ksyms *k, uint64_t addr)
{
	struct ksym key = {addr, NULL, NULL};
	const struct ksym *s = bsearch(&key, k->sym, k->n, sizeof(*k->sym), ksym_bcmp);

	return s ? s->func : NULL;
}
