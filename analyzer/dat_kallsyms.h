/* SPDX-License-Identifier: MIT */
/*
 * Function names from a trace.dat's kallsyms text, for the helper
 * (dat_helper.c), without libtraceevent's tep_parse_kallsyms(): its sscanf()
 * per line, a malloc() and strdup() per symbol and a sort of them all were
 * most of the helper's time on a small recording (a 6 MB kallsyms, 100,000
 * records). pt_ksyms_find() answers what tep_find_function() answers after
 * tep_parse_kallsyms() on the same text: the same symbols are kept (absolute
 * ones, type A or a, and names starting with '$' are skipped), in the same
 * order (libtraceevent's list, newest first, sorted stably by address; a
 * stable radix sort here), looked up with the same comparison and the same
 * probes as glibc's bsearch(). Only lines in /proc/kallsyms's own shape are
 * taken:
 *   16 hex digits, a space, the type letter, a space, the name,
 *   and optionally a tab and "[module]"
 * (a text with any other line is refused whole: the caller lets
 * libtraceevent parse it). test_dat_kallsyms compares every lookup.
 */
#ifndef PTESCOPE_DAT_KALLSYMS_H
#define PTESCOPE_DAT_KALLSYMS_H

#include <stdint.h>

struct pt_ksyms;

/*
 * Indexes NUL-terminated @text, which it modifies (names are terminated in
 * place) and which must outlive the index. Returns 0 and *out (free with
 * pt_ksyms_free()); 1 when a line is not in the shape above; -ENOMEM.
 */
int pt_ksyms_new(char *text, struct pt_ksyms **out);
void pt_ksyms_free(struct pt_ksyms *k);

/* The function @addr falls in, as tep_find_function() names it; NULL when
 * none. Valid as long as the text. */
const char *pt_ksyms_find(const struct pt_ksyms *k, uint64_t addr);

#endif
