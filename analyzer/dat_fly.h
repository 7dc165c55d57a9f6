/* SPDX-License-Identifier: MIT */
/*
 * Our own walk of a trace.dat's flyrecord data, for the helper (dat_helper.c):
 * the per-CPU ring-buffer pages, decompressed a chunk at a time (v7 files
 * compressed with zstd, or not compressed), merged by time exactly as libtracecmd's
 * tracecmd_iterate_events() merges them (the smallest timestamp first, the
 * lowest CPU on a tie), each record as libtracecmd's tep_record would carry
 * it: its timestamp, payload, payload size and missed-events count.
 *
 * It only takes files it fully understands: v7, zstd or no compression (the
 * zlib that trace-cmd can write, Debian's libtracecmd cannot read: such a
 * file fails to open before this reader is asked), little-endian, 8-byte longs,
 * one top-level buffer, no option that changes timestamps (dates, offsets,
 * guest time shifts, TSC scaling) and no option it does not know. Anything
 * else is refused at open (pt_fly_open() returns 1 and says why), and the
 * helper reads the file with libtracecmd as before. Inside the pages it
 * reads what libtraceevent's kbuffer reads, byte for byte; where kbuffer
 * would read outside a page, make no progress or return a record that
 * reaches past the page, the walk stops with PT_FLY_DOUBT before handing on
 * that record, and the helper goes on with libtracecmd from the same record
 * (the records handed on so far are the ones libtracecmd hands on first, in
 * the same order: its merge peeks one record per CPU ahead, as this one does).
 *
 * The file is mapped read-only; memory is one decompressed chunk per CPU
 * (trace-cmd writes chunks of ten pages). Header-only: the caller checks
 * what the file's event formats say (tep: 8-byte page timestamps and
 * commits, file byte order) before walking.
 */
#ifndef PTESCOPE_DAT_FLY_H
#define PTESCOPE_DAT_FLY_H

#include <stddef.h>
#include <stdint.h>

struct pt_fly;

/* One record, valid until the next pt_fly_next(). */
struct pt_fly_rec {
	const void *data; /* the event's payload (common fields first) */
	int size;	  /* payload bytes, as kbuffer_event_size() counts them */
	int cpu;
	uint64_t ts;
	long long missed; /* events the ring buffer lost before it, -1 unknown */
};

enum pt_fly_result {
	PT_FLY_DOUBT = -1, /* stop here: go on with libtracecmd */
	PT_FLY_END = 0,
	PT_FLY_REC = 1,
};

/*
 * Opens @path for a walk. Returns 0 and *out (free with pt_fly_free()); 1
 * when the file is not one this reader takes (@why says what, in a few
 * words); a negative errno when it cannot be read (@why too).
 */
int pt_fly_open(const char *path, struct pt_fly **out, char *why, size_t whylen);
/* The same over @len bytes at @data, which must outlive the walk (the fuzz
 * target: its bytes in memory the sanitizer watches). */
int pt_fly_open_mem(const void *data, size_t len, struct pt_fly **out, char *why, size_t whylen);
void pt_fly_free(struct pt_fly *f);

/*
 * What libtracecmd still reads of the file, without what this reader does
 * itself: a copy in a memfd (*fd, close it) with the same offsets, holes
 * where the CPU data is (their sizes 0 in the BUFFER option) and an empty
 * kallsyms section; and that section's text in *kallsyms (decompressed,
 * NUL-terminated, owned by @f, the caller may write into it; NULL when the
 * file has none), for the caller to index its way. Returns 0; 1 (a kallsyms section it does not
 * read:
 * @why); -errno.
 */
int pt_fly_meta(struct pt_fly *f, int *fd, char **kallsyms, char *why, size_t whylen);

/* The CPUs of the file's buffer. */
int pt_fly_cpus(const struct pt_fly *f);

/* The next record of the merge: PT_FLY_REC and @rec, PT_FLY_END, PT_FLY_DOUBT. */
int pt_fly_next(struct pt_fly *f, struct pt_fly_rec *rec);

/* How far the walk is: bytes of the file's CPU data behind every CPU's
 * position (compressed bytes for zstd chunks) in *done, of *total. */
void pt_fly_progress(const struct pt_fly *f, uint64_t *done, uint64_t *total);

/* The first record of CPU @cpu without consuming it (a check against
 * libtracecmd before the walk): PT_FLY_REC, PT_FLY_END, PT_FLY_DOUBT. */
int pt_fly_peek_cpu(struct pt_fly *f, int cpu, struct pt_fly_rec *rec);

#endif
