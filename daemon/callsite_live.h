/* SPDX-License-Identifier: MIT */
/*
 * Call-site discovery on the running kernel: gathers what callsite.h needs
 * -- copy_page_range's address and extent and the few call targets from
 * /proc/kallsyms, the map-and-lock function's parameters from BTF, and the
 * function's live code -- runs it, and keeps the plan by kernel build id so
 * that the next start reads nothing (capture_setup.c arms the result).
 *
 * The code is read through tracefs alone (the shipped unit closes
 * /proc/kcore): kprobe events on copy_page_range's entry whose fetch args are
 * @copy_page_range+N:x64[64] (512 bytes each, 7 to an event) record the live
 * bytes when the daemon forks once, filtered to the daemon's thread and
 * recorded in its own instance, then removed. The probe hooks nothing the
 * fork detail does not hook anyway: copy_page_range's entry, which runs only
 * in forks.
 *
 * The cache file (CACHE_DIR/callsite-BUILDID.plan) is read only when it is a
 * regular file of our uid, not writable by others, whose build id and
 * function size match the running kernel; anything else is read again.
 */
#ifndef PTESCOPED_CALLSITE_LIVE_H
#define PTESCOPED_CALLSITE_LIVE_H

#include <stdbool.h>
#include <stddef.h>

#include "callsite.h"

struct pd_tfs;
struct pd_btf;

struct pd_cs_live_opts {
	const char *kallsyms;	  /* NULL: /proc/kallsyms */
	const char *notes;	  /* NULL: /sys/kernel/notes (the kernel's build id) */
	const struct pd_btf *btf; /* the kernel's BTF, NULL: none (no start address) */
	const char *cache_dir;	  /* NULL: no cache */
	const char *instance;	  /* the instance the code is read in */
	const char *group;	  /* its kprobe group (NULL: PD_KPROBE_GROUP) */
};

struct pd_cs_found {
	struct pd_cs_plan plan;
	char build_id[41]; /* hex, "" when the kernel has none */
	size_t text_size;  /* copy_page_range's */
	bool cached;	   /* the plan came from the cache file */
	double read_ms;	   /* reading the code (0 when cached) */
};

/*
 * Finds the plan for the running kernel, the top level of @t being ours (its
 * kprobe_events takes the reading probes). Returns 0 with @out filled;
 * -ENOTSUP when the code has a shape discovery does not know, or cannot be
 * read (kallsyms without addresses, a kernel that refuses the probes), with
 * the reason in @why; -errno otherwise. tracefs is left as it was.
 */
int pd_cs_live_find(struct pd_tfs *t, const struct pd_cs_live_opts *o, struct pd_cs_found *out,
		    char *why, size_t len);

/* The cache file @path: the plan it holds for the kernel @f describes
 * (build_id, and text_size unless 0), into @f->plan (and text_size), when it
 * is ours (a regular file of our uid, not writable by others) and whole;
 * false otherwise (@f->plan is then to be ignored). */
bool pd_cs_cache_load(const char *path, struct pd_cs_found *f);
/* Writes @f's plan to @path (a temporary file renamed over it, mode 0600);
 * best effort: a cache that cannot be written is read again next time. */
void pd_cs_cache_save(const char *path, const struct pd_cs_found *f);

#endif
