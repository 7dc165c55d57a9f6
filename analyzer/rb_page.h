/* SPDX-License-Identifier: MIT */
/*
 * One sub-buffer ("page") of the kernel's trace ring buffer, walked record
 * by record exactly as libtraceevent's kbuffer walks it: the trace.dat page
 * walk (dat_fly.c) and live capture (daemon/capture_read.c) share it.
 * Header-only and inline: it runs once per record on both hot paths, where
 * kbuffer's calls through function pointers were about a fifth of the
 * daemon's instructions per record.
 *
 * A page: the u64 time of its first event, the commit word (a long: bits
 * 0-26 the data's size, bit 31 events were lost before the page, bit 30
 * their count is stored as a long after the data), then the events: a u32
 * header (type_len bits 0-4, time delta bits 5-31); type_len 1-28: the
 * payload's length in words; 0: the length (+4) in the next word; 29
 * padding (its length in the next word), 30 a time extend, 31 an absolute
 * timestamp (the next word holds bits 27-58). Numbers are in the byte order
 * of the machine that wrote them: the caller checks it is ours.
 *
 * Where kbuffer would read outside the page or not move on, the walk stops
 * in doubt (-1) instead.
 */
#ifndef PTESCOPE_RB_PAGE_H
#define PTESCOPE_RB_PAGE_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#define PT_RB_COMMIT_MASK ((1u << 27) - 1)
#define PT_RB_MISSING_EVENTS (1ull << 31)
#define PT_RB_MISSING_STORED (1ull << 30)
#define PT_RB_TS_SHIFT 27
#define PT_RB_TS_MSB (0xf8ull << 56) /* kept from the running time by an absolute stamp */

enum {
	PT_RB_PADDING = 29,
	PT_RB_TIME_EXTEND = 30,
	PT_RB_TIME_STAMP = 31,
};

/* The loaded page, as kbuffer holds it: offsets from data. */
struct pt_rb_page {
	const uint8_t *data; /* the events, past the header */
	uint32_t dlen;	     /* bytes after the header */
	uint32_t size;	     /* bytes of events (the commit) */
	uint32_t curr;	     /* the current event's header */
	uint32_t index;	     /* its payload */
	uint32_t next;	     /* the event after it */
	uint64_t ts;	     /* its time */
	long long lost;	     /* events lost before the page; -1: some, count unknown */
};

/* A u32 (@n 4) or u64 (@n 8) in the machine's order. */
static inline uint64_t pt_rb_rd(const uint8_t *p, unsigned n)
{
	uint64_t v;
	uint32_t w;

	if (n == 8) {
		memcpy(&v, p, 8);
		return v;
	}
	memcpy(&w, p, 4);
	return w;
}

/*
 * kbuffer's next event: from the event after the current one, past time
 * extends, absolute stamps and padding, to the next data event (1), or the
 * end of the page (0). -1 (doubt) where kbuffer would read outside the page
 * or not move on.
 */
static inline __attribute__((always_inline)) int pt_rb_step(struct pt_rb_page *c)
{
	uint32_t dlen = c->dlen;

	for (;;) {
		uint32_t word, type_len, delta, arg = 0, index;
		int64_t length;

		c->curr = c->next;
		if (c->next >= c->size)
			return 0;
		if (c->curr > dlen - 4)
			return -1;
		word = (uint32_t)pt_rb_rd(c->data + c->curr, 4);
		type_len = word & 31;
		delta = word >> 5;
		index = c->curr + 4;
		if (type_len == 0 || type_len >= PT_RB_PADDING) {
			if (index > dlen - 4)
				return -1;
			arg = (uint32_t)pt_rb_rd(c->data + index, 4);
		}
		if (type_len == PT_RB_TIME_EXTEND || type_len == PT_RB_TIME_STAMP) {
			uint64_t t = ((uint64_t)arg << PT_RB_TS_SHIFT) + delta;

			c->ts =
			    type_len == PT_RB_TIME_STAMP ? t | (c->ts & PT_RB_TS_MSB) : c->ts + t;
			index += 4;
			length = 0;
		} else {
			c->ts += delta;
			if (type_len == PT_RB_PADDING) {
				length = (int32_t)arg;
			} else if (type_len == 0) {
				length = ((int64_t)(int32_t)(arg - 4) + 3) & ~(int64_t)3;
				index += 4;
			} else {
				length = (int64_t)type_len * 4;
			}
		}
		c->index = index;
		c->next = index + (uint32_t)length;
		if (c->next <= c->curr)
			return -1;
		if (type_len < PT_RB_PADDING)
			return length < 0 || index + length > dlen ? -1 : 1;
	}
}

/*
 * kbuffer_load_subbuffer(): the page of @page_size bytes at @page, whose
 * commit word is a long of @lsize bytes (4 or 8), loaded and stepped to its
 * first event: 1 (an event is current), 0 (none), -1 (doubt).
 */
static inline int pt_rb_load(struct pt_rb_page *c, const uint8_t *page, uint32_t page_size,
			     unsigned lsize)
{
	uint32_t hdr = 8 + lsize;
	uint64_t flags;

	if (page_size < hdr + 8)
		return -1;
	c->dlen = page_size - hdr;
	c->ts = pt_rb_rd(page, 8);
	flags = pt_rb_rd(page + 8, lsize);
	c->data = page + hdr;
	c->size = (uint32_t)flags & PT_RB_COMMIT_MASK;
	c->curr = c->index = c->next = 0;
	c->lost = 0;
	if (c->size > c->dlen)
		return -1;
	if (flags & PT_RB_MISSING_EVENTS) {
		c->lost = -1;
		if (flags & PT_RB_MISSING_STORED) {
			if (c->size > c->dlen - lsize)
				return -1;
			c->lost = lsize == 8 ? (long long)pt_rb_rd(c->data + c->size, 8)
					     : (long long)(int32_t)pt_rb_rd(c->data + c->size, 4);
		}
	}
	return pt_rb_step(c);
}

/* kbuffer_missed_events(): the lost count, on the page's first event only
 * (at offset 0: after a time extend it is 0), as an int. */
static inline long long pt_rb_missed(const struct pt_rb_page *c)
{
	return c->curr == 0 ? (long long)(int)c->lost : 0;
}

#endif
