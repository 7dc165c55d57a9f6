/* SPDX-License-Identifier: MIT */
/*
 * Decompression ahead of the page walk (dat_fly.c): a thread that
 * decompresses each CPU's zstd chunks a few chunks ahead of the walk, so that
 * on a machine with a free core the helper's two largest costs, zstd and the
 * decoding after the walk, run side by side. Private to dat_fly.c.
 *
 * Bounded: at most the caller's number of decompressed chunks per CPU (the
 * walk holds one of them, the chunk its current page is in); the thread
 * waits for room and stops at the end or when freed. While the helper sets
 * up (libtracecmd's open of the metadata, the kallsyms index) the thread
 * already fills them.
 */
#ifndef PTESCOPE_DAT_FLY_AHEAD_H
#define PTESCOPE_DAT_FLY_AHEAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/mman.h>

#define FLY_RELEASE_BYTES ((uintptr_t)4 << 20)

/*
 * The mapped file's pages in [*done, @upto), once they add up to
 * FLY_RELEASE_BYTES, given back (MADV_DONTNEED: a read-only private file
 * mapping drops them from this process; the page cache keeps them), and
 * *done moved on: a walk's resident memory stays bounded whatever the size
 * of the file. The caller never reads below @upto again.
 */
static inline void fly_release(const uint8_t **done, const uint8_t *upto)
{
	uintptr_t from = ((uintptr_t)*done + 4095) & ~(uintptr_t)4095;
	uintptr_t to = (uintptr_t)upto & ~(uintptr_t)4095;

	if (to <= from || to - from < FLY_RELEASE_BYTES)
		return;
	madvise((void *)from, to - from, MADV_DONTNEED);
	*done = (const uint8_t *)to;
}

struct fly_ahead;

/*
 * Starts the thread over @n CPUs, @slots chunks ahead at most per CPU (at
 * least 2), none larger than @max_chunk decompressed: CPU i's chunk table at
 * @table[i] (each chunk: u32 compressed size, u32 size, the bytes; checked by
 * the caller to lie inside the mapping) with @count[i] chunks. With
 * @release (a file mapping of the caller's own), the chunks read are given
 * back as the thread goes (fly_release()). Returns 0 and *out, or a
 * negative errno (then the caller decompresses itself).
 */
int fly_ahead_new(int n, unsigned slots, size_t max_chunk, bool release,
		  const uint8_t *const *table, const uint32_t *count, struct fly_ahead **out);

/*
 * CPU @i's next chunk: 1 with *buf and *len (valid until the next call for
 * @i), 0 when it has no more, -1 when it did not decompress to its size.
 * Called by one thread; gives the previous chunk of @i back.
 */
int fly_ahead_next(struct fly_ahead *a, int i, const uint8_t **buf, size_t *len);

/* Stops and joins the thread, frees everything. NULL is fine. */
void fly_ahead_free(struct fly_ahead *a);

#endif
