/* SPDX-License-Identifier: MIT */
/*
 * The event formats live capture decodes, read from tracefs into a
 * libtraceevent handle: only the named events and the ring buffer's page
 * header. libtracefs's tracefs_local_events_system() also parses all of
 * /proc/kallsyms, printk_formats and saved_cmdlines into the handle, which
 * nothing of ours uses: in an icount guest that was 6 s of the daemon's
 * start, twice (docs/operations.md, "Start and stop").
 */
#ifndef PTESCOPED_FORMATS_H
#define PTESCOPED_FORMATS_H

#include <stddef.h>

struct tep_handle;

/*
 * A handle with the formats of @events ("system/event", NULL-terminated)
 * under @tracing_dir/events, those the kernel has; an event the kernel lacks
 * is left out (callers check with tep_find_event_by_name). 0 or -errno (no
 * events directory, a format that does not parse, no memory) with @err.
 */
int pd_formats_load(const char *tracing_dir, const char *const *events, struct tep_handle **out,
		    char *err, size_t errlen);

#endif
