/* SPDX-License-Identifier: MIT */
/*
 * analyzer/rb_page.h against libtraceevent's kbuffer, the reader it stands
 * in for: the same records (where, how long, when) and the same lost-event
 * count, on pages built here for each case of the format (time extends,
 * absolute stamps, padding, long records, lost events, 4- and 8-byte longs)
 * and on every page of a live capture (tests/fixtures/live-pages). Pages
 * kbuffer would read past the end of stop in doubt instead.
 *
 * Usage: test_rb_page LIVE_PAGES.zst
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <traceevent/kbuffer.h>
#include <zstd.h>

#include "../check.h"
#include "rb_page.h"

#define PAGE 4096

/* A page under construction: header, then events appended. */
struct builder {
	uint8_t p[PAGE];
	unsigned lsize, len; /* len: bytes of events */
};

static void b_init(struct builder *b, unsigned lsize, uint64_t ts)
{
	memset(b->p, 0, sizeof(b->p));
	b->lsize = lsize;
	b->len = 0;
	memcpy(b->p, &ts, 8);
}

static void b_word(struct builder *b, uint32_t w)
{
	memcpy(b->p + 8 + b->lsize + b->len, &w, 4);
	b->len += 4;
}

/* A data event of @words payload words (1-28 inline, more through type_len 0). */
static void b_event(struct builder *b, uint32_t delta, unsigned words)
{
	if (words >= 1 && words <= 28) {
		b_word(b, delta << 5 | words);
	} else {
		b_word(b, delta << 5);
		b_word(b, words * 4 + 4);
	}
	for (unsigned i = 0; i < words; i++)
		b_word(b, 0xa5000000u | (b->len & 0xffffff));
}

static void b_extend(struct builder *b, unsigned type, uint32_t delta, uint32_t arg)
{
	b_word(b, delta << 5 | type);
	b_word(b, arg);
}

static void b_padding(struct builder *b, uint32_t delta, uint32_t bytes)
{
	b_word(b, delta << 5 | PT_RB_PADDING);
	b_word(b, bytes);
	for (uint32_t i = 0; i < bytes; i += 4)
		b_word(b, 0);
}

/* The commit word: the events' size and the lost-events flags, then the count after the data. */
static void b_commit(struct builder *b, int lost)
{
	uint64_t flags = b->len;

	if (lost) {
		flags |= PT_RB_MISSING_EVENTS;
		if (lost > 0) {
			uint64_t n = (uint64_t)lost;

			flags |= PT_RB_MISSING_STORED;
			memcpy(b->p + 8 + b->lsize + b->len, &n, b->lsize);
		}
	}
	memcpy(b->p + 8, &flags, b->lsize);
}

/* Both readers over one page: the same records, missed counts and times. */
static int compare(const uint8_t *page, unsigned lsize, const char *what)
{
	struct kbuffer *kb =
	    kbuffer_alloc(lsize == 8 ? KBUFFER_LSIZE_8 : KBUFFER_LSIZE_4, KBUFFER_ENDIAN_LITTLE);
	struct pt_rb_page pg;
	unsigned long long kts;
	void *kd;
	int r, n = 0;

	CHECK(kb != NULL);
	CHECK(kbuffer_load_subbuffer(kb, (void *)page) == 0);
	r = pt_rb_load(&pg, page, PAGE, lsize);
	CHECKF(r >= 0, "%s: doubt on a sound page", what);
	CHECKF(pt_rb_missed(&pg) == kbuffer_missed_events(kb), "%s: missed %lld, kbuffer %d", what,
	       pt_rb_missed(&pg), kbuffer_missed_events(kb));
	for (kd = kbuffer_read_event(kb, &kts); kd; kd = kbuffer_next_event(kb, &kts), n++) {
		CHECKF(r == 1, "%s: record %d: kbuffer has it, the walk ended", what, n);
		if (r != 1)
			break;
		CHECKF(pg.data + pg.index == kd, "%s: record %d at %td, kbuffer at %td", what, n,
		       (const uint8_t *)(pg.data + pg.index) - page, (const uint8_t *)kd - page);
		CHECKF(pg.next - pg.index == (uint32_t)kbuffer_event_size(kb),
		       "%s: record %d: %u bytes, kbuffer %d", what, n, pg.next - pg.index,
		       kbuffer_event_size(kb));
		CHECKF(pg.ts == kts, "%s: record %d: time %llu, kbuffer %llu", what, n,
		       (unsigned long long)pg.ts, kts);
		r = pt_rb_step(&pg);
	}
	CHECKF(r == 0, "%s: the walk has a record after kbuffer's last (%d)", what, r);
	kbuffer_free(kb);
	return n;
}

