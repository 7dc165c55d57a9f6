/* SPDX-License-Identifier: MIT */
/*
 * kallsyms text to tep_register_function() calls (dat_kallsyms.h): one pass
 * that checks every line's shape, one that registers. Sized for the 100,000
 * lines of a distribution kernel's kallsyms: a few ms, against tens of ms
 * for libtraceevent's sscanf() per line.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "dat_kallsyms.h"

#define KSYM_MAX_NAME 512 /* the kernel's KSYM_NAME_LEN */

/* sscanf's white space, which ends a %s token */
static bool space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

static int hex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

struct ksym {
	uint64_t addr;
	char type;
	const char *name, *mod; /* mod: NULL when none */
	size_t name_len, mod_len;
};

/* The line at @p (up to '\n' or the end) into @k. Returns the next line's
 * start, or NULL when the line is not in /proc/kallsyms's shape. */
static const char *parse_line(const char *p, struct ksym *k)
{
	k->addr = 0;
	for (int i = 0; i < 16; i++) {
		int v = hex(p[i]);

		if (v < 0)
			return NULL;
		k->addr = k->addr << 4 | (uint64_t)v;
	}
	p += 16;
	if (p[0] != ' ' || !p[1] || space(p[1]) || p[2] != ' ')
		return NULL;
	k->type = p[1];
	k->name = p += 3;
	while (*p && !space(*p))
		p++;
	k->name_len = (size_t)(p - k->name);
	k->mod = NULL;
	k->mod_len = 0;
	if (p[0] == '\t' && p[1] == '[') {
		k->mod = p += 2;
		while (*p && !space(*p))
			p++;
		if (p - k->mod < 2 || p[-1] != ']')
			return NULL;
		k->mod_len = (size_t)(p - k->mod) - 1; /* without the ']' */
	}
	if (!k->name_len || k->name_len >= KSYM_MAX_NAME || k->mod_len >= KSYM_MAX_NAME ||
	    (*p && *p != '\n'))
		return NULL;
	return *p ? p + 1 : p;
}

/* Registers @k as tep_parse_kallsyms() would: absolute symbols and '$'
 * names skipped. 0 or -ENOMEM. */
static int register_one(struct tep_handle *tep, const struct ksym *k)
{
	char name[KSYM_MAX_NAME], mod[KSYM_MAX_NAME];

	if (k->name[0] == '$' || k->type == 'A' || k->type == 'a')
		return 0;
	memcpy(name, k->name, k->name_len);
	name[k->name_len] = '\0';
	if (k->mod) {
		memcpy(mod, k->mod, k->mod_len);
		mod[k->mod_len] = '\0';
	}
	return tep_register_function(tep, name, k->addr, k->mod ? mod : NULL) ? -ENOMEM : 0;
}

int pt_dat_kallsyms_register(struct tep_handle *tep, const char *text)
{
	struct ksym k;
	const char *p;
	int ret = 0;

	/* empty lines are skipped (strtok_r() does) */
	for (p = text; *p;)
		if (*p == '\n')
			p++;
		else if (!(p = parse_line(p, &k)))
			return 1;
	for (p = text; *p && !ret;) {
		if (*p == '\n') {
			p++;
			continue;
		}
		p = parse_line(p, &k);
		ret = register_one(tep, &k);
	}
	return ret;
}
