/* SPDX-License-Identifier: MIT */
/*
 * Large, short-lived buffers on transparent huge pages, for the trace.dat
 * helper's few big allocations (the kallsyms text and its index, the chunks
 * decompressed ahead). A first touch of a 4 KiB page is a page fault; on a
 * virtual machine a fault costs some 10 us, and the helper's 3,700 faults on
 * the bundled recording were a quarter of its CPU time. A buffer of
 * PT_BIGBUF_MIN bytes or more is mapped 2 MiB-aligned with
 * madvise(MADV_HUGEPAGE), so the kernel fills it a huge page per fault
 * where THP is enabled ("madvise" or "always", Debian's default is
 * "madvise"); elsewhere it is an ordinary anonymous mapping. Memory is
 * counted in 2 MiB steps where huge pages are used.
 */
#ifndef PTESCOPE_BIGBUF_H
#define PTESCOPE_BIGBUF_H

#include <stddef.h>

#define PT_BIGBUF_MIN ((size_t)1 << 19) /* smaller requests: malloc() */

/* @len bytes (not zeroed unless fresh from the kernel), or NULL. Free with
 * pt_bigbuf_free() and the same @len. */
void *pt_bigbuf_alloc(size_t len);
void pt_bigbuf_free(void *p, size_t len);

#endif
