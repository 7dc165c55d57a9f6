/* SPDX-License-Identifier: MIT */
/*
 * A trace.dat's kallsyms text registered with a tep_handle without
 * libtraceevent's tep_parse_kallsyms(), whose sscanf() per line was a third
 * of the helper's time on a 4 MB kallsyms (dat_helper.c). The same functions
 * are registered in the same order (tep_register_function()), so
 * tep_find_function() answers as it would have; only the line parsing is
 * ours, and it takes only lines in /proc/kallsyms's own shape:
 *   16 hex digits, a space, the type letter, a space, the name,
 *   and optionally a tab and "[module]"
 * Like tep_parse_kallsyms() it skips absolute symbols (type A or a) and
 * names starting with '$'.
 */
#ifndef PTESCOPE_DAT_KALLSYMS_H
#define PTESCOPE_DAT_KALLSYMS_H

#include <traceevent/event-parse.h>

/*
 * Registers the functions of NUL-terminated @text with @tep. Returns 0; 1
 * when a line is not in the shape above (then nothing was registered: the
 * text is checked whole first); -ENOMEM.
 */
int pt_dat_kallsyms_register(struct tep_handle *tep, const char *text);

#endif