static void built_pages(void)
{
	struct builder b;

	for (unsigned lsize = 4; lsize <= 8; lsize += 4) {
		b_init(&b, lsize, 1000);
		for (unsigned w = 1; w <= 28; w++)
			b_event(&b, w * 3, w);
		b_commit(&b, 0);
		CHECK_EQ(compare(b.p, lsize, "every inline length"), 28);

		b_init(&b, lsize, 5);
		b_event(&b, 1, 40); /* type_len 0: the length in the next word */
		b_event(&b, 2, 2);
		b_event(&b, 0, 100);
		b_commit(&b, 0);
		CHECK_EQ(compare(b.p, lsize, "long records"), 3);

		b_init(&b, lsize, 7);
		b_extend(&b, PT_RB_TIME_EXTEND, 12, 3); /* first: the lost count is kbuffer's 0 */
		b_event(&b, 4, 2);
		b_extend(&b, PT_RB_TIME_EXTEND, 1, 1);
		b_event(&b, 4, 2);
		b_commit(&b, 17);
		CHECK_EQ(compare(b.p, lsize, "time extends, lost count stored"), 2);

		b_init(&b, lsize, 0xf800000000000123ull);
		b_event(&b, 9, 1);
		b_extend(&b, PT_RB_TIME_STAMP, 77, 5); /* absolute: the top bits kept */
		b_event(&b, 3, 1);
		b_commit(&b, -1);
		CHECK_EQ(compare(b.p, lsize, "absolute stamp, lost count unknown"), 2);

		b_init(&b, lsize, 50);
		b_event(&b, 1, 3);
		b_padding(&b, 2, 24);
		b_event(&b, 5, 4);
		b_commit(&b, 3);
		CHECK_EQ(compare(b.p, lsize, "padding, lost count stored"), 2);

		b_init(&b, lsize, 50);
		b_commit(&b, 9);
		CHECK_EQ(compare(b.p, lsize, "empty page, lost count stored"), 0);
	}
}

/* Pages kbuffer would read past: a doubt, never a record outside the page. */
static void doubtful_pages(void)
{
	struct builder b;
	struct pt_rb_page pg;
	uint64_t flags;
	int r;

	b_init(&b, 8, 0);
	b_event(&b, 1, 2);
	flags = PAGE; /* a commit past the page's end */
	memcpy(b.p + 8, &flags, 8);
	CHECK_EQ(pt_rb_load(&pg, b.p, PAGE, 8), -1);

	b_init(&b, 8, 0);
	b_event(&b, 1, 2);
	b_word(&b, 0);	  /* type_len 0 ... */
	b_word(&b, 8000); /* ... longer than the page */
	b_commit(&b, 0);
	r = pt_rb_load(&pg, b.p, PAGE, 8);
	CHECK_EQ(r, 1);
	CHECK_EQ(pt_rb_step(&pg), -1);

	b_init(&b, 8, 0);
	b_word(&b, PT_RB_PADDING); /* padding that does not move on */
	b_word(&b, (uint32_t)-4);  /* back to itself */
	b_commit(&b, 0);
	CHECK_EQ(pt_rb_load(&pg, b.p, PAGE, 8), -1);

	CHECK_EQ(pt_rb_load(&pg, b.p, 16, 8), -1); /* no room for an event */
}

/* Every page of a live capture: [s32 cpu][s32 bytes][PAGE bytes] each, zstd. */
static void live_pages(const char *path)
{
	FILE *f = fopen(path, "rb");
	long len;
	char *z;
	unsigned long long raw;
	uint8_t *all;
	size_t n, pages = 0;
	long records = 0;

	CHECKF(f != NULL, "cannot open %s", path);
	if (!f)
		return;
	fseek(f, 0, SEEK_END);
	len = ftell(f);
	rewind(f);
	z = malloc((size_t)len);
	CHECK(z && fread(z, 1, (size_t)len, f) == (size_t)len);
	fclose(f);
	raw = ZSTD_getFrameContentSize(z, (size_t)len);
	CHECK(raw != ZSTD_CONTENTSIZE_ERROR && raw != ZSTD_CONTENTSIZE_UNKNOWN);
	all = malloc(raw);
	n = ZSTD_decompress(all, raw, z, (size_t)len);
	CHECK(!ZSTD_isError(n) && n == raw);
	for (size_t off = 0; off + 8 + PAGE <= n; off += 8 + PAGE, pages++) {
		char what[64];

		snprintf(what, sizeof(what), "live page %zu", pages);
		records += compare(all + off + 8, 8, what);
	}
	/* the fixture's NOTES: 244 pages of CPU 0 */
	CHECK_EQ(pages, 244);
	CHECK_EQ(records, 24448);
	printf("%zu live pages, %ld records, the same as kbuffer's\n", pages, records);
	free(all);
	free(z);
}

int main(int argc, char **argv)
{
	built_pages();
	doubtful_pages();
	if (argc > 1)
		live_pages(argv[1]);
	else
		CHECKF(0, "usage: test_rb_page LIVE_PAGES.zst");
	TEST_DONE();
}
