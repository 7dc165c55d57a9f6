/* SPDX-License-Identifier: MIT */
/*
 * Huge-page backed buffers (bigbuf.h): an anonymous mapping 2 MiB larger
 * than asked, trimmed to a 2 MiB-aligned start, advised MADV_HUGEPAGE.
 * Requests below PT_BIGBUF_MIN go to malloc(), where a huge page would
 * mostly be waste.
 */
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "bigbuf.h"

#define HUGE_BYTES ((size_t)2 << 20)

static size_t mapped_len(size_t len)
{
	return (len + HUGE_BYTES - 1) & ~(HUGE_BYTES - 1);
}

void *pt_bigbuf_alloc(size_t len)
{
	size_t want, span;
	uint8_t *p, *start;

	if (len < PT_BIGBUF_MIN)
		return malloc(len ? len : 1);
	if (len > SIZE_MAX - 2 * HUGE_BYTES)
		return NULL;
	want = mapped_len(len);
	span = want + HUGE_BYTES;
	p = mmap(NULL, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	start = (uint8_t *)(((uintptr_t)p + HUGE_BYTES - 1) & ~(uintptr_t)(HUGE_BYTES - 1));
	if (start > p)
		munmap(p, (size_t)(start - p));
	if (p + span > start + want)
		munmap(start + want, (size_t)(p + span - (start + want)));
	madvise(start, want, MADV_HUGEPAGE); /* a hint: without THP, plain pages */
	return start;
}

void pt_bigbuf_free(void *p, size_t len)
{
	if (!p)
		return;
	if (len < PT_BIGBUF_MIN)
		free(p);
	else
		munmap(p, mapped_len(len));
}
