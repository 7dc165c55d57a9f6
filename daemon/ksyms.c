/* SPDX-License-Identifier: MIT */
/*
 * Addresses and list positions of the hooked functions (ksyms.h): one pass
 * over a symbol listing in large reads, comparing each line's name field
 * with the names asked for and parsing an address only for those.
 */
#include "ksyms.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CHUNK 65536
#define MAX_NAMES 64

struct sym {
	uint64_t addr;
	int name; /* index into names */
};

struct pd_ksyms {
	const char *const *names;
	int nr_names;
	unsigned count[MAX_NAMES], line[MAX_NAMES];
	size_t len[MAX_NAMES];
	bool addrs, zeros;
	/* kallsyms: the first greater address on the lines after a name's first
	 * line (where its code ends), and the name waiting for it (-1) */
	uint64_t end[MAX_NAMES];
	int pending;
	struct sym sym[PD_KSYMS_MAX];
	int nr;
};

/* The name field of @line (@l bytes, no newline) in @fmt; its length in @n. */
static const char *name_field(const char *line, size_t l, enum pd_ksyms_format fmt, size_t *n)
{
	const char *p = line, *end = line + l;

	if (fmt != PD_KSYMS_FTRACE) {
		/* past the address, and the type letter of kallsyms */
		for (int skip = fmt == PD_KSYMS_KALLSYMS ? 2 : 1; skip && p < end; skip--) {
			p = memchr(p, ' ', (size_t)(end - p));
			if (!p)
				return NULL;
			p++;
		}
	}
	*n = strcspn(p, " \t\n");
	if (p + *n > end)
		*n = (size_t)(end - p);
	return p;
}

static void take_line(struct pd_ksyms *k, const char *line, size_t l, unsigned no,
		      enum pd_ksyms_format fmt)
{
	size_t n;
	const char *name = name_field(line, l, fmt, &n);

	if (!name || !n)
		return;
	if (k->pending >= 0) {
		uint64_t addr = strtoull(line, NULL, 16), at = 0;

		for (int s = 0; s < k->nr; s++)
			if (k->sym[s].name == k->pending)
				at = k->sym[s].addr;
		if (addr > at) {
			k->end[k->pending] = addr;
			k->pending = -1;
		}
	}
	for (int i = 0; i < k->nr_names; i++) {
		uint64_t addr;

		if (n != k->len[i] || name[0] != k->names[i][0] || memcmp(name, k->names[i], n))
			continue;
		if (!k->count[i]++)
			k->line[i] = no;
		if (fmt == PD_KSYMS_FTRACE)
			break;
		addr = strtoull(line, NULL, 16);
		if (!addr)
			k->zeros = true;
		else if (k->nr < PD_KSYMS_MAX)
			k->sym[k->nr++] = (struct sym){addr, i};
		if (addr && fmt == PD_KSYMS_KALLSYMS && k->count[i] == 1)
			k->pending = i;
		break;
	}
}

/* Feeds every line of @fd to take_line. 0 or -errno. */
static int scan(struct pd_ksyms *k, int fd, enum pd_ksyms_format fmt)
{
	char *buf = malloc(CHUNK + 1);
	size_t have = 0;
	unsigned no = 0;

	if (!buf)
		return -ENOMEM;
	for (;;) {
		ssize_t got = read(fd, buf + have, CHUNK - have);
		size_t start = 0;

		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			int ret = -errno;

			free(buf);
			return ret;
		}
		have += (size_t)got;
		buf[have] = 0;
		for (char *nl; (nl = memchr(buf + start, '\n', have - start));) {
			take_line(k, buf + start, (size_t)(nl - buf - start), ++no, fmt);
			start = (size_t)(nl - buf) + 1;
		}
		if (!got || (!start && have == CHUNK)) {
			/* the end, or a line longer than a chunk: the rest is one line */
			if (have > start)
				take_line(k, buf + start, have - start, ++no, fmt);
			start = have;
			if (!got)
				break;
		}
		memmove(buf, buf + start, have - start);
		have -= start;
	}
	free(buf);
	return 0;
}

int pd_ksyms_load(const char *path, enum pd_ksyms_format fmt, const char *const *names, int nr,
		  struct pd_ksyms **out, char *err, size_t errlen)
{
	struct pd_ksyms *k;
	int fd, ret;

	if (nr > MAX_NAMES)
		return -E2BIG;
	if (!(k = calloc(1, sizeof(*k))))
		return -ENOMEM;
	k->names = names;
	k->nr_names = nr;
	k->pending = -1;
	for (int i = 0; i < nr; i++)
		k->len[i] = strlen(names[i]);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		ret = -errno;
		snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
		free(k);
		return ret;
	}
	ret = scan(k, fd, fmt);
	close(fd);
	if (ret) {
		snprintf(err, errlen, "cannot read %s: %s", path, strerror(-ret));
		free(k);
		return ret;
	}
	if (k->zeros && !k->nr) {
		snprintf(err, errlen,
			 "%s shows no addresses (needs CAP_SYSLOG, or "
			 "kernel.kptr_restrict=0 with perf_event_paranoid<=1)",
			 path);
		free(k);
		return -EPERM;
	}
	k->addrs = fmt != PD_KSYMS_FTRACE && !k->zeros;
	*out = k;
	return 0;
}

void pd_ksyms_free(struct pd_ksyms *k)
{
	free(k);
}

unsigned pd_ksyms_count(const struct pd_ksyms *k, int i)
{
	return k && i >= 0 && i < k->nr_names ? k->count[i] : 0;
}

unsigned pd_ksyms_line(const struct pd_ksyms *k, int i)
{
	return k && i >= 0 && i < k->nr_names ? k->line[i] : 0;
}

uint64_t pd_ksyms_addr(const struct pd_ksyms *k, int i)
{
	for (int s = 0; k && s < k->nr; s++)
		if (k->sym[s].name == i)
			return k->sym[s].addr;
	return 0;
}

uint64_t pd_ksyms_end(const struct pd_ksyms *k, int i)
{
	return k && i >= 0 && i < k->nr_names ? k->end[i] : 0;
}

bool pd_ksyms_has_addrs(const struct pd_ksyms *k)
{
	return k && k->addrs;
}

const char *pd_ksyms_name(const struct pd_ksyms *k, uint64_t addr, uint64_t *id)
{
	for (int i = 0; k && i < k->nr; i++) {
		/* kallsyms gives the function's start; ftrace's listing its call
		 * site, up to an ENDBR past it: either way the record is near */
		if (addr + 8 >= k->sym[i].addr && addr < k->sym[i].addr + 16) {
			*id = (uint64_t)k->sym[i].name + 1;
			return k->names[k->sym[i].name];
		}
	}
	*id = 0;
	return NULL;
}
